# The published PlanTT-CNN (the released planttcnn.pt of the PlanTT repository, CC BY-NC 4.0, never
# shipped here) in the report: imported with `plantt import-weights`, then predictions, in-silico
# mutagenesis and optional edits of your own promoter + terminator sequences. Off until
# published.weights is set (config/README.md, "The published PlanTT-CNN").


rule published_import:
    input:
        weights=get_published_weights,
    output:
        weights=f"{PUBLISHED_DIR}/model/weights.pt",
        model=f"{PUBLISHED_DIR}/model/model.json",
    log:
        "logs/published/import.log",
    conda:
        "../../envs/pytorch.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/published_import.py"


rule published_inputs:
    input:
        unpack(get_published_inputs),
    output:
        fasta=f"{PUBLISHED_DIR}/inputs.fa",
    log:
        "logs/published/inputs.log",
    conda:
        "../../envs/pytorch.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/published_inputs.py"


rule published_predict:
    input:
        weights=f"{PUBLISHED_DIR}/model/weights.pt",
        model=f"{PUBLISHED_DIR}/model/model.json",
        fasta=f"{PUBLISHED_DIR}/inputs.fa",
    output:
        scores=report(
            f"{PUBLISHED_DIR}/scores.tsv",
            caption="../report/published_scores.rst",
            category="Published PlanTT-CNN",
            subcategory="predictions",
            labels={"table": "scores per record"},
        ),
        predictions=report(
            f"{PUBLISHED_DIR}/predictions.tsv",
            caption="../report/published_predictions.rst",
            category="Published PlanTT-CNN",
            subcategory="predictions",
            labels={"table": "predicted contrasts f(a, b)"},
        ),
        plot=report(
            f"{PUBLISHED_DIR}/predictions.png",
            caption="../report/published_predictions_plot.rst",
            category="Published PlanTT-CNN",
            subcategory="predictions",
            labels={"figure": "scores and contrasts"},
        ),
    log:
        "logs/published/predict.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        pairs=[list(pair) for pair in PUBLISHED.pairs],
        reference=PUBLISHED.reference,
    script:
        "../scripts/published_predict.py"


rule published_ism:
    input:
        weights=f"{PUBLISHED_DIR}/model/weights.pt",
        model=f"{PUBLISHED_DIR}/model/model.json",
        fasta=f"{PUBLISHED_DIR}/inputs.fa",
    output:
        table=report(
            f"{PUBLISHED_DIR}/ism/{{record}}/ism.tsv",
            caption="../report/published_ism_table.rst",
            category="Published PlanTT-CNN",
            subcategory="in-silico mutagenesis",
            labels={"record": "{record}", "table": "every substitution"},
        ),
        npz=f"{PUBLISHED_DIR}/ism/{{record}}/ism.npz",
        heatmap=report(
            f"{PUBLISHED_DIR}/ism/{{record}}/heatmap.png",
            caption="../report/published_ism_heatmap.rst",
            category="Published PlanTT-CNN",
            subcategory="in-silico mutagenesis",
            labels={"record": "{record}", "figure": "ISM, strongest per position"},
        ),
        zoom=report(
            f"{PUBLISHED_DIR}/ism/{{record}}/zoom.png",
            caption="../report/published_ism_zoom.rst",
            category="Published PlanTT-CNN",
            subcategory="in-silico mutagenesis",
            labels={"record": "{record}", "figure": "ISM at the junction"},
        ),
    log:
        "logs/published/ism.{record}.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        flank=PUBLISHED.ism_flank,
        batch_size=PUBLISHED.ism_batch_size,
    script:
        "../scripts/published_ism.py"


rule published_edit:
    input:
        weights=f"{PUBLISHED_DIR}/model/weights.pt",
        model=f"{PUBLISHED_DIR}/model/model.json",
        fasta=f"{PUBLISHED_DIR}/inputs.fa",
    output:
        table=report(
            f"{PUBLISHED_DIR}/edit/{{record}}.tsv",
            caption="../report/published_edit.rst",
            category="Published PlanTT-CNN",
            subcategory="edits",
            labels={"record": "{record}", "table": "hill-climbing edits"},
        ),
        fasta=f"{PUBLISHED_DIR}/edit/{{record}}.edited.fa",
    log:
        "logs/published/edit.{record}.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        budget=PUBLISHED.edit_budget,
        direction=PUBLISHED.edit_direction,
        protect=list(PUBLISHED.edit_protect),
        batch_size=PUBLISHED.ism_batch_size,
    script:
        "../scripts/published_edit.py"


# `snakemake --cores N published_all` runs only this stage (also part of the default target when
# published.weights is set; an error while it is not).
rule published_all:
    input:
        published_all_input,
