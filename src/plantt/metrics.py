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
    """Pearson's r (scipy), NaN when either vector is constant or shorter than 2."""
    if _is_constant(x) or _is_constant(y):
        return math.nan
    return float(np.clip(stats.pearsonr(x, y).statistic, -1.0, 1.0))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho (scipy: Pearson's r of average ranks), NaN for constant input."""
    if _is_constant(x) or _is_constant(y):
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def regression_metrics(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray
                       ) -> dict[str, float]:
    """Spearman, Pearson, R2 and MSE (scikit-learn) of ``y_pred`` against ``y_true`` (plus ``n``
    used); R2 is NaN for constant targets."""
    from sklearn.metrics import mean_squared_error, r2_score

    t, p = _finite_pairs(y_true, y_pred)
    out: dict[str, float] = {"n": float(t.size)}
    if t.size == 0:
        return {**out, **{k: math.nan for k in REGRESSION_METRICS}}
    out["spearman"] = spearman(t, p)
    out["pearson"] = pearson(t, p)
    out["r2"] = float(r2_score(t, p)) if not _is_constant(t) else math.nan
    out["mse"] = float(mean_squared_error(t, p))
    return out


def auroc(labels: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (scikit-learn; ties count one half), NaN with one class only."""
    from sklearn.metrics import roc_auc_score

    labels = labels.astype(bool)
    if labels.all() or not labels.any():
        return math.nan
    return float(roc_auc_score(labels, score))


def sign_metrics(y_true: Sequence[float] | np.ndarray, score: Sequence[float] | np.ndarray,
                 threshold: float = 0.0) -> dict[str, float]:
    """Balanced accuracy, F1 and AUROC (scikit-learn) of ``y_true > 0`` predicted by
    ``score > threshold``; NaN where a class is missing (balanced accuracy, AUROC) or nothing is
    positive in truth or prediction (F1).

    Use ``threshold=0`` for PlanTT's predicted difference and ``0.5`` for a probability.
    """
    from sklearn.metrics import balanced_accuracy_score, f1_score

    t, s = _finite_pairs(y_true, score)
    out: dict[str, float] = {"n": float(t.size)}
    truth = t > 0
    predicted = s > threshold
    both_classes = bool(truth.any() and not truth.all())
    out["balanced_accuracy"] = float(balanced_accuracy_score(truth, predicted)) \
        if both_classes else math.nan
    out["f1"] = float(f1_score(truth, predicted, zero_division=np.nan)) \
        if (truth.any() or predicted.any()) else math.nan
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
