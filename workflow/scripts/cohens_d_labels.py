"""Cohen's d per ortholog pair for one assay (rule cohens_d_labels)."""

from plantt.rule_script import run_plantt

sm = snakemake
settings = sm.params.settings
run_plantt(["labels", "--pairs", sm.input.pairs, "--expression", *sm.input.expression,
            "--assay", sm.wildcards.assay, "--out", sm.output[0],
            "--unit", settings["unit"], "--log-transform", settings["log_transform"],
            "--pseudocount", settings["pseudocount"]], sm.log[0])
