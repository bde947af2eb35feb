# PRO-seq: polymerase (RNA 3' end) bigWigs per strand, deepTools metagenes around the TSS and the TTS
# and over gene bodies (sense and antisense), pause indices, and PRO-seq vs 3'-RNA-seq comparisons.
# Conventions in config/README.md ("PRO-seq signal and pausing").


rule proseq_bigwig:
    input:
        bam="results/star/{sample}/{sample}.bam",
        csi="results/star/{sample}/{sample}.bam.csi",
    output:
        plus="results/proseq/bigwig/{sample}.plus.bw",
        minus="results/proseq/bigwig/{sample}.minus.bw",
    log:
        "logs/proseq/bigwig/{sample}.log",
    wildcard_constraints:
        sample=_alternation(PROSEQ_SAMPLES),
    conda:
        "../../envs/deeptools.yaml"
    resources:
        mem_mb=chunked_mem_mb,
        runtime=bam_runtime,
    params:
        min_mapq=config["count"]["min_mapq"],
        chunk_size=config["chunk_size"],
    script:
        "../scripts/proseq_bigwig.py"


rule proseq_merge_bigwig:
    input:
        unpack(get_proseq_bigwigs_of_species),
    output:
        plus="results/proseq/bigwig/{species}.merged.plus.bw",
        minus="results/proseq/bigwig/{species}.merged.minus.bw",
    log:
        "logs/proseq/bigwig/{species}.merged.log",
    conda:
        "../../envs/deeptools.yaml"
    resources:
        mem_mb=chunked_mem_mb,
    params:
        chunk_size=config["chunk_size"],
    script:
        "../scripts/proseq_merge_bigwig.py"


rule proseq_gene_beds:
    input:
        annotation=get_annotation,
    output:
        plus_genes="results/proseq/metagene/{species}.genes.plus.bed",
        minus_genes="results/proseq/metagene/{species}.genes.minus.bed",
        plus_signal="results/proseq/metagene/{species}.regions.plus_track.bed",
        minus_signal="results/proseq/metagene/{species}.regions.minus_track.bed",
    log:
        "logs/proseq/gene_beds/{species}.log",
    conda:
        "../../envs/plantt.yaml"
    params:
        settings=config["proseq"]["metagene"],
    script:
        "../scripts/proseq_gene_beds.py"


# One matrix per anchor (tss, tts: reference-point; body: scale-regions). Each half reads one strand's
# bigWig over all genes, grouped "sense" (genes of that strand) and "antisense" (the others); rbind
# joins the groups of the same name, so "sense" = plus genes on the plus track + minus genes on the
# minus track. Values: mean CPM per bp in each bin (reads per bp per gene, scaled per million).
rule proseq_matrix:
    input:
        plus_bw="results/proseq/bigwig/{species}.merged.plus.bw",
        minus_bw="results/proseq/bigwig/{species}.merged.minus.bw",
        plus_regions="results/proseq/metagene/{species}.regions.plus_track.bed",
        minus_regions="results/proseq/metagene/{species}.regions.minus_track.bed",
    output:
        plus_half=temp("results/proseq/metagene/{species}.{anchor}.plus_track.gz"),
        minus_half=temp("results/proseq/metagene/{species}.{anchor}.minus_track.gz"),
        matrix="results/proseq/metagene/{species}.{anchor}.matrix.gz",
    log:
        "logs/proseq/matrix/{species}.{anchor}.log",
    wildcard_constraints:
        anchor="tss|tts|body",
    conda:
        "../../envs/deeptools.yaml"
    params:
        mode=get_proseq_matrix_mode,
        label=get_proseq_matrix_label,
    shell:
        "(computeMatrix {params.mode} -S {input.plus_bw} -R {input.plus_regions}"
        " --samplesLabel {params.label:q} --averageTypeBins mean --missingDataAsZero"
        " --numberOfProcessors 1 -o {output.plus_half}"
        " && computeMatrix {params.mode} -S {input.minus_bw} -R {input.minus_regions}"
        " --samplesLabel {params.label:q} --averageTypeBins mean --missingDataAsZero"
        " --numberOfProcessors 1 -o {output.minus_half}"
        " && computeMatrixOperations rbind -m {output.plus_half} {output.minus_half}"
        " -o {output.matrix}) > {log} 2>&1"


