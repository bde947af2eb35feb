"""FASTA index of one genome, refused if a chromosome is longer than a BAM can hold (rule genome_fai)."""

from plantt.genome import index_genome
from plantt.io import setup_logging
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(sm.log[0])
lengths = index_genome(sm.input[0], sm.output[0])
log.info("%s: %d sequences, %d bases, the longest %d bp", sm.wildcards.species, len(lengths),
         sum(lengths.values()), max(lengths.values()))
