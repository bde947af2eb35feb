"""Single-copy ortholog pairs (rule ortholog_pairs)."""

import _setup

sm = snakemake
_setup.run_plantt(["orthologs", "--orthogroups", sm.input.orthogroups,
                   "--species-sheet", sm.input.species_sheet, "--out", sm.output.pairs,
                   "--summary", sm.output.summary, "--min-gene-length", sm.params.min_length,
                   "--max-unmapped-fraction", sm.params.max_unmapped, *sm.params.id_args],
                  sm.log[0])
