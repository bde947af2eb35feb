"""Fit the k-mer ridge baseline on one fold and predict its test pairs (rule train_kmer)."""

from pathlib import Path

from threadpoolctl import threadpool_limits

from plantt.cv import kmer_cv_fold, load_kmer_settings
from plantt.io import setup_logging, write_tsv
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake
setup_logging(sm.log[0])
settings = load_kmer_settings(sm.params.settings)
# BLAS would otherwise start a thread per core: keep the job to the threads it asked for.
with threadpool_limits(limits=sm.threads):
    table = kmer_cv_fold(sm.input.codes, sm.input.genes, sm.input.splits, int(sm.wildcards.fold),
                         sm.wildcards.assay, Path(sm.output.model).parent, settings)
write_tsv(table, sm.output.predictions)
