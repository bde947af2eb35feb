"""Evaluation metrics of expression-difference predictions (paper Tables 1 and 2).

* :func:`regression_metrics`: Spearman, Pearson, R2 (coefficient of determination,
  ``1 - SS_res / SS_tot``, so it can be negative) and MSE of predicted vs. true differences.
* :func:`sign_metrics`: balanced accuracy, F1 and AUROC of the binary question "is gene a more
  highly expressed than gene b" (``y_true > 0``), scored from a continuous prediction: PlanTT's
  predicted difference (threshold 0) or the Washburn classifier's probability (threshold 0.5).
* :func:`summarize_folds`: mean and SD across cross-validation folds per model and assay.

Every function is NaN-safe: pairs where either value is not finite are dropped, and a metric that is
undefined for the input (a constant vector for a correlation, a single class for AUROC or balanced
accuracy, no positive in truth or prediction for F1) is returned as NaN instead of raising or
warning. Metrics are computed here with numpy/scipy directly; the tests check them against
scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

REGRESSION_METRICS = ("spearman", "pearson", "r2", "mse")
SIGN_METRICS = ("balanced_accuracy", "f1", "auroc")


def _finite_pairs(y_true: Sequence[float] | np.ndarray, y_other: Sequence[float] | np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=np.float64).ravel()
    b = np.asarray(y_other, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"y_true and predictions differ in length ({a.size} vs {b.size})")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def _is_constant(x: np.ndarray) -> bool:
    return x.size < 2 or bool(np.all(x == x[0]))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r, NaN when either vector is constant or shorter than 2."""
    if _is_constant(x) or _is_constant(y):
        return math.nan
    xc = x - x.mean()
    yc = y - y.mean()
    denom = math.sqrt(float(np.dot(xc, xc)) * float(np.dot(yc, yc)))
    if denom == 0.0:
        return math.nan
    return float(np.clip(np.dot(xc, yc) / denom, -1.0, 1.0))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho (Pearson's r of average ranks), NaN for constant input."""
    if _is_constant(x) or _is_constant(y):
        return math.nan
    return pearson(stats.rankdata(x), stats.rankdata(y))


def regression_metrics(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray
                       ) -> dict[str, float]:
    """Spearman, Pearson, R2 and MSE of ``y_pred`` against ``y_true`` (plus ``n`` used)."""
    t, p = _finite_pairs(y_true, y_pred)
    out: dict[str, float] = {"n": float(t.size)}
    if t.size == 0:
        return {**out, **{k: math.nan for k in REGRESSION_METRICS}}
    residual = float(np.sum((t - p) ** 2))
    total = float(np.sum((t - t.mean()) ** 2))
    out["spearman"] = spearman(t, p)
    out["pearson"] = pearson(t, p)
    out["r2"] = 1.0 - residual / total if total > 0 else math.nan
    out["mse"] = residual / t.size
    return out


def auroc(labels: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half)."""
    labels = labels.astype(bool)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = stats.rankdata(score)
    u = float(ranks[labels].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def sign_metrics(y_true: Sequence[float] | np.ndarray, score: Sequence[float] | np.ndarray,
                 threshold: float = 0.0) -> dict[str, float]:
    """Balanced accuracy, F1 and AUROC of ``y_true > 0`` predicted by ``score > threshold``.

    Use ``threshold=0`` for PlanTT's predicted difference and ``0.5`` for a probability.
    """
    t, s = _finite_pairs(y_true, score)
    out: dict[str, float] = {"n": float(t.size)}
    truth = t > 0
    predicted = s > threshold
    n_pos = int(truth.sum())
    n_neg = truth.size - n_pos
    tp = int(np.sum(truth & predicted))
    tn = int(np.sum(~truth & ~predicted))
    fp = int(np.sum(~truth & predicted))
    fn = n_pos - tp
    if n_pos and n_neg:
        out["balanced_accuracy"] = 0.5 * (tp / n_pos + tn / n_neg)
    else:
        out["balanced_accuracy"] = math.nan
    out["f1"] = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else math.nan
    out["auroc"] = auroc(truth, s)
    return out


def prediction_metrics(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray,
                       kind: str = "plantt") -> dict[str, float]:
    """All metrics of one model's predictions: regression + sign for PlanTT, sign for Washburn.

    Washburn predictions are probabilities (threshold 0.5); its regression metrics are NaN because
    it does not predict the magnitude of the difference (as in the paper's Table 1).
    """
    if kind == "washburn":
        signs = sign_metrics(y_true, y_pred, threshold=0.5)
        regression = {k: math.nan for k in REGRESSION_METRICS}
    else:
        signs = sign_metrics(y_true, y_pred, threshold=0.0)
        regression = regression_metrics(y_true, y_pred)
    n = signs.pop("n")
    regression.pop("n", None)
    return {"n": n, **regression, **signs}


def summarize_folds(df: pd.DataFrame, by: Sequence[str] = ("model", "assay"),
                    metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean and SD (ddof=1) of each metric across folds, per model and assay.

    ``df`` has one row per fold (columns ``model``, ``assay``, ``fold`` and metric columns; group
    columns missing from ``df`` are ignored). Returns a long table: the group columns, ``metric``,
    ``mean``, ``sd`` and ``n_folds`` (folds where the metric is defined). NaN folds are skipped;
    the SD of a single fold is NaN.
    """
    groups = [c for c in by if c in df.columns]
    if metrics is None:
        skip = set(groups) | {"fold", "n"}
        metrics = [c for c in df.columns
                   if c not in skip and pd.api.types.is_numeric_dtype(df[c])]
    rows = []
    grouped = df.groupby(groups, sort=True, dropna=False) if groups else [((), df)]
    for key, part in grouped:
        key_tuple = key if isinstance(key, tuple) else (key,)
        for metric in metrics:
            values = pd.to_numeric(part[metric], errors="coerce").to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            rows.append({
                **dict(zip(groups, key_tuple, strict=True)),
                "metric": metric,
                "mean": float(values.mean()) if values.size else math.nan,
                "sd": float(values.std(ddof=1)) if values.size > 1 else math.nan,
                "n_folds": int(values.size),
            })
    return pd.DataFrame(rows, columns=[*groups, "metric", "mean", "sd", "n_folds"])
