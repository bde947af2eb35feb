# Training per assay x model x fold (the paper's Sections 3.3, 4.4, 4.5), then metrics across folds.


rule train_fold:
    input:
        unpack(get_init_weights),
        codes="results/windows/encoded.npy",
        genes="results/windows/encoded.genes.tsv",
        splits="results/splits/{assay}.tsv",
    output:
        weights="results/models/{assay}/{model}/fold_{fold}/weights.pt",
        model="results/models/{assay}/{model}/fold_{fold}/model.json",
        history="results/models/{assay}/{model}/fold_{fold}/history.tsv",
        predictions="results/models/{assay}/{model}/fold_{fold}/predictions.tsv",
        curves=report(
            "results/models/{assay}/{model}/fold_{fold}/curves.png",
            caption="../report/curves.rst",
            category="Training",
            subcategory="{assay}",
            labels={"model": "{model}", "fold": "{fold}"},
        ),
    log:
        "logs/train/{assay}.{model}.fold_{fold}.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: get_train_threads
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        settings=get_train_settings,
    script:
        "../scripts/train_fold.py"


rule evaluate:
    input:
        get_fold_predictions,
    output:
        predictions="results/metrics/{assay}/predictions.tsv",
        per_fold="results/metrics/{assay}/metrics_per_fold.tsv",
        summary=report(
            "results/metrics/{assay}/metrics_summary.tsv",
            caption="../report/metrics_summary.rst",
            category="Model performance",
            labels={"assay": "{assay}", "table": "mean ± SD across folds"},
        ),
        bars=report(
            "results/metrics/{assay}/metrics_summary.png",
            caption="../report/metrics_bars.rst",
            category="Model performance",
            labels={"assay": "{assay}", "figure": "metrics across folds"},
        ),
        scatter=report(
            "results/metrics/{assay}/predicted_vs_true.png",
            caption="../report/predicted_vs_true.rst",
            category="Model performance",
            labels={"assay": "{assay}", "figure": "predicted vs true"},
        ),
    log:
        "logs/evaluate/{assay}.log",
    conda:
        "../../envs/plantt.yaml"
    script:
        "../scripts/evaluate.py"


# `snakemake --cores N train_all` trains and evaluates every assay x model x fold (also part of
# the default target).
rule train_all:
    input:
        metrics_outputs(),
