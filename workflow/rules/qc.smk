# Quality control: MultiQC over the cutadapt and STAR logs, and the read-assignment summary.


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
