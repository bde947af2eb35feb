"""In-silico mutagenesis of one input record with the published model (rule published_ism)."""

from pathlib import Path

import torch

from plantt.io import setup_logging
from plantt.published import ism_record
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake
setup_logging(sm.log[0])
torch.set_num_threads(sm.threads)
ism_record(Path(sm.input.model).parent, sm.input.fasta, sm.wildcards.record, Path(sm.output.table).parent,
           sm.params.flank, sm.params.batch_size)
