"""Scores and pair contrasts of the published model, as plantt predict computes them (rule
published_predict)."""

from pathlib import Path

import torch

from plantt.io import setup_logging
from plantt.published import write_predictions
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake
setup_logging(sm.log[0])
torch.set_num_threads(sm.threads)
write_predictions(Path(sm.input.model).parent, sm.input.fasta, sm.output.scores, sm.output.predictions,
                  sm.output.plot, sm.params.pairs, sm.params.reference)
