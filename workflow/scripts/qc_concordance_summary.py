"""Every species' and assay's replicate pairs in one table (rule replicate_concordance_summary)."""

import _setup  # noqa: F401 (makes plantt importable)

import pandas as pd

from plantt.io import read_tsv, setup_logging, write_tsv

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
write_tsv(pd.concat([read_tsv(path) for path in sm.input], ignore_index=True), sm.output[0])
