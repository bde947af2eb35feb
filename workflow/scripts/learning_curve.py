"""The learning curve of one assay (rule learning_curve): plantt.learning_curve with the config's
learning_curve and train sections."""

import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from plantt.dataset import EncodedWindows, read_splits
from plantt.io import setup_logging, write_tsv
from plantt.learning_curve import learning_curve, plot_learning_curve
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake
setup_logging(sm.log[0])
torch.set_num_threads(sm.threads)
settings = sm.params.settings
windows = EncodedWindows.load(sm.input.codes, sm.input.genes, mmap=True)
truth = (pd.read_csv(sm.input.truth[0], sep="\t", dtype={"gene_id": str}) if sm.input.truth
         else None)
with threadpool_limits(limits=sm.threads):
    table = learning_curve(windows, read_splits(sm.input.splits), sm.wildcards.assay,
                           settings["folds"], settings["sizes"], settings["models"],
                           sm.params.train, truth, settings["seed"], sm.threads,
                           kmer_changes=settings["kmer"],
                           paper_epochs=settings["paper_epochs"])
write_tsv(table, sm.output.table, float_format="%.6g")
plot_learning_curve(table, sm.output.figure)
