"""Pause index per gene from a species' pooled PRO-seq replicates (rule proseq_pausing)."""

from plantt.annotation import read_genes
from plantt.io import setup_logging, write_tsv
from plantt.proseq import PauseSettings, pause_indices_from_bams
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(sm.log[0])
settings = PauseSettings(**sm.params.settings)
table = pause_indices_from_bams(read_genes(sm.input.annotation), list(sm.input.bams), settings,
                                min_mapq=sm.params.min_mapq, chunk_size=sm.params.chunk_size)
write_tsv(table, sm.output[0])
log.info("%s: %d genes, %d with at least %d gene-body reads", sm.wildcards.species, len(table),
         int(table["covered"].sum()), settings.min_reads)
