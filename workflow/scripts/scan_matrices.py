"""Scan every window once for the known matrices (rule scan_matrices): the pwm baseline's settings,
or those of the ridge that chooses PlanTT's primed detectors."""

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from plantt.cv import load_pwm_settings, load_train_settings
from plantt.io import setup_logging
from plantt.pwm import write_matrix_scan
from plantt.rule_script import start_rule_script
from plantt.train import seeding_scan_settings

start_rule_script()
sm = snakemake
setup_logging(sm.log[0])
torch.set_num_threads(sm.threads)
if sm.wildcards.scan == "pwm":
    settings = load_pwm_settings(sm.params.settings)
else:
    settings = seeding_scan_settings(load_train_settings(sm.params.settings))
with threadpool_limits(limits=sm.threads):
    write_matrix_scan(np.load(sm.input.codes, mmap_mode="r"), settings, sm.output.scan,
                      threads=sm.threads)
