# Adapter and quality trimming with cutadapt, options per assay from config["trim"].


rule trim_single_end:
    input:
        unpack(get_raw_fastq),
    output:
        fastq=temp("results/trimmed/{sample}.fastq.gz"),
        qc="results/trimmed/{sample}.cutadapt.txt",
    log:
        "logs/trim/{sample}.log",
    wildcard_constraints:
        sample=_alternation(SINGLE_END),
    conda:
        "../../envs/cutadapt.yaml"
    # cutadapt -j gains little past 4; Snakemake caps this at --cores, a profile's set-threads
    # overrides it.
    threads: 4
    resources:
        mem_mb=1000,
        runtime=trim_runtime,
    params:
        options=get_trim_options,
    shell:
        "cutadapt -j {threads} {params.options} -o {output.fastq} {input.fq1}"
        " > {output.qc} 2> {log}"


rule trim_paired_end:
    input:
        unpack(get_raw_fastq),
    output:
        fastq1=temp("results/trimmed/{sample}_R1.fastq.gz"),
        fastq2=temp("results/trimmed/{sample}_R2.fastq.gz"),
        qc="results/trimmed/{sample}.cutadapt.txt",
    log:
        "logs/trim/{sample}.log",
    wildcard_constraints:
        sample=_alternation(PAIRED_END),
    conda:
        "../../envs/cutadapt.yaml"
    # cutadapt -j gains little past 4; Snakemake caps this at --cores, a profile's set-threads
    # overrides it.
    threads: 4
    resources:
        mem_mb=1000,
        runtime=trim_runtime,
    params:
        options=get_trim_options,
    shell:
        "cutadapt -j {threads} {params.options} -o {output.fastq1} -p {output.fastq2}"
        " {input.fq1} {input.fq2} > {output.qc} 2> {log}"
