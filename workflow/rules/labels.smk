# Cohen's d per ortholog pair and assay, then orthogroup-stratified folds with balanced signs
# (the paper's Sections 3.1.1 and 3.1.2).


rule cohens_d_labels:
    input:
        pairs="results/orthologs/pairs.tsv",
        expression=get_expression_tables_of_assay,
    output:
        "results/labels/{assay}.tsv",
    log:
        "logs/labels/{assay}.log",
    conda:
        "../../envs/plantt.yaml"
    params:
        settings=config["labels"],
    script:
        "../scripts/cohens_d_labels.py"


# Every assay's folds are dealt over the orthogroups of all assays (one test fold per orthogroup
# whatever pairs an assay drops): sequential training across assays relies on it.
rule cv_splits:
    input:
        labels="results/labels/{assay}.tsv",
        shared=get_shared_fold_labels,
    output:
        splits="results/splits/{assay}.tsv",
        summary="results/splits/{assay}.summary.tsv",
        plot=report(
            "results/splits/{assay}.summary.png",
            caption="../report/splits.rst",
            category="Training sets",
            labels={"assay": "{assay}", "figure": "fold composition"},
        ),
    log:
        "logs/splits/{assay}.log",
    conda:
        "../../envs/plantt.yaml"
    params:
        settings=config["splits"],
    script:
        "../scripts/cv_splits.py"
