"""``plantt fit`` on generated tables: learning a planted motif grammar at two lengths, against a
shuffled-label control and a k-mer ridge baseline, seed ensembles, group-aware folds, standardised
targets (and predictions back in the table's units), and the trained models in ``plantt predict``,
``ism`` and ``edit``.

Kept cheap (a CI budget of about a minute for this file on 2 cores): ~800 examples, tiny towers,
6 epochs, 2 folds, one thread.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import motif_expression, pairs_table, single_table
from plantt.cli import main
from plantt.encoding import encode
from plantt.fit import (
    FitSettings,
    TargetScale,
    control_matches,
    draw_pairs,
    fold_output_scale,
    make_folds,
    run_fit,
)
from plantt.io import InputError
from plantt.kmer import KmerRidge, KmerSettings
from plantt.models import (
    SingleSequenceModel,
    TwoTower,
    build_model,
    load_model,
    read_model_info,
)
from plantt.train import predict_sequences

TRAIN = {"max_epochs": 6, "patience": 6, "batch_size": 32, "max_lr": 1e-2, "warmup_steps": 10,
         "num_threads": 1}
# The Camformer-style tower for single sequences (its default loss, MAE), the PlanTT-CNN tower for
# pairs (PlanTT's contrast model); both scaled down.
SINGLE = {"tower": "camformer", "preset": "tiny",
          "model_overrides": {"channels": 16, "dense_units": [32, 16]}}
PAIRS = {"tower": "cnn", "preset": "small",
         "model_overrides": {"stem_stride": 4, "stem_channels": 16, "max_channels": 16,
                             "dropout": 0.1}}
COMMON = {"folds": 2, "seeds": [0, 1, 2], "plots": False, "train": TRAIN}

# Trained from scratch on a few hundred examples for a few epochs, a seed sometimes stays near its
# starting point (Spearman ~0.1-0.3) while another reaches 0.6-0.75: the ensemble and the pooled
# metrics are what the assertions rely on (measured: ensembles 0.5-0.75, shuffled controls within
# +-0.1), with room for other platforms' numerics.
MIN_SPEARMAN = 0.4
MIN_MARGIN_OVER_CONTROL = 0.3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_fasta(path: Path, names, seqs) -> None:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt") as handle:
        for name, seq in zip(names, seqs, strict=True):
            handle.write(f">{name} generated\n{seq[:60]}\n{seq[60:]}\n")


def make_input(kind: str, length: int, directory: Path) -> tuple[Path, Path | None, dict]:
    """A table (and values file) of each kind and length, in a different format each time."""
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "single":
        table = single_table(200, 4, length - 12, length, seed=length)
        if length == 110:
            path = directory / "single.tsv"
            table.to_csv(path, sep="\t", index=False)
            return path, None, {**SINGLE, **COMMON, "length": 110}
        fasta, values = directory / "single.fa.gz", directory / "values.csv"
        write_fasta(fasta, table["id"], table["sequence"])
        table.drop(columns="sequence").to_csv(values, index=False)
        # At 170 nt the tiny tower's dense layer spans 85 pooled positions and learns the
        # position-free motifs more slowly: with standardised targets, 6 epochs gave ensembles of
        # 0.28-0.37 (two of three seeds stuck), 10 epochs 0.68.
        return fasta, values, {**SINGLE, **COMMON,
                               "train": {**TRAIN, "max_epochs": 10, "patience": 10}}
    table = pairs_table(600, length - 12, length, seed=length + 1)
    if length == 110:
        path = directory / "pairs.csv.gz"
        table.to_csv(path, index=False, compression="gzip")
        return path, None, {**PAIRS, **COMMON, "length": 110, "pad_end": "left"}
    path = directory / "pairs.tsv"
    table.to_csv(path, sep="\t", index=False)
    return path, None, {**PAIRS, **COMMON}


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """Each (kind, length) fitted once per module, on demand."""
    cache: dict[tuple[str, int], tuple[Path, object]] = {}
    base = tmp_path_factory.mktemp("fit")

    def get(kind: str, length: int):
        key = (kind, length)
        if key not in cache:
            table, values, settings = make_input(kind, length, base / f"{kind}{length}")
            out = base / f"{kind}{length}" / "out"
            result = run_fit(table, kind, out, FitSettings.from_dict(settings), values)
            cache[key] = (out, result)
        return cache[key]

    return get


def pooled_spearman(out: Path, level: str) -> pd.Series:
    summary = pd.read_csv(out / "metrics_summary.tsv", sep="\t")
    rows = summary[(summary["metric"] == "spearman") & (summary["level"] == level)]
    return rows.set_index("member")["pooled"]


@pytest.mark.parametrize(("kind", "length"), [("single", 110), ("single", 170), ("pairs", 110),
                                              ("pairs", 170)])
def test_fit_learns_beats_the_control_and_the_ensemble_beats_the_median_seed(fits, kind, length):
    out, _ = fits(kind, length)
    level = "sequence" if kind == "single" else "pair"
    spearman = pooled_spearman(out, level)
    seeds = spearman[[f"seed_{s}" for s in COMMON["seeds"]]]
    assert spearman["ensemble"] >= MIN_SPEARMAN, spearman.to_dict()
    assert spearman["ensemble"] - spearman["shuffled"] >= MIN_MARGIN_OVER_CONTROL, spearman.to_dict()
    assert seeds.max() - spearman["shuffled"] >= MIN_MARGIN_OVER_CONTROL, spearman.to_dict()
    assert spearman["ensemble"] >= seeds.median(), spearman.to_dict()
    # the same through the per-fold metrics table: mean over folds, every member reported
    metrics = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert set(metrics["member"]) == {"ensemble", "shuffled", "seed_0", "seed_1", "seed_2",
                                      "kmer"}
    # the k-mer ridge sees the planted motifs' counts: what a bag of k-mers explains
    kmer = metrics[(metrics["member"] == "kmer") & (metrics["level"] == level)]
    assert np.isfinite(kmer["spearman"]).all() and spearman["kmer"] > 0.3, spearman.to_dict()
    assert set(metrics["fold"]) == {0, 1}
    if kind == "pairs":
        assert metrics.loc[metrics["member"] == "ensemble", "balanced_accuracy"].min() > 0.6
    else:
        assert metrics["auroc"].isna().all()


@pytest.mark.parametrize(("kind", "length"), [("single", 110), ("pairs", 170)])
def test_fit_outputs_folds_and_models(fits, kind, length):
    out, result = fits(kind, length)
    predictions = pd.read_csv(out / "predictions.tsv", sep="\t", dtype={"group": str})
    folds = pd.read_csv(out / "folds.tsv", sep="\t", dtype={"group": str})
    n = 800 if kind == "single" else 600
    assert len(predictions) == n and predictions["id"].is_unique and len(folds) == n
    # every item is predicted by the fold where it was a test item, never by one it trained in
    merged = predictions.merge(folds, on="id", suffixes=("", "_folds"))
    assert (merged["fold"] == merged["test_fold"]).all()
    # group-aware: a group's items share their test fold and their set in every fold
    for column in ("test_fold", "set_fold_0", "set_fold_1"):
        assert (folds.groupby("group")[column].nunique() == 1).all()
    for fold in (0, 1):
        sets = folds[f"set_fold_{fold}"].value_counts()
        assert sets["test"] == pytest.approx(n / 2, abs=4)
        assert sets["validation"] == pytest.approx(0.1 * (n - sets["test"]), abs=4)
    # the ensemble's prediction is the mean of its seeds'
    seeds = predictions[[f"prediction_seed_{s}" for s in COMMON["seeds"]]].mean(axis=1)
    np.testing.assert_allclose(predictions["prediction"], seeds, rtol=1e-5, atol=1e-5)
    # models: one per fold and seed, loadable, with the length policy; fold and overall ensembles
    info = read_model_info(out / "fold_1" / "seed_2")
    assert info["kind"] == ("single" if kind == "single" else "plantt")
    assert info["seq_len"] == length and info["input"]["pad_end"] == "right"
    assert info["provenance"]["fit"]["fold"] == 1
    ensemble = read_model_info(out / "model")
    assert len(ensemble["ensemble"]) == 2 * len(COMMON["seeds"])
    # networks trained on standardised targets, the scale folded back into the saved weights
    scale = info["provenance"]["target_scale"]
    assert scale["folded"] is True and scale["scale"] > 0
    assert (scale["offset"] == 0.0) == (kind == "pairs")  # a contrast model is odd: no offset
    # the k-mer ridge of each fold: one block (the whole sequence) by default here
    kmer = KmerRidge.load(out / "fold_1" / "kmer")
    assert kmer.block_length == length and kmer.n_blocks == 1 and kmer.paired == (kind == "pairs")
    selection = pd.read_csv(out / "fold_1" / "kmer" / "selection.tsv", sep="\t")
    # the default grid, every k and alpha, one block
    grid = KmerSettings()
    assert selection["chosen"].sum() == 1 and len(selection) == len(grid.ks) * len(grid.alphas)
    assert predictions["prediction_kmer"].notna().all()
    fit_json = json.loads((out / "fit.json").read_text())
    assert fit_json["length_policy"]["length"] == length and fit_json["items"] == n
    assert result.summary is not None and not result.summary.empty


def test_rerun_keeps_trained_members(fits, tmp_path):
    """A rerun with the same table and settings trains nothing again (an interrupted fit resumes)."""
    out, _ = fits("single", 110)
    kept = [out / "fold_0" / "seed_0" / "weights.pt", out / "fold_1" / "kmer" / "kmer_model.npz"]
    before = [path.stat().st_mtime_ns for path in kept]
    table = out.parent / "single.tsv"
    settings = FitSettings.from_dict({**SINGLE, **COMMON, "length": 110})
    run_fit(table, "single", out, settings)
    assert [path.stat().st_mtime_ns for path in kept] == before


def test_predict_ism_and_edit_use_fit_models(fits, tmp_path, capsys):
    out, _ = fits("single", 110)
    predictions = pd.read_csv(out / "predictions.tsv", sep="\t")
    test0 = predictions[predictions["fold"] == 0].head(6)
    table = pd.read_csv(out.parent / "single.tsv", sep="\t").set_index("id")
    seqs = table.loc[test0["id"], "sequence"].tolist()
    assert min(map(len, seqs)) < 110  # some are padded
    fasta = tmp_path / "test.fa"
    write_fasta(fasta, test0["id"], seqs)
    # predict: the fold's ensemble reproduces the cross-validation predictions
    assert main(["predict", "--model", str(out / "fold_0"), "--sequences", str(fasta), "--out",
                 str(tmp_path / "p.tsv")]) == 0
    predicted = pd.read_csv(tmp_path / "p.tsv", sep="\t")
    assert predicted["id"].tolist() == test0["id"].tolist()
    np.testing.assert_allclose(predicted["prediction"], test0["prediction"], atol=1e-4)
    # pairs with a single-sequence model: the difference of the two predictions
    pairs = pd.DataFrame({"sequence_a": seqs[:3], "sequence_b": seqs[3:]})
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    assert main(["predict", "--model", str(out / "fold_0"), "--pairs", str(tmp_path / "pairs.csv"),
                 "--out", str(tmp_path / "d.tsv")]) == 0
    differences = pd.read_csv(tmp_path / "d.tsv", sep="\t")["prediction"].to_numpy()
    expected = test0["prediction"].to_numpy()
    np.testing.assert_allclose(differences, expected[:3] - expected[3:], atol=1e-4)
    # ISM of the ensemble: effect = change of the prediction; padding (N) is not scored
    one = tmp_path / "one.fa"
    write_fasta(one, ["s"], [seqs[0]])
    assert main(["ism", "--model", str(out / "fold_0"), "--fasta", str(one), "--out-dir",
                 str(tmp_path / "ism")]) == 0
    ism = np.load(tmp_path / "ism" / "ism.npz")
    effect = ism["effect"][0]
    assert np.isnan(effect[len(seqs[0]):]).all() and np.isfinite(effect[:len(seqs[0])]).all()
    model = load_model(out / "fold_0")
    assert isinstance(model, SingleSequenceModel)
    codes = np.stack([encode(seqs[0] + "N" * (110 - len(seqs[0])))] * 3)
    codes[1, 5] = (codes[1, 5] + 1) % 4
    codes[2, 50] = (codes[2, 50] + 2) % 4
    direct = predict_sequences(model, codes, np.arange(3))
    np.testing.assert_allclose([effect[5, codes[1, 5]], effect[50, codes[2, 50]]],
                               direct[1:] - direct[0], atol=1e-4)
    # edit one seed's model: every step raises its prediction
    assert main(["edit", "--model", str(out / "fold_0" / "seed_1"), "--fasta", str(one),
                 "--budget", "2", "--out", str(tmp_path / "edits.tsv"), "--edited-fasta",
                 str(tmp_path / "edited.fa")]) == 0
    edits = pd.read_csv(tmp_path / "edits.tsv", sep="\t")
    assert len(edits) >= 1 and (edits["step_effect"] > 0).all()
    edited = (tmp_path / "edited.fa").read_text().split("\n")[1]
    member = load_model(out / "fold_0" / "seed_1")
    before_after = predict_sequences(member, np.stack([encode(seqs[0].ljust(110, "N")),
                                                       encode(edited)]), np.arange(2))
    assert before_after[1] - before_after[0] == pytest.approx(edits["cumulative_effect"].iloc[-1],
                                                              abs=1e-4)
    capsys.readouterr()


def test_fit_models_refuse_longer_sequences_naming_the_record(fits, tmp_path, capsys):
    out, _ = fits("single", 110)  # too_long: error (the default)
    fasta = tmp_path / "long.fa"
    write_fasta(fasta, ["fine", "long"], ["ACGT" * 20, "ACGT" * 30])
    assert main(["predict", "--model", str(out / "model"), "--sequences", str(fasta), "--out",
                 str(tmp_path / "p.tsv")]) == 1
    error = capsys.readouterr().err
    assert "long.fa, line 4, record 'long'" in error and "120 bases" in error and "110" in error
    assert not (tmp_path / "p.tsv").exists()


def test_contrast_model_from_a_single_table_evaluated_on_measured_pairs(tmp_path):
    """Pairs drawn within groups of a single table train PlanTT; a separate pairs table of measured
    differences evaluates it."""
    table = single_table(60, 6, 100, 110, seed=5)
    table.to_csv(tmp_path / "single.tsv", sep="\t", index=False)
    pairs_table(200, 100, 110, seed=6).to_csv(tmp_path / "eval.tsv", sep="\t", index=False)
    settings = FitSettings.from_dict({
        **PAIRS, "model": "contrast", "folds": 2, "seeds": [0], "plots": False, "train": TRAIN,
        "pairing": "group", "pairs_per_sequence": 2, "length": 110,
        "eval_pairs": str(tmp_path / "eval.tsv")})
    out = tmp_path / "out"
    run_fit(tmp_path / "single.tsv", "single", out, settings)
    pair_predictions = pd.read_csv(out / "pair_predictions.tsv", sep="\t")
    assert (pair_predictions["group_a"] == pair_predictions["group_b"]).all()
    assert (pair_predictions["id_a"] != pair_predictions["id_b"]).all()
    summary = pd.read_csv(out / "metrics_summary.tsv", sep="\t")
    pair_rho = summary[(summary["level"] == "pair") & (summary["metric"] == "spearman")
                       ].set_index("member")["pooled"]
    assert pair_rho["ensemble"] - pair_rho["shuffled"] >= MIN_MARGIN_OVER_CONTROL / 2
    sequence_rows = summary[summary["level"] == "sequence"].set_index(["member", "metric"])
    # a contrast model's sequence scores have an arbitrary offset per fold: no R2, nothing pooled
    assert np.isnan(sequence_rows.loc[("ensemble", "r2"), "mean"])
    assert sequence_rows["pooled"].isna().all()
    assert sequence_rows.loc[("ensemble", "spearman"), "mean"] > 0
    evaluation = pd.read_csv(out / "eval_pairs_metrics.tsv", sep="\t", dtype={"fold": str})
    overall = evaluation[evaluation["fold"] == "all"].iloc[0]
    shuffled = evaluation[evaluation["member"] == "shuffled"]
    assert overall["spearman"] >= MIN_SPEARMAN
    assert overall["spearman"] - shuffled["spearman"].max() >= MIN_MARGIN_OVER_CONTROL
    assert overall["balanced_accuracy"] > 0.65
    model = load_model(out / "model")
    assert isinstance(model, TwoTower)
    eval_predictions = pd.read_csv(out / "eval_pairs_predictions.tsv", sep="\t")
    assert len(eval_predictions) == 200 and "prediction_fold_1_shuffled" in eval_predictions
    # the k-mer ridge, fitted on the same drawn pairs, scores the measured differences too
    assert "prediction_fold_1_kmer" in eval_predictions
    assert (evaluation.loc[evaluation["member"] == "kmer", "spearman"] > MIN_SPEARMAN).all()
    assert pair_rho["kmer"] > MIN_SPEARMAN and KmerRidge.load(out / "fold_0" / "kmer").paired


# ----------------------------------------------------------------------------------------------
# Standardised targets: a control that controls, predictions in the table's units
# ----------------------------------------------------------------------------------------------
def offset_table(n_groups: int, mean: float = 3.6):
    """A single table whose expression is the planted grammar moved to ``mean`` (log expression
    of an MPRA is typically positive like this, not centred)."""
    table = single_table(n_groups, 2, 70, 80, seed=3)
    table["expression"] += mean - table["expression"].mean()
    return table


def test_standardised_targets_make_the_shuffled_control_a_control(tmp_path):
    """Regression. With the MAE loss and targets of mean 3.6, every prediction of a fresh network
    lies below every target, the L1 gradient ignores which target goes with which sequence, and
    the shuffled control trained exactly like the model: before targets were standardised, the
    first fit below gave fold 0 (and 1) test predictions equal to the model's (max |difference|
    0, both near -0.14 for targets near 3.6). Now the control differs from the model, the
    model's predictions are in the table's units, and given a few epochs it beats the control."""
    table = offset_table(400)
    path = tmp_path / "offset.tsv"
    table.to_csv(path, sep="\t", index=False)
    base = {**SINGLE, "folds": 2, "seeds": [0], "plots": False, "length": 80}
    # 1. the bug's configuration: one epoch of fit's defaults (still warming up), no k-mers
    quick = FitSettings.from_dict({**base, "kmer_baseline": False,
                                   "train": {"max_epochs": 1, "loss": "mae", "num_threads": 1}})
    run_fit(path, "single", tmp_path / "quick", quick)
    predictions = pd.read_csv(tmp_path / "quick" / "predictions.tsv", sep="\t")
    for _, part in predictions.groupby("fold"):
        assert not control_matches(part["prediction_seed_0"], part["prediction_shuffled"])
        # in the table's units: a barely trained model predicts about the training mean
        assert abs(part["prediction_seed_0"].mean() - 3.6) < 0.5
        assert abs(part["prediction_shuffled"].mean() - 3.6) < 0.5
    # kmer_baseline off: no k-mer member anywhere
    metrics = pd.read_csv(tmp_path / "quick" / "metrics.tsv", sep="\t")
    assert "kmer" not in set(metrics["member"]) and "prediction_kmer" not in predictions
    assert not (tmp_path / "quick" / "fold_0" / "kmer").exists()
    # 2. a few epochs: the model learns, the control does not, and R2 (which needs the table's
    # units) is positive
    trained = FitSettings.from_dict({**base, "train": {**TRAIN, "loss": "mae"}})
    run_fit(path, "single", tmp_path / "trained", trained)
    spearman = pooled_spearman(tmp_path / "trained", "sequence")
    assert spearman["seed_0"] - spearman["shuffled"] >= MIN_MARGIN_OVER_CONTROL, spearman.to_dict()
    summary = pd.read_csv(tmp_path / "trained" / "metrics_summary.tsv", sep="\t")
    r2 = summary[summary["metric"] == "r2"].set_index("member")["pooled"]
    assert r2["seed_0"] > 0.1 and r2["kmer"] > 0.5, r2.to_dict()
    predictions = pd.read_csv(tmp_path / "trained" / "predictions.tsv", sep="\t")
    assert predictions["prediction"].mean() == pytest.approx(3.6, abs=0.3)


def test_a_control_that_predicts_what_the_model_predicts_stops_the_fit(tmp_path, monkeypatch):
    """A control trained on the model's own targets (here forced: nothing is shuffled) predicts
    exactly what the model predicts; the fit says so and names the folds instead of reporting a
    meaningless comparison."""
    import plantt.fit

    real = plantt.fit.fold_sets
    monkeypatch.setattr(plantt.fit, "fold_sets", lambda data, folds, fold, model, settings,
                        shuffled: real(data, folds, fold, model, settings, False))
    path = tmp_path / "t.tsv"
    single_table(30, 2, 40, 50, seed=2).to_csv(path, sep="\t", index=False)
    settings = FitSettings.from_dict({**SINGLE, "folds": 2, "seeds": [0], "plots": False,
                                      "kmer_baseline": False,
                                      "train": {**TRAIN, "max_epochs": 1}})
    with pytest.raises(InputError, match=r"control did not control: in fold\(s\) 0, 1 ") as err:
        run_fit(path, "single", tmp_path / "out", settings)
    assert str(path) in str(err.value) and "meaningless" in str(err.value)
    assert (tmp_path / "out" / "predictions.tsv").is_file()
    assert not (tmp_path / "out" / "metrics.tsv").exists()


def test_control_matches_same_values_or_same_ranking():
    rng = np.random.default_rng(0)
    model = rng.normal(size=50)
    assert control_matches(model, model.copy())
    assert control_matches(model, 2 * model + 1)  # the same ranking
    assert not control_matches(model, rng.normal(size=50))
    assert not control_matches(model[:3], model[:3] + 1)  # 3 items: ranks may agree by chance


@pytest.mark.parametrize("kind", ["single", "plantt"])
def test_folded_output_scale_is_exact_and_keeps_a_contrast_model_odd(kind):
    tower = SINGLE if kind == "single" else PAIRS
    model = build_model(kind, tower["preset"], 60, tower["model_overrides"], tower["tower"]).eval()
    x = torch.rand(6, 4, 60, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model.score(x)
    offset = 3.6 if kind == "single" else 0.0
    fold_output_scale(model, TargetScale(offset, 0.4))
    with torch.no_grad():
        after = model.score(x)
        torch.testing.assert_close(after, 0.4 * before + offset, rtol=1e-5, atol=1e-5)
        if kind == "plantt":
            torch.testing.assert_close(model(x[:3], x[3:]), -model(x[3:], x[:3]))
            torch.testing.assert_close(model(x[:3], x[:3]), torch.zeros(3))


# ----------------------------------------------------------------------------------------------
# Folds and pairing (no training)
# ----------------------------------------------------------------------------------------------
def test_folds_never_split_a_group_and_are_seeded():
    groups = np.array([f"g{i // 3}" for i in range(300)], dtype=object)
    folds = make_folds(groups, 5, 0.1, seed=1)
    again = make_folds(groups, 5, 0.1, seed=1)
    other = make_folds(groups, 5, 0.1, seed=2)
    assert np.array_equal(folds.test_fold, again.test_fold)
    assert not np.array_equal(folds.test_fold, other.test_fold)
    frame = pd.DataFrame({"group": groups, "fold": folds.test_fold})
    assert (frame.groupby("group")["fold"].nunique() == 1).all()
    assert np.bincount(folds.test_fold).tolist() == [60] * 5
    for fold in range(5):
        train, val, test = folds.sets(fold)
        assert len(set(train) | set(val) | set(test)) == 300
        assert not set(val) & set(test) and len(val) == pytest.approx(24, abs=3)
    with pytest.raises(InputError, match="only 3 group"):
        make_folds(np.array(["a", "b", "c"], dtype=object), 5, 0.1, 0)


def test_draw_pairs_within_groups_or_at_random():
    groups = np.array(["a"] * 4 + ["b"] * 3 + ["c"], dtype=object)
    values = np.arange(8, dtype=float)
    rng = np.random.default_rng(0)
    pairs = draw_pairs(np.arange(8), groups, values, "group", 5, rng)
    assert len(pairs) == 7 * 5  # "c" is alone in its group
    assert (groups[pairs.idx_a] == groups[pairs.idx_b]).all()
    assert (pairs.idx_a != pairs.idx_b).all()
    np.testing.assert_allclose(pairs.target, values[pairs.idx_a] - values[pairs.idx_b])
    anywhere = draw_pairs(np.arange(8), groups, values, "random", 50, rng)
    assert (groups[anywhere.idx_a] != groups[anywhere.idx_b]).any()
    assert (anywhere.idx_a != anywhere.idx_b).all()


def test_settings_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown fit setting"):
        FitSettings.from_dict({"fold": 3})
    with pytest.raises(ValueError, match="tower must be"):
        FitSettings(tower="transformer")
    with pytest.raises(ValueError, match="unknown single \\(camformer tower\\) preset 'huge'"):
        FitSettings(preset="huge")
    with pytest.raises(ValueError, match="unknown single model setting.*channels"):
        FitSettings(tower="cnn", preset="small", model_overrides={"channels": 8})
    with pytest.raises(ValueError, match="pad_end"):
        FitSettings(pad_end="middle")
    with pytest.raises(ValueError, match="max_epochs"):
        FitSettings(train={"max_epochs": 0})
    with pytest.raises(ValueError, match="seed.*top level"):
        FitSettings(train={"seed": 3})
    with pytest.raises(ValueError, match="kmer: unknown k-mer setting"):
        FitSettings(kmer={"k": [6]})
    with pytest.raises(ValueError, match="kmer: ks"):
        FitSettings(kmer={"ks": [0]})
    assert FitSettings(seeds=4).seeds == [0, 1, 2, 3]
    # the k-mer blocks: the whole sequence unless block_length is given
    assert FitSettings().kmer_settings(110).block_length == 110
    assert FitSettings(kmer={"block_length": 750}).kmer_settings(3000).block_length == 750
    table = tmp_path / "p.tsv"
    pairs_table(10, 20, 30, 0).to_csv(table, sep="\t", index=False)
    with pytest.raises(InputError, match="contrast model"):
        run_fit(table, "pairs", tmp_path / "o", FitSettings(model="single"))


def test_generated_truth_is_what_the_tables_hold():
    """The test tables' grammar: the expression is the planted motifs' effects plus noise."""
    table = single_table(50, 2, 100, 110, seed=0, noise=0.0)
    np.testing.assert_allclose(table["expression"], table["sequence"].map(motif_expression))
    assert table["sequence"].str.len().between(100, 110).all()


# ----------------------------------------------------------------------------------------------
# The workflow entry point
# ----------------------------------------------------------------------------------------------
def test_workflow_plans_fit_all(tmp_path):
    """`snakemake fit_all` plans one fit_table job per dataset of fit.datasets, with the settings
    merged and checked at parse time (a dry run: the fit itself is what the tests above run)."""
    import shutil
    import subprocess
    import sys

    import yaml

    from conftest import REPO

    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    for name in ("species.tsv", "samples.tsv"):
        shutil.copy(REPO / "config" / name, tmp_path / "config" / name)
    single_table(5, 2, 20, 30, seed=0).to_csv(tmp_path / "mine.tsv", sep="\t", index=False)

    extra = {"fit": {"datasets": {"mine": {"table": "mine.tsv", "task": "single",
                                           "settings": {"length": 30, "train": {"max_epochs": 2}}}},
                     "settings": {"preset": "tiny", "folds": 2}}}
    (tmp_path / "fit.yaml").write_text(yaml.safe_dump(extra))
    planned = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", str(REPO / "Snakefile"),
         "-d", str(tmp_path), "--configfiles", str(tmp_path / "fit.yaml"), "--", "fit_all"],
        capture_output=True, text=True, timeout=300)
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert "rule fit_table" in planned.stdout and "dataset=mine" in planned.stdout
    assert "results/fit/mine/metrics_summary.tsv" in planned.stdout