rule proseq_metagene_plots:
    input:
        tss="results/proseq/metagene/{species}.tss.matrix.gz",
        tts="results/proseq/metagene/{species}.tts.matrix.gz",
        body="results/proseq/metagene/{species}.body.matrix.gz",
    output:
        matrix="results/proseq/metagene/{species}.matrix.gz",
        data="results/proseq/metagene/{species}.profile.tsv",
        profile=report(
            "results/proseq/metagene/{species}.profile.png",
            caption="../report/proseq_profile.rst",
            category="PRO-seq",
            subcategory="Metagenes",
            labels={"species": "{species}", "figure": "metagene profile"},
        ),
        heatmap=report(
            "results/proseq/metagene/{species}.heatmap.png",
            caption="../report/proseq_heatmap.rst",
            category="PRO-seq",
            subcategory="Metagenes",
            labels={"species": "{species}", "figure": "metagene heatmap"},
        ),
    log:
        "logs/proseq/metagene_plots/{species}.log",
    conda:
        "../../envs/deeptools.yaml"
    params:
        title=get_proseq_plot_title,
    shell:
        "(computeMatrixOperations cbind -m {input.tss} {input.tts} {input.body} -o {output.matrix}"
        " && plotProfile -m {output.matrix} -o {output.profile} --outFileNameData {output.data}"
        " --colors '#1f77b4' '#2ca02c' --yAxisLabel 'CPM per bp' --plotTitle {params.title:q}"
        " --numPlotsPerRow 3 --dpi 120"
        " && plotHeatmap -m {output.matrix} -o {output.heatmap} --colorMap Blues --zMin 0"
        " --zMax auto --yAxisLabel 'CPM per bp' --heatmapWidth 5 --dpi 120"
        ") > {log} 2>&1"


rule proseq_pausing:
    input:
        unpack(get_proseq_bams_of_species),
        annotation=get_annotation,
    output:
        "results/proseq/pausing/{species}.tsv",
    log:
        "logs/proseq/pausing/{species}.log",
    conda:
        "../../envs/plantt.yaml"
    resources:
        mem_mb=chunked_mem_mb,
        runtime=bam_runtime,
    params:
        settings=config["proseq"]["pausing"],
        min_mapq=config["count"]["min_mapq"],
        chunk_size=config["chunk_size"],
    script:
        "../scripts/proseq_pausing.py"


rule proseq_pausing_summary:
    input:
        expand("results/proseq/pausing/{species}.tsv", species=PROSEQ_SPECIES),
    output:
        table=report(
            "results/proseq/pausing/summary.tsv",
            caption="../report/proseq_pausing_summary.rst",
            category="PRO-seq",
            subcategory="Pausing",
            labels={"table": "pause index per species"},
        ),
        plot=report(
            "results/proseq/pausing/pause_index.png",
            caption="../report/proseq_pausing.rst",
            category="PRO-seq",
            subcategory="Pausing",
            labels={"figure": "pause index distribution"},
        ),
    log:
        "logs/proseq/pausing_summary.log",
    conda:
        "../../envs/plantt.yaml"
    params:
        species=PROSEQ_SPECIES,
    script:
        "../scripts/proseq_pausing_summary.py"


rule proseq_assay_comparison:
    input:
        proseq=expand(
            "results/expression/{species}.proseq.tsv", species=BOTH_ASSAYS_SPECIES
        ),
        rnaseq3p=expand(
            "results/expression/{species}.rnaseq3p.tsv", species=BOTH_ASSAYS_SPECIES
        ),
    output:
        table="results/proseq/comparison/assays.tsv",
        plot=report(
            "results/proseq/comparison/assays.png",
            caption="../report/proseq_assays.rst",
            category="PRO-seq",
            subcategory="PRO-seq vs 3'-RNA-seq",
            labels={"figure": "gene-level agreement"},
        ),
    log:
        "logs/proseq/assay_comparison.log",
    conda:
        "../../envs/plantt.yaml"
    params:
        species=BOTH_ASSAYS_SPECIES,
        pseudocount=config["proseq"]["comparison"]["pseudocount"],
    script:
        "../scripts/proseq_assays.py"


rule proseq_ortholog_conservation:
    input:
        pairs="results/orthologs/pairs.tsv",
        expression=expression_tables(),
    output:
        table="results/proseq/comparison/orthologs.tsv",
        plot=report(
            "results/proseq/comparison/orthologs.png",
            caption="../report/proseq_orthologs.rst",
            category="PRO-seq",
            subcategory="PRO-seq vs 3'-RNA-seq",
            labels={"figure": "conservation between orthologs"},
        ),
    log:
        "logs/proseq/ortholog_conservation.log",
    conda:
        "../../envs/plantt.yaml"
    params:
        species=SPECIES,
        pseudocount=config["proseq"]["comparison"]["pseudocount"],
    script:
        "../scripts/proseq_orthologs.py"
