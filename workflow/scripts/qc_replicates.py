"""Replicate-vs-replicate Pearson R² and scatter matrix of one species and assay (rule
replicate_concordance)."""

from plantt.io import setup_logging, write_tsv
from plantt.qc import plot_replicate_scatter, replicate_concordance, replicate_matrix
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(sm.log[0])
species, assay = sm.wildcards.species, sm.wildcards.assay
values = replicate_matrix(sm.input[0])
table = replicate_concordance(values, species, assay, sm.params.pseudocount)
write_tsv(table, sm.output.table)
plot_replicate_scatter(values, table, sm.output.plot, f"{species} {assay}", sm.params.pseudocount)
log.info("%s %s: %d replicate pairs, median R² %.3f", species, assay, len(table),
         table["pearson_r2"].median())
