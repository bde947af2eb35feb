"""Train one model on one fold and predict its test pairs (rule train_fold)."""

from pathlib import Path

from plantt.cv import load_train_settings, train_cv_fold
from plantt.io import setup_logging, write_tsv
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake
setup_logging(sm.log[0])
settings = load_train_settings(sm.params.settings)
table = train_cv_fold(sm.input.codes, sm.input.genes, sm.input.splits, int(sm.wildcards.fold),
                      sm.wildcards.assay, sm.wildcards.model, Path(sm.output.weights).parent,
                      settings, init_weights=sm.input.get("init"),
                      init_splits=sm.input.get("init_splits"),
                      matrix_scan=sm.input.get("matrix_scan"))
write_tsv(table, sm.output.predictions)
