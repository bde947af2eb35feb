# STAR genome index per species and spliced alignment per sample (coordinate-sorted BAM, CSI index).
# Memory and time of each job from the genome and FASTQ sizes (common.smk, plantt.resources).


rule decompress_genome:
    input:
        get_compressed_genome,
    output:
        "resources/genomes/{species}.fa",
    log:
        "logs/decompress_genome/{species}.log",
    wildcard_constraints:
        species=_alternation([s for s in SPECIES if is_compressed_genome(s)]),
    conda:
        "../../envs/samtools.yaml"
    resources:
        mem_mb=1000,
        runtime=lambda wildcards, input, attempt: plantt_resources.trim_runtime(
            plantt_resources.files_bytes(input), attempt
        ),
    # gzip -d reads gzip and bgzip alike; STAR and pyfaidx need the plain text once, not per job
    shell:
        "gzip -dc {input} > {output} 2> {log}"


# The genome's sequence lengths, read once: STAR's settings follow from them, and a chromosome
# longer than a BAM can hold (2^31 - 1 bp) stops the run here, before STAR (plantt.genome).
rule genome_fai:
    input:
        get_genome,
    output:
        "results/genome/{species}.fai",
    log:
        "logs/genome_fai/{species}.log",
    conda:
        "../../envs/plantt.yaml"
    resources:
        mem_mb=1000,
        runtime=lambda wildcards, input, attempt: plantt_resources.trim_runtime(
            plantt_resources.files_bytes(input), attempt
        ),
    script:
        "../scripts/genome_fai.py"


rule star_index:
    input:
        fasta=get_genome,
        annotation=get_annotation,
        # ancient: the .fai only describes the FASTA (an input itself): a new one rebuilds nothing
        fai=ancient("results/genome/{species}.fai"),
    output:
        directory("results/star/index/{species}"),
    log:
        "logs/star_index/{species}.log",
    conda:
        "../../envs/star.yaml"
    # STAR scales to about 8 threads per job; Snakemake caps this at --cores (the demo: 2), and a
    # profile's set-threads overrides it.
    threads: 8
    resources:
        mem_mb=star_index_mem_mb,
        runtime=lambda wildcards, attempt: 120 * attempt,
    params:
        genome=get_star_genome_args,
        annotation=get_star_annotation_args,
        ram_limit=get_star_ram_limit_args,
        extra=config["star"]["index_extra"],
        tmpdir="results/star/index/{species}.tmp",
    shell:
        "rm -rf {params.tmpdir} && mkdir -p {output} && "
        "STAR --runMode genomeGenerate --runThreadN {threads} --genomeDir {output}"
        " --genomeFastaFiles {input.fasta} {params.genome}"
        " {params.annotation} --outFileNamePrefix {output}/ --outTmpDir {params.tmpdir}"
        " {params.ram_limit} {params.extra} > {log} 2>&1"


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
    # STAR scales to about 8 threads per job; Snakemake caps this at --cores (the demo: 2), and a
    # profile's set-threads overrides it.
    threads: 8
    resources:
        mem_mb=star_align_mem_mb,
        runtime=star_align_runtime,
    params:
        prefix="results/star/{sample}/{sample}.",
        extra=get_star_align_extra,
    shell:
        "rm -rf {params.prefix}_STARtmp && "
        "STAR --runThreadN {threads} --genomeDir {input.index} --readFilesIn {input.fastq}"
        " --readFilesCommand gunzip -c --outSAMtype BAM SortedByCoordinate"
        " --outFileNamePrefix {params.prefix} {params.extra} > {log} 2>&1 && "
        "mv {params.prefix}Aligned.sortedByCoord.out.bam {output.bam}"


# CSI, not BAI: a BAI index holds no position past 2^29 (536,870,912) bp, and plant chromosomes
# are longer (pea's reach 0.8 Gb, faba bean's 3 Gb). pysam, which reads every BAM of the workflow,
# finds the .csi beside it.
rule samtools_index:
    input:
        "results/star/{sample}/{sample}.bam",
    output:
        "results/star/{sample}/{sample}.bam.csi",
    log:
        "logs/samtools_index/{sample}.log",
    conda:
        "../../envs/samtools.yaml"
    # samtools compresses and decompresses BGZF blocks in parallel; Snakemake caps this at --cores.
    threads: 4
    shell:
        "samtools index -c -@ {threads} {input} 2> {log}"
