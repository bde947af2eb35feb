"""The learning curve: test Spearman of each recipe and baseline against the number of training
orthogroups, with the ceiling beside them where the data were simulated.

The question users ask first is how much data they need, and which recipe suits their size. For an
assay and each of its chosen folds, the fold's training orthogroups are put in one seeded random
order and the first N of them kept, for each N of ``sizes`` (so a larger set holds every smaller
one, :func:`subsample_training`); the validation and test pairs of the fold stay as they are. Each
model is fitted on those training pairs, choosing what it chooses on the validation pairs, and
scored on the test pairs (:func:`fit_and_score`).

Models: ``small_data`` and ``paper`` are PlanTT trained with that recipe
(:func:`plantt.recipes.train_settings`, merged exactly as the workflow's training rules merge
them; ``paper_epochs`` caps the paper recipe's 50 epochs on a CPU), ``kmer`` and ``pwm`` the two
ridge baselines with the config's ``train.kmer`` and ``train.pwm`` grids. A size larger than a
fold's training orthogroups is skipped (and logged). The workflow's rule ``learning_curve``
(config ``learning_curve``) and ``benchmarks/learning_curve.py`` both call :func:`learning_curve`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from plantt.cv import GRAMMAR_MODEL, grammar_values
from plantt.dataset import EncodedWindows, PairArrays, gene_levels, pair_arrays
from plantt.io import PathLike, get_logger
from plantt.plots import save_figure

log = get_logger("learning_curve")

#: The models a learning curve can hold: two PlanTT recipes and the two ridge baselines.
CURVE_MODELS = ("small_data", "paper", "kmer", "pwm")
CURVE_COLUMNS = ["assay", "fold", "orthogroups", "pairs", "model", "val_spearman",
                 "test_spearman", "seconds"]


def _spearman(target: np.ndarray, prediction: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(target) < 3 or np.std(prediction) == 0:
        return float("nan")
    return float(spearmanr(prediction, target)[0])


def _pair_set(arrays: PairArrays):
    from plantt.train import PairSet

    return PairSet(arrays.idx_a, arrays.idx_b, arrays.target)


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
                  fold: int, train_config: Mapping[str, Any], threads: int = 1,
                  kmer_changes: Mapping[str, Any] | None = None,
                  recipe_changes: Mapping[str, Any] | None = None,
                  paper_epochs: int | None = None) -> tuple[float, float]:
    """Validation and test Spearman of one model fitted on the (subsampled) training pairs of
    ``splits``. ``kmer_changes``: changes to the config's ``train.kmer`` grid (its dual solve
    grows with the cube of the pairs); ``recipe_changes``: to the ``small_data`` recipe."""
    from plantt.kmer import KmerSettings, fit_kmer_pairs
    from plantt.models import load_model
    from plantt.pwm import PwmSettings, fit_pwm_pairs
    from plantt.recipes import train_settings
    from plantt.train import TrainSettings, predict_pairs, train_fold

    if model not in CURVE_MODELS:
        raise ValueError(f"unknown learning-curve model {model!r}; expected one of "
                         f"{', '.join(CURVE_MODELS)}")
    train, val, test = (pair_arrays(splits, windows, fold, name)
                        for name in ("train", "validation", "test"))
    if model in ("kmer", "pwm"):
        if model == "kmer":
            grid = {**(train_config.get("kmer") or {}), **(kmer_changes or {})}
            fitted, _ = fit_kmer_pairs(codes, _pair_set(train), _pair_set(val),
                                       KmerSettings.from_dict(grid))
        else:
            fitted, _ = fit_pwm_pairs(codes, _pair_set(train), _pair_set(val),
                                      PwmSettings.from_dict(train_config.get("pwm")),
                                      threads=threads)
        return (_spearman(val.target, fitted.predict_pairs(codes, val.idx_a, val.idx_b)),
                _spearman(test.target, fitted.predict_pairs(codes, test.idx_a, test.idx_b)))
    values = {**train_settings(dict(train_config), "plantt", model), "num_threads": threads}
    if model == "small_data":
        values.update(recipe_changes or {})
    if model == "paper" and paper_epochs is not None:
        values["max_epochs"] = paper_epochs
        values["patience"] = min(int(values.get("patience", 10)), paper_epochs)
    settings = TrainSettings.from_dict(values)
    levels = gene_levels(splits, windows, fold) if settings.single_gene_weights else None
    with tempfile.TemporaryDirectory() as tmp:
        train_fold(codes, _pair_set(train), _pair_set(val), settings, tmp, progress=False,
                   plots=False, levels=levels)
        fitted = load_model(tmp)
        return (_spearman(val.target, predict_pairs(fitted, codes, val.idx_a, val.idx_b)),
                _spearman(test.target, predict_pairs(fitted, codes, test.idx_a, test.idx_b)))


def learning_curve(windows: EncodedWindows, splits: pd.DataFrame, assay: str,
                   folds: Sequence[int], sizes: Sequence[int], models: Sequence[str],
                   train_config: Mapping[str, Any], truth: pd.DataFrame | None = None,
                   seed: int = 0, threads: int = 1,
                   kmer_changes: Mapping[str, Any] | None = None,
                   recipe_changes: Mapping[str, Any] | None = None,
                   paper_epochs: int | None = None,
                   on_row: Callable[[pd.DataFrame], None] | None = None) -> pd.DataFrame:
    """The curve of one assay: a row per fold, size and model (``CURVE_COLUMNS``), and with the
    simulator's ``truth`` a row per fold for model ``grammar`` (the ceiling, at the fold's whole
    training set). ``on_row`` gets the table so far after every fit (to write it as it grows)."""
    unknown = [m for m in models if m not in CURVE_MODELS]
    if unknown:
        raise ValueError(f"unknown learning-curve model(s) {', '.join(unknown)}; expected "
                         f"{', '.join(CURVE_MODELS)}")
    codes = np.asarray(windows.codes)
    gene_ids = windows.genes["gene_id"].to_numpy()
    rows: list[dict[str, Any]] = []

    def add(row: dict[str, Any]) -> None:
        rows.append(row)
        log.info("%s fold %d, %d orthogroups (%d pairs), %s: validation %.3f, test %.3f "
                 "(%.0f s)", assay, row["fold"], row["orthogroups"], row["pairs"], row["model"],
                 row["val_spearman"], row["test_spearman"], row["seconds"])
        if on_row is not None:
            on_row(pd.DataFrame(rows, columns=CURVE_COLUMNS))

    for fold in folds:
        in_fold = splits[(splits["fold"] == fold) & (splits["set"] == "train")]
        available = int(in_fold["orthogroup"].nunique())
        if truth is not None:
            test = pair_arrays(splits, windows, fold, "test")
            grammar = grammar_values(truth, assay)
            difference = (grammar.reindex(gene_ids[test.idx_a]).to_numpy()
                          - grammar.reindex(gene_ids[test.idx_b]).to_numpy())
            add({"assay": assay, "fold": fold, "orthogroups": available,
                 "pairs": len(in_fold), "model": GRAMMAR_MODEL, "val_spearman": np.nan,
                 "test_spearman": _spearman(test.target, difference), "seconds": 0.0})
        for size in sorted(set(sizes)):
            if size > available:
                log.warning("%s fold %d: %d training orthogroups asked, %d available: skipped",
                            assay, fold, size, available)
                continue
            subset = subsample_training(splits, fold, size, seed)
            pairs = int((subset["set"] == "train").sum())
            for model in models:
                start = time.perf_counter()
                val_rho, test_rho = fit_and_score(model, codes, subset, windows, fold,
                                                  train_config, threads, kmer_changes,
                                                  recipe_changes, paper_epochs)
                add({"assay": assay, "fold": fold, "orthogroups": size, "pairs": pairs,
                     "model": model, "val_spearman": val_rho, "test_spearman": test_rho,
                     "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def plot_learning_curve(table: pd.DataFrame, target: PathLike) -> None:
    """Test Spearman (mean ± SD over folds) against training orthogroups, one panel per assay and
    a line per model; the ceiling (model ``grammar``) as a dashed line."""
    import matplotlib.pyplot as plt

    assays = list(dict.fromkeys(table["assay"])) or [""]
    fig, axes = plt.subplots(1, len(assays), figsize=(5 * len(assays), 4), squeeze=False)
    for ax, assay in zip(axes[0], assays, strict=True):
        part = table[table["assay"] == assay]
        for model in dict.fromkeys(part["model"]):
            rows = part[part["model"] == model]
            stats = rows.groupby("orthogroups")["test_spearman"].agg(["mean", "std"]).fillna(0)
            if model == GRAMMAR_MODEL:
                ax.axhline(stats["mean"].mean(), color="grey", linestyle="--",
                           label="ceiling (true grammar)")
                continue
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=3,
                        label=model)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_xscale("log")
        ax.set_xlabel("training orthogroups")
        ax.set_ylabel("test Spearman (mean ± SD over folds)")
        ax.set_title(assay)
        if len(part):
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no size fits the folds", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    save_figure(fig, target)
