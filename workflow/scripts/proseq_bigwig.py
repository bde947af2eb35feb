"""CPM bigWigs of one PRO-seq sample's polymerase positions, one per strand (rule proseq_bigwig)."""

from plantt.io import setup_logging
from plantt.proseq import write_polymerase_bigwigs
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(sm.log[0])
total = write_polymerase_bigwigs(sm.input.bam, sm.output.plus, sm.output.minus,
                                 min_mapq=sm.params.min_mapq,
                                 chunk_size=sm.params.chunk_size)
log.info("%s: %d read-1 positions scaled to CPM", sm.wildcards.sample, total)
