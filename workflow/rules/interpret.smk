# Interpretation of the trained PlanTT models (the paper's Sections 4.6 and 4.7): DeepLift profiles
# over the test genes of every fold (Figure 5), and in-silico mutagenesis of a panel of test genes
# of one fold (Figure 6).


rule interpret_attribution:
    input:
        models=get_interpret_models,
        model_jsons=get_interpret_model_jsons,
        codes="results/windows/encoded.npy",
        genes="results/windows/encoded.genes.tsv",
        splits="results/splits/{assay}.tsv",
    output:
        profile="results/interpret/{assay}/attribution_profile.tsv",
        summary="results/interpret/{assay}/attribution_summary.tsv",
        genes_npz="results/interpret/{assay}/attribution_genes.npz",
        plot=report(
            "results/interpret/{assay}/attribution_profile.png",
            caption="../report/interpret_attribution.rst",
            category="Interpretation",
            subcategory="{assay}",
            labels={"assay": "{assay}", "figure": "DeepLift profile"},
        ),
        # demo: per planted motif, mean |DeepLift| at its occurrences / elsewhere; real data (no
        # grammar): the header only
        motifs=report(
            "results/interpret/{assay}/motif_attribution.tsv",
            caption="../report/interpret_motif_attribution.rst",
            category="Interpretation",
            subcategory="{assay}",
            labels={"assay": "{assay}", "figure": "DeepLift at the motifs (table)"},
        ),
        motif_plot=report(
            "results/interpret/{assay}/motif_attribution.png",
            caption="../report/interpret_motif_attribution.rst",
            category="Interpretation",
            subcategory="{assay}",
            labels={"assay": "{assay}", "figure": "DeepLift at the motifs"},
        ),
    log:
        "logs/interpret/{assay}.attribution.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: get_model_threads
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=config["interpret"],
        folds=get_interpret_folds,
        layout=config["windows"],
        truth=get_interpret_truth,
    script:
        "../scripts/interpret_attribution.py"


rule interpret_ism:
    input:
        model=get_interpret_ism_model,
        model_json=get_interpret_ism_model_json,
        codes="results/windows/encoded.npy",
        genes="results/windows/encoded.genes.tsv",
        splits="results/splits/{assay}.tsv",
    output:
        table="results/interpret/{assay}/ism/ism.tsv",
        npz="results/interpret/{assay}/ism/ism.npz",
        heatmap=report(
            "results/interpret/{assay}/ism/heatmap.png",
            caption="../report/interpret_ism_heatmap.rst",
            category="Interpretation",
            subcategory="{assay}",
            labels={"assay": "{assay}", "figure": "ISM heatmap"},
        ),
        zoom=report(
            "results/interpret/{assay}/ism/zoom.png",
            caption="../report/interpret_ism_zoom.rst",
            category="Interpretation",
            subcategory="{assay}",
            labels={"assay": "{assay}", "figure": "ISM at the TSS and TTS"},
        ),
    log:
        "logs/interpret/{assay}.ism.log",
    conda:
        "../../envs/pytorch.yaml"
    threads: get_model_threads
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=config["interpret"],
        layout=config["windows"],
    script:
        "../scripts/interpret_ism.py"


# `snakemake --cores N interpret_all` trains what it needs, then interprets every assay (also part
# of the default target).
rule interpret_all:
    input:
        interpret_outputs(),
