# Single-copy ortholog pairs from OrthoFinder's Orthogroups.tsv (the paper's Section 3.1.1).


rule ortholog_pairs:
    input:
        orthogroups=config["orthologs"]["orthogroups"],
        species_sheet=config["species_sheet"],
        annotations=species_sheet["annotation"].tolist(),
    output:
        pairs="results/orthologs/pairs.tsv",
        summary=report(
            "results/orthologs/summary.tsv",
            caption="../report/orthologs.rst",
            category="Ortholog pairs",
            labels={"table": "orthogroup filtering"},
        ),
    log:
        "logs/orthologs/pairs.log",
    conda:
        "../../envs/plantt.yaml"
    params:
        id_args=get_ortholog_id_args,
        min_length=config["orthologs"]["min_gene_length"],
        max_unmapped=config["orthologs"]["max_unmapped_fraction"],
    script:
        "../scripts/ortholog_pairs.py"
