"""Train and cross-validate seed ensembles on a table of your own sequences (rule fit_table)."""

from pathlib import Path

from plantt.fit import load_fit_settings, run_fit
from plantt.io import setup_logging
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake
setup_logging(sm.log[0])
settings = load_fit_settings(dict(sm.params.settings))
run_fit(sm.input.table, sm.params.task, Path(sm.output.metrics).parent, settings,
        values=sm.input.get("values"))
