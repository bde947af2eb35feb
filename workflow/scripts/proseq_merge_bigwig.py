"""Per-base mean of a species' replicate PRO-seq bigWigs, per strand (rule proseq_merge_bigwig)."""

from plantt.io import setup_logging
from plantt.proseq import merge_bigwigs
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(sm.log[0])
for strand in ("plus", "minus"):
    merge_bigwigs(list(sm.input[strand]), sm.output[strand], chunk_size=sm.params.chunk_size)
    log.info("%s %s: mean of %d replicates", sm.wildcards.species, strand, len(sm.input[strand]))
