# STAR genome index per species and spliced alignment per sample (coordinate-sorted, indexed BAM).


rule star_index:
    input:
        fasta=get_genome,
        annotation=get_annotation,
    output:
        directory("results/star/index/{species}"),
    log:
        "logs/star_index/{species}.log",
    conda:
        "../../envs/star.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        sa_bases=get_star_sa_index_bases,
        annotation=get_star_annotation_args,
        extra=config["star"]["index_extra"],
        tmpdir="results/star/index/{species}.tmp",
    shell:
        "rm -rf {params.tmpdir} && mkdir -p {output} && "
        "STAR --runMode genomeGenerate --runThreadN {threads} --genomeDir {output}"
        " --genomeFastaFiles {input.fasta} --genomeSAindexNbases {params.sa_bases}"
        " {params.annotation} --outFileNamePrefix {output}/ --outTmpDir {params.tmpdir}"
        " {params.extra} > {log} 2>&1"


rule star_align:
    input:
        fastq=get_trimmed_fastq,
        index=get_star_index,
    output:
        bam="results/star/{sample}/{sample}.bam",
        log_final="results/star/{sample}/{sample}.Log.final.out",
    log:
        "logs/star/{sample}.log",
    conda:
        "../../envs/star.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        prefix="results/star/{sample}/{sample}.",
        extra=get_star_align_extra,
    shell:
        "rm -rf {params.prefix}_STARtmp && "
        "STAR --runThreadN {threads} --genomeDir {input.index} --readFilesIn {input.fastq}"
        " --readFilesCommand gunzip -c --outSAMtype BAM SortedByCoordinate"
        " --outFileNamePrefix {params.prefix} {params.extra} > {log} 2>&1 && "
        "mv {params.prefix}Aligned.sortedByCoord.out.bam {output.bam}"


rule samtools_index:
    input:
        "results/star/{sample}/{sample}.bam",
    output:
        "results/star/{sample}/{sample}.bam.bai",
    log:
        "logs/samtools_index/{sample}.log",
    conda:
        "../../envs/samtools.yaml"
    shell:
        "samtools index {input} 2> {log}"
