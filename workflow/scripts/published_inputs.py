"""The 3000-base inputs (1500 promoter + 1500 terminator) of the published model (rule published_inputs)."""

from plantt.io import setup_logging
from plantt.published import write_inputs
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake
setup_logging(sm.log[0])
write_inputs(sm.output.fasta, sm.input.get("promoter"), sm.input.get("terminator"), sm.input.get("sequences"))
