"""Every species' and assay's replicate pairs in one table (rule replicate_concordance_summary)."""

import pandas as pd

from plantt.io import read_tsv, setup_logging, write_tsv
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
write_tsv(pd.concat([read_tsv(path) for path in sm.input], ignore_index=True), sm.output[0])
