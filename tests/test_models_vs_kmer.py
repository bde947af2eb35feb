"""benchmarks/models_vs_kmer.py reproduces the workflow's own figures on the same fold.

Its figures go into benchmarks/README.md next to the workflow's; they are only comparable if the
script trains with the recipe the training rules use and scores the same test pairs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import DEMO_TRAIN_ASSAY, REPO

SCRIPT = REPO / "benchmarks" / "models_vs_kmer.py"


@pytest.fixture(scope="module")
def fold0_rows(demo_trained):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--workdir", str(demo_trained), "--assays", DEMO_TRAIN_ASSAY,
         "--folds", "0", "--recipe", str(demo_trained / "config" / "config.yaml"),
         "--threads", "1"],
        capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {row["model"]: row for row in rows}


def _workflow_fold0(workdir, model: str) -> float:
    per_fold = pd.read_csv(workdir / f"results/metrics/{DEMO_TRAIN_ASSAY}/metrics_per_fold.tsv",
                           sep="\t")
    row = per_fold[(per_fold["model"] == model) & (per_fold["fold"] == 0)]
    assert len(row) == 1
    return float(row["spearman"].iloc[0])


def test_the_demo_recipe_gives_the_workflows_fold_figures(fold0_rows, demo_trained):
    # The same training pairs, the same settings and one CPU thread: the same model. (The last
    # digits may differ: the workflow predicts in its own batches.)
    assert fold0_rows["plantt primed"]["spearman"] == pytest.approx(
        _workflow_fold0(demo_trained, "plantt"), abs=1e-4)
    assert fold0_rows["plantt primed"]["device"] == "cpu"
    import yaml

    from plantt.recipes import train_settings

    config = yaml.safe_load((demo_trained / "config" / "config.yaml").read_text())
    assert fold0_rows["plantt primed"]["epochs_run"] == train_settings(config["train"],
                                                                       "plantt")["max_epochs"]
    assert fold0_rows["kmer"]["spearman"] == pytest.approx(
        _workflow_fold0(demo_trained, "kmer"), abs=1e-9)


def test_the_grammar_ceiling_is_scored_and_sits_above_the_models(fold0_rows):
    ceiling = fold0_rows["grammar"]["spearman"]
    assert ceiling > fold0_rows["plantt primed"]["spearman"] > fold0_rows["kmer k=6"]["spearman"]
    assert ceiling > 0.85


def test_the_recipe_is_merged_as_the_training_rules_merge_it(demo_trained):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import models_vs_kmer
    finally:
        sys.path.remove(str(SCRIPT.parent))
    config = REPO / "config" / "config.yaml"
    demo = models_vs_kmer.recipe_settings(config)
    paper = models_vs_kmer.recipe_settings(config, "paper")
    recorded = json.loads((demo_trained / f"results/models/{DEMO_TRAIN_ASSAY}/plantt/fold_0/"
                           "model.json").read_text())["provenance"]["train_settings"]
    # Every setting the recipe names is what the workflow trained the demo's fold with.
    for key, value in demo.items():
        recorded_value = recorded[key]
        assert (list(recorded_value) if isinstance(recorded_value, (list, tuple))
                else recorded_value) == value, key
    assert paper["preset"] == "paper" and demo["preset"] == "primed"
    assert paper["max_epochs"] > demo["max_epochs"]
