"""3 kb windows of one species' paired genes (rule extract_windows)."""

from plantt.rule_script import run_plantt

sm = snakemake
layout = sm.params.layout
run_plantt(["windows", "--fasta", sm.input.fasta, "--annotation", sm.input.annotation,
            "--pairs", sm.input.pairs, "--species", sm.wildcards.species,
            "--out", sm.output.fasta, "--coords", sm.output.coords,
            "--upstream", layout["upstream"], "--gene-part", layout["gene_part"],
            "--downstream", layout["downstream"], "--mask", layout["mask"]], sm.log[0])
