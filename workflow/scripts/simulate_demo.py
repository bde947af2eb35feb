"""Generate the embedded demo dataset (rule simulate_demo)."""

import _setup  # noqa: F401 (makes plantt importable)

from plantt.io import setup_logging
from plantt.simulate import SimulationSettings, simulate

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
settings = {k: v for k, v in snakemake.params.settings.items() if v is not None}  # noqa: F821
simulate(snakemake.params.outdir, SimulationSettings(**settings))  # noqa: F821
