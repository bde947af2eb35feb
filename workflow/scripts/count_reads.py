"""Count reads per gene in one sample's BAM (rule count_reads)."""

import pandas as pd

from plantt.io import setup_logging, write_tsv
from plantt.quantify import CountSettings, count_reads
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(sm.log[0])
settings = CountSettings(**sm.params.settings)
table, summary = count_reads(sm.input.bam, sm.input.annotation, settings,
                             chunk_size=sm.params.chunk_size)
log.info("%s: %s", sm.wildcards.sample, summary)
write_tsv(table, sm.output.counts)
write_tsv(pd.DataFrame([{"sample": sm.wildcards.sample, "assay": settings.assay, **summary}]),
          sm.output.summary)
