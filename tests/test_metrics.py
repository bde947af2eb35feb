"""Metrics against scipy/scikit-learn on known inputs, the NaN cases, and fold summaries."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import (
    balanced_accuracy_score,
    f1_score,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

from plantt.metrics import prediction_metrics, regression_metrics, sign_metrics, summarize_folds


@pytest.fixture(scope="module")
def noisy_pairs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    y = rng.normal(size=500)
    pred = 0.6 * y + rng.normal(scale=0.8, size=500)
    pred[:20] = np.round(pred[:20])  # some ties for the rank-based metrics
    return y, pred


def test_regression_metrics_match_scipy_and_sklearn(noisy_pairs):
    y, pred = noisy_pairs
    m = regression_metrics(y, pred)
    assert m["n"] == 500
    assert m["spearman"] == pytest.approx(stats.spearmanr(y, pred).statistic, abs=1e-12)
    assert m["pearson"] == pytest.approx(stats.pearsonr(y, pred).statistic, abs=1e-12)
    assert m["r2"] == pytest.approx(r2_score(y, pred), abs=1e-12)
    assert m["mse"] == pytest.approx(mean_squared_error(y, pred), abs=1e-12)


def test_r2_is_negative_for_predictions_worse_than_the_mean():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    m = regression_metrics(y, -y)
    assert m["r2"] == pytest.approx(r2_score(y, -y))
    assert m["r2"] < 0
    assert m["spearman"] == pytest.approx(-1.0)


def test_sign_metrics_match_sklearn(noisy_pairs):
    y, pred = noisy_pairs
    truth = y > 0
    m = sign_metrics(y, pred)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, pred > 0))
    assert m["f1"] == pytest.approx(f1_score(truth, pred > 0))
    assert m["auroc"] == pytest.approx(roc_auc_score(truth, pred), abs=1e-12)


def test_sign_metrics_threshold_for_probabilities(noisy_pairs):
    y, pred = noisy_pairs
    prob = 1 / (1 + np.exp(-pred))
    m = sign_metrics(y, prob, threshold=0.5)
    # the logistic map is monotone: same classes and same ranking as the raw score
    assert m == pytest.approx(sign_metrics(y, pred, threshold=0.0))


def test_perfect_and_inverted_classifiers():
    y = np.array([-2.0, -1.0, 1.0, 2.0])
    perfect = sign_metrics(y, y)
    assert perfect["balanced_accuracy"] == 1.0 and perfect["f1"] == 1.0 and perfect["auroc"] == 1.0
    inverted = sign_metrics(y, -y)
    assert inverted["balanced_accuracy"] == 0.0 and inverted["auroc"] == 0.0


def test_constant_inputs_give_nan_without_warnings():
    y = np.array([1.0, -1.0, 2.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        constant_pred = regression_metrics(y, np.zeros(4))
        constant_truth = regression_metrics(np.ones(4), y)
        one_class = sign_metrics(np.ones(4), y)
    assert math.isnan(constant_pred["spearman"]) and math.isnan(constant_pred["pearson"])
    assert constant_pred["mse"] == pytest.approx(np.mean(y ** 2))
    assert math.isnan(constant_truth["r2"]) and math.isnan(constant_truth["spearman"])
    assert math.isnan(one_class["auroc"]) and math.isnan(one_class["balanced_accuracy"])
    assert one_class["f1"] == pytest.approx(f1_score(np.ones(4, bool), y > 0))


def test_f1_is_nan_when_no_positive_anywhere():
    m = sign_metrics(np.array([-1.0, -2.0]), np.array([-0.5, -0.1]))
    assert math.isnan(m["f1"])


def test_empty_and_non_finite_inputs():
    empty = regression_metrics([], [])
    assert empty["n"] == 0 and all(math.isnan(empty[k]) for k in ("spearman", "r2", "mse"))
    y = np.array([1.0, np.nan, 3.0, 4.0, -1.0])
    pred = np.array([1.5, 2.0, np.inf, 3.0, -2.0])
    m = regression_metrics(y, pred)
    assert m["n"] == 3
    assert m["pearson"] == pytest.approx(stats.pearsonr([1, 4, -1], [1.5, 3, -2]).statistic)
    with pytest.raises(ValueError, match="differ in length"):
        regression_metrics([1.0, 2.0], [1.0])


def test_prediction_metrics_by_model_kind(noisy_pairs):
    y, pred = noisy_pairs
    plantt = prediction_metrics(y, pred, "plantt")
    assert plantt["spearman"] == pytest.approx(regression_metrics(y, pred)["spearman"])
    assert plantt["auroc"] == pytest.approx(roc_auc_score(y > 0, pred))
    prob = 1 / (1 + np.exp(-pred))
    washburn = prediction_metrics(y, prob, "washburn")
    assert math.isnan(washburn["spearman"]) and math.isnan(washburn["r2"])
    assert washburn["balanced_accuracy"] == pytest.approx(plantt["balanced_accuracy"])


def test_summarize_folds_mean_and_sd():
    df = pd.DataFrame({
        "model": ["plantt"] * 3 + ["washburn"] * 3,
        "assay": ["rna"] * 6,
        "fold": [0, 1, 2, 0, 1, 2],
        "spearman": [0.3, 0.4, 0.5, np.nan, np.nan, np.nan],
        "auroc": [0.6, 0.7, 0.8, 0.7, 0.7, np.nan],
    })
    out = summarize_folds(df).set_index(["model", "metric"])
    assert out.loc[("plantt", "spearman"), "mean"] == pytest.approx(0.4)
    assert out.loc[("plantt", "spearman"), "sd"] == pytest.approx(np.std([0.3, 0.4, 0.5], ddof=1))
    assert out.loc[("plantt", "auroc"), "n_folds"] == 3
    assert math.isnan(out.loc[("washburn", "spearman"), "mean"])
    assert out.loc[("washburn", "spearman"), "n_folds"] == 0
    assert out.loc[("washburn", "auroc"), "mean"] == pytest.approx(0.7)
    assert out.loc[("washburn", "auroc"), "sd"] == pytest.approx(0.0)
    assert "fold" not in set(out.index.get_level_values("metric"))


def test_summarize_single_fold_has_nan_sd():
    df = pd.DataFrame({"model": ["plantt"], "assay": ["pro"], "fold": [0], "r2": [0.1]})
    out = summarize_folds(df)
    assert list(out.columns) == ["model", "assay", "metric", "mean", "sd", "n_folds"]
    assert out["mean"].iloc[0] == pytest.approx(0.1) and math.isnan(out["sd"].iloc[0])


def _reference(t: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The metrics by their textbook formulas (the package's own code before it used
    scipy/scikit-learn), to pin that the libraries give the same numbers."""
    from scipy.stats import rankdata

    def r(x: np.ndarray, y: np.ndarray) -> float:
        xc, yc = x - x.mean(), y - y.mean()
        return float(np.dot(xc, yc) / np.sqrt(np.dot(xc, xc) * np.dot(yc, yc)))

    truth, predicted = t > 0, p > 0
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    tp, tn = int((truth & predicted).sum()), int((~truth & ~predicted).sum())
    fp, fn = int((~truth & predicted).sum()), n_pos - int((truth & predicted).sum())
    ranks = rankdata(p)
    return {"pearson": r(t, p), "spearman": r(rankdata(t), rankdata(p)),
            "r2": 1 - float(np.sum((t - p) ** 2)) / float(np.sum((t - t.mean()) ** 2)),
            "mse": float(np.mean((t - p) ** 2)),
            "balanced_accuracy": 0.5 * (tp / n_pos + tn / n_neg),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "auroc": (float(ranks[truth].sum()) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)}


