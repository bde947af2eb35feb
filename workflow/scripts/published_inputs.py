"""The 3000-base inputs (1500 promoter + 1500 terminator) of the published model (rule published_inputs)."""

import _setup

from plantt.io import setup_logging
from plantt.published import write_inputs

sm = snakemake
setup_logging(sm.log[0])
write_inputs(sm.output.fasta, sm.input.get("promoter"), sm.input.get("terminator"), sm.input.get("sequences"))
