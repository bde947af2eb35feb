"""The learning curve (plantt.learning_curve; benchmarks/learning_curve.py and the workflow's rule
learning_curve): training sets cut to N orthogroups, nested, the rest untouched."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd

from conftest import DEMO_TRAIN_ASSAY, REPO
from plantt.learning_curve import subsample_training

SCRIPT = REPO / "benchmarks" / "learning_curve.py"


def _splits() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for fold in range(2):
        for group in range(40):
            role = "test" if group % 10 == fold else ("validation" if group % 10 == fold + 5
                                                     else "train")
            for pair in range(int(rng.integers(1, 4))):
                rows.append({"orthogroup": f"OG{group:03d}", "fold": fold, "set": role,
                             "pair": pair})
    return pd.DataFrame(rows)


def test_training_orthogroups_are_cut_nested_and_the_rest_kept() -> None:
    splits = _splits()
    kept = {}
    for size in (5, 10, 32):
        part = subsample_training(splits, 1, size, seed=3)
        assert set(part["fold"]) == {1}
        train = part[part["set"] == "train"]
        kept[size] = set(train["orthogroup"])
        assert len(kept[size]) == size
        # whole orthogroups: every training pair of a kept orthogroup is kept
        full = splits[(splits["fold"] == 1) & splits["orthogroup"].isin(kept[size])]
        assert len(train) == int((full["set"] == "train").sum())
        # validation and test pairs as they were
        for role in ("validation", "test"):
            assert part[part["set"] == role].equals(splits[(splits["fold"] == 1)
                                                           & (splits["set"] == role)])
    assert kept[5] < kept[10] < kept[32]
    # the order is the seed's: another seed keeps other orthogroups
    assert set(subsample_training(splits, 1, 10, seed=4).query("set == 'train'")["orthogroup"]) \
        != kept[10]


def test_the_curve_of_the_kmer_baseline_on_the_demo(demo_workdir, tmp_path) -> None:
    out = tmp_path / "curve.tsv"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--workdir", str(demo_workdir), "--assays",
         DEMO_TRAIN_ASSAY, "--folds", "0", "--sizes", "40", "160", "100000", "--models", "kmer",
         "--kmer", '{"ks": [6], "block_lengths": [750], "alphas": [10, 100, 1000]}',
         "--threads", "1", "--out", str(out), "--figure", str(tmp_path / "curve.png")],
        capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "100000 training orthogroups asked" in done.stderr  # more than the fold has: skipped
    table = pd.read_csv(out, sep="\t")
    kmer = table[table["model"] == "kmer"].set_index("orthogroups")
    assert kmer.index.tolist() == [40, 160]
    assert kmer.loc[160, "pairs"] > kmer.loc[40, "pairs"]
    # the demo's grammar is learnable: more data, a better k-mer ridge, below the ceiling
    ceiling = float(table.loc[table["model"] == "grammar", "test_spearman"].iloc[0])
    assert ceiling > kmer.loc[160, "test_spearman"] > kmer.loc[40, "test_spearman"]
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_the_workflow_draws_the_curve_when_the_config_asks(demo_workdir, tmp_path) -> None:
    """Rule learning_curve on the demo (easy grammar): the small_data recipe and the k-mer ridge
    at two sizes of fold 0's training orthogroups, the ceiling beside them; a size the fold does
    not hold is skipped; the figure is in the report's inputs."""
    from conftest import run_snakemake

    settings = tmp_path / "curve.yaml"
    settings.write_text(
        "learning_curve:\n  enabled: true\n  assays: [rnaseq3p]\n  folds: [0]\n"
        "  sizes: [60, 240, 100000]\n  models: [small_data, kmer]\n"
        "  kmer: {ks: [6, 7], block_lengths: [750], alphas: [10, 100, 1000]}\n")
    run_snakemake(demo_workdir, "learning_curve_all", "--configfile", str(settings),
                  timeout=1800)
    table = pd.read_csv(demo_workdir / "results/learning_curve/rnaseq3p.tsv", sep="\t")
    assert set(table["model"]) == {"small_data", "kmer", "grammar"}
    for model in ("small_data", "kmer"):
        part = table[table["model"] == model].set_index("orthogroups")
        assert part.index.tolist() == [60, 240]  # 100000: more than the fold holds
        assert part.loc[240, "pairs"] > part.loc[60, "pairs"]
        assert part["seconds"].gt(0).all()
    ceiling = float(table.loc[table["model"] == "grammar", "test_spearman"].iloc[0])
    small = table[table["model"] == "small_data"].set_index("orthogroups")["test_spearman"]
    # the demo's grammar is learnable: more orthogroups, a better model, below the ceiling
    assert ceiling > small[240] > small[60]
    assert (demo_workdir / "results/learning_curve/rnaseq3p.png").stat().st_size > 1000
    log = (demo_workdir / "logs/learning_curve/rnaseq3p.log").read_text()
    assert "100000 training orthogroups asked" in log
