# Reads per gene (conventions in config/README.md), then CPM and TPM per replicate and the mean and
# SD per gene of each species and assay; strand-specific 3'-RNA-seq tracks of the counted positions.


rule count_reads:
    input:
        bam="results/star/{sample}/{sample}.bam",
        csi="results/star/{sample}/{sample}.bam.csi",
        annotation=get_annotation,
    output:
        counts="results/counts/{sample}.tsv",
        summary="results/counts/{sample}.summary.tsv",
    log:
        "logs/count_reads/{sample}.log",
    conda:
        "../../envs/plantt.yaml"
    resources:
        mem_mb=chunked_mem_mb,
        runtime=bam_runtime,
    params:
        settings=get_count_params,
        chunk_size=config["chunk_size"],
    script:
        "../scripts/count_reads.py"


rule expression:
    input:
        unpack(get_sample_counts),
        annotation=get_annotation,
    output:
        counts="results/expression/{species}.{assay}.counts.tsv",
        table="results/expression/{species}.{assay}.tsv",
    log:
        "logs/expression/{species}.{assay}.log",
    conda:
        "../../envs/plantt.yaml"
    params:
        settings=get_count_params,
    script:
        "../scripts/expression.py"


rule coverage_bigwig:
    input:
        bam="results/star/{sample}/{sample}.bam",
        csi="results/star/{sample}/{sample}.bam.csi",
    output:
        plus="results/coverage/{sample}.plus.bw",
        minus="results/coverage/{sample}.minus.bw",
    log:
        "logs/coverage/{sample}.log",
    wildcard_constraints:
        sample=_alternation(RNASEQ3P_SAMPLES),
    conda:
        "../../envs/deeptools.yaml"
    resources:
        mem_mb=chunked_mem_mb,
        runtime=bam_runtime,
    params:
        settings=get_count_params,
        chunk_size=config["chunk_size"],
    script:
        "../scripts/coverage_bigwig.py"
