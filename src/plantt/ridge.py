"""What the ridge-regression baselines (:mod:`plantt.kmer`, :mod:`plantt.pwm`) share.

* Checks of their inputs: encoded windows, row indices, targets and settings values.
* :class:`GridRows`: the distinct rows of ``codes`` a training and a validation set refer to
  (:func:`pair_rows`, :func:`sequence_rows`), and how per-row features become the training design
  matrix (``x[a] - x[b]`` for pairs, without intercept, so that f(a, b) = -f(b, a) and f(a, a) = 0;
  ``x[i]`` for single sequences, with intercept) and per-row scores the validation predictions.
* :func:`fit_grid`: every grid point (a k-mer length, a block length) and ridge penalty fitted on the
  training set and scored on the validation set; the best validation Spearman is kept, ties going to
  the simpler model (:func:`selection_key`), then to the larger penalty.
* :func:`ridge_path`: the exact ridge solution for several penalties from one eigendecomposition
  of a dense design matrix (the k-mer baseline's sparse counts use an iterative solver instead).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from logging import Logger
from typing import Any

import numpy as np
import pandas as pd

from plantt.encoding import N_CODE
from plantt.metrics import regression_metrics


def as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    raise ValueError(f"{name} must be an integer, got {value!r}")


def as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def as_tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, list | tuple | np.ndarray):
        return tuple(value)
    return (value,)


def check_alphas(alphas: Any) -> tuple[float, ...]:
    """Ridge penalties: at least one, each finite and > 0, none twice."""
    values = tuple(as_float("alphas", a) for a in as_tuple(alphas))
    if not values:
        raise ValueError("alphas: give at least one ridge penalty")
    bad = [a for a in values if not (math.isfinite(a) and a > 0)]
    if bad:
        raise ValueError(f"alphas: ridge penalties must be finite and > 0, got {bad}")
    if len(set(values)) != len(values):
        raise ValueError(f"alphas: a penalty appears twice in {list(values)}")
    return values


def n_blocks_of(length: int, block_length: int) -> int:
    """Blocks of a window: the last one may be shorter than ``block_length``."""
    return max(1, -(-int(length) // int(block_length)))


def check_codes(codes: np.ndarray) -> None:
    if codes.ndim != 2:
        raise ValueError(f"codes must be a 2-D array (windows x bases), got {codes.ndim}-D")
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be integers (A=0 C=1 G=2 T=3 N=4), got {codes.dtype}")
    if codes.shape[1] == 0:
        raise ValueError("codes have no bases")


def check_code_values(chunk: np.ndarray) -> None:
    if chunk.size and (chunk.min() < 0 or chunk.max() > N_CODE):
        raise ValueError(f"codes must be 0-{N_CODE} (A=0 C=1 G=2 T=3 N=4); found values from "
                         f"{chunk.min()} to {chunk.max()}")


def check_rows(idx: np.ndarray, n_rows: int, name: str) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
        raise ValueError(f"{name} must be a 1-d array of row indices")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_rows):
        raise ValueError(f"{name}: row indices must be 0 to {n_rows - 1}, found {idx.min()} to "
                         f"{idx.max()}")
    return idx


def check_targets(target: np.ndarray, name: str, baseline: str, choices: str) -> np.ndarray:
    target = np.asarray(target, dtype=np.float64)
    if target.size == 0:
        raise ValueError(f"the {name} set is empty: {baseline} needs training pairs or "
                         f"sequences, and validation ones to choose {choices}")
    if not np.all(np.isfinite(target)):
        raise ValueError(f"{name} targets must be finite")
    return target


@dataclass(frozen=True)
class GridRows:
    """The distinct rows ``used`` of ``codes`` that a training and a validation set refer to
    (sorted), the sets' targets, and the positions of their rows within ``used``: ``(a, b)`` per
    pair, or ``(i,)`` per sequence."""

    used: np.ndarray
    paired: bool
    y: np.ndarray
    y_val: np.ndarray
    train: tuple[np.ndarray, ...]
    val: tuple[np.ndarray, ...]

    def design(self, features: Any) -> Any:
        """The training design matrix from the features of the ``used`` rows."""
        if self.paired:
            return features[self.train[0]] - features[self.train[1]]
        return features[self.train[0]]

    def validation(self, scores: np.ndarray) -> np.ndarray:
        """The validation predictions from the scores of the ``used`` rows."""
        if self.paired:
            return scores[self.val[0]] - scores[self.val[1]]
        return scores[self.val[0]]

    @property
    def training_rows(self) -> np.ndarray:
        """Positions within ``used`` of the distinct sequences of the training set."""
        return np.unique(np.concatenate(self.train))


def pair_rows(codes: np.ndarray, train: Any, val: Any, baseline: str, choices: str) -> GridRows:
    """:class:`GridRows` of training and validation pairs (``PairSet``s or alike)."""
    from plantt.train import PairSet

    train, val = PairSet.coerce(train), PairSet.coerce(val)
    y = check_targets(train.target, "training", baseline, choices)
    y_val = check_targets(val.target, "validation", baseline, choices)
    groups = [check_rows(idx, codes.shape[0], name) for idx, name in (
        (train.idx_a, "train idx_a"), (train.idx_b, "train idx_b"),
        (val.idx_a, "validation idx_a"), (val.idx_b, "validation idx_b"))]
    used = np.unique(np.concatenate(groups))
    ta, tb, va, vb = (np.searchsorted(used, idx) for idx in groups)
    return GridRows(used, True, y, y_val, (ta, tb), (va, vb))


def sequence_rows(codes: np.ndarray, train: Any, val: Any, baseline: str, choices: str
                  ) -> GridRows:
    """:class:`GridRows` of training and validation sequences (``SequenceSet``s)."""
    y = check_targets(train.target, "training", baseline, choices)
    y_val = check_targets(val.target, "validation", baseline, choices)
    train_idx = check_rows(train.idx, codes.shape[0], "train idx")
    val_idx = check_rows(val.idx, codes.shape[0], "validation idx")
    used = np.unique(np.concatenate([train_idx, val_idx]))
    return GridRows(used, False, y, y_val, (np.searchsorted(used, train_idx),),
                    (np.searchsorted(used, val_idx),))


def selection_key(val_spearman: float, complexity: Any, alpha: float) -> tuple[float, Any, float]:
    """Best validation Spearman first (an undefined one last), then the simpler model (smaller
    ``complexity``), then the larger penalty."""
    rho = val_spearman
    return (-rho if math.isfinite(rho) else math.inf, complexity, -alpha)


@dataclass
class GridChoice:
    """The grid point and penalty chosen on validation, and the ridge fitted with them."""

    value: Any
    alpha: float
    coef: np.ndarray
    intercept: float


Solver = Callable[[Any, np.ndarray, Sequence[float], bool], Iterable[tuple[np.ndarray, float]]]


def fit_grid(rows: GridRows, name: str, values: Sequence[Any], alphas: Sequence[float],
             features: Callable[[Any], Any], solve: Solver, complexity: Callable[[Any], Any],
             log: Logger) -> tuple[GridChoice, pd.DataFrame]:
    """Fit every grid ``value`` and penalty of ``alphas`` and keep the best on validation.

    ``features(value)``: the features of ``rows.used`` (dense or sparse, one row each);
    ``solve(x, y, alphas, intercept)``: ``(coef, intercept)`` per penalty, in order. The validation
    predictions are ``rows.validation(features @ coef + intercept)``. Returns the choice and the
    selection table: one row per (value, alpha), columns ``name, alpha, val_spearman,
    val_pearson, chosen``.
    """
    table_rows: list[dict[str, Any]] = []
    best: tuple[tuple[float, Any, float], GridChoice] | None = None
    for value in values:
        started = time.perf_counter()
        x_used = features(value)
        x = rows.design(x_used)
        log.info("%s=%s: %d features, %d training rows (%.1f s)", name, value, x.shape[1],
                 x.shape[0], time.perf_counter() - started)
        started = time.perf_counter()
        for alpha, (coef, intercept) in zip(alphas, solve(x, rows.y, alphas, not rows.paired),
                                            strict=True):
            scores = np.asarray(x_used @ coef, dtype=np.float64).ravel() + intercept
            metrics = regression_metrics(rows.y_val, rows.validation(scores))
            row = {name: value, "alpha": alpha, "val_spearman": metrics["spearman"],
                   "val_pearson": metrics["pearson"]}
            table_rows.append(row)
            log.info("%s=%s alpha=%g: validation Spearman %.4f, Pearson %.4f (%.1f s)", name,
                     value, alpha, row["val_spearman"], row["val_pearson"],
                     time.perf_counter() - started)
            started = time.perf_counter()
            key = selection_key(row["val_spearman"], complexity(value), alpha)
            if best is None or key < best[0]:
                best = (key, GridChoice(value, alpha, coef, intercept))
    assert best is not None  # at least one value and one alpha
    choice = best[1]
    table = pd.DataFrame(table_rows, columns=[name, "alpha", "val_spearman", "val_pearson"])
    table["chosen"] = (table[name] == choice.value) & (table["alpha"] == choice.alpha)
    log.info("chosen: %s=%s alpha=%g", name, choice.value, choice.alpha)
    return choice, table


def ridge_path(x: np.ndarray, y: np.ndarray, alphas: Sequence[float], intercept: bool
               ) -> list[tuple[np.ndarray, float]]:
    """Exact ridge solutions ``argmin ||y - x w - b||^2 + alpha ||w||^2`` of a dense ``x`` for every
    penalty, ``(w, b)`` each (``b`` = 0 without intercept; with it, ``x`` and ``y`` are centred).

    One symmetric eigendecomposition serves every penalty: of ``x'x`` when there are at least as
    many rows as columns, else of ``x x'`` (the dual form, ``w = x' (x x' + alpha)^-1 y``); its
    cost is that of the smaller Gram matrix, e.g. 3,400 rows x 9,660 columns in about 4 s on one
    core.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if intercept:
        x_mean, y_mean = x.mean(axis=0), float(y.mean())
        x = x - x_mean
        y = y - y_mean
    else:
        x_mean, y_mean = np.zeros(x.shape[1]), 0.0
    n, p = x.shape
    out = []
    if n >= p:
        eigenvalues, vectors = np.linalg.eigh(x.T @ x)
        projected = vectors.T @ (x.T @ y)
        for alpha in alphas:
            coef = vectors @ (projected / (np.maximum(eigenvalues, 0.0) + alpha))
            out.append((coef, y_mean - float(x_mean @ coef)))
    else:
        eigenvalues, vectors = np.linalg.eigh(x @ x.T)
        projected = vectors.T @ y
        for alpha in alphas:
            coef = x.T @ (vectors @ (projected / (np.maximum(eigenvalues, 0.0) + alpha)))
            out.append((coef, y_mean - float(x_mean @ coef)))
    return out
