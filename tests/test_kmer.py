"""The k-mer ridge baseline: block counts, antisymmetric pair predictions, model selection on
validation, saved models, and one cross-validation fold from the workflow's files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plantt import cli, kmer, plots
from plantt.cv import PREDICTION_COLUMNS, ModelVariant, evaluate, kmer_cv_fold, train_cv_fold
from plantt.encoding import decode, encode
from plantt.io import InputError
from plantt.kmer import (
    SELECTION_COLUMNS,
    KmerRidge,
    KmerSettings,
    fit_kmer_pairs,
    fit_kmer_sequences,
    kmer_block_counts,
)
from plantt.metrics import spearman
from plantt.train import PairSet, SequenceSet, TrainSettings

MOTIF = "TGACGT"
LENGTH = 300
BLOCK = 100  # three blocks; the motif counts only in the middle one


def brute_force_counts(codes: np.ndarray, k: int, block_length: int) -> np.ndarray:
    """Dense counts, one k-mer at a time, from the decoded strings."""
    n, length = codes.shape
    n_blocks = max(1, -(-length // block_length))
    out = np.zeros((n, n_blocks * 4 ** k))
    for row in range(n):
        seq = decode(codes[row])
        for start in range(length - k + 1):
            word = seq[start:start + k]
            if "N" in word:
                continue
            index = 0
            for base in word:
                index = index * 4 + "ACGT".index(base)
            out[row, (start // block_length) * 4 ** k + index] += 1
    return out


def occurrences(seq: str, motif: str, start: int, end: int) -> int:
    """Occurrences of ``motif`` starting in [start, end) (overlapping ones count)."""
    return sum(seq[p:p + len(motif)] == motif for p in range(start, min(end, len(seq))))


def planted_windows(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random windows with the motif planted 0-3 times in each block; returns the codes and the
    motif's count in the middle block (the only one the targets depend on)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n, LENGTH)).astype(np.uint8)
    motif = encode(MOTIF)
    slots = np.arange(0, BLOCK - len(MOTIF) + 1, len(MOTIF) + 1)
    for row in range(n):
        for block in range(LENGTH // BLOCK):
            for slot in rng.choice(slots, size=int(rng.integers(0, 4)), replace=False):
                start = block * BLOCK + int(slot)
                codes[row, start:start + len(MOTIF)] = motif
    middle = np.array([occurrences(decode(c), MOTIF, BLOCK, 2 * BLOCK) for c in codes], float)
    return codes, middle


def random_pairs(rng: np.random.Generator, genes: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    a = rng.choice(genes, size=n)
    b = rng.choice(genes, size=n)
    keep = a != b
    return a[keep], b[keep]


@pytest.fixture(scope="module")
def planted() -> dict:
    """Pairs whose target is the difference of the middle-block motif counts (plus noise), on
    disjoint genes for training, validation and test."""
    codes, middle = planted_windows(0, 400)
    rng = np.random.default_rng(1)
    sets = {}
    for name, genes, n in (("train", np.arange(0, 250), 900), ("val", np.arange(250, 325), 250),
                           ("test", np.arange(325, 400), 300)):
        a, b = random_pairs(rng, genes, n)
        target = middle[a] - middle[b] + rng.normal(scale=0.3, size=a.size)
        sets[name] = PairSet(a, b, target)
    return {"codes": codes, "middle": middle, **sets}


SMALL = KmerSettings(ks=(4, 6), block_length=BLOCK, alphas=(1.0, 10.0, 100.0))


# ---- counting ----


@pytest.mark.parametrize("k, block_length", [(1, 7), (2, 5), (3, 10), (4, 53), (3, 100)])
def test_counts_match_brute_force(k: int, block_length: int, monkeypatch: pytest.MonkeyPatch
                                  ) -> None:
    monkeypatch.setattr(kmer, "_CHUNK_ROWS", 3)  # several chunks, one of them short
    rng = np.random.default_rng(k * 100 + block_length)
    codes = rng.choice(5, size=(8, 53), p=[0.23, 0.23, 0.23, 0.23, 0.08]).astype(np.uint8)
    counts = kmer_block_counts(codes, k, block_length)
    expected = brute_force_counts(codes, k, block_length)
    assert counts.shape == expected.shape
    assert np.array_equal(counts.toarray(), expected)
    assert counts.has_canonical_format
    # every k-mer without an N is counted once, in one block
    valid = sum(1 for row in codes for p in range(53 - k + 1) if np.all(row[p:p + k] < 4))
    assert counts.sum() == valid


def test_counts_by_hand() -> None:
    # ACGTNACG, k=2, blocks of 4: AC CG GT in block 0; TN and NA skipped; AC CG in block 1
    counts = kmer_block_counts(encode("ACGTNACG")[None, :], 2, 4)
    assert counts.shape == (1, 2 * 16)
    ac, cg, gt = 0 * 4 + 1, 1 * 4 + 2, 2 * 4 + 3
    assert dict(zip(counts.indices.tolist(), counts.data.tolist(), strict=True)) == {
        ac: 1, cg: 1, gt: 1, 16 + ac: 1, 16 + cg: 1}
    # a k-mer belongs to the block of its first base, even when it ends in the next block
    crossing = kmer_block_counts(encode("AAACCC")[None, :], 3, 3)
    acc = 0 * 16 + 1 * 4 + 1
    assert crossing[0, acc] == 1 and crossing[0, 64 + acc] == 0


def test_counts_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="0-4"):
        kmer_block_counts(np.array([[0, 1, 5]], dtype=np.uint8), 2, 10)
    with pytest.raises(ValueError, match="2-D"):
        kmer_block_counts(encode("ACGT"), 2, 10)
    with pytest.raises(ValueError, match="k must be"):
        kmer_block_counts(encode("ACGT")[None, :], 0, 10)
    shorter = kmer_block_counts(encode("ACG")[None, :], 4, 10)
    assert shorter.shape == (1, 256) and shorter.nnz == 0


def test_counts_are_fast() -> None:
    # 2,000 windows of 3,000 bases, k=8: 0.2 s on one core when measured; a per-k-mer Python loop
    # would take minutes.
    codes = np.random.default_rng(0).integers(0, 5, size=(2000, 3000)).astype(np.uint8)
    started = time.process_time()
    counts = kmer_block_counts(codes, 8, 750)
    assert time.process_time() - started < 5
    assert counts.shape == (2000, 4 * 4 ** 8)


# ---- settings ----


def test_settings_from_dict() -> None:
    assert KmerSettings.from_dict(None) == KmerSettings()
    settings = KmerSettings.from_dict({"ks": [5, 3], "alphas": [1, 1000], "block_length": 500})
    assert settings.ks == (5, 3) and settings.alphas == (1.0, 1000.0)
    assert settings.block_length == 500
    # text from `snakemake --config` / --set
    assert KmerSettings.from_dict({"ks": "[6, 7]", "block_length": "750"}).ks == (6, 7)
    assert KmerSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(ValueError, match="unknown k-mer setting.*alpha\\b"):
        KmerSettings.from_dict({"alpha": [1.0]})
    for bad in ({"ks": [0]}, {"ks": [6, 6]}, {"ks": []}, {"ks": [6.5]}, {"alphas": [-1]},
                {"alphas": [0]}, {"block_length": 0}, {"ks": [True]}, {"ks": "[6,"}):
        with pytest.raises(ValueError):
            KmerSettings.from_dict(bad)


# ---- models ----


def test_pair_predictions_are_antisymmetric() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 5, size=(30, 40)).astype(np.uint8)
    model = KmerRidge(k=3, alpha=1.0, block_length=15, coef=rng.normal(size=3 * 64),
                      intercept=2.5, paired=True, seq_len=40)
    a, b = rng.integers(0, 30, size=50), rng.integers(0, 30, size=50)
    forward = model.predict_pairs(codes, a, b)
    assert np.array_equal(forward, -model.predict_pairs(codes, b, a))
    assert np.all(model.predict_pairs(codes, a, a) == 0)
    assert np.any(forward != 0)
    # the per-sequence score and the intercept (which a difference cancels)
    dense = brute_force_counts(codes, 3, 15) @ model.coef
    assert np.allclose(model.predict_sequences(codes, a), dense[a] + 2.5)
    assert np.allclose(forward, dense[a] - dense[b])
    with pytest.raises(ValueError, match="40 bases"):
        model.predict_pairs(codes[:, :39], a, b)
    with pytest.raises(ValueError, match="row indices"):
        model.predict_pairs(codes, np.array([30]), np.array([0]))


def test_fit_recovers_planted_motif(planted: dict) -> None:
    codes = planted["codes"]
    model, table = fit_kmer_pairs(codes, planted["train"], planted["val"], SMALL)
    assert model.paired and model.intercept == 0.0 and model.k == 6
    chosen = table[table["chosen"]]
    assert len(chosen) == 1 and chosen["val_spearman"].iloc[0] > 0.9
    test = planted["test"]
    assert spearman(test.target, model.predict_pairs(codes, test.idx_a, test.idx_b)) > 0.9
    # the motif's coefficient in the middle block stands out; the same motif in the other blocks
    # (planted as often) carries no weight
    index = int(np.dot(encode(MOTIF), 4 ** np.arange(len(MOTIF))[::-1]))
    coef = model.coef.reshape(model.n_blocks, 4 ** model.k)
    assert int(np.argmax(np.abs(model.coef))) == 4 ** 6 + index
    assert abs(coef[0, index]) < 0.2 * coef[1, index]
    assert abs(coef[2, index]) < 0.2 * coef[1, index]


def test_shuffled_targets_give_no_skill(planted: dict) -> None:
    rng = np.random.default_rng(5)
    train, val, test = planted["train"], planted["val"], planted["test"]
    shuffled_train = PairSet(train.idx_a, train.idx_b, rng.permutation(train.target))
    shuffled_val = PairSet(val.idx_a, val.idx_b, rng.permutation(val.target))
    model, _ = fit_kmer_pairs(planted["codes"], shuffled_train, shuffled_val, SMALL)
    rho = spearman(test.target, model.predict_pairs(planted["codes"], test.idx_a, test.idx_b))
    assert abs(rho) < 0.2


def test_selection_table(planted: dict) -> None:
    codes, val = planted["codes"], planted["val"]
    model, table = fit_kmer_pairs(codes, planted["train"], val, SMALL)
    assert list(table.columns) == SELECTION_COLUMNS
    assert list(zip(table["k"], table["alpha"], strict=True)) == [
        (k, a) for k in SMALL.ks for a in SMALL.alphas]
    assert table["chosen"].dtype == bool and table["chosen"].sum() == 1
    best = table.loc[table["chosen"]].iloc[0]
    assert (best["k"], best["alpha"]) == (model.k, model.alpha)
    assert best["val_spearman"] == table["val_spearman"].max()
    # the table's score is the saved model's on the validation pairs
    rho = spearman(val.target, model.predict_pairs(codes, val.idx_a, val.idx_b))
    assert rho == pytest.approx(best["val_spearman"], abs=1e-12)
    # deterministic
    again, table_again = fit_kmer_pairs(codes, planted["train"], val, SMALL)
    assert np.array_equal(again.coef, model.coef)
    pd.testing.assert_frame_equal(table, table_again)


def test_ties_go_to_smaller_k_then_larger_alpha(planted: dict) -> None:
    # all-zero targets: every fit predicts 0, no Spearman is defined, so all tie
    train, val = planted["train"], planted["val"]
    zero_train = PairSet(train.idx_a, train.idx_b, np.zeros(len(train)))
    settings = KmerSettings(ks=(5, 3), block_length=BLOCK, alphas=(1.0, 100.0, 10.0))
    model, table = fit_kmer_pairs(planted["codes"], zero_train, val, settings)
    assert table["val_spearman"].isna().all()
    assert (model.k, model.alpha) == (3, 100.0)


def test_fit_sequences(planted: dict) -> None:
    codes, middle = planted["codes"], planted["middle"]
    rng = np.random.default_rng(7)
    target = 2.0 + middle + rng.normal(scale=0.3, size=middle.size)
    train, val = SequenceSet(np.arange(250), target[:250]), SequenceSet(np.arange(250, 400),
                                                                         target[250:])
    model, table = fit_kmer_sequences(codes, train, val, SMALL)
    assert not model.paired
    assert table.loc[table["chosen"], "val_spearman"].iloc[0] > 0.9
    predicted = model.predict_sequences(codes, val.idx)
    assert abs(np.mean(predicted) - np.mean(val.target)) < 0.3  # the intercept carries the offset
    with pytest.raises(ValueError, match="validation set is empty"):
        fit_kmer_sequences(codes, train, SequenceSet(np.array([], int), np.array([])), SMALL)


def test_save_load_round_trip(planted: dict, tmp_path: Path) -> None:
    codes, test = planted["codes"], planted["test"]
    model, _ = fit_kmer_pairs(codes, planted["train"], planted["val"], SMALL)
    assert model.save(tmp_path / "m", provenance={"fold": 0}) == tmp_path / "m"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["kmer_model.json",
                                                                  "kmer_model.npz"]
    info = json.loads((tmp_path / "m" / "kmer_model.json").read_text())
    assert (info["k"], info["alpha"], info["seq_len"]) == (model.k, model.alpha, LENGTH)
    assert info["settings"] == SMALL.to_dict() and info["provenance"] == {"fold": 0}
    loaded = KmerRidge.load(tmp_path / "m")
    assert loaded.settings == SMALL and loaded.paired and loaded.intercept == model.intercept
    assert np.array_equal(loaded.predict_pairs(codes, test.idx_a, test.idx_b),
                          model.predict_pairs(codes, test.idx_a, test.idx_b))
    assert np.array_equal(loaded.predict_sequences(codes, test.idx_a),
                          model.predict_sequences(codes, test.idx_a))


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="kmer_model.json.*not found"):
        KmerRidge.load(tmp_path)
    (tmp_path / "kmer_model.json").write_text("{not json")
    with pytest.raises(InputError, match="kmer_model.json.*invalid JSON"):
        KmerRidge.load(tmp_path)
    model = KmerRidge(k=2, alpha=1.0, block_length=10, coef=np.ones(16), intercept=0.0,
                      paired=True, seq_len=10)
    model.save(tmp_path)
    (tmp_path / "kmer_model.npz").unlink()
    with pytest.raises(InputError, match="kmer_model.npz.*not found"):
        KmerRidge.load(tmp_path)
    np.savez(tmp_path / "kmer_model.npz", coef=np.ones(20))  # not whole blocks of 16
    with pytest.raises(InputError, match="kmer_model.json.*whole number of blocks"):
        KmerRidge.load(tmp_path)


# ---- cross-validation (plantt train --model kmer, rule train_kmer) ----


@pytest.fixture
def fold_files(tmp_path: Path) -> dict:
    """encoded.npy + genes table + a splits table of two folds, targets from the planted motif."""
    codes, middle = planted_windows(11, 240)
    species = np.where(np.arange(240) % 2 == 0, "medicago", "vicia")
    genes = pd.DataFrame({"index": np.arange(240), "species": species,
                          "gene_id": [f"g{i:03d}" for i in range(240)]})
    np.save(tmp_path / "encoded.npy", codes)
    genes.to_csv(tmp_path / "genes.tsv", sep="\t", index=False)
    rng = np.random.default_rng(12)
    rows = []
    for fold in (0, 1):
        order = rng.permutation(240)
        for set_name, part, n in (("train", order[:150], 500), ("validation", order[150:195], 120),
                                  ("test", order[195:], 120)):
            a, b = random_pairs(rng, part, n)
            d = middle[a] - middle[b] + rng.normal(scale=0.3, size=a.size)
            for i, j, value in zip(a, b, d, strict=True):
                rows.append({"orthogroup": f"OG{min(i, j):03d}", "label": "{M,V}",
                             "gene_a": genes.gene_id[i], "species_a": species[i],
                             "gene_b": genes.gene_id[j], "species_b": species[j], "d": value,
                             "fold": fold, "set": set_name})
    splits = pd.DataFrame(rows)
    splits.to_csv(tmp_path / "splits.tsv", sep="\t", index=False)
    return {"dir": tmp_path, "codes": codes, "genes": genes, "splits": splits}


def test_kmer_cv_fold(fold_files: dict) -> None:
    d = fold_files["dir"]
    settings = KmerSettings(ks=(4, 6), block_length=BLOCK, alphas=(1.0, 10.0))
    table = kmer_cv_fold(d / "encoded.npy", d / "genes.tsv", d / "splits.tsv", 1, "rnaseq3p",
                         d / "out", settings)
    assert list(table.columns) == PREDICTION_COLUMNS
    splits = fold_files["splits"]
    test_rows = splits[(splits["fold"] == 1) & (splits["set"] == "test")]
    assert table["gene_a"].tolist() == test_rows["gene_a"].tolist()
    assert table["gene_b"].tolist() == test_rows["gene_b"].tolist()
    assert np.allclose(table["target"], test_rows["d"])
    assert set(table["model"]) == {"kmer"} and set(table["fold"]) == {1}
    assert set(table["assay"]) == {"rnaseq3p"}
    assert spearman(table["target"].to_numpy(), table["prediction"].to_numpy()) > 0.8
    # the saved model gives the same predictions
    model = KmerRidge.load(d / "out")
    index = {g: i for i, g in enumerate(fold_files["genes"]["gene_id"])}
    again = model.predict_pairs(fold_files["codes"], test_rows["gene_a"].map(index).to_numpy(),
                                test_rows["gene_b"].map(index).to_numpy())
    assert np.array_equal(table["prediction"].to_numpy(), again)
    selection = pd.read_csv(d / "out" / "selection.tsv", sep="\t")
    assert list(selection.columns) == SELECTION_COLUMNS and len(selection) == 4
    assert selection["chosen"].sum() == 1
    with pytest.raises(InputError, match="splits.tsv: fold 7 not found"):
        kmer_cv_fold(d / "encoded.npy", d / "genes.tsv", d / "splits.tsv", 7, "rnaseq3p",
                     d / "out7", settings)
    no_validation = splits[~((splits["fold"] == 0) & (splits["set"] == "validation"))]
    no_validation.to_csv(d / "no_validation.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="no_validation.tsv: fold 0 has no validation pairs"):
        kmer_cv_fold(d / "encoded.npy", d / "genes.tsv", d / "no_validation.tsv", 0, "rnaseq3p",
                     d / "out0", settings)


def test_kmer_through_cli_and_evaluate(fold_files: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    d = fold_files["dir"]
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["plantt.model_commands"])
    common = ["--windows", str(d / "encoded.npy"), "--genes", str(d / "genes.tsv"), "--splits",
              str(d / "splits.tsv"), "--assay", "rnaseq3p", "--architecture", "kmer",
              "--set", json.dumps({"ks": [6], "block_length": BLOCK, "alphas": [1.0]})]
    for fold in (0, 1):
        assert cli.main(["train", *common, "--fold", str(fold), "--out-dir",
                         str(d / f"fold_{fold}")]) == 0
    assert (d / "fold_0" / "kmer_model.npz").is_file()
    assert (d / "fold_0" / "selection.tsv").is_file()
    # evaluate scores kmer as a regression model (as plantt), not only by the signs
    _, per_fold, summary = evaluate([d / "fold_0" / "predictions.tsv",
                                     d / "fold_1" / "predictions.tsv"])
    assert per_fold["model"].tolist() == ["kmer", "kmer"]
    assert per_fold[["spearman", "pearson", "r2", "auroc"]].notna().all().all()
    assert (per_fold["spearman"] > 0.8).all()
    assert set(summary["metric"]) >= {"spearman", "auroc"}
    bad = cli.main(["train", *common, "--fold", "0", "--out-dir", str(d / "x"),
                    "--set", json.dumps({"k": [6]})])
    assert bad == 1


def test_model_variant_parse() -> None:
    variant = ModelVariant.parse("kmer")
    assert (variant.kind, variant.metric_kind, variant.shuffled) == ("kmer", "plantt", False)
    assert ModelVariant.parse("washburn").metric_kind == "washburn"
    assert ModelVariant.parse("plantt_from_proseq").metric_kind == "plantt"
    with pytest.raises(ValueError, match="kmer"):
        ModelVariant.parse("kmers")
    with pytest.raises(ValueError, match="kmer_cv_fold"):
        train_cv_fold("x.npy", "g.tsv", "s.tsv", 0, "rnaseq3p", "kmer", "out", TrainSettings())


def test_predicted_vs_true_shows_kmer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, target: figures.append(fig))
    rng = np.random.default_rng(0)
    predictions = pd.DataFrame([
        {"model": model, "fold": fold, "target": t, "prediction": t + rng.normal()}
        for model in ("plantt", "washburn", "kmer") for fold in (0, 1)
        for t in rng.normal(size=10)])
    plots.plot_predicted_vs_true(predictions, tmp_path / "scatter.png")
    titles = [ax.get_title() for ax in figures[0].axes]
    assert sum(t.startswith("kmer, fold") for t in titles) == 2
    assert not any(t.startswith("washburn") for t in titles)
    per_fold = pd.DataFrame({"model": ["plantt", "kmer"], "fold": [0, 0], "spearman": [0.3, 0.2]})
    plots.plot_metric_summary(per_fold, tmp_path / "bars.png")
    labels = [tick.get_text() for tick in figures[1].axes[0].get_xticklabels()]
    assert labels == ["plantt", "kmer"]
