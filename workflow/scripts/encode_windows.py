"""All windows as one uint8 array plus a genes table (rule encode_windows)."""

from plantt.rule_script import run_plantt

sm = snakemake
windows = [f"{species}={fasta}" for species, fasta in zip(sm.params.species, sm.input, strict=True)]
run_plantt(["encode", "--windows", *windows, "--out-npy", sm.output.codes,
            "--out-genes", sm.output.genes], sm.log[0])
