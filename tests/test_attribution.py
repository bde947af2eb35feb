"""DeepLift attributions: completeness, pair references, max-pool rewrite, profiles, truth."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from conftest import random_plantt_model, write_two_fold_inputs
from plantt import attribution as A
from plantt import model_commands
from plantt.encoding import decode, soft_one_hot
from plantt.models import TowerSettings, TwoTower, save_model
from plantt.windows import DEFAULT_LAYOUT

CONV_DOWNSAMPLING = TowerSettings(stem_channels=8, stem_stride=3, stem_kernel=5,
                                  stage_kernels=(5, 3, 3), blocks_per_stage=1, inner_convs=1,
                                  max_channels=16, embedding_dim=6)
MAXPOOL_DOWNSAMPLING = TowerSettings(stem_channels=8, stem_stride=4, stem_kernel=7, stem_pool=True,
                                     stage_kernels=(5, 3, 3), blocks_per_stage=1, inner_convs=1,
                                     max_channels=16, downsample="maxpool", readout_bins=3,
                                     embedding_dim=6)


def random_model(settings: TowerSettings, seq_len: int, seed: int = 0) -> TwoTower:
    return random_plantt_model(settings, seq_len, seed)


def random_codes(n: int, length: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 5, size=(n, length)).astype(np.uint8)


def scores(model: TwoTower, codes: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.score(soft_one_hot(codes)).double().numpy()


# A pooled stem feeding several readout maps directly (no residual block): DeepLift stays exact.
MULTI_READOUT = TowerSettings(stem_channels=8, stem_stride=5, stem_kernel=9, stem_pool=True,
                              stage_kernels=(3,), blocks_per_stage=0, max_channels=8,
                              readout_bins=3, readout_channels=4, embedding_dim=2,
                              stem_bias_init=-0.5)


@pytest.mark.parametrize("settings", [CONV_DOWNSAMPLING, MAXPOOL_DOWNSAMPLING, MULTI_READOUT],
                         ids=["conv", "maxpool", "multi-readout"])
def test_zero_reference_attributions_sum_to_the_score(settings: TowerSettings) -> None:
    model = random_model(settings, 90, seed=1)
    codes = random_codes(5, 90, seed=2)
    result = A.deeplift_scores(model, codes, batch_size=3)
    with torch.no_grad():
        zero_score = float(model.score(torch.zeros(1, 4, 90))[0])
    expected = scores(model, codes) - zero_score
    np.testing.assert_allclose(result.output - result.reference_output, expected, atol=1e-5)
    np.testing.assert_allclose(result.values.sum(axis=(1, 2)), expected, atol=1e-4)
    assert result.max_abs_delta < 1e-4
    assert np.abs(expected).max() > 1e-2  # a real difference is explained


def test_completeness_is_exact_in_double_precision() -> None:
    model = random_model(MAXPOOL_DOWNSAMPLING, 90, seed=3).double()
    result = A.deeplift_scores(model, random_codes(4, 90, seed=4))
    assert result.values.dtype == np.float64
    assert result.max_abs_delta < 1e-10


def test_pair_attributions_explain_the_pair_prediction() -> None:
    model = random_model(MAXPOOL_DOWNSAMPLING, 90, seed=5)
    codes_a, codes_b = random_codes(4, 90, seed=6), random_codes(4, 90, seed=7)
    pairs = A.pair_attributions(model, codes_a, codes_b)
    with torch.no_grad():
        expected = model(soft_one_hot(codes_a), soft_one_hot(codes_b)).double().numpy()
    np.testing.assert_allclose(pairs.prediction, expected, atol=1e-5)
    np.testing.assert_allclose(pairs.a.sum(axis=(1, 2)), expected, atol=1e-4)
    np.testing.assert_allclose(pairs.b.sum(axis=(1, 2)), expected, atol=1e-4)
    assert pairs.max_abs_delta < 1e-4
    # identical orthologs: nothing to explain, nothing attributed
    same = A.pair_attributions(model, codes_a[:1], codes_a[:1])
    assert np.abs(same.a).max() == 0 and same.prediction[0] == 0


@pytest.mark.parametrize("kernel,ceil_mode,length", [(2, True, 11), (2, False, 11), (3, True, 10),
                                                     (8, True, 21), (5, False, 23), (1, True, 4)])
def test_pairwise_max_pool_equals_max_pool(kernel: int, ceil_mode: bool, length: int) -> None:
    x = torch.randn(3, 2, length, generator=torch.Generator().manual_seed(kernel + length))
    pool = nn.MaxPool1d(kernel, ceil_mode=ceil_mode)
    assert A.PairwiseMaxPool1d.convertible(pool)
    rewritten = A.PairwiseMaxPool1d.from_pool(pool)
    torch.testing.assert_close(rewritten(x), pool(x), atol=1e-6, rtol=0)
    assert not A.PairwiseMaxPool1d.convertible(nn.MaxPool1d(3, stride=2))


def test_prepared_copy_leaves_the_model_alone() -> None:
    model = random_model(MAXPOOL_DOWNSAMPLING, 90, seed=8)
    prepared = A.deeplift_module(model)
    assert any(isinstance(m, nn.MaxPool1d) for m in model.modules())
    assert not any(isinstance(m, nn.MaxPool1d) for m in prepared.modules())
    relus = [m for m in prepared.modules() if isinstance(m, nn.ReLU)]
    assert len({id(m) for m in relus}) == len(relus)
    x = soft_one_hot(random_codes(3, 90, seed=9))
    with torch.no_grad():
        torch.testing.assert_close(prepared(x), model.score(x), atol=1e-5, rtol=0)


def test_grammar_regions_in_window_coordinates() -> None:
    regions = {name: (start, end) for name, start, end in A.grammar_window_regions()}
    assert regions["tata_like"] == (880, 980)  # tss -120..-20
    assert regions["ime_like"] == (1020, 1480)  # tss 20..480
    assert regions["are_like"] == (2005, 2200)  # tts 5..200 (offset 0 = index 2000)
    assert regions["stab_cds_like"] == (1520, 1760)  # tts -480..-240
    transcription = A.grammar_window_regions(processes=("transcription",))
    assert {name for name, _, _ in transcription} == {
        "silencer_like", "gbox_like", "tcp_like", "tata_like", "ime_like"}
    assert A.ASSAY_PROCESSES["proseq"] == ("transcription",)


def test_peak_enrichment_separates_peaked_from_flat_profiles() -> None:
    rng = np.random.default_rng(0)
    regions = [("m1", 100, 120), ("m2", 400, 430)]
    flat = rng.random(600) * 0.1 + 1.0
    peaked = flat.copy()
    peaked[100:120] += 2.0
    peaked[400:430] += 1.0
    result = A.attribution_peak_enrichment(peaked, regions)
    assert result["ratio"] > 2 and result["top_fraction_inside"] == 1.0
    assert result["inside_fraction"] == pytest.approx(50 / 600)
    baseline = A.attribution_peak_enrichment(flat, [(s, e) for _, s, e in regions])
    assert 0.9 < baseline["ratio"] < 1.1 and baseline["top_fraction_inside"] < 0.5
    # masked positions are left out of both sides
    spiky = flat.copy()
    spiky[[5, 6]] = 100.0
    assert A.attribution_peak_enrichment(spiky, regions)["ratio"] < 0.9
    assert A.attribution_peak_enrichment(spiky, regions, exclude=np.array([5, 6])) == \
        A.attribution_peak_enrichment(flat, regions, exclude=np.array([5, 6]))
    table = pd.DataFrame({"position": np.arange(600), "mean_abs_attribution": peaked})
    assert A.attribution_peak_enrichment(table, regions) == result
    with pytest.raises(ValueError, match="some but not all"):
        A.attribution_peak_enrichment(flat, [(0, 600)])


def test_motif_occurrence_mask_marks_counted_occurrences_only() -> None:
    from plantt.encoding import encode

    windows = np.full((2, 3000), encode("A")[0], dtype=np.uint8)
    tata, are = encode("CTATAAATACC"), encode("ATTTATTTATT")  # tss -120..-20, tts 5..200
    windows[0, 900:911] = tata  # inside [880, 980)
    windows[0, 975:986] = tata  # runs past the region's end: not counted
    windows[1, 2010:2021] = are  # inside [2005, 2200)
    windows[1, 100:111] = are  # outside its region
    mask = A.motif_occurrence_mask(windows)
    assert np.nonzero(mask[0])[0].tolist() == list(range(900, 911))
    assert np.nonzero(mask[1])[0].tolist() == list(range(2010, 2021))
    transcription_only = A.motif_occurrence_mask(windows, processes=("transcription",))
    assert not transcription_only[1].any() and transcription_only[0].sum() == 11
    values = np.ones((2, 3000))
    values[mask] = 3.0
    enrichment = A.attribution_peak_enrichment(values, mask,
                                               exclude=DEFAULT_LAYOUT.masked_indices())
    assert enrichment["ratio"] == pytest.approx(3.0)
    assert enrichment["top_fraction_inside"] == 1.0
    with pytest.raises(ValueError, match="shape"):
        A.attribution_peak_enrichment(values[0], mask)


def planted_windows() -> tuple[np.ndarray, dict[str, list[slice]]]:
    """Four all-A windows with default-grammar motifs planted in and outside their regions, and
    the bases of the in-region (counted) occurrences per motif."""
    from plantt.encoding import encode

    windows = np.full((4, 3000), encode("A")[0], dtype=np.uint8)
    windows[:, DEFAULT_LAYOUT.masked_indices()] = 4  # N, as the encoded windows have
    tata, gbox = encode("CTATAAATACC"), encode("CCACGTGGCA")  # tss -120..-20, -700..-150
    windows[0, 900:911] = tata  # inside [880, 980)
    windows[0, 100:111] = tata  # outside its region: not counted
    windows[0, 400:410] = gbox  # inside [300, 850)
    windows[1, 2010:2025] = encode("ATTTATTTATTTATT")  # are_like twice, overlapping, tts 5..200
    windows[2, 500:510] = gbox
    windows[2, 100:111] = encode("GCTCCGCTTCA")  # stab_cds_like outside tts -480..-240
    counted = {"tata_like": [np.s_[0, 900:911]], "gbox_like": [np.s_[0, 400:410],
                                                              np.s_[2, 500:510]],
               "are_like": [np.s_[1, 2010:2025]]}
    return windows, counted


def test_motif_attribution_table_per_motif() -> None:
    windows, counted = planted_windows()
    signs = np.where(np.arange(3000) % 2, 1.0, -1.0)  # |contribution| is what counts
    contribution = np.tile(signs, (4, 1))
    for bases in counted.values():
        for where in bases:
            contribution[where] *= 10.0
    contribution[:, DEFAULT_LAYOUT.masked_indices()] = 1000.0  # masked bases: left out
    table = A.motif_attribution_table(contribution, windows).set_index("motif")
    assert list(table.reset_index().columns) == A.MOTIF_ATTRIBUTION_COLUMNS
    assert table.index[-1] == A.ALL_MOTIFS
    assert len(table) == 9 + 1  # every motif of the default grammar, then the pooled row
    for name in counted:
        assert table.loc[name, "ratio"] == pytest.approx(10.0), name
        assert table.loc[name, "mean_abs_elsewhere"] == pytest.approx(1.0)
        assert table.loc[name, "top_fraction_inside"] == 1.0
    assert table.loc["all", "ratio"] == pytest.approx(10.0)
    tata, gbox, are = table.loc["tata_like"], table.loc["gbox_like"], table.loc["are_like"]
    # the copy outside the region does not count
    assert (tata["n_occurrences"], tata["n_genes_with_occurrence"], tata["n_positions"]) == \
        (1, 1, 11)
    assert (gbox["n_occurrences"], gbox["n_genes_with_occurrence"]) == (2, 2)
    assert (are["n_occurrences"], are["n_positions"]) == (2, 15)  # overlapping: both count
    assert (tata["region_start"], tata["region_end"], tata["anchor"]) == (880, 980, "tss")
    assert (are["process"], are["sequence"]) == ("stability", "ATTTATTTATT")
    # no occurrence (stab_cds_like only outside its region): kept, 0 occurrences, no ratio
    for name in ("stab_cds_like", "silencer_like", "puf_like"):
        assert table.loc[name, "n_occurrences"] == 0 and np.isnan(table.loc[name, "ratio"])
        assert table.loc[name, "n_genes"] == 4
    assert table.loc["all", "n_occurrences"] == 5
    # equal contributions: every motif with occurrences gets ratio 1
    flat = A.motif_attribution_table(np.ones((4, 3000)), windows).set_index("motif")
    np.testing.assert_allclose(flat.loc[list(counted) + ["all"], "ratio"], 1.0)
    # the pooled row is the occurrence-mask enrichment
    mask = A.motif_occurrence_mask(windows)
    pooled = A.attribution_peak_enrichment(np.abs(contribution), mask,
                                           exclude=DEFAULT_LAYOUT.masked_indices())
    assert table.loc["all", "ratio"] == pytest.approx(pooled["ratio"])
    assert table.loc["all", "top_fraction_chance"] == pytest.approx(pooled["inside_fraction"])


def test_motif_attribution_table_for_one_assay() -> None:
    windows, counted = planted_windows()
    contribution = np.ones((4, 3000))
    contribution[counted["tata_like"][0]] = 4.0
    contribution[counted["are_like"][0]] = 7.0  # a stability motif: background for PRO-seq
    table = A.motif_attribution_table(contribution, windows,
                                      processes=A.ASSAY_PROCESSES["proseq"]).set_index("motif")
    assert list(table.index) == ["silencer_like", "gbox_like", "tcp_like", "tata_like",
                                 "ime_like", "all"]
    elsewhere = (3000 - 6) * 4 - 11 - 20  # unmasked bases minus tata and gbox occurrences
    assert table.loc["tata_like", "mean_abs_elsewhere"] == pytest.approx(
        (elsewhere + 15 * 6) / elsewhere)
    assert table.loc["gbox_like", "ratio"] < 1
    with pytest.raises(ValueError, match="shape"):
        A.motif_attribution_table(contribution[:3], windows)
    with pytest.raises(ValueError, match="layout"):
        A.motif_attribution_table(contribution[:, :100], windows[:, :100])


def test_plot_motif_attribution(tmp_path) -> None:
    windows, counted = planted_windows()
    contribution = np.ones((4, 3000))
    contribution[counted["tata_like"][0]] = 20.0
    contribution[counted["are_like"][0]] = 0.2
    table = A.motif_attribution_table(contribution, windows)
    out = tmp_path / "motifs.png"
    A.plot_motif_attribution(table, out, "test")
    assert out.stat().st_size > 5000
    empty = tmp_path / "empty.png"  # real data: no grammar, header-only table
    A.plot_motif_attribution(pd.DataFrame(columns=A.MOTIF_ATTRIBUTION_COLUMNS), empty, "test")
    assert empty.stat().st_size > 1000


def test_cv_profile_attributes_each_fold_with_its_own_model(tmp_path) -> None:
    length, n_genes = 60, 12
    codes = random_codes(n_genes, length, seed=10)
    write_two_fold_inputs(tmp_path, codes)
    models = {}
    for fold in (0, 1):
        models[fold] = tmp_path / f"fold_{fold}"
        save_model(models[fold], random_model(CONV_DOWNSAMPLING, length, seed=20 + fold))
    result = A.cv_attribution_profile(models, tmp_path / "encoded.npy", tmp_path / "genes.tsv",
                                      tmp_path / "splits.tsv", max_genes_per_fold=4, seed=1)
    profile, summary = result.profile, result.summary
    assert result.contribution.shape == (8, length)
    assert result.genes["fold"].tolist() == [0] * 4 + [1] * 4
    assert [f"g{r}" for r in result.genes["row"]] == result.genes["gene_id"].tolist()
    assert list(profile.columns) == ["position", "mean_abs_attribution", "fold_0", "fold_1"]
    assert summary["n_genes"].tolist() == [4, 4] and (summary["max_abs_delta"] < 1e-4).all()
    np.testing.assert_allclose(profile["mean_abs_attribution"],
                               (profile["fold_0"] + profile["fold_1"]) / 2)
    # fold 1's profile comes from fold 1's model on fold 1's (sampled) test genes
    from plantt.dataset import read_splits
    from plantt.ism import fold_test_genes
    chosen = fold_test_genes(read_splits(tmp_path / "splits.tsv"), 1, 4, seed=1)
    assert set(chosen["gene_id"]) <= {f"g{i}" for i in range(6, 12)}
    rows_1 = [int(g[1:]) for g in chosen["gene_id"]]
    direct = A.deeplift_scores(random_model(CONV_DOWNSAMPLING, length, seed=21), codes[rows_1])
    np.testing.assert_allclose(profile["fold_1"], A.position_profile(direct.per_position),
                               atol=1e-6)
    np.testing.assert_allclose(result.contribution[4:], direct.per_position, atol=1e-6)
    result.save_genes(tmp_path / "genes.npz", codes[result.genes["row"]])
    saved = np.load(tmp_path / "genes.npz")
    assert saved["gene_id"].tolist() == result.genes["gene_id"].tolist()
    assert saved["codes"].shape == (8, length)
    out = tmp_path / "profile.png"
    A.plot_attribution_profile(profile, out, DEFAULT_LAYOUT, "test",
                               regions=[("m", 10, 20)])
    assert out.stat().st_size > 1000


def test_cli_zero_and_pair_reference(tmp_path) -> None:
    length = 60
    save_model(tmp_path / "model", random_model(CONV_DOWNSAMPLING, length, seed=30))
    codes = random_codes(3, length, seed=31)
    other = random_codes(3, length, seed=32)
    for name, rows in (("a.fa", codes), ("b.fa", other)):
        (tmp_path / name).write_text("".join(f">s{i}\n{decode(r)}\n" for i, r in enumerate(rows)))
    parser = argparse.ArgumentParser()
    model_commands.register_cli(parser.add_subparsers())
    base = ["attribute", "--model", str(tmp_path / "model"), "--fasta", str(tmp_path / "a.fa")]
    args = parser.parse_args(base + ["--out", str(tmp_path / "zero.npz"), "--profile",
                                     str(tmp_path / "profile.tsv")])
    assert args.func(args) == 0
    zero = np.load(tmp_path / "zero.npz")
    assert zero["attribution"].shape == (3, 4, length)
    assert pd.read_csv(tmp_path / "profile.tsv", sep="\t").shape == (length, 2)
    args = parser.parse_args(base + ["--reference", str(tmp_path / "b.fa"), "--out",
                                     str(tmp_path / "pair.npz")])
    assert args.func(args) == 0
    pair = np.load(tmp_path / "pair.npz")
    np.testing.assert_allclose(pair["attribution_a"].sum(axis=(1, 2)), pair["prediction"],
                               atol=1e-4)
