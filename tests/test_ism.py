"""In-silico mutagenesis: agreement with brute force, N handling, percent change, outputs, CLI."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import random_plantt_model
from plantt import ism, model_commands
from plantt.encoding import N_CODE, decode, soft_one_hot
from plantt.io import InputError
from plantt.models import (
    TowerSettings,
    TwoTower,
    WashburnClassifier,
    WashburnSettings,
    save_model,
)

SETTINGS = TowerSettings(stem_channels=8, stem_stride=2, stem_kernel=4, stage_kernels=(5, 3, 3),
                         blocks_per_stage=1, inner_convs=1, max_channels=16, embedding_dim=6)


def random_model(seq_len: int, seed: int = 0, settings: TowerSettings = SETTINGS) -> TwoTower:
    return random_plantt_model(settings, seq_len, seed)


def random_codes(length: int, seed: int, n_fraction: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=length).astype(np.uint8)
    codes[rng.random(length) < n_fraction] = N_CODE
    return codes


def brute_force(model: TwoTower, codes: np.ndarray) -> np.ndarray:
    """f(mutant, reference) through the pair model's forward, which runs the tower on both the
    mutant and the reference (no shared reference embedding, no ISM code)."""
    effect = np.full((codes.size, 4), np.nan)
    mutants, where = [], []
    for position in range(codes.size):
        if codes[position] == N_CODE:
            continue
        for alt in range(4):
            mutant = codes.copy()
            mutant[position] = alt
            mutants.append(mutant)
            where.append((position, alt))
    a = soft_one_hot(np.stack(mutants))
    b = soft_one_hot(codes).expand(len(mutants), -1, -1)
    with torch.no_grad():
        predictions = model(a, b).double().numpy()
    for (position, alt), value in zip(where, predictions, strict=True):
        effect[position, alt] = value
    return effect


def test_ism_matches_brute_force_pair_predictions() -> None:
    model = random_model(48, seed=1)
    codes = random_codes(48, seed=2, n_fraction=0.1)
    result = ism.ism_scores(model, codes, batch_size=17)  # batches straddle positions
    expected = brute_force(model, codes)
    assert np.isfinite(expected).sum() > 100
    np.testing.assert_allclose(result.effect, expected, atol=1e-5, rtol=0)
    assert np.array_equal(np.isnan(result.effect), np.isnan(expected))
    # the effects are not trivially zero: the check above could fail
    assert np.nanmax(np.abs(result.effect)) > 1e-3
    with torch.no_grad():
        assert result.reference_score == pytest.approx(
            float(model.score(soft_one_hot(codes))[0]), abs=1e-6)


def test_reference_base_is_zero_and_n_positions_are_skipped_or_all_scored() -> None:
    model = random_model(40, seed=3)
    codes = random_codes(40, seed=4)
    codes[[5, 6]] = N_CODE
    skipped = ism.ism_scores(model, codes)
    assert np.isnan(skipped.effect[[5, 6]]).all()
    bases = np.nonzero(codes != N_CODE)[0]
    assert np.all(skipped.effect[bases, codes[bases]] == 0.0)
    assert np.isfinite(skipped.effect[bases]).all()
    included = ism.ism_scores(model, codes, include_n=True)
    assert np.isfinite(included.effect).all()
    np.testing.assert_allclose(included.effect[bases], skipped.effect[bases], atol=1e-6)
    table = included.to_frame("g1")
    assert len(table) == 3 * (40 - 2) + 4 * 2
    assert set(table.loc[table["position"] == 5, "alt"]) == set("ACGT")
    assert (table.loc[table["position"] == 5, "ref"] == "N").all()


def test_positions_restrict_the_scored_positions() -> None:
    model = random_model(40, seed=5)
    codes = random_codes(40, seed=6)
    result = ism.ism_scores(model, codes, positions=np.array([3, 10, 11]))
    scored = np.nonzero(np.isfinite(result.effect).any(axis=1))[0]
    assert scored.tolist() == [3, 10, 11]
    full = ism.ism_scores(model, codes)
    np.testing.assert_allclose(result.effect[scored], full.effect[scored], atol=1e-6)


def test_substitutions_enumerates_three_per_base() -> None:
    codes = np.array([0, 1, N_CODE, 3], dtype=np.uint8)
    pos, alt = ism.substitutions(codes)
    assert pos.tolist() == [0, 0, 0, 1, 1, 1, 3, 3, 3]
    assert alt.tolist() == [1, 2, 3, 0, 2, 3, 0, 1, 2]
    pos, alt = ism.substitutions(codes, include_n=True)
    assert pos.tolist().count(2) == 4
    batch = ism.mutant_batch(codes, np.array([0, 3]), np.array([2, 1], dtype=np.uint8))
    assert [decode(row.numpy()) for row in batch] == ["GCNT", "ACNC"]


def test_percent_change_uses_absolute_reference_and_epsilon_for_zero() -> None:
    assert ism.percent_change(0.5, 2.0) == pytest.approx(25.0)
    assert ism.percent_change(0.5, -2.0) == pytest.approx(25.0)
    assert ism.percent_change(-1e-4, 0.0) == pytest.approx(-100.0)
    result = ism.IsmResult(np.zeros(2, dtype=np.uint8), -4.0,
                           np.array([[0.0, 1.0, -2.0, np.nan], [0, 0, 0, 0]]))
    np.testing.assert_allclose(result.percent_change[0, :3], [0.0, 25.0, -50.0])
    np.testing.assert_allclose(result.strongest_per_position(), [-2.0, 0.0])


def test_ism_refuses_training_mode_and_washburn_models() -> None:
    model = random_model(32, seed=7).train()
    with pytest.raises(ValueError, match="eval mode"):
        ism.ism_scores(model, random_codes(32, 1))
    with pytest.raises(InputError, match="two-tower"):
        ism.require_plantt(WashburnClassifier(WashburnSettings(block_channels=(4, 4, 4),
                                                               dense_units=(4,)), 600))


def test_flank_positions_cover_tss_and_tts() -> None:
    from plantt.windows import WindowLayout

    layout = WindowLayout(20, 12, 20, 3)
    positions = ism.flank_positions(2, layout.length, layout)
    assert positions.tolist() == [18, 19, 20, 21, 22, 41, 42, 43, 44, 45]
    assert ism.flank_positions(None, 64, layout) is None


def test_cli_writes_table_npz_and_figures(tmp_path) -> None:
    length = 64  # layout 20 + 2 * 12 + 20
    model = random_model(length, seed=8)
    save_model(tmp_path / "model", model)
    seqs = {f"gene{i}": decode(random_codes(length, 10 + i)) for i in range(3)}
    fasta = tmp_path / "seqs.fa"
    fasta.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    parser = argparse.ArgumentParser()
    model_commands.register_cli(parser.add_subparsers())
    args = parser.parse_args(["ism", "--model", str(tmp_path / "model"), "--fasta", str(fasta),
                              "--out-dir", str(tmp_path / "out"), "--batch-size", "50",
                              "--genes", "gene2", "gene0", "--upstream", "20", "--gene-part",
                              "12", "--downstream", "20"])
    assert args.func(args) == 0
    table = pd.read_csv(tmp_path / "out" / "ism.tsv", sep="\t")
    assert list(table.columns) == ism.ISM_COLUMNS
    assert table["gene"].unique().tolist() == ["gene2", "gene0"]
    assert len(table) == 2 * 3 * length
    npz = np.load(tmp_path / "out" / "ism.npz")
    assert npz["genes"].tolist() == ["gene2", "gene0"]
    assert npz["effect"].shape == (2, length, 4)
    row = table.iloc[7]
    gene_index = npz["genes"].tolist().index(row["gene"])
    assert npz["effect"][gene_index, row["position"], "ACGT".index(row["alt"])] == \
        pytest.approx(row["effect"], abs=1e-5)
    for name in ("heatmap.png", "zoom.png"):
        assert (tmp_path / "out" / name).stat().st_size > 1000


def test_cli_float64_scores_with_a_float64_tower(tmp_path) -> None:
    length = 64
    model = random_model(length, seed=9)
    save_model(tmp_path / "model", model)
    codes = random_codes(length, 21)
    (tmp_path / "one.fa").write_text(f">g\n{decode(codes)}\n")
    parser = argparse.ArgumentParser()
    model_commands.register_cli(parser.add_subparsers())
    common = ["--model", str(tmp_path / "model"), "--fasta", str(tmp_path / "one.fa"),
              "--upstream", "20", "--gene-part", "12", "--downstream", "20"]
    for name, extra in (("f32", []), ("f64", ["--float64"])):
        args = parser.parse_args(["ism", *common, "--out-dir", str(tmp_path / name), *extra])
        assert args.func(args) == 0
    f64 = np.load(tmp_path / "f64" / "ism.npz")["effect"][0]
    f32 = np.load(tmp_path / "f32" / "ism.npz")["effect"][0]
    # float64 brute force: each substitution through the float64 tower
    double = model.double().eval()
    with torch.no_grad():
        reference = double.tower(soft_one_hot(codes[None], dtype=torch.float64)).sum()
        for position, alt in [(3, (codes[3] + 1) % 4), (40, (codes[40] + 2) % 4)]:
            mutant = codes.copy()
            mutant[position] = alt
            score = double.tower(soft_one_hot(mutant[None], dtype=torch.float64)).sum()
            assert f64[position, alt] == pytest.approx(float(score - reference), abs=1e-12)
    finite = np.isfinite(f32)
    assert np.array_equal(finite, np.isfinite(f64))
    assert np.abs(f32[finite] - f64[finite]).max() < 1e-4
    assert np.abs(f32[finite] - f64[finite]).max() > 0  # really another precision


def test_cli_rejects_sequences_of_the_wrong_length(tmp_path) -> None:
    save_model(tmp_path / "model", random_model(64))
    fasta = tmp_path / "short.fa"
    fasta.write_text(">g\nACGT\n")
    with pytest.raises(InputError, match="expects exactly 64"):
        ism.read_sequences(fasta, 64)
    with pytest.raises(InputError, match="not in the FASTA"):
        fasta.write_text(">g\n" + "A" * 64 + "\n")
        ism.read_sequences(fasta, 64, ["other"])


def test_test_panel_scores_test_genes_of_the_fold_with_its_model(tmp_path) -> None:
    length, n_genes = 40, 8
    codes = np.stack([random_codes(length, 100 + i) for i in range(n_genes)])
    np.save(tmp_path / "encoded.npy", codes)
    pd.DataFrame({"index": range(n_genes), "species": ["sp1", "sp2"] * 4,
                  "gene_id": [f"g{i}" for i in range(n_genes)]}
                 ).to_csv(tmp_path / "genes.tsv", sep="\t", index=False)
    rows = [{"orthogroup": f"OG{i}", "species_a": "sp1", "gene_a": f"g{2 * i}",
             "species_b": "sp2", "gene_b": f"g{2 * i + 1}", "d": 0.0,
             "fold": 0, "set": "test" if i >= 2 else "train"} for i in range(4)]
    pd.DataFrame(rows).to_csv(tmp_path / "splits.tsv", sep="\t", index=False)
    model = random_model(length, seed=9)
    save_model(tmp_path / "model", model)
    genes, results = ism.ism_test_panel(tmp_path / "model", tmp_path / "encoded.npy",
                                        tmp_path / "genes.tsv", tmp_path / "splits.tsv", fold=0,
                                        n_genes=3, seed=0, species="sp2")
    assert genes == ["g5", "g7"]  # the test genes of species sp2 (fewer than asked for)
    direct = ism.ism_scores(model, codes[7])
    np.testing.assert_allclose(results[1].effect, direct.effect, atol=1e-6)
    with pytest.raises(InputError, match="no test genes"):
        ism.ism_test_panel(tmp_path / "model", tmp_path / "encoded.npy", tmp_path / "genes.tsv",
                           tmp_path / "splits.tsv", fold=0, n_genes=3, species="sp9")


def test_heatmap_rows_follow_measured_expression_else_the_predicted_score() -> None:
    """The paper's Figure 6 orders genes by measured expression; without it (or where a gene
    lacks one) the predicted sum(z) orders them."""
    from plantt.ism import IsmResult, measured_expression, order_by_score

    def result(score: float) -> IsmResult:
        codes = np.zeros(4, dtype=np.uint8)
        return IsmResult(codes=codes, reference_score=score, effect=np.zeros((4, 4)))

    splits = pd.DataFrame({"gene_a": ["g1", "g2"], "mean_a": [5.0, 50.0],
                           "gene_b": ["g3", "g1"], "mean_b": [0.5, 5.0]})
    measured = measured_expression(splits)
    assert measured == {"g1": 5.0, "g2": 50.0, "g3": 0.5}
    genes, results = ["g1", "g2", "g3"], [result(3.0), result(1.0), result(2.0)]
    assert order_by_score(genes, results, measured)[0] == ["g2", "g1", "g3"]
    assert order_by_score(genes, results)[0] == ["g1", "g3", "g2"]
    assert order_by_score(genes + ["g4"], results + [result(0.0)], measured)[0] == \
        ["g1", "g3", "g2", "g4"]
