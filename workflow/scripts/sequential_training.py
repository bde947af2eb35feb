"""The paper's Table 2 for one assay: PlanTT alone vs pre-trained on another assay
(rule sequential_training)."""

import pandas as pd

from plantt.cv import sequential_training_table
from plantt.io import setup_logging, write_tsv
from plantt.plots import plot_sequential_training
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake
setup_logging(sm.log[0])
per_fold = pd.read_csv(sm.input[0], sep="\t")
assay, pretrained = sm.wildcards.assay, sm.params.pretrained
write_tsv(sequential_training_table(per_fold, assay, pretrained), sm.output.table,
          float_format="%.6g")
plot_sequential_training(per_fold[per_fold["assay"] == assay], sm.output.figure, "plantt",
                         pretrained, title=f"{assay}: PlanTT alone vs {pretrained}")
