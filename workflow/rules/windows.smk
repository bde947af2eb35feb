# 3 kb windows around each paired gene's TSS and TTS, then one encoded (uint8) array of all of them.


rule extract_windows:
    input:
        fasta=get_genome,
        annotation=get_annotation,
        pairs="results/orthologs/pairs.tsv",
    output:
        fasta="results/windows/{species}.fa",
        coords="results/windows/{species}.coords.tsv",
    log:
        "logs/windows/{species}.log",
    conda:
        "../../envs/plantt.yaml"
    params:
        layout=config["windows"],
    script:
        "../scripts/extract_windows.py"


rule encode_windows:
    input:
        expand("results/windows/{species}.fa", species=SPECIES),
    output:
        codes="results/windows/encoded.npy",
        genes="results/windows/encoded.genes.tsv",
    log:
        "logs/windows/encode.log",
    conda:
        "../../envs/plantt.yaml"
    resources:
        mem_mb=encode_mem_mb,
    params:
        species=SPECIES,
    script:
        "../scripts/encode_windows.py"
