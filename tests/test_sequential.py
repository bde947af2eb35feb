"""Sequential training across assays (the paper's Table 2): the comparison table, its figure,
and the workflow's plan for it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_snakemake
from plantt.cv import sequential_training_table
from plantt.io import InputError
from plantt.plots import plot_sequential_training

REPO = Path(__file__).resolve().parents[1]


def per_fold_metrics() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for fold in range(5):
        base = 0.6 + 0.02 * fold
        for model, gain in (("plantt", 0.0), ("plantt_from_proseq", 0.03 + 0.01 * fold),
                            ("washburn", -0.2)):
            rows.append({"assay": "rnaseq3p", "model": model, "fold": fold, "n": 100,
                         "spearman": base + gain, "mse": 2.0 - gain,
                         "auroc": 0.8 + gain / 2 + rng.normal(0, 1e-3)})
    return pd.DataFrame(rows)


def test_table_two_pairs_the_folds_of_the_two_models(tmp_path: Path) -> None:
    per_fold = per_fold_metrics()
    table = sequential_training_table(per_fold, "rnaseq3p", "plantt_from_proseq").set_index(
        "metric")
    assert set(table.index) == {"spearman", "mse", "auroc"}
    spearman = table.loc["spearman"]
    assert spearman["alone_mean"] == pytest.approx(0.64)
    assert spearman["pretrained_mean"] == pytest.approx(0.64 + 0.05)
    assert spearman["difference_mean"] == pytest.approx(0.05)
    assert spearman["difference_sd"] == pytest.approx(np.std([0.03, 0.04, 0.05, 0.06, 0.07],
                                                             ddof=1))
    assert spearman["folds_better"] == 5 and spearman["n_folds"] == 5
    assert spearman["p_value"] < 0.01 and spearman["t"] > 0
    # a lower error is better
    assert table.loc["mse", "folds_better"] == 5 and table.loc["mse", "difference_mean"] < 0
    target = tmp_path / "table2.png"
    plot_sequential_training(per_fold, target, "plantt", "plantt_from_proseq")
    assert target.stat().st_size > 5000


def test_table_two_needs_both_models() -> None:
    with pytest.raises(InputError, match="no per-fold metrics of model plantt_from_x"):
        sequential_training_table(per_fold_metrics(), "rnaseq3p", "plantt_from_x")


def test_the_workflow_plans_table_two_and_checks_the_folds_in_both_directions(tmp_path: Path
                                                                              ) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", str(REPO / "Snakefile"),
         "-d", str(tmp_path), "--config",
         'train={"pretrain": {"rnaseq3p": "proseq", "proseq": "rnaseq3p"}}'],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    plan = proc.stdout
    for assay, source in (("rnaseq3p", "proseq"), ("proseq", "rnaseq3p")):
        assert f"results/metrics/{assay}/sequential_training.tsv" in plan
        # every pre-trained fold takes the source's weights and splits (the leak check's input)
        jobs = re.findall(rf"input: ([^\n]*)\n\s+output: results/models/{assay}/plantt_from_"
                          rf"{source}/fold_(\d)/weights.pt", plan)
        assert sorted(fold for _, fold in jobs) == [str(k) for k in range(5)], plan[-3000:]
        for inputs, fold in jobs:
            assert f"results/models/{source}/plantt/fold_{fold}/weights.pt" in inputs
            assert f"results/splits/{source}.tsv" in inputs


# The demo with pre-training in both directions, kept small for CI: two folds (the fewest with an
# SD), PlanTT only, one epoch per training (the README's example runs the demo's five folds and two
# epochs).
PRETRAIN_BOTH_WAYS = '{"rnaseq3p": "proseq", "proseq": "rnaseq3p"}'
PRETRAIN_FOLDS = 2


def test_demo_pretrained_both_ways_gives_table_two(demo_workdir: Path, tmp_path: Path) -> None:
    # a copy of the preprocessed demo: other tests share demo_workdir with five folds
    work = tmp_path / "demo"
    shutil.copytree(demo_workdir, work, symlinks=True,
                    ignore=shutil.ignore_patterns("models", "metrics", "interpret", "motifs",
                                                  "locks", "incomplete"))
    targets = [f"results/metrics/{assay}/sequential_training.{ext}"
               for assay in ("rnaseq3p", "proseq") for ext in ("tsv", "png")]
    run_snakemake(work, *targets, "--set-threads", "train_fold=1", "--config",
                  f'splits={{"folds": {PRETRAIN_FOLDS}}}',
                  f'train={{"models": ["plantt"], "pretrain": {PRETRAIN_BOTH_WAYS}, '
                  '"model_settings": {"plantt": {"max_epochs": 1}}}', timeout=1800)
    splits = {assay: pd.read_csv(work / f"results/splits/{assay}.tsv", sep="\t")
              for assay in ("rnaseq3p", "proseq")}
    # one fold per orthogroup: every orthogroup of both assays is tested in the same fold
    test_fold = {assay: table[table["set"] == "test"].groupby("orthogroup")["fold"].first()
                 for assay, table in splits.items()}
    for assay, table in splits.items():  # each orthogroup is tested in exactly one fold
        assert table[table["set"] == "test"].groupby("orthogroup")["fold"].nunique().eq(1).all()
        assert set(test_fold[assay].index) == set(table["orthogroup"])
    shared = test_fold["rnaseq3p"].index.intersection(test_fold["proseq"].index)
    assert len(shared) > 500
    assert (test_fold["rnaseq3p"][shared] == test_fold["proseq"][shared]).all()
    for assay, source in (("rnaseq3p", "proseq"), ("proseq", "rnaseq3p")):
        pretrained = f"plantt_from_{source}"
        for fold in range(PRETRAIN_FOLDS):
            info = json.loads((work / f"results/models/{assay}/{pretrained}/fold_{fold}/"
                               "model.json").read_text())
            # fold k starts from fold k of the other assay
            assert info["provenance"]["init_weights"] == \
                f"results/models/{source}/plantt/fold_{fold}/weights.pt"
        per_fold = pd.read_csv(work / f"results/metrics/{assay}/metrics_per_fold.tsv", sep="\t")
        table = pd.read_csv(work / f"results/metrics/{assay}/sequential_training.tsv",
                            sep="\t").set_index("metric")
        assert {"spearman", "pearson", "r2", "auroc"} <= set(table.index)
        assert (table["n_folds"] == PRETRAIN_FOLDS).all()
        assert (table["alone"] == "plantt").all() and (table["pretrained"] == pretrained).all()
        for model, column in (("plantt", "alone"), (pretrained, "pretrained")):
            rows = per_fold[per_fold["model"] == model].sort_values("fold")
            assert rows["fold"].tolist() == list(range(PRETRAIN_FOLDS))
            assert table.loc["spearman", f"{column}_mean"] == pytest.approx(
                rows["spearman"].mean(), rel=1e-5)
            assert table.loc["spearman", f"{column}_sd"] == pytest.approx(
                rows["spearman"].std(ddof=1), rel=1e-5)
        # the paired comparison: the per-fold differences of the two models
        alone = per_fold[per_fold["model"] == "plantt"].set_index("fold")["spearman"]
        after = per_fold[per_fold["model"] == pretrained].set_index("fold")["spearman"]
        assert table.loc["spearman", "difference_mean"] == pytest.approx(
            (after - alone).mean(), rel=1e-4, abs=1e-6)
        assert table.loc["spearman", "folds_better"] == int(((after - alone) > 0).sum())
        # both models learn something in one epoch; the table is not comparing noise
        assert alone.min() > 0.3 and after.min() > 0.3
        figure = work / f"results/metrics/{assay}/sequential_training.png"
        assert figure.stat().st_size > 5000
