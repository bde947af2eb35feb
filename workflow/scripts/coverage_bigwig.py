"""CPM bigWigs of one 3'-RNA-seq sample's read 5' ends, one per strand (rule coverage_bigwig)."""

from plantt.io import setup_logging
from plantt.quantify import CountSettings
from plantt.rule_script import start_rule_script
from plantt.tracks import write_strand_bigwigs

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(sm.log[0])
settings = CountSettings(**sm.params.settings)
total = write_strand_bigwigs(sm.input.bam, sm.output.plus, sm.output.minus, settings,
                             chunk_size=sm.params.chunk_size)
log.info("%s: %d read 5' ends scaled to CPM", sm.wildcards.sample, total)
