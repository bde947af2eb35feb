"""R^2 of log expression between orthologs, per species pair and assay
(rule proseq_ortholog_conservation)."""

from plantt.io import read_tsv, setup_logging, write_tsv
from plantt.proseq import mean_cpm, ortholog_conservation, plot_ortholog_conservation
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(sm.log[0])
pairs = read_tsv(sm.input.pairs, required=["gene_a", "species_a", "gene_b", "species_b"])
expression = {}
for path in sm.input.expression:
    table = read_tsv(path, required=["species", "assay"], nrows=1)
    expression[(table["species"].iloc[0], table["assay"].iloc[0])] = mean_cpm(path)
result = ortholog_conservation(pairs, expression, sm.params.species, sm.params.pseudocount)
log.info("\n%s", result.to_string(index=False))
write_tsv(result, sm.output.table)
plot_ortholog_conservation(result, sm.output.plot)
