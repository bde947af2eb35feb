"""Generate the embedded demo dataset (rule simulate_demo)."""

from plantt.io import setup_logging
from plantt.rule_script import start_rule_script
from plantt.simulate import SimulationSettings, simulate

start_rule_script()
setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
settings = {k: v for k, v in snakemake.params.settings.items() if v is not None}  # noqa: F821
simulate(snakemake.params.outdir, SimulationSettings(**settings))  # noqa: F821
