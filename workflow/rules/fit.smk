# Bring your own sequences: tables of sequences (or pairs) trained and cross-validated by `plantt
# fit`, one job per dataset of fit.datasets (all folds and seeds; a rerun keeps finished models).


rule fit_table:
    input:
        unpack(get_fit_inputs),
    output:
        metrics="results/fit/{dataset}/metrics.tsv",
        predictions="results/fit/{dataset}/predictions.tsv",
        ensemble="results/fit/{dataset}/model/ensemble.json",
        summary=report(
            "results/fit/{dataset}/metrics_summary.tsv",
            caption="../report/fit_summary.rst",
            category="Your own sequences",
            labels={"dataset": "{dataset}", "table": "metrics across folds"},
        ),
    log:
        "logs/fit/{dataset}.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=720,
    params:
        task=get_fit_task,
        settings=get_fit_settings,
    script:
        "../scripts/fit_table.py"


# Not part of the default target: `snakemake --cores N fit_all` fits every dataset.
rule fit_all:
    input:
        fit_outputs(),
