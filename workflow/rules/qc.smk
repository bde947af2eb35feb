# Quality control: MultiQC as the one QC page (cutadapt, STAR, samtools stats of every BAM, the
# read-assignment summary and replicate concordance as custom content), replicate concordance
# figures (the paper's Supplementary Figures 2-6), and per species a sample correlation heatmap
# and PCA. Conventions in config/README.md ("Quality control").


rule multiqc:
    input:
        cutadapt=expand("results/trimmed/{sample}.cutadapt.txt", sample=SAMPLES),
        star=expand("results/star/{sample}/{sample}.Log.final.out", sample=SAMPLES),
        samtools=expand("results/qc/samtools/{sample}.stats", sample=SAMPLES),
        custom=multiqc_custom_content(),
        # the sections' names and order (source_path: also when used as a module)
        config=workflow.source_path("../report/multiqc_config.yaml"),
    output:
        html=report(
            "results/qc/multiqc_report.html",
            caption="../report/multiqc.rst",
            category="Quality control",
            labels={"figure": "MultiQC"},
        ),
        # every section's values as tables (multiqc_*.txt) and multiqc_data.json
        data=directory("results/qc/multiqc_report_data"),
    log:
        "logs/multiqc.log",
    conda:
        "../../envs/multiqc.yaml"
    shell:
        "multiqc --force --config {input.config} -o results/qc -n multiqc_report.html"
        " {input.cutadapt} {input.star} {input.samtools} {input.custom} > {log} 2>&1"


rule samtools_stats:
    input:
        "results/star/{sample}/{sample}.bam",
    output:
        "results/qc/samtools/{sample}.stats",
    log:
        "logs/qc/samtools/{sample}.log",
    conda:
        "../../envs/samtools.yaml"
    # reads the BAM from start to end, no index needed; threads decompress it
    threads: 2
    resources:
        runtime=bam_runtime,
    shell:
        "samtools stats --threads {threads} {input} > {output} 2> {log}"


rule multiqc_read_assignment:
    input:
        "results/qc/counting_summary.tsv",
    output:
        "results/qc/multiqc/read_assignment_mqc.yaml",
    log:
        "logs/qc/multiqc_read_assignment.log",
    conda:
        "../../envs/plantt.yaml"
    params:
        content="read_assignment",
    script:
        "../scripts/qc_multiqc_content.py"


rule multiqc_replicate_concordance:
    input:
        "results/qc/replicate_concordance.tsv",
    output:
        "results/qc/multiqc/replicate_concordance_mqc.yaml",
    log:
        "logs/qc/multiqc_replicate_concordance.log",
    conda:
        "../../envs/plantt.yaml"
    params:
        content="replicate_concordance",
        # (sample, species, assay, replicate) of every sample: rows name the samples
        replicates=[
            (r.sample, r.species, r.assay, int(r.replicate))
            for r in samples.itertuples()
        ],
    script:
        "../scripts/qc_multiqc_content.py"


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
