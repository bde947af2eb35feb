"""Cohen's d per ortholog pair for one assay (rule cohens_d_labels)."""

import _setup

sm = snakemake
settings = sm.params.settings
_setup.run_plantt(["labels", "--pairs", sm.input.pairs, "--expression", *sm.input.expression,
                   "--assay", sm.wildcards.assay, "--out", sm.output[0],
                   "--unit", settings["unit"], "--log-transform", settings["log_transform"],
                   "--pseudocount", settings["pseudocount"]], sm.log[0])
