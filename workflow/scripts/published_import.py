"""The released PlanTT-CNN weights as a plantt model directory (rule published_import)."""

from pathlib import Path

from plantt.io import setup_logging
from plantt.legacy import SIGN_NOTE, import_weights
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake
log = setup_logging(sm.log[0])
out = import_weights(sm.input.weights, Path(sm.output.model).parent)
log.info("imported %s into %s; %s; stored negated: higher score = higher expression", sm.input.weights,
         out, SIGN_NOTE)
