"""Fit the known-motif ridge baseline on one fold and predict its test pairs (rule train_pwm)."""

from pathlib import Path

from threadpoolctl import threadpool_limits

from plantt.cv import load_pwm_settings, pwm_cv_fold
from plantt.io import setup_logging, write_tsv
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake
setup_logging(sm.log[0])
settings = load_pwm_settings(sm.params.settings)
# BLAS would otherwise start a thread per core: keep the job to the threads it asked for (the scan
# runs on as many worker threads, PyTorch on one thread each).
with threadpool_limits(limits=sm.threads):
    table = pwm_cv_fold(sm.input.codes, sm.input.genes, sm.input.splits, int(sm.wildcards.fold),
                        sm.wildcards.assay, Path(sm.output.model).parent, settings,
                        threads=sm.threads, matrix_scan=sm.input.matrix_scan)
write_tsv(table, sm.output.predictions)
