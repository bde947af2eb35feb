"""The known-motif ridge baseline: scanning agrees with the matrices' own relative scores, a planted
JASPAR site is learned (and found again by top_matrices), the exact ridge path, saved models, MEME
files of one's own matrices and one cross-validation fold through ``plantt train``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_kmer import BLOCK, fold_files  # noqa: F401  (a fixture: one fold's files)

from plantt import cli, pwm
from plantt.cv import PREDICTION_COLUMNS, ModelVariant, evaluate, pwm_cv_fold
from plantt.io import InputError
from plantt.jaspar import PositionMatrix, load_jaspar
from plantt.metrics import spearman
from plantt.pwm import (
    SELECTION_COLUMNS,
    PwmRidge,
    PwmSettings,
    coarser_blocks,
    fit_pwm_pairs,
    fit_pwm_sequences,
    load_motif_file,
    matrix_scan,
    site_scores,
)
from plantt.ridge import ridge_path
from plantt.train import PairSet, SequenceSet

# NAC016: 15 bases, few look-alikes among the 805 plant matrices (a member of a family of
# near-identical matrices would share its weight with them).
PLANTED = "MA2005.2"
LENGTH = 300
TOY_BLOCK = 100  # three blocks; the target counts the planted sites of the middle one only


@pytest.fixture(scope="module")
def jaspar() -> list[PositionMatrix]:
    return load_jaspar()


def reference_features(codes: np.ndarray, matrices: list[PositionMatrix], block_length: int,
                       feature: str, threshold: float = 0.85, temperature: float = 0.03
                       ) -> np.ndarray:
    """matrix_scan's features from PositionMatrix.relative_scores, one site at a time (a site
    holding an N occupies nothing)."""
    n, length = codes.shape
    out = np.zeros((n, -(-length // block_length), len(matrices)))
    for j, matrix in enumerate(matrices):
        for row in range(n):
            windows = np.lib.stride_tricks.sliding_window_view(codes[row], matrix.width)
            has_n = (windows == 4).any(axis=1)
            for strand in (matrix, matrix.reverse_complement()):
                relative = strand.relative_scores(codes[row])
                value = (1 / (1 + np.exp(-(relative - threshold) / temperature))
                         if feature == "occupancy" else relative)
                value = np.where(has_n, 0.0, value)
                for position, v in enumerate(value):
                    block = position // block_length
                    if feature == "occupancy":
                        out[row, block, j] += v
                    else:
                        out[row, block, j] = max(out[row, block, j], v)
    return out


def some_matrices(jaspar: list[PositionMatrix]) -> list[PositionMatrix]:
    """A few matrices of every width class, the widest included."""
    by_width = sorted(jaspar, key=lambda m: (m.width, m.id))
    return [by_width[i] for i in (0, 150, 400, 600, 750)] + by_width[-3:]


# ---- scanning ----


def test_site_scores_match_relative_scores_on_both_strands(jaspar) -> None:
    rng = np.random.default_rng(0)
    codes = rng.choice(5, size=(6, 120), p=[0.24, 0.24, 0.24, 0.24, 0.04]).astype(np.uint8)
    matrices = some_matrices(jaspar)
    scores = site_scores(codes, matrices)
    assert scores.shape == (6, 2, len(matrices), 120) and scores.dtype == np.float32
    for j, matrix in enumerate(matrices):
        for row in range(6):
            for strand, oriented in enumerate((matrix, matrix.reverse_complement())):
                expected = oriented.relative_scores(codes[row])
                assert np.allclose(scores[row, strand, j, :expected.size], expected, atol=1e-5)
                # a site running past the window's end scores nothing
                assert np.all(scores[row, strand, j, expected.size:] == 0)
    # sites holding an N score 0, as relative_scores says
    assert (scores == 0).any()


@pytest.mark.parametrize("feature", ["occupancy", "max_score"])
@pytest.mark.parametrize("block_length, piece_rows", [(7, 64), (50, 2048), (50, 40), (120, 48)])
def test_scan_matches_relative_scores(jaspar, feature: str, block_length: int, piece_rows: int,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # small pieces and batches: whole blocks per piece, parts of blocks, a short last block
    monkeypatch.setattr(pwm, "_PIECE_ROWS", piece_rows)
    monkeypatch.setattr(pwm, "_BATCH", 3)
    rng = np.random.default_rng(block_length)
    codes = rng.choice(5, size=(7, 111), p=[0.24, 0.24, 0.24, 0.24, 0.04]).astype(np.uint8)
    matrices = some_matrices(jaspar)
    scan = matrix_scan(codes, matrices, block_length, feature=feature, threshold=0.7,
                       temperature=0.05, threads=1)
    expected = reference_features(codes, matrices, block_length, feature, 0.7, 0.05)
    assert scan.shape == expected.shape and scan.dtype == np.float32
    assert np.allclose(scan, expected, rtol=1e-5, atol=1e-5)
    # worker threads give the same numbers
    assert np.array_equal(scan, matrix_scan(codes, matrices, block_length, feature=feature,
                                            threshold=0.7, temperature=0.05, threads=2))


def test_coarser_blocks_are_the_scan_of_longer_blocks(jaspar) -> None:
    codes = np.random.default_rng(1).integers(0, 4, size=(5, 230)).astype(np.uint8)
    matrices = some_matrices(jaspar)
    for feature in ("occupancy", "max_score"):
        fine = matrix_scan(codes, matrices, 25, feature=feature, threads=1)
        coarse = matrix_scan(codes, matrices, 100, feature=feature, threads=1)
        assert np.allclose(coarser_blocks(fine, 4, feature), coarse, atol=1e-4)


def test_scan_rejects_bad_input(jaspar) -> None:
    matrices = jaspar[:2]
    with pytest.raises(ValueError, match="0-4"):
        matrix_scan(np.array([[0, 1, 5] * 10], dtype=np.uint8), matrices, 10)
    with pytest.raises(ValueError, match="2-D"):
        matrix_scan(np.zeros(30, dtype=np.uint8), matrices, 10)
    with pytest.raises(ValueError, match="feature"):
        matrix_scan(np.zeros((1, 30), dtype=np.uint8), matrices, 10, feature="count")
    with pytest.raises(ValueError, match="temperature"):
        matrix_scan(np.zeros((1, 30), dtype=np.uint8), matrices, 10, temperature=0)
    with pytest.raises(ValueError, match="no matrices"):
        matrix_scan(np.zeros((1, 30), dtype=np.uint8), [], 10)


def test_scan_of_every_plant_matrix_has_every_block(jaspar) -> None:
    # 100 windows of 3,000 bases, all 805 matrices, both strands (its timing lives in
    # benchmarks/pwm_scan.py)
    codes = np.random.default_rng(0).integers(0, 4, size=(100, 3000)).astype(np.uint8)
    scan = matrix_scan(codes, jaspar, 250, threads=1)
    assert scan.shape == (100, 12, len(jaspar)) == (100, 12, 805)
    assert np.isfinite(scan).all() and (scan >= 0).all()


# ---- the ridge ----


@pytest.mark.parametrize("shape", [(60, 20), (20, 60)])  # primal and dual forms
@pytest.mark.parametrize("intercept", [False, True])
def test_ridge_path_is_the_exact_ridge(shape: tuple[int, int], intercept: bool) -> None:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(sum(shape))
    x = rng.normal(size=shape)
    y = x @ rng.normal(size=shape[1]) + 3.0 + rng.normal(size=shape[0])
    alphas = [0.1, 1.0, 10.0]
    for alpha, (coef, b) in zip(alphas, ridge_path(x, y, alphas, intercept), strict=True):
        exact = Ridge(alpha=alpha, fit_intercept=intercept, solver="cholesky").fit(x, y)
        assert np.allclose(coef, exact.coef_, atol=1e-8)
        assert b == pytest.approx(exact.intercept_ if intercept else 0.0, abs=1e-8)


# ---- a planted JASPAR site ----


def planted_windows(matrix: PositionMatrix, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random windows with 0-3 sites of ``matrix`` per block (drawn by sample_site, relative score
    at least 0.9, on either strand); returns the codes and the site count of the middle block."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n, LENGTH)).astype(np.uint8)
    middle = np.zeros(n)
    slots = np.arange(0, TOY_BLOCK - matrix.width, matrix.width + 1)
    for row in range(n):
        for block in range(LENGTH // TOY_BLOCK):
            count = int(rng.integers(0, 4))
            for slot in rng.choice(slots, size=count, replace=False):
                site = matrix.sample_site(rng, min_relative_score=0.9)
                if rng.random() < 0.5:
                    site = (3 - site)[::-1]  # the reverse strand
                start = block * TOY_BLOCK + int(slot)
                codes[row, start:start + matrix.width] = site
            if block == 1:
                middle[row] = count
    return codes, middle


def random_pairs(rng: np.random.Generator, genes: np.ndarray, n: int, value: np.ndarray
                 ) -> PairSet:
    """Pairs of ``genes`` whose target is the difference of ``value`` plus noise: enough noise, and
    few enough pairs for 2,415 features, that too weak a penalty overfits."""
    a, b = rng.choice(genes, size=n), rng.choice(genes, size=n)
    keep = a != b
    a, b = a[keep], b[keep]
    return PairSet(a, b, value[a] - value[b] + rng.normal(scale=0.5, size=a.size))


TOY_SETTINGS = PwmSettings(block_lengths=(TOY_BLOCK, LENGTH))


@pytest.fixture(scope="module")
def planted(jaspar) -> dict:
    matrix = next(m for m in jaspar if m.id == PLANTED)
    codes, middle = planted_windows(matrix, 0, 600)
    rng = np.random.default_rng(1)
    sets = {name: random_pairs(rng, genes, n, middle) for name, genes, n in (
        ("train", np.arange(0, 400), 800), ("val", np.arange(400, 500), 300),
        ("test", np.arange(500, 600), 300))}
    model, table = fit_pwm_pairs(codes, sets["train"], sets["val"], TOY_SETTINGS, threads=1)
    return {"codes": codes, "middle": middle, "model": model, "table": table, **sets}


def test_planted_site_is_learned(planted: dict) -> None:
    model, table, codes, test = planted["model"], planted["table"], planted["codes"], planted["test"]
    assert model.paired and model.intercept == 0.0 and model.block_length == TOY_BLOCK
    chosen = table[table["chosen"]]
    assert len(chosen) == 1 and chosen["val_spearman"].iloc[0] > 0.7
    assert spearman(test.target, model.predict_pairs(codes, test.idx_a, test.idx_b)) > 0.7
    # one block of 300 bases cannot tell the middle block's sites from the others
    whole = table[table["block_length"] == LENGTH]
    assert whole["val_spearman"].max() < chosen["val_spearman"].iloc[0] - 0.2


def test_chosen_penalty_is_inside_the_grid(planted: dict) -> None:
    alphas = TOY_SETTINGS.alphas
    assert len(alphas) == 8 and alphas[-1] / alphas[0] == pytest.approx(1e7)
    assert min(alphas) < planted["model"].alpha < max(alphas)
    table = planted["table"]
    best = table[table["block_length"] == TOY_BLOCK].set_index("alpha")["val_spearman"]
    assert best.idxmax() == planted["model"].alpha
    assert best.iloc[-1] < best.max() - 0.1  # too strong a penalty costs


def test_top_matrices_name_the_planted_one(planted: dict) -> None:
    top = planted["model"].top_matrices(5)
    assert [t.id for t in top][0] == PLANTED
    assert top[0].sign == 1  # more sites, higher target
    assert top[0].matrix.name == "NAC016" and top[0].matrix.width == 15
    assert all(a.weight >= b.weight for a, b in zip(top, top[1:], strict=False))
    assert planted["model"].top_matrices(0) == []


def test_shuffled_targets_are_not_learned(planted: dict) -> None:
    rng = np.random.default_rng(5)
    train, val, test = planted["train"], planted["val"], planted["test"]
    model, table = fit_pwm_pairs(
        planted["codes"], PairSet(train.idx_a, train.idx_b, rng.permutation(train.target)),
        PairSet(val.idx_a, val.idx_b, rng.permutation(val.target)), TOY_SETTINGS, threads=1)
    assert table.loc[table["chosen"], "val_spearman"].iloc[0] < 0.3
    rho = spearman(test.target, model.predict_pairs(planted["codes"], test.idx_a, test.idx_b))
    assert abs(rho) < 0.5  # chance: the predictions lean on motifs that correlate with the planted


def test_selection_table_and_determinism(planted: dict) -> None:
    model, table = planted["model"], planted["table"]
    assert list(table.columns) == SELECTION_COLUMNS
    assert list(zip(table["block_length"], table["alpha"], strict=True)) == [
        (b, a) for b in TOY_SETTINGS.block_lengths for a in TOY_SETTINGS.alphas]
    assert table["chosen"].sum() == 1
    best = table.loc[table["chosen"]].iloc[0]
    assert (best["block_length"], best["alpha"]) == (model.block_length, model.alpha)
    val, codes = planted["val"], planted["codes"]
    rho = spearman(val.target, model.predict_pairs(codes, val.idx_a, val.idx_b))
    assert rho == pytest.approx(best["val_spearman"], abs=1e-6)  # the saved model's own score


def test_pair_predictions_are_antisymmetric(planted: dict) -> None:
    model, codes = planted["model"], planted["codes"]
    a, b = np.arange(0, 40), np.arange(40, 80)
    forward = model.predict_pairs(codes, a, b)
    assert np.allclose(forward, -model.predict_pairs(codes, b, a))
    assert np.all(model.predict_pairs(codes, a, a) == 0) and np.any(forward != 0)
    with pytest.raises(ValueError, match="300 bases"):
        model.predict_pairs(codes[:, :299], a, b)


def test_fit_sequences(planted: dict) -> None:
    codes, middle = planted["codes"], planted["middle"]
    rng = np.random.default_rng(7)
    target = 2.0 + middle + rng.normal(scale=0.3, size=middle.size)
    train = SequenceSet(np.arange(400), target[:400])
    val = SequenceSet(np.arange(400, 600), target[400:])
    settings = PwmSettings(block_lengths=(TOY_BLOCK,), alphas=(10.0, 100.0, 1000.0))
    model, table = fit_pwm_sequences(codes, train, val, settings, threads=1)
    assert not model.paired
    assert table.loc[table["chosen"], "val_spearman"].iloc[0] > 0.75
    predicted = model.predict_sequences(codes, val.idx)
    assert abs(np.mean(predicted) - np.mean(val.target)) < 0.3  # the intercept carries 2.0
    with pytest.raises(ValueError, match="validation set is empty"):
        fit_pwm_sequences(codes, train, SequenceSet(np.array([], int), np.array([])), settings)


def test_save_load_round_trip(planted: dict, tmp_path: Path) -> None:
    model, codes, test = planted["model"], planted["codes"], planted["test"]
    assert model.save(tmp_path / "m", provenance={"fold": 0}) == tmp_path / "m"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["pwm_model.json",
                                                                  "pwm_model.npz"]
    info = json.loads((tmp_path / "m" / "pwm_model.json").read_text())
    assert (info["block_length"], info["alpha"], info["seq_len"]) == (TOY_BLOCK, model.alpha,
                                                                      LENGTH)
    assert info["n_matrices"] == 805 and info["matrix_ids"][0] == model.matrices[0].id
    assert info["settings"] == TOY_SETTINGS.to_dict() and info["provenance"] == {"fold": 0}
    loaded = PwmRidge.load(tmp_path / "m")
    assert loaded.settings == TOY_SETTINGS and loaded.paired
    assert np.array_equal(loaded.predict_pairs(codes, test.idx_a, test.idx_b),
                          model.predict_pairs(codes, test.idx_a, test.idx_b))
    assert [t.id for t in loaded.top_matrices(3)] == [t.id for t in model.top_matrices(3)]


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="pwm_model.json.*not found"):
        PwmRidge.load(tmp_path)
    (tmp_path / "pwm_model.json").write_text("{not json")
    with pytest.raises(InputError, match="pwm_model.json.*invalid JSON"):
        PwmRidge.load(tmp_path)
    matrix = PositionMatrix("m1", "one", np.eye(4)[[0, 1, 2, 3, 0]])
    PwmRidge([matrix], block_length=10, alpha=1.0, coef=np.ones(2), intercept=0.0, paired=True,
             seq_len=20).save(tmp_path)
    (tmp_path / "pwm_model.npz").unlink()
    with pytest.raises(InputError, match="pwm_model.npz.*not found"):
        PwmRidge.load(tmp_path)


# ---- settings and matrices ----


def test_settings_from_dict() -> None:
    assert PwmSettings.from_dict(None) == PwmSettings()
    settings = PwmSettings.from_dict({"block_lengths": "[300, 600]", "alphas": [1, 100],
                                      "threshold": "0.75", "release": "JASPAR2022"})
    assert settings.block_lengths == (300, 600) and settings.alphas == (1.0, 100.0)
    assert settings.threshold == 0.75 and settings.fine_block_length == 300
    assert PwmSettings.from_dict(settings.to_dict()) == settings
    assert PwmSettings(block_lengths=(250, 750, 1000)).fine_block_length == 250
    with pytest.raises(ValueError, match="unknown pwm setting.*block_length\\b"):
        PwmSettings.from_dict({"block_length": 500})
    for bad in ({"block_lengths": []}, {"block_lengths": [0]}, {"block_lengths": [5, 5]},
                {"alphas": [0]}, {"alphas": []}, {"threshold": 1.5}, {"temperature": 0},
                {"feature": "count"}, {"release": ""}, {"alphas": "[1,"}):
        with pytest.raises(ValueError):
            PwmSettings.from_dict(bad)


def write_meme(path: Path, matrices: list[PositionMatrix]) -> Path:
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
             "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for m in matrices:
        lines += [f"MOTIF {m.id} {m.name}", "",
                  f"letter-probability matrix: alength= 4 w= {m.width} nsites= 20 E= 0"]
        lines += [" ".join(f"{p:.6f}" for p in row) for row in m.probabilities]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def test_motif_file_of_ones_own_matrices(jaspar, tmp_path: Path) -> None:
    chosen = some_matrices(jaspar)[:3]
    meme = write_meme(tmp_path / "mine.meme", chosen)
    matrices = load_motif_file(meme)
    assert [(m.id, m.name) for m in matrices] == [(m.id, m.name) for m in chosen]
    for mine, theirs in zip(matrices, chosen, strict=True):
        assert np.allclose(mine.probabilities, theirs.probabilities, atol=1e-5)
    settings = PwmSettings(motif_file=str(meme))
    assert [m.id for m in settings.matrices()] == [m.id for m in chosen]


def test_motif_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="absent.meme.*motif file not found"):
        load_motif_file(tmp_path / "absent.meme")
    with pytest.raises(InputError, match="absent.meme.*not found"):
        PwmSettings(motif_file=str(tmp_path / "absent.meme")).matrices()
    empty = tmp_path / "empty.meme"
    empty.write_text("MEME version 4\n\nALPHABET= ACGT\n")
    with pytest.raises(InputError, match="empty.meme.*no MOTIF records"):
        load_motif_file(empty)
    (tmp_path / "text.meme").write_text("MOTIF x\nletter-probability matrix: alength= 4 w= 2\n"
                                        "0.2 0.3 oops 0.5\n")
    with pytest.raises(InputError, match="text.meme.*not a MEME motif file"):
        load_motif_file(tmp_path / "text.meme")


def test_an_unknown_jaspar_group_is_an_error() -> None:
    with pytest.raises(InputError, match="no matrix of tax_group 'plant'"):
        PwmSettings(tax_group="plant").matrices()


# ---- cross-validation (plantt train --architecture pwm, rule train_pwm) ----


def test_pwm_through_cli_and_evaluate(fold_files: dict,  # noqa: F811
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # the targets count the k-mer test's TGACGT (a bZIP core, TGA factors) in the middle block
    d = fold_files["dir"]
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["plantt.model_commands"])
    common = ["--windows", str(d / "encoded.npy"), "--genes", str(d / "genes.tsv"), "--splits",
              str(d / "splits.tsv"), "--assay", "rnaseq3p", "--architecture", "pwm",
              "--set", json.dumps({"block_lengths": [BLOCK], "alphas": [10, 1000, 100000]})]
    for fold in (0, 1):
        assert cli.main(["train", *common, "--fold", str(fold), "--out-dir",
                         str(d / f"fold_{fold}")]) == 0
    out = d / "fold_0"
    assert sorted(p.name for p in out.iterdir()) == ["predictions.tsv", "pwm_model.json",
                                                     "pwm_model.npz", "selection.tsv"]
    selection = pd.read_csv(out / "selection.tsv", sep="\t")
    assert list(selection.columns) == SELECTION_COLUMNS and len(selection) == 3
    predictions = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert list(predictions.columns) == PREDICTION_COLUMNS
    assert set(predictions["model"]) == {"pwm"}
    info = json.loads((out / "pwm_model.json").read_text())
    assert info["provenance"]["model"] == "pwm" and info["provenance"]["fold"] == 0
    # the saved model predicts what the fold wrote
    genes = fold_files["genes"]
    index = {g: i for i, g in enumerate(genes["gene_id"])}
    again = PwmRidge.load(out).predict_pairs(fold_files["codes"],
                                             predictions["gene_a"].map(index).to_numpy(),
                                             predictions["gene_b"].map(index).to_numpy())
    assert np.allclose(predictions["prediction"].to_numpy(), again, atol=1e-9)
    # evaluate scores pwm as a regression model
    _, per_fold, _ = evaluate([d / "fold_0" / "predictions.tsv", d / "fold_1" / "predictions.tsv"])
    assert per_fold["model"].tolist() == ["pwm", "pwm"]
    assert per_fold[["spearman", "pearson", "r2", "auroc"]].notna().all().all()
    assert (per_fold["spearman"] > 0.5).all(), per_fold["spearman"].tolist()
    # a misspelled setting, and weights it cannot start from, are clean errors
    assert cli.main(["train", *common, "--fold", "0", "--out-dir", str(d / "x"),
                     "--set", json.dumps({"block_length": 100})]) == 1
    assert cli.main(["train", *common, "--fold", "0", "--out-dir", str(d / "x"),
                     "--init-weights", str(d / "w.pt")]) == 1


def test_pwm_cv_fold_needs_validation_pairs(fold_files: dict) -> None:  # noqa: F811
    d, splits = fold_files["dir"], fold_files["splits"]
    no_validation = splits[~((splits["fold"] == 0) & (splits["set"] == "validation"))]
    no_validation.to_csv(d / "no_validation.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="no_validation.tsv: fold 0 has no validation pairs"):
        pwm_cv_fold(d / "encoded.npy", d / "genes.tsv", d / "no_validation.tsv", 0, "rnaseq3p",
                    d / "out0", PwmSettings(block_lengths=(BLOCK,)))


def test_model_variant_pwm() -> None:
    variant = ModelVariant.parse("pwm")
    assert (variant.kind, variant.metric_kind, variant.shuffled) == ("pwm", "plantt", False)


# ---- one scan for every fold job ----


def test_a_scan_made_once_gives_the_same_fit_and_is_checked(planted: dict, tmp_path: Path) -> None:
    """write_matrix_scan scans every window once; a fit that reads it chooses what a fit that
    scans its own windows chooses, with the same coefficients; a scan made with other settings,
    of other windows, or at a block that does not divide the block lengths is refused, naming
    its file."""
    codes = planted["codes"]
    target = pwm.write_matrix_scan(codes, TOY_SETTINGS, tmp_path / "scan.npy", threads=1)
    record = json.loads((tmp_path / "scan.json").read_text())
    assert record["block_length"] == TOY_SETTINGS.fine_block_length
    assert record["n_windows"] == len(codes) and len(record["matrix_ids"]) > 500
    scanned = pwm.load_matrix_scan(target, TOY_SETTINGS, codes)
    assert isinstance(scanned.features, np.memmap)
    direct = matrix_scan(codes[:7], TOY_SETTINGS.matrices(), TOY_SETTINGS.fine_block_length,
                         threads=1)
    np.testing.assert_array_equal(scanned.features[:7], direct)
    model, table = fit_pwm_pairs(codes, planted["train"], planted["val"], TOY_SETTINGS,
                                 threads=1, scanned=scanned)
    assert (model.block_length, model.alpha) == (planted["model"].block_length,
                                                 planted["model"].alpha)
    np.testing.assert_allclose(model.coef, planted["model"].coef, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(table["val_spearman"], planted["table"]["val_spearman"],
                               atol=1e-9)
    # the scan must fit the settings and the windows
    with pytest.raises(InputError, match=r"scan\.json.*threshold"):
        pwm.load_matrix_scan(target, PwmSettings(block_lengths=(TOY_BLOCK, LENGTH),
                                                 threshold=0.8), codes)
    with pytest.raises(InputError, match=r"scan\.json.*n_windows"):
        pwm.load_matrix_scan(target, TOY_SETTINGS, codes[:10])
    with pytest.raises(InputError, match=r"scan\.json.*do not divide"):
        pwm.load_matrix_scan(target, PwmSettings(block_lengths=(TOY_BLOCK + 7,)), codes)
    with pytest.raises(InputError, match="not found"):
        pwm.load_matrix_scan(tmp_path / "absent.npy", TOY_SETTINGS, codes)
    with pytest.raises(ValueError, match="out must be float32"):
        matrix_scan(codes[:2], TOY_SETTINGS.matrices()[:3], TOY_BLOCK,
                    out=np.zeros((2, 1, 3), dtype=np.float32))


def test_the_pwm_baseline_reads_the_scan_through_the_command_line(
        fold_files: dict, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """plantt train --matrix-scan: the pwm baseline's predictions equal those of a fold that
    scans its own windows; a scan of other settings is a clear error."""
    d = fold_files["dir"]
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["plantt.model_commands"])
    grid = {"block_lengths": [BLOCK], "alphas": [10, 1000, 100000]}
    settings = PwmSettings.from_dict(grid)
    pwm.write_matrix_scan(fold_files["codes"], settings, d / "scan.npy", threads=1)
    common = ["--windows", str(d / "encoded.npy"), "--genes", str(d / "genes.tsv"), "--splits",
              str(d / "splits.tsv"), "--assay", "rnaseq3p", "--architecture", "pwm",
              "--fold", "0", "--set", json.dumps(grid)]
    assert cli.main(["train", *common, "--out-dir", str(d / "own")]) == 0
    assert cli.main(["train", *common, "--out-dir", str(d / "read"), "--matrix-scan",
                     str(d / "scan.npy")]) == 0
    own = pd.read_csv(d / "own" / "predictions.tsv", sep="\t")
    read = pd.read_csv(d / "read" / "predictions.tsv", sep="\t")
    np.testing.assert_allclose(read["prediction"], own["prediction"], rtol=1e-6, atol=1e-9)
    assert cli.main(["train", *common[:-1], json.dumps({**grid, "threshold": 0.9}),
                     "--out-dir", str(d / "bad"), "--matrix-scan", str(d / "scan.npy")]) == 1
