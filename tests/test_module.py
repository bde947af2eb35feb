"""The workflow used as a Snakemake module from another directory (`module` + `use rule *`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

USING_SNAKEFILE = """configfile: "config/config.yaml"


module plantt:
    snakefile:
        "{snakefile}"
    config:
        config


use rule * from plantt as plantt_*
"""


def test_the_workflow_runs_as_a_module_of_another_workflow(tmp_path: Path) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "Snakefile").write_text(USING_SNAKEFILE.format(snakefile=REPO / "Snakefile"))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rules = re.findall(r"^rule (\w+):$", proc.stdout, flags=re.MULTILINE)
    assert rules and all(rule.startswith("plantt_") for rule in rules)
    # the whole chain, from the demo's simulation to the trained, interpreted models
    for needed in ("plantt_simulate_demo", "plantt_star_align", "plantt_train_fold",
                   "plantt_replicate_concordance", "plantt_interpret_ism"):
        assert needed in rules, needed
    # outputs are relative to the using workflow's directory
    assert re.search(r"^    output: resources/demo/", proc.stdout, flags=re.MULTILINE)
