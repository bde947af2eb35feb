"""All windows as one uint8 array plus a genes table (rule encode_windows)."""

import _setup

sm = snakemake
windows = [f"{species}={fasta}" for species, fasta in zip(sm.params.species, sm.input, strict=True)]
_setup.run_plantt(["encode", "--windows", *windows, "--out-npy", sm.output.codes,
                   "--out-genes", sm.output.genes], sm.log[0])
