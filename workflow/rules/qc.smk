# Quality control: MultiQC over the cutadapt and STAR logs, the read-assignment summary, replicate
# concordance (the paper's Supplementary Figures 2-6), and per species a sample correlation heatmap
# and PCA. Conventions in config/README.md ("Quality control").


rule multiqc:
    input:
        expand("results/trimmed/{sample}.cutadapt.txt", sample=SAMPLES),
        expand("results/star/{sample}/{sample}.Log.final.out", sample=SAMPLES),
    output:
        report(
            "results/qc/multiqc_report.html",
            caption="../report/multiqc.rst",
            category="Quality control",
            labels={"figure": "MultiQC"},
        ),
    log:
        "logs/multiqc.log",
    conda:
        "../../envs/multiqc.yaml"
    shell:
        "multiqc --force --no-data-dir -o results/qc -n multiqc_report.html {input} > {log} 2>&1"


rule counting_summary:
    input:
        expand("results/counts/{sample}.summary.tsv", sample=SAMPLES),
    output:
        table="results/qc/counting_summary.tsv",
        plot=report(
            "results/qc/counting_summary.png",
            caption="../report/counting_summary.rst",
            category="Quality control",
            labels={"figure": "Read assignment"},
        ),
    log:
        "logs/counting_summary.log",
    conda:
        "../../envs/plantt.yaml"
    script:
        "../scripts/counting_summary.py"


rule replicate_concordance:
    input:
        "results/expression/{species}.{assay}.tsv",
    output:
        table="results/qc/replicates/{species}.{assay}.tsv",
        plot=report(
            "results/qc/replicates/{species}.{assay}.png",
            caption="../report/replicate_concordance.rst",
            category="Quality control",
            subcategory="Replicate concordance",
            labels={"species": "{species}", "assay": "{assay}"},
        ),
    log:
        "logs/qc/replicates/{species}.{assay}.log",
    wildcard_constraints:
        species=_alternation(SPECIES),
    conda:
        "../../envs/plantt.yaml"
    params:
        pseudocount=config["qc"]["pseudocount"],
    script:
        "../scripts/qc_replicates.py"


rule replicate_concordance_summary:
    input:
        [
            f"results/qc/replicates/{species}.{assay}.tsv"
            for species, assay in REPLICATED_SPECIES_ASSAYS
        ],
    output:
        report(
            "results/qc/replicate_concordance.tsv",
            caption="../report/replicate_concordance_table.rst",
            category="Quality control",
            subcategory="Replicate concordance",
            labels={"species": "all", "assay": "all (table)"},
        ),
    log:
        "logs/qc/replicate_concordance.log",
    conda:
        "../../envs/plantt.yaml"
    script:
        "../scripts/qc_concordance_summary.py"


rule sample_qc:
    input:
        unpack(get_expression_tables_of_species),
    output:
        correlation="results/qc/samples/{species}.correlation.tsv",
        pca="results/qc/samples/{species}.pca.tsv",
        heatmap=report(
            "results/qc/samples/{species}.correlation.png",
            caption="../report/sample_correlation.rst",
            category="Quality control",
            subcategory="Samples",
            labels={"species": "{species}", "figure": "correlation heatmap"},
        ),
        pca_plot=report(
            "results/qc/samples/{species}.pca.png",
            caption="../report/sample_pca.rst",
            category="Quality control",
            subcategory="Samples",
            labels={"species": "{species}", "figure": "PCA"},
        ),
    log:
        "logs/qc/samples/{species}.log",
    conda:
        "../../envs/plantt.yaml"
    params:
        pseudocount=config["qc"]["pseudocount"],
        top_genes=config["qc"]["pca_top_genes"],
    script:
        "../scripts/qc_samples.py"
