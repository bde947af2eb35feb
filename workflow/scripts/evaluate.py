"""Metrics per fold, mean ± SD across folds, and figures of one assay (rule evaluate)."""

from plantt.cv import evaluate
from plantt.io import setup_logging, write_tsv
from plantt.plots import plot_metric_summary, plot_predicted_vs_true
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake
setup_logging(sm.log[0])
predictions, per_fold, summary = evaluate(list(sm.input.predictions),
                                          sm.input.truth[0] if sm.input.truth else None)
write_tsv(predictions, sm.output.predictions)
write_tsv(per_fold, sm.output.per_fold)
write_tsv(summary, sm.output.summary)
plot_metric_summary(per_fold, sm.output.bars, title=sm.wildcards.assay)
plot_predicted_vs_true(predictions, sm.output.scatter, title=sm.wildcards.assay)
