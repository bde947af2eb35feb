"""Hill-climbing edits of one input record with the published model (rule published_edit)."""

from pathlib import Path

import torch

from plantt.io import setup_logging
from plantt.published import edit_record
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake
setup_logging(sm.log[0])
torch.set_num_threads(sm.threads)
edit_record(Path(sm.input.model).parent, sm.input.fasta, sm.wildcards.record, sm.params.budget,
            sm.output.table, sm.output.fasta, sm.params.direction, sm.params.protect, sm.params.batch_size)
