"""Single-copy ortholog pairs (rule ortholog_pairs)."""

from plantt.rule_script import run_plantt

sm = snakemake
run_plantt(["orthologs", "--orthogroups", sm.input.orthogroups,
            "--species-sheet", sm.input.species_sheet, "--out", sm.output.pairs,
            "--summary", sm.output.summary, "--min-gene-length", sm.params.min_length,
            "--max-unmapped-fraction", sm.params.max_unmapped, *sm.params.id_args],
           sm.log[0])
