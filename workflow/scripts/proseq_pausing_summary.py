"""Median pause index per species and the distribution plot (rule proseq_pausing_summary)."""

from plantt.io import read_tsv, setup_logging, write_tsv
from plantt.proseq import pause_summary, plot_pause_distribution
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
tables = {species: read_tsv(path, required=["pause_index", "covered"])
          for species, path in zip(sm.params.species, sm.input, strict=True)}
write_tsv(pause_summary(tables), sm.output.table)
plot_pause_distribution(tables, sm.output.plot)
