"""The learning curve: test Spearman of each recipe and baseline against the number of training
orthogroups, with the ceiling beside them.

The question users ask first is how much data they need, and which recipe suits their size. On a
preprocessed workdir (``snakemake --cores 2 preprocess_all``; a simulated one also gives the
ceiling, the true grammar's own score), for every assay and fold the training orthogroups are put
in one seeded random order and the first N of them kept, for each N of ``--sizes`` (so a larger
set holds every smaller one); the validation and test pairs of the fold stay as they are. Each
model is fitted on those training pairs, choosing what it chooses on the validation pairs, and
scored on the test pairs::

    python benchmarks/learning_curve.py --workdir WORKDIR --assays rnaseq3p proseq \\
        --folds 0 1 2 --sizes 100 200 400 800 1600 --models small_data kmer pwm \\
        --out lc.tsv --figure lc.png

Models: ``small_data`` and ``paper`` are PlanTT trained with that recipe of ``--config``
(:func:`plantt.recipes.train_settings`, exactly as the workflow's training rules merge them; the
``paper`` recipe's 50 epochs can be capped with ``--paper-epochs`` on a CPU), ``kmer`` and
``pwm`` the two ridge baselines with the config's ``train.kmer`` and ``train.pwm`` grids. A size
larger than the fold's training orthogroups is skipped. The table has one row per assay, fold,
size and model (``orthogroups``, ``pairs``, ``val_spearman``, ``test_spearman``, ``seconds``;
model ``grammar`` is the ceiling); the figure shows the mean ± SD over folds per assay.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models_vs_kmer import _pairs, grammar_scores, load_workdir  # noqa: E402

from plantt.dataset import EncodedWindows, gene_levels, pair_arrays, read_splits  # noqa: E402
from plantt.kmer import KmerSettings, fit_kmer_pairs  # noqa: E402
from plantt.models import load_model  # noqa: E402
from plantt.pwm import PwmSettings, fit_pwm_pairs  # noqa: E402
from plantt.recipes import train_settings  # noqa: E402
from plantt.train import TrainSettings, predict_pairs, train_fold  # noqa: E402

MODELS = ("small_data", "paper", "kmer", "pwm")


def _spearman(target: np.ndarray, prediction: np.ndarray) -> float:
    if len(target) < 3 or np.std(prediction) == 0:
        return float("nan")
    return float(spearmanr(prediction, target)[0])


def subsample_training(splits: pd.DataFrame, fold: int, size: int, seed: int) -> pd.DataFrame:
    """The fold's rows with its training pairs cut to the first ``size`` orthogroups of one
    seeded order of them (the same order for every size: nested sets)."""
    in_fold = splits[splits["fold"] == fold]
    groups = np.array(sorted(in_fold.loc[in_fold["set"] == "train", "orthogroup"].astype(str)
                             .unique()))
    order = np.random.default_rng([seed, fold]).permutation(groups)
    kept = set(order[:size].tolist())
    is_train = in_fold["set"] == "train"
    return in_fold[~is_train | in_fold["orthogroup"].astype(str).isin(kept)]


def fit_and_score(model: str, codes: np.ndarray, splits: pd.DataFrame, windows: EncodedWindows,
                  fold: int, train_config: dict, args: argparse.Namespace
                  ) -> tuple[float, float]:
    """Validation and test Spearman of one model fitted on the (subsampled) training pairs."""
    train, val, test = (pair_arrays(splits, windows, fold, name)
                        for name in ("train", "validation", "test"))
    if model in ("kmer", "pwm"):
        if model == "kmer":
            grid = {**(train_config.get("kmer") or {}), **json.loads(args.kmer)}
            fitted, _ = fit_kmer_pairs(codes, _pairs(train), _pairs(val),
                                       KmerSettings.from_dict(grid))
        else:
            fitted, _ = fit_pwm_pairs(codes, _pairs(train), _pairs(val),
                                      PwmSettings.from_dict(train_config.get("pwm")))
        return (_spearman(val.target, fitted.predict_pairs(codes, val.idx_a, val.idx_b)),
                _spearman(test.target, fitted.predict_pairs(codes, test.idx_a, test.idx_b)))
    values = {**train_settings(train_config, "plantt", model), "num_threads": args.threads}
    if model == "small_data":
        values.update(json.loads(args.recipe_train))
    if model == "paper" and args.paper_epochs is not None:
        values["max_epochs"] = args.paper_epochs
        values["patience"] = min(int(values.get("patience", 10)), args.paper_epochs)
    settings = TrainSettings.from_dict(values)
    levels = gene_levels(splits, windows, fold) if settings.single_gene_weights else None
    with tempfile.TemporaryDirectory() as tmp:
        train_fold(codes, _pairs(train), _pairs(val), settings, tmp, progress=False,
                   plots=False, levels=levels)
        fitted = load_model(tmp)
        return (_spearman(val.target, predict_pairs(fitted, codes, val.idx_a, val.idx_b)),
                _spearman(test.target, predict_pairs(fitted, codes, test.idx_a, test.idx_b)))


def ceiling(truth: pd.DataFrame, windows: EncodedWindows, assay: str, splits: pd.DataFrame,
            fold: int) -> float:
    """Test Spearman of the true grammar difference of each test pair."""
    test = pair_arrays(splits, windows, fold, "test")
    return grammar_scores(truth, windows, assay, test)["spearman"]


def write_table(rows: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    pd.DataFrame(rows).to_csv(partial, sep="\t", index=False, float_format="%.4f")
    os.replace(partial, out)


def plot(table: pd.DataFrame, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assays = list(dict.fromkeys(table["assay"]))
    fig, axes = plt.subplots(1, len(assays), figsize=(5 * len(assays), 4), squeeze=False)
    for ax, assay in zip(axes[0], assays, strict=True):
        part = table[table["assay"] == assay]
        for model in dict.fromkeys(part["model"]):
            rows = part[part["model"] == model]
            stats = rows.groupby("orthogroups")["test_spearman"].agg(["mean", "std"]).fillna(0)
            if model == "grammar":
                ax.axhline(stats["mean"].mean(), color="grey", linestyle="--",
                           label="ceiling (true grammar)")
                continue
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=3,
                        label=model)
        ax.set_xscale("log")
        ax.set_xlabel("training orthogroups")
        ax.set_ylabel("test Spearman (mean ± SD over folds)")
        ax.set_title(assay)
        ax.legend(fontsize=8)
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    partial = figure.with_name(figure.stem + ".part" + figure.suffix)
    fig.savefig(partial, dpi=120)
    plt.close(fig)
    os.replace(partial, figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--assays", nargs="+", default=["rnaseq3p"])
    parser.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--sizes", nargs="+", type=int, default=[125, 250, 500, 1000, 2000])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["small_data", "kmer"])
    parser.add_argument("--kmer", default="{}",
                        help="JSON: changes to the config's train.kmer grid (e.g. a smaller one "
                             "where pairs are many: its dual solve grows with their cube)")
    parser.add_argument("--recipe-train", default="{}",
                        help="JSON: changes to the small_data recipe's settings")
    parser.add_argument("--paper-epochs", type=int, help="cap the paper recipe's epochs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the orthogroups' order")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="the table (TSV)")
    parser.add_argument("--figure", type=Path, help="the figure (PNG)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_config = (yaml.safe_load(args.config.read_text()) or {}).get("train") or {}
    windows, codes, truth = load_workdir(args.workdir)
    rows: list[dict] = []
    for assay in args.assays:
        splits = read_splits(args.workdir / f"results/splits/{assay}.tsv")
        for fold in args.folds:
            in_fold = splits[(splits["fold"] == fold) & (splits["set"] == "train")]
            available = in_fold["orthogroup"].nunique()
            if truth is not None:
                rows.append({"assay": assay, "fold": fold, "orthogroups": available,
                             "pairs": len(in_fold), "model": "grammar", "val_spearman": np.nan,
                             "test_spearman": ceiling(truth, windows, assay, splits, fold),
                             "seconds": 0.0})
            for size in sorted(args.sizes):
                if size > available:
                    print(f"{assay} fold {fold}: {size} orthogroups asked, {available} "
                          "available: skipped", file=sys.stderr)
                    continue
                subset = subsample_training(splits, fold, size, args.seed)
                pairs = int((subset["set"] == "train").sum())
                for model in args.models:
                    start = time.perf_counter()
                    val_rho, test_rho = fit_and_score(model, codes, subset, windows, fold,
                                                      train_config, args)
                    rows.append({"assay": assay, "fold": fold, "orthogroups": size,
                                 "pairs": pairs, "model": model, "val_spearman": val_rho,
                                 "test_spearman": test_rho,
                                 "seconds": time.perf_counter() - start})
                    print(json.dumps(rows[-1]), flush=True)
                    write_table(rows, args.out)
    write_table(rows, args.out)
    if args.figure:
        plot(pd.DataFrame(rows), args.figure)


if __name__ == "__main__":
    main()
