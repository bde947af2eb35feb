# Motif discovery from the trained PlanTT models: DeepLift contributions against dinucleotide-
# shuffled references for the test genes of every fold (each explained by the fold's model that did
# not train on it), TF-MoDISco (modisco-lite) patterns, and TOMTOM (memelite) matches to known
# motifs: the user's MEME file, or in the demo the grammar the data were simulated from, or on real
# data the JASPAR collection of motifs.database, which also names every pattern's factor.


rule discover_motifs:
    input:
        models=get_motif_models,
        model_jsons=get_motif_model_jsons,
        codes="results/windows/encoded.npy",
        genes="results/windows/encoded.genes.tsv",
        splits="results/splits/{assay}.tsv",
        meme=get_motif_meme,
    output:
        patterns=report(
            "results/motifs/{assay}/{model}/patterns.tsv",
            caption="../report/motifs_patterns.rst",
            category="Motifs",
            subcategory="{assay}",
            labels={
                "assay": "{assay}",
                "model": "{model}",
                "figure": "patterns (table)",
            },
        ),
        matches=report(
            "results/motifs/{assay}/{model}/matches.tsv",
            caption="../report/motifs_matches.rst",
            category="Motifs",
            subcategory="{assay}",
            labels={
                "assay": "{assay}",
                "model": "{model}",
                "figure": "TOMTOM matches",
            },
        ),
        database_matches=report(
            "results/motifs/{assay}/{model}/database_matches.tsv",
            caption="../report/motifs_database_matches.rst",
            category="Motifs",
            subcategory="{assay}",
            labels={
                "assay": "{assay}",
                "model": "{model}",
                "figure": "JASPAR matches",
            },
        ),
        # demo: per planted motif, the pattern that recovers it; otherwise the header only
        recovery=report(
            "results/motifs/{assay}/{model}/recovery.tsv",
            caption="../report/motifs_recovery.rst",
            category="Motifs",
            subcategory="{assay}",
            labels={
                "assay": "{assay}",
                "model": "{model}",
                "figure": "planted motifs",
            },
        ),
        overview=report(
            "results/motifs/{assay}/{model}/patterns.png",
            caption="../report/motifs_overview.rst",
            category="Motifs",
            subcategory="{assay}",
            labels={"assay": "{assay}", "model": "{model}", "figure": "patterns"},
        ),
        seqlets="results/motifs/{assay}/{model}/seqlets.tsv",
        summary="results/motifs/{assay}/{model}/contributions_summary.tsv",
        h5="results/motifs/{assay}/{model}/modisco.h5",
        logos=directory("results/motifs/{assay}/{model}/logos"),
    log:
        "logs/motifs/{assay}.{model}.log",
    conda:
        "../../envs/motifs.yaml"
    threads: get_model_threads
    resources:
        mem_mb=6000,
        runtime=60,
    params:
        settings=config["motifs"],
        known=get_motif_known,
        folds=get_motif_folds,
        layout=config["windows"],
    script:
        "../scripts/discover_motifs.py"


# `snakemake --cores N motifs_all` trains what it needs, then searches every assay's models for
# motifs (also part of the default target).
rule motifs_all:
    input:
        motif_outputs(),
