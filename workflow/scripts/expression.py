"""Counts matrix and CPM/TPM expression table of one species and assay (rule expression)."""

from plantt.io import setup_logging, write_tsv
from plantt.quantify import CountSettings, build_expression
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(sm.log[0])
count_files = {int(k.removeprefix("rep_")): v for k, v in sm.input.items() if k.startswith("rep_")}
settings = CountSettings(**sm.params.settings)
matrix, table = build_expression(count_files, sm.input.annotation, sm.wildcards.species, settings)
log.info("%d genes, %d replicates", len(matrix), len(count_files))
write_tsv(matrix, sm.output.counts)
write_tsv(table, sm.output.table)
