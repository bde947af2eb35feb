"""TF-MoDISco patterns of one assay's fold models, matched to known motifs (rule
discover_motifs): runs ``plantt motifs`` with the rule's settings."""

from pathlib import Path

import torch

from plantt.attribution import ASSAY_PROCESSES
from plantt.rule_script import run_plantt

sm = snakemake
torch.set_num_threads(sm.threads)
settings, known, layout = sm.params.settings, sm.params.known, sm.params.layout
argv = [
    "motifs",
    "--models", Path(sm.input.models[0]).parent.parent,
    "--codes", sm.input.codes,
    "--genes", sm.input.genes,
    "--splits", sm.input.splits,
    "--folds", *sm.params.folds,
    "--out-dir", Path(sm.output.patterns).parent,
    "--max-genes-per-fold", settings["max_genes_per_fold"] or 0,
    "--references", settings["references"],
    "--null-genes-per-fold", settings["null_genes_per_fold"],
    "--seqlet-fdr", settings["seqlet_fdr"],
    "--max-seqlets", settings["max_seqlets"],
    "--leiden-runs", settings["leiden_runs"],
    "--max-q", settings["max_q"],
    "--decoys", settings["decoys"],
    "--min-fraction-in-region", settings["min_fraction_in_region"],
    "--seed", settings["seed"],
    "--title", f"{sm.wildcards.assay}, {sm.wildcards.model}: TF-MoDISco patterns",
    "--upstream", layout["upstream"],
    "--gene-part", layout["gene_part"],
    "--downstream", layout["downstream"],
    "--mask", layout["mask"],
]
if known["source"] == "meme":
    argv += ["--meme", known["meme"]]
elif known["source"] == "grammar":
    # the grammar's motifs of the processes this assay measures (PRO-seq: transcription only)
    argv += ["--grammar", known["grammar"]]
    argv += ["--processes", *ASSAY_PROCESSES[sm.wildcards.assay]]
elif known["source"] == "none":
    argv += ["--no-match"]
# (source "database": the database's matrices are the known motifs)
database = known["database"]
if database:
    argv += ["--jaspar", database["release"], database["collection"], database["tax_group"]]
run_plantt(argv, sm.log[0])
