# Training per assay x model x fold (the paper's Sections 3.3, 4.4, 4.5), then metrics across folds.


# Every window scanned once for the known matrices (plantt.pwm.write_matrix_scan), read by every
# fold job of every assay that fits on them (train_pwm; train_fold where PlanTT's detectors start
# from known matrices) instead of each scanning again: on the demo 2 scans instead of 30.
rule scan_matrices:
    input:
        unpack(get_scan_motif_file),
        codes="results/windows/encoded.npy",
    output:
        scan="results/windows/matrix_scan.{scan}.npy",
        settings="results/windows/matrix_scan.{scan}.json",
    log:
        "logs/train/matrix_scan.{scan}.log",
    wildcard_constraints:
        scan="|".join(MATRIX_SCANS),
    conda:
        "../../envs/pytorch.yaml"
    threads: get_model_threads
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        settings=get_scan_settings,
    script:
        "../scripts/scan_matrices.py"


# The PyTorch models; the ridge baselines have their own rules (train_kmer, train_pwm), whose
# outputs share the folder pattern, so `model` never matches kmer or pwm here.
rule train_fold:
    input:
        unpack(get_init_weights),
        unpack(get_seeding_scan),
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
    wildcard_constraints:
        model=TORCH_MODEL_PATTERN,
    conda:
        "../../envs/pytorch.yaml"
    threads: get_model_threads
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        settings=get_train_settings,
    script:
        "../scripts/train_fold.py"


# The k-mer ridge baseline (plantt.kmer): about a minute on one core at the default grid, no GPU.
rule train_kmer:
    input:
        codes="results/windows/encoded.npy",
        genes="results/windows/encoded.genes.tsv",
        splits="results/splits/{assay}.tsv",
    output:
        model="results/models/{assay}/kmer/fold_{fold}/kmer_model.npz",
        model_json="results/models/{assay}/kmer/fold_{fold}/kmer_model.json",
        selection="results/models/{assay}/kmer/fold_{fold}/selection.tsv",
        predictions="results/models/{assay}/kmer/fold_{fold}/predictions.tsv",
    log:
        "logs/train/{assay}.kmer.fold_{fold}.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=get_kmer_settings,
    script:
        "../scripts/train_kmer.py"


# The known-motif ridge baseline (plantt.pwm): the scan of the JASPAR plant matrices (or
# train.pwm.motif_file) over every window (rule scan_matrices), then ridge fits; CPU, seconds.
rule train_pwm:
    input:
        unpack(get_pwm_motif_file),
        codes="results/windows/encoded.npy",
        matrix_scan="results/windows/matrix_scan.pwm.npy",
        genes="results/windows/encoded.genes.tsv",
        splits="results/splits/{assay}.tsv",
    output:
        model="results/models/{assay}/pwm/fold_{fold}/pwm_model.npz",
        model_json="results/models/{assay}/pwm/fold_{fold}/pwm_model.json",
        selection="results/models/{assay}/pwm/fold_{fold}/selection.tsv",
        predictions="results/models/{assay}/pwm/fold_{fold}/predictions.tsv",
    log:
        "logs/train/{assay}.pwm.fold_{fold}.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        settings=get_pwm_settings,
    script:
        "../scripts/train_pwm.py"


rule evaluate:
    input:
        predictions=get_fold_predictions,
        # the demo: the simulator's truth, so that the ceiling (model "grammar") joins the table
        truth=get_demo_truth,
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
        "../../envs/pytorch.yaml"
    script:
        "../scripts/evaluate.py"


# The learning curve (config learning_curve): each model fitted on nested subsets of every chosen
# fold's training orthogroups and scored on the fold's untouched test pairs (plantt.learning_curve).
rule learning_curve:
    input:
        codes="results/windows/encoded.npy",
        genes="results/windows/encoded.genes.tsv",
        splits="results/splits/{assay}.tsv",
        truth=get_demo_truth,
    output:
        table=report(
            "results/learning_curve/{assay}.tsv",
            caption="../report/learning_curve.rst",
            category="Model performance",
            labels={"assay": "{assay}", "table": "learning curve"},
        ),
        figure=report(
            "results/learning_curve/{assay}.png",
            caption="../report/learning_curve.rst",
            category="Model performance",
            labels={"assay": "{assay}", "figure": "learning curve"},
        ),
    log:
        "logs/learning_curve/{assay}.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: get_model_threads
    resources:
        mem_mb=8000,
        runtime=600,
    params:
        settings=config["learning_curve"],
        train=config["train"],
    script:
        "../scripts/learning_curve.py"


# The paper's Table 2 (with train.pretrain set): PlanTT trained on the assay alone vs started
# from the other assay's fold models, mean ± SD over folds and a paired comparison.
rule sequential_training:
    input:
        "results/metrics/{assay}/metrics_per_fold.tsv",
    output:
        table=report(
            "results/metrics/{assay}/sequential_training.tsv",
            caption="../report/sequential_training.rst",
            category="Model performance",
            labels={"assay": "{assay}", "table": "sequential training (Table 2)"},
        ),
        figure=report(
            "results/metrics/{assay}/sequential_training.png",
            caption="../report/sequential_training.rst",
            category="Model performance",
            labels={"assay": "{assay}", "figure": "sequential training (Table 2)"},
        ),
    log:
        "logs/evaluate/{assay}.sequential_training.log",
    conda:
        "../../envs/pytorch.yaml"
    params:
        pretrained=lambda wildcards: f"plantt_from_{config['train']['pretrain'][wildcards.assay]}",
    script:
        "../scripts/sequential_training.py"


# `snakemake --cores N train_all` trains and evaluates every assay x model x fold (also part of
# the default target).
rule train_all:
    input:
        metrics_outputs(),


# `snakemake --cores N learning_curve_all` draws the learning curve of every assay it is asked for
# (with learning_curve.enabled; also part of the default target then).
rule learning_curve_all:
    input:
        learning_curve_outputs(),
