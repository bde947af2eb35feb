"""Orthogroup-stratified folds with balanced signs, and their composition plot (rule cv_splits)."""

import pandas as pd

from plantt.plots import plot_split_summary
from plantt.rule_script import run_plantt

sm = snakemake
settings = sm.params.settings
shared = list(sm.input.shared)
run_plantt(["splits", "--labels", sm.input.labels, "--out", sm.output.splits,
            "--summary", sm.output.summary, "--folds", settings["folds"],
            "--validation-fraction", settings["validation_fraction"],
            "--seed", settings["seed"], *(["--shared-with", *shared] if shared else [])],
           sm.log[0])
plot_split_summary(pd.read_csv(sm.output.summary, sep="\t"), sm.output.plot,
                   title=f"{sm.wildcards.assay}: pairs per fold, set and sign")
