"""The small-data recipe's parts: detectors primed with known matrices, single-gene levels in the
fitted readout, the fitted readout kept as "epoch 0", and the recipes' settings merge."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from plantt.dataset import gene_levels
from plantt.encoding import encode, soft_one_hot
from plantt.jaspar import load_jaspar, matrix_from_rows
from plantt.models import seed_matrix_detectors
from plantt.recipes import train_settings
from plantt.train import GeneLevels, PairSet, TrainSettings, train_fold

MATRIX = matrix_from_rows("toy", [[0.85, 0.05, 0.05, 0.05], [0.05, 0.05, 0.85, 0.05],
                                  [0.05, 0.85, 0.05, 0.05], [0.05, 0.05, 0.05, 0.85],
                                  [0.85, 0.05, 0.05, 0.05], [0.05, 0.05, 0.85, 0.05],
                                  [0.05, 0.05, 0.05, 0.85], [0.05, 0.85, 0.05, 0.05]])


def test_matrix_detector_outputs_relative_score_minus_threshold() -> None:
    conv = torch.nn.Conv1d(4, 3, 15, padding="same")
    gbox = load_jaspar(ids=["MA0570.3"])[0]
    assert seed_matrix_detectors(conv, [MATRIX, gbox.reverse_complement()], 0.8) == 2
    rng = np.random.default_rng(0)
    for matrix, f in ((MATRIX, 0), (gbox.reverse_complement(), 1)):
        seq = encode("".join(rng.choice(list("ACGT"), 200)))
        x = soft_one_hot(torch.from_numpy(seq)[None])
        with torch.no_grad():
            out = conv(x)[0, f].numpy()
        expected = matrix.relative_scores(seq) - 0.8
        # output at the site's centre in the kernel ("same" padding): start + 7 - offset
        offset = (15 - matrix.width) // 2
        centre = np.arange(len(expected)) + 7 - offset
        assert np.allclose(out[centre], expected, atol=1e-5)
        planted = seq.copy()
        planted[50:50 + matrix.width] = matrix.probabilities.argmax(axis=1)
        with torch.no_grad():
            hits = F.relu(conv(soft_one_hot(torch.from_numpy(planted)[None])))[0, f].numpy()
        assert hits.max() == pytest.approx(0.2, abs=1e-5)  # the consensus: relative score 1


def test_matrix_wider_than_the_kernel_keeps_its_most_informative_columns() -> None:
    wide = load_jaspar(ids=["MA1404.1"])[0]  # BPC1, 24 positions
    conv = torch.nn.Conv1d(4, 1, 15)
    seed_matrix_detectors(conv, [wide])
    assert int((conv.weight[0].abs().sum(dim=0) > 0).sum()) == 15
    with pytest.raises(ValueError, match="filters"):
        seed_matrix_detectors(torch.nn.Conv1d(4, 1, 15), [MATRIX, MATRIX])


def _planted_data(rng: np.random.Generator, n_genes: int = 240, length: int = 600):
    """Genes whose level is the count of the toy matrix's sites plus a shared orthogroup part
    (which pairs cancel) and noise; pairs within orthogroups of 4."""
    codes = rng.integers(0, 4, size=(n_genes, length), dtype=np.uint8)
    counts = rng.integers(0, 3, size=n_genes)
    for row, n in enumerate(counts):
        for copy in range(n):
            start = 30 + copy * 250 + int(rng.integers(0, 150))
            codes[row, start:start + MATRIX.width] = MATRIX.sample_site(rng, 0.85)
    level = counts + rng.normal(0, 0.3, n_genes)
    groups = np.repeat(np.arange(n_genes // 4), 4)
    a = np.concatenate([np.flatnonzero(groups == g)[[0, 1, 2]] for g in range(n_genes // 4)])
    b = np.concatenate([np.flatnonzero(groups == g)[[1, 2, 3]] for g in range(n_genes // 4)])
    return codes, level, a, b


def _planted_split(seed: int, motif_file, names: tuple[str, str]):
    """Planted data split into training and validation pairs, and a MEME file holding the toy
    matrix and another one, in the order of ``names``."""
    from plantt.motifs import write_meme

    rng = np.random.default_rng(seed)
    codes, level, a, b = _planted_data(rng)
    n_train = len(a) * 2 // 3
    train = PairSet(a[:n_train], b[:n_train], (level[a] - level[b])[:n_train])
    val = PairSet(a[n_train:], b[n_train:], (level[a] - level[b])[n_train:])
    other = np.full((6, 4), 0.05) + 0.8 * np.eye(4)[[3, 3, 0, 1, 2, 0]]
    matrices = {"toy": MATRIX.probabilities, "other": other}
    write_meme(motif_file, [(name, matrices[name]) for name in names])
    return codes, train, val


def test_single_gene_levels_and_kept_readout(tmp_path) -> None:
    rng = np.random.default_rng(3)
    codes, level, a, b = _planted_data(rng)
    n_train = len(a) * 2 // 3
    train = PairSet(a[:n_train], b[:n_train], (level[a] - level[b])[:n_train])
    val = PairSet(a[n_train:], b[n_train:], (level[a] - level[b])[n_train:])
    genes = np.unique(np.concatenate([train.idx_a, train.idx_b]))
    levels = GeneLevels(genes, level[genes], np.where(genes % 2, "x", "y"))
    settings = TrainSettings(preset="motif", max_epochs=0, fit_readout=True,
                             keep_fitted_readout=True, seed_stem_kmers=4, seed_stem_ks=(6,),
                             single_gene_weights=(0.0, 1.0, 4.0), num_threads=1,
                             model_overrides={"readout_bins": 6})
    result = train_fold(codes, train, val, settings, tmp_path / "m", progress=False,
                        levels=levels)
    info = json.loads((tmp_path / "m" / "model.json").read_text())["provenance"]
    assert result.best_epoch == 0 and info["epochs_run"] == 0
    assert "fitted readout" in info["stop_reason"]
    history = pd.read_csv(tmp_path / "m" / "history.tsv", sep="\t")
    assert history["epoch"].tolist() == [0]
    # the epoch-0 row is the readout's own validation figure, computed as every epoch's is
    assert history["val_spearman"].iloc[0] == pytest.approx(info["readout_fit"]["val_spearman"],
                                                            abs=1e-4)
    assert info["readout_fit"]["single_gene_weight"] in (0.0, 1.0, 4.0)
    # without levels, the same settings fit the pairs alone
    alone = train_fold(codes, train, val, settings, tmp_path / "p", progress=False)
    assert "single_gene_weight" not in json.loads(
        (tmp_path / "p" / "model.json").read_text())["provenance"]["readout_fit"]
    assert alone.best_metric <= result.best_metric + 1e-9  # 0 is in the grid: never worse


def test_max_epochs_zero_needs_a_kept_fitted_readout() -> None:
    with pytest.raises(ValueError, match="max_epochs"):
        TrainSettings(max_epochs=0)
    with pytest.raises(ValueError, match="max_epochs"):
        TrainSettings(max_epochs=0, fit_readout=True)
    with pytest.raises(ValueError, match="single_gene_weights"):
        TrainSettings(single_gene_weights=(-1.0,))
    TrainSettings(max_epochs=0, fit_readout=True, keep_fitted_readout=True)


def test_gene_levels_from_a_splits_table() -> None:
    from plantt.dataset import EncodedWindows

    genes = pd.DataFrame({"species": ["s1", "s1", "s2", "s2"], "gene_id": ["a", "b", "c", "d"]})
    windows = EncodedWindows(np.zeros((4, 10), dtype=np.uint8), genes)
    splits = pd.DataFrame({
        "orthogroup": ["o1", "o2", "o3"], "gene_a": ["a", "b", "a"], "species_a": ["s1"] * 3,
        "gene_b": ["c", "d", "d"], "species_b": ["s2"] * 3, "d": [1.0, -1.0, 0.5],
        "mean_a": [7.0, 1.0, 7.0], "mean_b": [3.0, 0.0, 0.0], "fold": [0, 0, 1],
        "set": ["train", "train", "test"]})
    levels = gene_levels(splits, windows, 0)
    by_gene = dict(zip(genes["gene_id"].to_numpy()[levels.idx], levels.target, strict=True))
    assert by_gene == pytest.approx({"a": 3.0, "b": 1.0, "c": 2.0, "d": 0.0})
    assert set(levels.species) == {"s1", "s2"}
    assert gene_levels(splits.drop(columns=["mean_a"]), windows, 0) is None
    shuffled = levels.shuffled(1)
    for sp in ("s1", "s2"):
        rows = levels.species == sp
        assert sorted(shuffled.target[rows]) == sorted(levels.target[rows])


def test_recipes_merge_in_order_and_refuse_unknown_names() -> None:
    train = {"recipe": "small_data", "settings": {"preset": "paper", "max_epochs": 50},
             "recipes": {"small_data": {"plantt": {"preset": "motif", "max_epochs": 1},
                                        "washburn": {"max_epochs": 2}}},
             "model_settings": {"plantt": {"max_epochs": 3}}}
    assert train_settings(train, "plantt") == {"preset": "motif", "max_epochs": 3}
    assert train_settings(train, "washburn") == {"preset": "paper", "max_epochs": 2}
    assert train_settings(train, "plantt", "paper") == {"preset": "paper", "max_epochs": 3}
    with pytest.raises(ValueError, match="no entry under train.recipes"):
        train_settings({**train, "recipe": "tiny"}, "plantt")
    with pytest.raises(ValueError, match="unknown model kind"):
        train_settings(train, "cnn")


def test_grouped_bins_are_an_exact_setting_of_the_projection() -> None:
    from plantt.train import _coarser_bins, _finer_weights

    rng = np.random.default_rng(0)
    features = rng.normal(size=(7, 3 * 30)).astype(np.float32)
    for group in (1, 4, 5, 30):
        coarse = _coarser_bins(features, 30, group)
        assert coarse.shape == (7, 3 * -(-30 // group))
        weights = rng.normal(size=coarse.shape[1]).astype(np.float32)
        fine = _finer_weights(weights, 30, group)
        assert fine.shape == (90,)
        assert np.allclose(features @ fine, coarse @ weights, atol=1e-4)


def test_readout_reads_the_detector_set_validation_chooses(tmp_path) -> None:
    """With matrices and k-mers seeded, the fitted readout reads every detector, only the
    matrices or only the k-mers, whichever the validation pairs prefer; the detectors it does
    not read get weight 0, and the grid over all three is never worse than any one of them."""
    from plantt.models import load_model

    motif_file = tmp_path / "known.meme"
    codes, train, val = _planted_split(5, motif_file, ("toy", "other"))
    base = dict(preset="primed", max_epochs=0, fit_readout=True, keep_fitted_readout=True,
                seed_stem_matrices=2, seed_stem_motif_file=str(motif_file),
                seed_stem_matrix_block_length=200, seed_stem_kmers=4, seed_stem_ks=(6,),
                seed_stem_block_length=200, num_threads=1,
                model_overrides={"stem_channels": 16, "max_channels": 16, "readout_bins": 6})
    chosen: dict[tuple[str, ...], float] = {}
    for sets in (("matrices",), ("kmers",), ("all",), ("all", "matrices", "kmers")):
        folder = tmp_path / "_".join(sets)
        result = train_fold(codes, train, val, TrainSettings(**base,
                                                             fit_readout_detector_sets=sets),
                            folder, progress=False)
        chosen[sets] = result.best_metric
        info = json.loads((folder / "model.json").read_text())["provenance"]
        assert info["seeded_matrices"] == ["toy", "other"] and len(info["seeded_kmers"]) == 4
        name = info["readout_fit"].get("detector_set", "all")
        assert name in sets
        weights = load_model(folder).tower.projection.weight.detach().reshape(16, 6).abs()
        read = weights.sum(axis=1) > 0
        # filters 0-3: the two matrices in both orientations; 4-7: the k-mers; 8-15: unseeded
        expected = {"matrices": [0, 1, 2, 3], "kmers": [4, 5, 6, 7]}.get(name)
        if expected is not None:
            assert np.flatnonzero(read.numpy()).tolist() == expected
        else:
            assert bool(read.all())
    assert chosen[("all", "matrices", "kmers")] >= max(chosen.values()) - 1e-6
    # the planted sites are the toy matrix's: its detectors alone beat the k-mers alone
    assert chosen[("matrices",)] > chosen[("kmers",)]


def test_detector_sets_need_a_readout_of_the_stem_itself(tmp_path) -> None:
    rng = np.random.default_rng(6)
    codes, level, a, b = _planted_data(rng, n_genes=80)
    pairs = PairSet(a, b, level[a] - level[b])
    settings = TrainSettings(preset="motif", max_epochs=0, fit_readout=True,
                             keep_fitted_readout=True, seed_stem_kmers=2, seed_stem_ks=(6,),
                             fit_readout_detector_sets=("kmers",), num_threads=1,
                             # a 1x1 convolution between the detectors and the readout
                             model_overrides={"readout_bins": 6, "readout_channels": 4})
    with pytest.raises(ValueError, match="fit_readout_detector_sets"):
        train_fold(codes, pairs, pairs, settings, tmp_path / "m", progress=False)
    with pytest.raises(ValueError, match="fit_readout_detector_sets"):
        TrainSettings(fit_readout_detector_sets=("motifs",))



def test_readout_averaged_over_the_best_fits(tmp_path) -> None:
    """fit_readout_average_top: the readout is the mean of the best fits' weights, its validation
    figure that of the mean prediction; one fit is the best fit itself."""
    from plantt.models import load_model

    rng = np.random.default_rng(9)
    codes, level, a, b = _planted_data(rng)
    n_train = len(a) * 2 // 3
    train = PairSet(a[:n_train], b[:n_train], (level[a] - level[b])[:n_train])
    val = PairSet(a[n_train:], b[n_train:], (level[a] - level[b])[n_train:])
    base = dict(preset="motif", max_epochs=0, fit_readout=True, keep_fitted_readout=True,
                seed_stem_kmers=4, seed_stem_ks=(6,), fit_readout_penalties=(1.0, 10.0, 100.0),
                fit_readout_bin_groups=(1, 3), num_threads=1, model_overrides={"readout_bins": 6})
    projections = {}
    for top in (1, 3, 6):
        folder = tmp_path / str(top)
        train_fold(codes, train, val, TrainSettings(**base, fit_readout_average_top=top), folder,
                   progress=False)
        fit = json.loads((folder / "model.json").read_text())["provenance"]["readout_fit"]
        assert len(fit.get("averaged", [[fit["penalty"]]])) == top
        projections[top] = load_model(folder).tower.projection.weight.detach().numpy().ravel()
        if top > 1:
            # the best fit is listed first and named as the choice
            assert fit["averaged"][0][0] == fit["penalty"]
            assert len({tuple(f) for f in fit["averaged"]}) == top
    # all six fits averaged: each bin group's three penalties; bins grouped by 3 repeat weights
    assert not np.allclose(projections[1], projections[6])
    assert np.isfinite(projections[3]).all()


def test_seeding_reads_a_scan_made_once_and_chooses_the_same(tmp_path) -> None:
    """The matrices that start the detectors are chosen from a scan made once for every fold
    (seeding_scan_settings) exactly as from the fold's own scan: same matrices, same readout."""
    from plantt.pwm import load_matrix_scan, write_matrix_scan
    from plantt.train import seeding_scan_settings

    motif_file = tmp_path / "known.meme"
    codes, train, val = _planted_split(7, motif_file, ("other", "toy"))
    settings = TrainSettings(preset="primed", max_epochs=0, fit_readout=True,
                             keep_fitted_readout=True, seed_stem_matrices=1,
                             seed_stem_motif_file=str(motif_file),
                             seed_stem_matrix_block_length=200, num_threads=1,
                             model_overrides={"stem_channels": 8, "max_channels": 8,
                                              "readout_bins": 6})
    scan_settings = seeding_scan_settings(settings)
    assert scan_settings.block_lengths == (200,) and scan_settings.threshold == 0.8
    write_matrix_scan(codes, scan_settings, tmp_path / "scan.npy", threads=1)
    scanned = load_matrix_scan(tmp_path / "scan.npy", scan_settings, codes)
    results = {}
    for name, scan in (("own", None), ("read", scanned)):
        results[name] = train_fold(codes, train, val, settings, tmp_path / name, progress=False,
                                   matrix_scan=scan)
        info = json.loads((tmp_path / name / "model.json").read_text())["provenance"]
        assert info["seeded_matrices"] == ["toy"]  # the planted one, of the two
    assert results["read"].best_metric == pytest.approx(results["own"].best_metric, abs=1e-9)
