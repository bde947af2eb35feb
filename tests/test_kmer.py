"""The k-mer ridge baseline: block counts, antisymmetric pair predictions, model selection on
validation, saved models, and one cross-validation fold from the workflow's files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plantt import cli, kmer, plots
from plantt.cv import PREDICTION_COLUMNS, ModelVariant, evaluate, kmer_cv_fold, train_cv_fold
from plantt.encoding import decode, encode
from plantt.io import InputError
from plantt.kmer import (
    DEFAULT_ALPHAS,
    DEFAULT_BLOCK_LENGTHS,
    DEFAULT_KS,
    SELECTION_COLUMNS,
    KmerRidge,
    KmerSettings,
    fit_kmer_pairs,
    fit_kmer_sequences,
    kmer_block_counts,
    solver_form,
    window_gram,
)
from plantt.metrics import spearman
from plantt.ridge import GridRows, select_on_validation, shifted_solves
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


def test_counts_of_many_long_windows_add_up() -> None:
    # 2,000 windows of 3,000 bases at k=8 (the timing lives in benchmarks/kmer_grid.py): each
    # block holds one count per k-mer that starts in it and has no N (code 4)
    codes = np.random.default_rng(0).integers(0, 5, size=(2000, 3000)).astype(np.uint8)
    counts = kmer_block_counts(codes, 8, 750)
    assert counts.shape == (2000, 4 * 4 ** 8)
    valid = np.lib.stride_tricks.sliding_window_view(codes[:5] < 4, 8, axis=1).all(axis=2)
    for block in range(4):
        starts = valid[:, block * 750:(block + 1) * 750].sum(axis=1)
        block_sums = np.asarray(counts[:5, block * 4 ** 8:(block + 1) * 4 ** 8].sum(axis=1))
        assert np.array_equal(block_sums.ravel(), starts)


# ---- settings ----


def test_settings_from_dict() -> None:
    assert KmerSettings.from_dict(None) == KmerSettings()
    assert KmerSettings().ks == DEFAULT_KS == (6, 7, 8, 9, 10)
    assert KmerSettings().block_lengths == DEFAULT_BLOCK_LENGTHS == (250, 500, 750)
    assert KmerSettings().alphas == DEFAULT_ALPHAS
    assert min(DEFAULT_ALPHAS) <= 0.1 and max(DEFAULT_ALPHAS) >= 1e7  # 8 decades
    settings = KmerSettings.from_dict({"ks": [5, 3], "alphas": [1, 1000],
                                       "block_lengths": [500, 250]})
    assert settings.ks == (5, 3) and settings.alphas == (1.0, 1000.0)
    assert settings.block_lengths == (500, 250) and settings.block_length is None
    # text from `snakemake --config` / --set
    assert KmerSettings.from_dict({"ks": "[6, 7]", "block_lengths": "[750]"}).ks == (6, 7)
    assert KmerSettings.from_dict({"block_lengths": "[100, 750]"}).block_lengths == (100, 750)
    assert KmerSettings.from_dict(settings.to_dict()) == settings
    assert settings.to_dict() == {"ks": [5, 3], "block_lengths": [500, 250],
                                  "alphas": [1.0, 1000.0]}
    with pytest.raises(ValueError, match="unknown k-mer setting.*alpha\\b"):
        KmerSettings.from_dict({"alpha": [1.0]})
    for bad in ({"ks": [0]}, {"ks": [6, 6]}, {"ks": []}, {"ks": [6.5]}, {"alphas": [-1]},
                {"alphas": [0]}, {"block_length": 0}, {"ks": [True]}, {"ks": "[6,"},
                {"block_lengths": []}, {"block_lengths": [100, 100]}, {"block_lengths": [0]},
                {"ks": [13]}):
        with pytest.raises(ValueError):
            KmerSettings.from_dict(bad)


def test_old_block_length_still_reads() -> None:
    """``block_length`` (one value), as in older configs and saved models, is a one-value grid."""
    old = KmerSettings.from_dict({"ks": [6, 7, 8], "block_length": 750, "alphas": [10, 100]})
    assert old.block_lengths == (750,) and old.block_length == 750
    assert old == KmerSettings(ks=(6, 7, 8), block_lengths=(750,), alphas=(10, 100))
    assert KmerSettings(block_length=500) == KmerSettings(block_lengths=[500])
    assert KmerSettings.from_dict({"block_length": "750"}).block_lengths == (750,)
    # null: absent (the default grid); the same value under both keys is no conflict
    assert KmerSettings.from_dict({"block_length": None}).block_lengths == DEFAULT_BLOCK_LENGTHS
    assert KmerSettings(block_lengths=(300,), block_length=300).block_lengths == (300,)
    with pytest.raises(ValueError, match="not both"):
        KmerSettings.from_dict({"block_length": 750, "block_lengths": [100, 750]})
    # settings are values: hashable, comparable, immutable, copied by dataclasses.replace
    import dataclasses

    assert len({old, KmerSettings(ks=[6, 7, 8], block_length=750, alphas=[10.0, 100.0])}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        old.ks = (6,)  # type: ignore[misc]
    assert dataclasses.replace(old, block_lengths=(100, 250)).block_lengths == (100, 250)


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
    assert list(zip(table["k"], table["block_length"], table["alpha"], strict=True)) == [
        (k, BLOCK, a) for k in SMALL.ks for a in SMALL.alphas]
    assert table["chosen"].dtype == bool and table["chosen"].sum() == 1
    best = table.loc[table["chosen"]].iloc[0]
    assert (best["k"], best["block_length"], best["alpha"]) == (model.k, model.block_length,
                                                                model.alpha)
    assert best["val_spearman"] == table["val_spearman"].max()
    # the table's score is the saved model's on the validation pairs
    rho = spearman(val.target, model.predict_pairs(codes, val.idx_a, val.idx_b))
    assert rho == pytest.approx(best["val_spearman"], abs=1e-12)
    # deterministic
    again, table_again = fit_kmer_pairs(codes, planted["train"], val, SMALL)
    assert np.array_equal(again.coef, model.coef)
    pd.testing.assert_frame_equal(table, table_again)


def test_ties_go_to_smaller_k_then_longer_blocks_then_larger_alpha(planted: dict) -> None:
    # all-zero targets: every fit predicts 0, no Spearman is defined, so all tie
    train, val = planted["train"], planted["val"]
    zero_train = PairSet(train.idx_a, train.idx_b, np.zeros(len(train)))
    settings = KmerSettings(ks=(5, 3), block_lengths=(BLOCK, 150), alphas=(1.0, 100.0, 10.0))
    model, table = fit_kmer_pairs(planted["codes"], zero_train, val, settings)
    assert table["val_spearman"].isna().all()
    assert (model.k, model.block_length, model.alpha) == (3, 150, 100.0)


def test_block_length_grid_is_searched_and_recorded(planted: dict, tmp_path: Path) -> None:
    """The motif counts only in the middle 100 bases: blocks of 100 find it, one block of 300 mixes
    it with the motif elsewhere, blocks of 150 cut its block in two; every (k, block length,
    alpha) is in the table, and the chosen block length in the saved model."""
    codes, val = planted["codes"], planted["val"]
    settings = KmerSettings(ks=(6,), block_lengths=(300, 150, BLOCK), alphas=(1.0, 10.0, 100.0))
    model, table = fit_kmer_pairs(codes, planted["train"], val, settings)
    assert list(table.columns) == SELECTION_COLUMNS
    assert list(zip(table["block_length"], table["alpha"], strict=True)) == [
        (b, a) for b in settings.block_lengths for a in settings.alphas]
    assert model.block_length == BLOCK and model.n_blocks == 3
    best = table.groupby("block_length")["val_spearman"].max()
    assert best[BLOCK] > 0.9 and best[BLOCK] > best[150] > best[300]
    rho = spearman(val.target, model.predict_pairs(codes, val.idx_a, val.idx_b))
    assert rho == pytest.approx(table.loc[table["chosen"], "val_spearman"].iloc[0], abs=1e-12)
    model.save(tmp_path)
    info = json.loads((tmp_path / "kmer_model.json").read_text())
    assert info["block_length"] == BLOCK and info["format_version"] == 2
    assert info["settings"]["block_lengths"] == [300, 150, BLOCK]
    assert KmerRidge.load(tmp_path).settings == settings


# ---- the solver: dual (kernel) and primal forms of the same ridge ----


def _dense_ridge(x: np.ndarray, y: np.ndarray, alpha: float, intercept: bool):
    from sklearn.linear_model import Ridge

    fitted = Ridge(alpha=alpha, fit_intercept=intercept, solver="cholesky").fit(x, y)
    return fitted.coef_, fitted.intercept_ if intercept else 0.0


@pytest.mark.parametrize("k, block_length, alphas", [
    (3, LENGTH, (0.1, 10.0, 1000.0)),  # a Cholesky factorisation per penalty
    (4, BLOCK, (0.1, 1.0, 10.0, 100.0, 1000.0, 1e4)),  # one tridiagonal reduction for all
])
def test_dual_and_primal_agree(planted: dict, monkeypatch: pytest.MonkeyPatch, k: int,
                               block_length: int, alphas: tuple[float, ...]) -> None:
    """The same small problem (64 or 768 columns, 898 training pairs: primal by shape) solved in
    both forms, and with LSQR: the same validation scores and choice, predictions within 1e-6
    (relative) of each other and of scikit-learn's exact solver."""
    codes, test = planted["codes"], planted["test"]
    settings = KmerSettings(ks=(k,), block_lengths=(block_length,), alphas=alphas)
    n_train = len(planted["train"])
    assert solver_form(n_train, 4 ** k * (LENGTH // block_length), len(alphas)) == "primal"
    fits = {}
    for form in ("primal", "dual", "lsqr"):
        monkeypatch.setattr(kmer, "solver_form", lambda *shape, form=form: form)
        fits[form] = fit_kmer_pairs(codes, planted["train"], planted["val"], settings)
    primal, dual, lsqr = (fits[f][0] for f in ("primal", "dual", "lsqr"))
    assert (primal.alpha, primal.k) == (dual.alpha, dual.k)
    np.testing.assert_allclose(fits["dual"][1]["val_spearman"], fits["primal"][1]["val_spearman"],
                               atol=1e-9)
    predicted = {f: m.predict_pairs(codes, test.idx_a, test.idx_b) for f, m in
                 (("primal", primal), ("dual", dual), ("lsqr", lsqr))}
    scale = np.abs(predicted["primal"]).max()
    assert np.abs(predicted["dual"] - predicted["primal"]).max() <= 1e-6 * scale
    assert np.abs(predicted["lsqr"] - predicted["primal"]).max() <= 1e-4 * scale
    # both exact: scikit-learn's Cholesky solver on the dense design
    counts = kmer_block_counts(codes, k, block_length).toarray()
    train = planted["train"]
    coef, _ = _dense_ridge(counts[train.idx_a] - counts[train.idx_b], train.target, primal.alpha,
                           False)
    exact = counts[test.idx_a] @ coef - counts[test.idx_b] @ coef
    assert np.abs(predicted["dual"] - exact).max() <= 1e-6 * scale
    assert np.abs(dual.coef - coef).max() <= 1e-6 * np.abs(coef).max()


def test_dual_and_primal_agree_with_an_intercept(planted: dict,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    codes, middle = planted["codes"], planted["middle"]
    target = 2.0 + middle + np.random.default_rng(7).normal(scale=0.3, size=middle.size)
    train, val = SequenceSet(np.arange(250), target[:250]), SequenceSet(np.arange(250, 400),
                                                                         target[250:])
    settings = KmerSettings(ks=(3,), block_lengths=(BLOCK,), alphas=(1.0, 100.0))  # 192 columns
    fits = {}
    for form in ("primal", "dual"):
        monkeypatch.setattr(kmer, "solver_form", lambda *shape, form=form: form)
        fits[form] = fit_kmer_sequences(codes, train, val, settings)[0]
    primal, dual = fits["primal"], fits["dual"]
    counts = kmer_block_counts(codes, 3, BLOCK).toarray()
    coef, intercept = _dense_ridge(counts[:250], target[:250], primal.alpha, True)
    exact = counts[250:] @ coef + intercept
    for model in (primal, dual):
        assert model.alpha == primal.alpha
        predicted = model.predict_sequences(codes, val.idx)
        assert np.abs(predicted - exact).max() <= 1e-6 * np.abs(exact).max()
        assert model.intercept == pytest.approx(intercept, rel=1e-6)


def test_solver_form_by_shape() -> None:
    assert solver_form(2500, 30 * 4 ** 10, 9) == "dual"
    assert solver_form(2500, 4 ** 5, 9) == "primal"
    assert solver_form(2500, 30 * 4 ** 10, 1) == "lsqr"  # one penalty: cheaper than a Gram matrix
    assert solver_form(2500, 4 ** 5, 1) == "primal"
    assert solver_form(50_000, 4 ** 10, 9) == "lsqr"  # both too large for a direct solve


@pytest.mark.parametrize("n_shifts", [1, 4, 5, 9])
@pytest.mark.parametrize("size", [5, 80])
def test_shifted_solves_are_exact(n_shifts: int, size: int) -> None:
    rng = np.random.default_rng(size + n_shifts)
    x = rng.normal(size=(size, size // 2))  # rank-deficient: the shifts make it solvable
    matrix = x @ x.T
    rhs = rng.normal(size=(size, 2))
    shifts = [10.0 ** e for e in range(-3, n_shifts - 3)]
    for shift, vector, block in zip(shifts, shifted_solves(matrix, rhs[:, 0], shifts),
                                    shifted_solves(matrix, rhs, shifts), strict=True):
        exact = np.linalg.solve(matrix + shift * np.eye(size), rhs)
        assert vector.shape == (size,) and block.shape == (size, 2)
        assert np.allclose(vector, exact[:, 0], rtol=1e-8, atol=1e-9 * np.abs(exact).max())
        assert np.allclose(block, exact, rtol=1e-8, atol=1e-9 * np.abs(exact).max())
    # a matrix whose rounding leaves it indefinite by a hair: the reduction takes over
    tilted = matrix - 1e-9 * np.eye(size)
    solved = shifted_solves(tilted, rhs[:, 0], [1e-12])[0]
    assert np.all(np.isfinite(solved))


@pytest.mark.parametrize("share", [0.0, 0.005, 1e9])  # all dense, the default, all sparse
@pytest.mark.parametrize("k, length", [(2, 60), (5, 60), (2, 5000)])  # 5000: float64 products
def test_window_gram_is_exact(monkeypatch: pytest.MonkeyPatch, share: float, k: int,
                              length: int) -> None:
    monkeypatch.setattr(kmer, "DENSE_SHARE", share)
    rng = np.random.default_rng(k + length)
    codes = rng.choice(5, size=(12, length), p=[0.3, 0.2, 0.2, 0.25, 0.05]).astype(np.uint8)
    codes[3] = codes[4]  # two identical windows
    counts = kmer_block_counts(codes, k, 25)
    train = np.array([0, 2, 3, 4, 7, 11])
    expected = counts.toarray() @ counts.toarray()[train].T
    assert np.array_equal(window_gram(counts, train), expected)
    assert window_gram(counts[:, :0], train).shape == (12, 6)


def test_window_gram_without_scipys_internal_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy.sparse import _sparsetools

    def changed(*args):
        raise TypeError("csr_matmat: the signature changed")

    monkeypatch.setattr(_sparsetools, "csr_matmat", changed, raising=False)
    codes = np.random.default_rng(3).integers(0, 4, size=(10, 80)).astype(np.uint8)
    counts = kmer_block_counts(codes, 3, 40)
    train = np.array([1, 4, 5, 9])
    expected = counts.toarray() @ counts.toarray()[train].T
    assert np.array_equal(window_gram(counts, train), expected)


def test_planted_10mer_in_100bp_blocks_is_found_by_the_dual(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """A 10-mer counts only in the middle of three 100-bp blocks (it is planted in all three):
    4**10 x 3 = 3.1 M columns for 500 training pairs, solved in the dual; the word is the strongest
    k-mer (top_kmers, as seeding the CNN's detectors uses it), its middle-block weight the largest
    coefficient, and the model keeps only the columns seen in a training window."""
    word = "GATCCGTTAC"
    rng = np.random.default_rng(21)
    n = 360
    codes = rng.integers(0, 4, size=(n, LENGTH)).astype(np.uint8)
    middle = np.zeros(n)
    slots = np.arange(0, BLOCK - len(word) + 1, len(word) + 2)
    for row in range(n):
        for block in range(3):
            for slot in rng.choice(slots, size=int(rng.integers(0, 3)), replace=False):
                start = block * BLOCK + int(slot)
                codes[row, start:start + len(word)] = encode(word)
    for row in range(n):
        middle[row] = occurrences(decode(codes[row]), word, BLOCK, 2 * BLOCK)
    sets = {}
    for name, genes, size in (("train", np.arange(0, 240), 520), ("val", np.arange(240, 360), 200)):
        a, b = random_pairs(rng, genes, size)
        sets[name] = PairSet(a, b, middle[a] - middle[b] + rng.normal(scale=0.2, size=a.size))
    settings = KmerSettings(ks=(10,), block_lengths=(BLOCK,), alphas=(1.0, 10.0, 100.0))
    assert solver_form(len(sets["train"]), 3 * 4 ** 10) == "dual"
    model, table = fit_kmer_pairs(codes, sets["train"], sets["val"], settings)
    assert table.loc[table["chosen"], "val_spearman"].iloc[0] > 0.8
    assert model.top_kmers(3)[0] == word
    index = int(np.dot(encode(word), 4 ** np.arange(10)[::-1]))
    weights = dict(zip(model.weights.index.tolist(), model.weights.value.tolist(), strict=True))
    strongest = int(model.weights.index[np.argmax(np.abs(model.weights.value))])
    assert strongest == 4 ** 10 + index
    assert abs(weights.get(index, 0.0)) < 0.2 * weights[4 ** 10 + index]
    assert model.n_features == 3 * 4 ** 10 and model.weights.index.size < 400 * LENGTH
    model.save(tmp_path)
    with np.load(tmp_path / "kmer_model.npz") as arrays:
        assert sorted(arrays.files) == ["coef_index", "coef_value"]
    loaded = KmerRidge.load(tmp_path)
    assert loaded.top_kmers(3) == model.top_kmers(3)
    val = sets["val"]
    predicted = model.predict_pairs(codes, val.idx_a, val.idx_b)
    assert np.array_equal(loaded.predict_pairs(codes, val.idx_a, val.idx_b), predicted)
    # scored through the sparse coefficients (as models of more than 4 M columns are)
    monkeypatch.setattr(kmer, "_DENSE_SCORING", 0)
    assert np.allclose(model.predict_pairs(codes, val.idx_a, val.idx_b), predicted, rtol=1e-12,
                       atol=1e-12 * np.abs(predicted).max())


def test_top_kmers_fill_with_weightless_kmers_in_index_order() -> None:
    coef = np.zeros(2 * 16)
    coef[16 + 5] = -3.0  # CC in block 1
    coef[2] = 1.0  # AG in block 0
    model = KmerRidge(k=2, alpha=1.0, block_length=10, coef=coef, intercept=0.0, paired=True)
    assert model.top_kmers(4) == ["CC", "AG", "AA", "AC"]
    assert model.top_kmers(0) == [] and len(model.top_kmers(20)) == 16


# ---- a penalty at the edge of the grid ----


def test_edge_of_the_penalty_grid_is_warned(caplog: pytest.LogCaptureFixture,
                                            planted: dict) -> None:
    rows = GridRows(used=np.arange(5), paired=False, y=np.zeros(5), y_val=np.arange(5.0),
                    train=(np.arange(5),), val=(np.arange(5),))
    good, bad = np.arange(5.0), np.arange(5.0)[::-1].copy()
    logger = logging.getLogger("plantt.test_edge")

    def peaked(best_alpha: float):
        return lambda value: ((alpha, good if alpha == best_alpha else bad, alpha)
                              for alpha in (1.0, 10.0, 100.0))

    with caplog.at_level(logging.WARNING, logger="plantt"):
        _, alpha, payload, _ = select_on_validation(rows, ["k"], [(1,)], peaked(10.0),
                                                    lambda value: value, logger)
        assert (alpha, payload) == (10.0, 10.0) and "edge" not in caplog.text.lower()
        for best, edge in ((100.0, "largest"), (1.0, "smallest")):
            caplog.clear()
            _, alpha, _, _ = select_on_validation(rows, ["k"], [(1,)], peaked(best),
                                                  lambda value: value, logger)
            assert alpha == best
            assert f"alpha={best:g} is the {edge} of the grid (1 to 100)" in caplog.text
            assert "still changing" in caplog.text and "widen alphas" in caplog.text
        # levelled off: 10 and 100 score alike (as past the grid's ends ridge rankings stop
        # changing), the tie goes to the larger; still an edge, said to be harmless
        caplog.clear()
        levelled = lambda value: ((alpha, bad if alpha == 1.0 else good, alpha)  # noqa: E731
                                  for alpha in (1.0, 10.0, 100.0))
        _, alpha, _, _ = select_on_validation(rows, ["k"], [(1,)], levelled,
                                              lambda value: value, logger)
        assert alpha == 100.0 and "is the largest of the grid" in caplog.text
        assert "levelled off" in caplog.text and "widen" not in caplog.text
        # through a fit: of two penalties, either is an edge
        caplog.clear()
        fit_kmer_pairs(planted["codes"], planted["train"], planted["val"],
                       KmerSettings(ks=(6,), block_lengths=(BLOCK,), alphas=(10.0, 100.0)))
        assert "of the grid (10 to 100)" in caplog.text


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
    assert info["block_length"] == BLOCK and info["n_features"] == model.n_features
    loaded = KmerRidge.load(tmp_path / "m")
    assert np.array_equal(loaded.coef, model.coef)
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
    np.savez(tmp_path / "kmer_model.npz", weights=np.ones(16))
    with pytest.raises(InputError, match="kmer_model.npz.*no array 'coef'"):
        KmerRidge.load(tmp_path)
    np.savez(tmp_path / "kmer_model.npz", coef_index=np.array([3, 1]), coef_value=np.ones(2))
    with pytest.raises(InputError, match="kmer_model.json.*sorted"):
        KmerRidge.load(tmp_path)
    info = json.loads((tmp_path / "kmer_model.json").read_text())
    (tmp_path / "kmer_model.json").write_text(json.dumps({**info, "format_version": 3}))
    with pytest.raises(InputError, match="format version 3"):
        KmerRidge.load(tmp_path)


def test_a_model_saved_by_the_previous_format_loads(tmp_path: Path) -> None:
    """Format 1: a dense ``coef`` and settings with one ``block_length``, as written before the
    block-length grid; it loads and predicts as its coefficients say."""
    rng = np.random.default_rng(4)
    coef = rng.normal(size=3 * 64)
    np.savez(tmp_path / "kmer_model.npz", coef=coef)
    (tmp_path / "kmer_model.json").write_text(json.dumps({
        "format": "plantt-kmer-ridge", "format_version": 1, "k": 3, "alpha": 100.0,
        "block_length": 15, "intercept": 0.0, "paired": True, "seq_len": 40, "n_blocks": 3,
        "n_features": 192, "settings": {"ks": [3, 4], "block_length": 15, "alphas": [10, 100]},
        "provenance": {"fold": 2}}))
    model = KmerRidge.load(tmp_path)
    assert (model.k, model.block_length, model.alpha, model.n_blocks) == (3, 15, 100.0, 3)
    assert model.settings == KmerSettings(ks=(3, 4), block_lengths=(15,), alphas=(10, 100))
    assert np.array_equal(model.coef, coef)
    codes = rng.integers(0, 5, size=(20, 40)).astype(np.uint8)
    a, b = np.arange(10), np.arange(10, 20)
    dense = brute_force_counts(codes, 3, 15) @ coef
    assert np.allclose(model.predict_pairs(codes, a, b), dense[a] - dense[b])
    # saved again, it is format 2 (sparse coefficients) and predicts the same
    model.save(tmp_path / "again")
    again = KmerRidge.load(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "kmer_model.json").read_text())["format_version"] == 2
    assert np.array_equal(again.predict_pairs(codes, a, b), model.predict_pairs(codes, a, b))


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
    # a grid of block lengths, from a config file (its block_length replaced by --set)
    (d / "kmer.yaml").write_text("ks: [4, 6]\nblock_length: 300\nalphas: [1, 10]\n")
    grid = ["--windows", str(d / "encoded.npy"), "--genes", str(d / "genes.tsv"), "--splits",
            str(d / "splits.tsv"), "--assay", "rnaseq3p", "--architecture", "kmer", "--config",
            str(d / "kmer.yaml"), "--set", json.dumps({"block_lengths": [300, BLOCK]})]
    assert cli.main(["train", *grid, "--fold", "0", "--out-dir", str(d / "grid")]) == 0
    selection = pd.read_csv(d / "grid" / "selection.tsv", sep="\t")
    assert list(selection.columns) == SELECTION_COLUMNS and len(selection) == 8
    assert sorted(set(selection["block_length"])) == [BLOCK, 300]
    info = json.loads((d / "grid" / "kmer_model.json").read_text())
    assert info["block_length"] == BLOCK and info["settings"]["block_lengths"] == [300, BLOCK]
    assert KmerRidge.load(d / "grid").block_length == BLOCK


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
