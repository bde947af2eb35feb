"""In-silico mutagenesis of a panel of test genes of one fold (rule interpret_ism)."""

from pathlib import Path

import torch

from plantt.dataset import read_splits
from plantt.io import setup_logging
from plantt.ism import flank_positions, ism_test_panel, measured_expression, write_ism_outputs
from plantt.rule_script import start_rule_script
from plantt.windows import WindowLayout

start_rule_script()
sm = snakemake
setup_logging(sm.log[0])
torch.set_num_threads(sm.threads)
settings = sm.params.settings
layout = WindowLayout(**sm.params.layout)
genes, results = ism_test_panel(
    Path(sm.input.model).parent, sm.input.codes, sm.input.genes, sm.input.splits,
    settings["ism_fold"], settings["ism_genes"], settings["seed"], settings["ism_species"],
    flank_positions(settings["ism_flank"], layout.length, layout), settings["ism_batch_size"])
# rows of the heatmap by measured expression, as in the paper's Figure 6
write_ism_outputs(Path(sm.output.table).parent, genes, results, layout,
                  title=f"{sm.wildcards.assay}, fold {settings['ism_fold']}",
                  measured=measured_expression(read_splits(sm.input.splits)))
