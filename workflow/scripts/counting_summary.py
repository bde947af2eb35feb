"""Table and bar chart of where each sample's reads went (rule counting_summary)."""

import pandas as pd

from plantt.io import setup_logging, write_tsv
from plantt.plots import plot_counting_summary
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
summary = pd.concat([pd.read_csv(path, sep="\t") for path in sm.input], ignore_index=True)
write_tsv(summary, sm.output.table)
plot_counting_summary(summary, sm.output.plot)