@pytest.mark.parametrize("seed", range(5))
def test_library_metrics_equal_the_textbook_formulas(seed: int) -> None:
    from plantt.metrics import regression_metrics, sign_metrics

    rng = np.random.default_rng(seed)
    t = rng.normal(size=300)
    p = np.round(0.5 * t + rng.normal(size=300), 1)  # rounded: ties in ranks and in AUROC
    got = {**regression_metrics(t, p), **sign_metrics(t, p)}
    for name, value in _reference(t, p).items():
        assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


def test_the_grammar_ceiling_joins_the_metrics_once_per_test_pair(tmp_path):
    """With the simulator's truth table, every test pair (once per fold, whatever the number of
    models) is predicted by its genes' true grammar difference, model ``grammar``; a gene the
    truth lacks is an error naming the file."""
    import pandas as pd

    from plantt.cv import GRAMMAR_MODEL, evaluate
    from plantt.io import InputError

    truth = pd.DataFrame({"gene_id": ["a", "b", "c", "d"],
                          "transcription_log2_grammar": [1.0, 0.0, 2.0, -1.0],
                          "stability_log2_grammar": [0.5, 0.0, -0.5, 0.0]})
    truth.to_csv(tmp_path / "truth.tsv", sep="\t", index=False)
    rows = []
    for model, noise in (("plantt", 0.1), ("kmer", 0.5)):
        for fold, (ga, gb, target) in enumerate([("a", "b", 1.4), ("c", "d", 2.6),
                                                  ("b", "d", 1.2), ("a", "c", 0.1)]):
            rows.append({"assay": "rnaseq3p", "model": model, "fold": fold // 2,
                         "orthogroup": f"OG{fold}", "label": "{x,y}", "species_a": "x",
                         "gene_a": ga, "species_b": "y", "gene_b": gb, "target": target,
                         "prediction": target + noise * (-1) ** fold})
    files = []
    for model in ("plantt", "kmer"):
        path = tmp_path / f"{model}.tsv"
        pd.DataFrame([r for r in rows if r["model"] == model]).to_csv(path, sep="\t", index=False)
        files.append(path)
    predictions, per_fold, _ = evaluate(files, tmp_path / "truth.tsv")
    grammar = predictions[predictions["model"] == GRAMMAR_MODEL]
    assert len(grammar) == 4  # each pair once, not once per model
    expected = {("a", "b"): 1.5, ("c", "d"): 2.5, ("b", "d"): 1.0, ("a", "c"): -0.0}
    for row in grammar.itertuples():
        assert row.prediction == expected[(row.gene_a, row.gene_b)]
    assert set(per_fold["model"]) == {"plantt", "kmer", GRAMMAR_MODEL}
    # the proseq assay reads transcription only
    proseq = predictions[predictions["model"] != GRAMMAR_MODEL].assign(assay="proseq")
    proseq.to_csv(tmp_path / "proseq.tsv", sep="\t", index=False)
    grammar = evaluate([tmp_path / "proseq.tsv"], tmp_path / "truth.tsv")[0]
    grammar = grammar[grammar["model"] == GRAMMAR_MODEL].set_index(["gene_a", "gene_b"])
    assert grammar.loc[("a", "c"), "prediction"] == -1.0
    truth.iloc[:3].to_csv(tmp_path / "short.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"short\.tsv.*no truth for gene\(s\) d"):
        evaluate(files, tmp_path / "short.tsv")
