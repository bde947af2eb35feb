"""The motif recipe: detectors seeded from a k-mer ridge, sum-pooled positional readout, batches of
whole orthogroups and the one-pass-per-gene forward (plantt.models, plantt.kmer, plantt.train)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from plantt.encoding import encode, soft_one_hot
from plantt.kmer import KmerSettings, fit_kmer_pairs
from plantt.models import (
    PLANTT_PRESETS,
    WASHBURN_PRESETS,
    PlanTTCNNTower,
    TowerSettings,
    TwoTower,
    WashburnClassifier,
    build_model,
    seed_detectors,
)
from plantt.train import (
    CodeBank,
    PairSet,
    TrainSettings,
    _forward,
    _group_order,
    pair_groups,
    train_fold,
)


def random_codes(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    return rng.integers(0, 4, size=(n, length), dtype=np.uint8)


def test_seeded_filter_counts_exact_occurrences_only() -> None:
    conv = torch.nn.Conv1d(4, 3, 15, padding="same")
    assert seed_detectors(conv, ["ACGTTGCA", "GGGCCC"]) == 2
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGT"), 300))
    seq = seq.replace("ACGTTGCA", "AAAAAAAA").replace("GGGCCC", "TTTTTT")
    one_mismatch = "ACGTAGCA"
    seq = seq[:50] + "ACGTTGCA" + seq[58:120] + "ACGTTGCA" + seq[128:200] + one_mismatch + seq[208:]
    x = soft_one_hot(torch.from_numpy(encode(seq))[None])
    with torch.no_grad():
        hits = F.relu(conv(x))[0]
    assert float(hits[0].sum()) == pytest.approx(2.0)  # the two exact copies, not the mismatch
    assert float(hits[0].max()) == pytest.approx(1.0)
    assert float(hits[1].sum()) == 0.0  # GGGCCC was removed
    # the third filter was left as initialised
    assert conv.weight[2].abs().sum() > 0 and conv.weight[2].abs().max() < 1.0


def test_mismatch_tolerant_filter_grades_the_neighbourhood_of_its_kmer() -> None:
    """With m mismatches tolerated a site with j <= m mismatches scores 2 (m - j) + 1 and one with
    more scores nothing; each detector takes its own m."""
    kmer = "ACGTTGCAGT"
    conv = torch.nn.Conv1d(4, 2, 15, padding="same")
    assert seed_detectors(conv, [kmer, kmer], mismatches=[2, 0]) == 2

    def score(site: str) -> tuple[float, float]:
        x = soft_one_hot(torch.from_numpy(encode("T" * 20 + site + "T" * 20))[None])
        with torch.no_grad():
            return tuple(float(v) for v in F.relu(conv(x))[0].max(dim=1).values)

    def mutate(site: str, positions: list[int]) -> str:
        swap = {"A": "C", "C": "G", "G": "T", "T": "A"}
        return "".join(swap[b] if i in positions else b for i, b in enumerate(site))

    assert score(kmer) == pytest.approx((5.0, 1.0))
    assert score(mutate(kmer, [3])) == pytest.approx((3.0, 0.0))
    assert score(mutate(kmer, [0, 9])) == pytest.approx((1.0, 0.0))
    assert score(mutate(kmer, [1, 4, 7])) == pytest.approx((0.0, 0.0))
    with pytest.raises(ValueError, match="fewer than half"):
        seed_detectors(torch.nn.Conv1d(4, 1, 15), ["ACGTAC"], mismatches=3)
    with pytest.raises(ValueError, match="2 mismatch counts for 1"):
        seed_detectors(torch.nn.Conv1d(4, 1, 15), ["ACGTAC"], mismatches=[0, 1])
    with pytest.raises(ValueError, match="seed_stem_kmer_mismatches"):
        TrainSettings(seed_stem_kmers=4, seed_stem_ks=(6, 8), seed_stem_kmer_mismatches=(1,))


def test_seeding_rejects_what_cannot_hold_a_detector() -> None:
    with pytest.raises(ValueError, match="bias"):
        seed_detectors(torch.nn.Conv1d(4, 4, 9, bias=False), ["ACGT"])
    with pytest.raises(ValueError, match="k-mer"):
        seed_detectors(torch.nn.Conv1d(4, 4, 5), ["ACGTACG"])
    with pytest.raises(ValueError, match="stride-1"):
        seed_detectors(torch.nn.Conv1d(4, 4, 9, stride=3), ["ACGT"])
    with pytest.raises(ValueError, match="filters"):
        seed_detectors(torch.nn.Conv1d(4, 1, 9), ["ACGT", "TTTT"])


def test_top_kmers_are_the_planted_difference() -> None:
    """Pairs whose difference is the count of one 8-mer: the ridge's strongest k-mer is it, or
    one of its sub-k-mers for k < 8."""
    rng = np.random.default_rng(1)
    motif = "TGACGTCA"
    codes = random_codes(rng, 400, 600)
    counts = rng.integers(0, 3, size=400)
    for row, n in enumerate(counts):
        for copy in range(n):
            start = 40 + copy * 250 + int(rng.integers(0, 100))
            codes[row, start:start + 8] = encode(motif)
    pairs = rng.permutation(400).reshape(-1, 2)
    target = (counts[pairs[:, 0]] - counts[pairs[:, 1]]).astype(np.float32)
    train = PairSet(pairs[:150, 0], pairs[:150, 1], target[:150])
    val = PairSet(pairs[150:, 0], pairs[150:, 1], target[150:])
    for k in (6, 8):
        ridge, _ = fit_kmer_pairs(codes, train, val,
                                  KmerSettings(ks=(k,), alphas=(1.0,), block_length=600))
        top = ridge.top_kmers(3)
        assert len(top) == 3 and all(len(t) == k for t in top)
        assert top[0] in motif
    assert ridge.top_kmers(0) == []


def test_sum_readout_is_the_mean_times_the_bin_width() -> None:
    base = dict(stem_channels=6, stem_stride=1, stem_kernel=9, stem_pool=True, stem_batchnorm=False,
                stage_kernels=(1,), blocks_per_stage=0, max_channels=6, dropout=0.0,
                readout_bins=10, readout_channels=None, embedding_dim=1)
    torch.manual_seed(0)
    mean_tower = PlanTTCNNTower(TowerSettings(**base, readout_pool="mean"), 500).eval()
    sum_tower = PlanTTCNNTower(TowerSettings(**base, readout_pool="sum"), 500).eval()
    sum_tower.load_state_dict(mean_tower.state_dict())
    assert sum_tower.stem_conv.bias is not None  # no batch norm: the convolution has a bias
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in sum_tower.stem)
    x = soft_one_hot(torch.from_numpy(random_codes(np.random.default_rng(2), 3, 500)))
    with torch.no_grad():
        bias = mean_tower.projection.bias
        torch.testing.assert_close(sum_tower(x) - bias, (mean_tower(x) - bias) * 50.0)
    with pytest.raises(ValueError, match="readout_pool"):
        TowerSettings(**base, readout_pool="max")


def test_motif_presets_build_and_expose_their_stem() -> None:
    model = build_model("plantt", "motif", 3000)
    conv = model.tower.stem_conv
    assert conv.out_channels == PLANTT_PRESETS["motif"].stem_channels and conv.stride == (1,)
    washburn = build_model("washburn", "motif", 3000)
    assert isinstance(washburn, WashburnClassifier)
    assert washburn.stem_conv.out_channels == WASHBURN_PRESETS["motif"].block_channels[0]


def test_pair_groups_are_connected_components() -> None:
    # genes 0-1-2 connected, 3-4 connected, 5-6 alone
    pairs = PairSet(np.array([0, 3, 1, 5, 0]), np.array([1, 4, 2, 6, 2]), np.zeros(5))
    groups = pair_groups(pairs)
    assert groups.tolist() == [0, 1, 0, 2, 0]
    order = _group_order(groups, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(5))
    seen = groups[order]
    # every group's pairs are contiguous in the order
    changes = np.flatnonzero(np.diff(seen)) + 1
    assert len(np.split(seen, changes)) == len(set(groups.tolist()))


def test_one_pass_per_gene_equals_the_two_tower_forward() -> None:
    torch.manual_seed(0)
    model = TwoTower(PlanTTCNNTower(PLANTT_PRESETS["small"], 400)).eval()
    codes = random_codes(np.random.default_rng(3), 12, 400)
    bank = CodeBank(codes, torch.device("cpu"))
    idx_a, idx_b = np.array([0, 1, 2, 0, 5]), np.array([1, 2, 0, 5, 5])
    with torch.no_grad():
        dedup = _forward(model, bank, idx_a, idx_b)
        xa, xb = bank.pair_batch(idx_a, idx_b)
        direct = model(xa, xb)
    torch.testing.assert_close(dedup, direct, atol=1e-5, rtol=1e-5)
    assert float(dedup[-1]) == 0.0  # a gene against itself


def test_training_seeds_the_stem_from_the_training_targets(tmp_path) -> None:
    """Seeded k-mers are recorded in model.json; a control with permuted targets gets its own."""
    rng = np.random.default_rng(4)
    codes = random_codes(rng, 120, 300)
    motif = "GATTACAG"
    counts = rng.integers(0, 2, size=120)
    for row in np.flatnonzero(counts):
        codes[row, 100:108] = encode(motif)
    pairs = rng.permutation(120).reshape(-1, 2)
    target = (counts[pairs[:, 0]] - counts[pairs[:, 1]]).astype(np.float32)
    train = PairSet(pairs[:45, 0], pairs[:45, 1], target[:45])
    val = PairSet(pairs[45:, 0], pairs[45:, 1], target[45:])
    overrides = {"stem_channels": 8, "max_channels": 8, "readout_bins": 3}
    settings = TrainSettings(preset="motif", model_overrides=overrides, max_epochs=1,
                             batch_size=16, max_lr=1e-3, warmup_steps=1, seed_stem_kmers=2,
                             seed_stem_ks=(6, 8), seed_stem_block_length=300,
                             stem_lr_scale=0.1, batch_by_group=True)
    train_fold(codes, train, val, settings, tmp_path / "real", progress=False, plots=False)
    seeded = json.loads((tmp_path / "real/model.json").read_text())["provenance"]["seeded_kmers"]
    assert len(seeded) == 4 and [len(k) for k in seeded] == [6, 6, 8, 8]
    assert seeded[2] == motif and seeded[0] in motif
    shuffled = PairSet(train.idx_a, train.idx_b, rng.permutation(train.target))
    train_fold(codes, shuffled, val, settings, tmp_path / "control", progress=False, plots=False)
    control = json.loads((tmp_path / "control/model.json").read_text())["provenance"]
    assert control["seeded_kmers"] != seeded
    with pytest.raises(ValueError, match="kernels"):
        train_fold(codes, train, val, TrainSettings(**{**settings.to_dict(), "seed_stem_ks": (16,)}),
                   tmp_path / "bad", progress=False, plots=False)


def _planted(rng: np.random.Generator, n: int, length: int, motif: str, start: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Random sequences with 0-2 copies of ``motif`` from ``start`` on; the count per row."""
    codes = random_codes(rng, n, length)
    counts = rng.integers(0, 3, size=n)
    for row in range(n):
        for copy in range(int(counts[row])):
            at = start + 20 * copy
            codes[row, at:at + len(motif)] = encode(motif)
    return codes, counts


def _motif_model(kind: str, length: int, motif: str) -> torch.nn.Module:
    torch.manual_seed(0)  # the unseeded filters and the random readout
    model = build_model(kind, "motif", length, {"stem_channels": 2, "max_channels": 2,
                                                "readout_bins": 4})
    seed_detectors(model.tower.stem_conv, [motif])
    return model


@pytest.mark.parametrize("kind", ["plantt", "single"])
def test_fitted_readout_is_the_validated_ridge_on_the_towers_features(kind: str) -> None:
    """fit_readout sets the projection to the ridge solution of the penalty that scores best on
    the validation examples (checked against scikit-learn), and that readout predicts a planted
    motif's effect (2 per copy) where a random one does not."""
    from sklearn.linear_model import Ridge

    from plantt.train import SequenceSet, _fit_readout, _readout_features

    rng = np.random.default_rng(11)
    motif, length = "GATTACAG", 200
    codes, counts = _planted(rng, 160, length, motif, start=10)
    model = _motif_model(kind, length, motif)
    bank = CodeBank(codes, torch.device("cpu"))
    noise = rng.normal(0, 0.3, size=160).astype(np.float32)
    if kind == "plantt":
        pairs = rng.permutation(160).reshape(-1, 2)
        target = 2.0 * (counts[pairs[:, 0]] - counts[pairs[:, 1]]) + noise[:80]
        train = PairSet(pairs[:60, 0], pairs[:60, 1], target[:60])
        val = PairSet(pairs[60:, 0], pairs[60:, 1], target[60:])
    else:
        target = 5.0 + 2.0 * counts + noise
        train, val = SequenceSet(np.arange(120), target[:120]), SequenceSet(np.arange(120, 160),
                                                                              target[120:])
    settings = TrainSettings(preset="motif", fit_readout=True,
                             fit_readout_penalties=(0.01, 1.0, 100.0))
    with torch.no_grad():
        before = model(*bank.pair_batch(val.idx_a, val.idx_b)) if kind == "plantt" \
            else model(bank.one_hot(val.idx))
    chosen = _fit_readout(model, bank, train, val, settings, kind)
    assert chosen["penalty"] in settings.fit_readout_penalties

    features = _readout_features(model.tower, bank, np.arange(160), 64)
    if kind == "plantt":
        x = features[train.idx_a] - features[train.idx_b]
    else:
        x = features[train.idx]
    centred = x - (0 if kind == "plantt" else x.mean(axis=0))
    scale = np.trace(centred.T @ centred) / x.shape[1]
    ridge = Ridge(alpha=chosen["penalty"] * scale, fit_intercept=kind == "single",
                  solver="cholesky").fit(x, train.target.astype(np.float64))
    weight = model.tower.projection.weight.detach().double().numpy().ravel()
    np.testing.assert_allclose(weight, ridge.coef_, rtol=1e-4, atol=1e-6)

    with torch.no_grad():
        after = model(*bank.pair_batch(val.idx_a, val.idx_b)) if kind == "plantt" \
            else model(bank.one_hot(val.idx))
    assert np.corrcoef(after.numpy(), val.target)[0, 1] > 0.95
    assert abs(np.corrcoef(before.numpy(), val.target)[0, 1]) < 0.5
    if kind == "single":  # the intercept: the 5 every sequence has
        assert float(after.mean()) == pytest.approx(float(val.target.mean()), abs=0.3)
    # the seeded detector carries the effect, in the bin the copies fall in
    per_bin = weight.reshape(2, 4)
    assert np.argmax(np.abs(per_bin)) == 0 and per_bin[0, 0] > 0


def test_fit_readout_is_refused_where_no_linear_readout_is_last() -> None:
    from plantt.train import _fit_readout

    rng = np.random.default_rng(2)
    codes = random_codes(rng, 20, 400)
    pairs = PairSet(np.arange(10), np.arange(10, 20), rng.normal(size=10))
    washburn = build_model("washburn", "motif", 400)
    with pytest.raises(ValueError, match="fit_readout needs"):
        _fit_readout(washburn, CodeBank(codes, torch.device("cpu")), pairs, pairs,
                     TrainSettings(fit_readout=True), "washburn")
    with pytest.raises(ValueError, match="fit_readout_penalties"):
        TrainSettings(fit_readout_penalties=(1.0, 0.0))
    with pytest.raises(ValueError, match="fit_readout_penalties"):
        TrainSettings(fit_readout_penalties=())


def test_training_records_the_fitted_readout_and_starts_from_it(tmp_path) -> None:
    """train_fold with fit_readout: the penalty and its validation Spearman go to model.json; a
    start from given weights keeps their readout (nothing is fitted)."""
    rng = np.random.default_rng(5)
    motif, length = "GATTACAG", 200
    codes, counts = _planted(rng, 160, length, motif, start=10)
    pairs = rng.permutation(160).reshape(-1, 2)
    target = (2.0 * (counts[pairs[:, 0]] - counts[pairs[:, 1]])).astype(np.float32)
    train = PairSet(pairs[:60, 0], pairs[:60, 1], target[:60])
    val = PairSet(pairs[60:, 0], pairs[60:, 1], target[60:])
    settings = TrainSettings(preset="motif", model_overrides={"stem_channels": 4,
                                                              "max_channels": 4,
                                                              "readout_bins": 4},
                             max_epochs=1, batch_size=16, max_lr=1e-3, warmup_steps=1,
                             seed_stem_kmers=1, seed_stem_ks=(8,), seed_stem_block_length=200,
                             stem_lr_scale=0.1, fit_readout=True)
    train_fold(codes, train, val, settings, tmp_path / "fitted", progress=False, plots=False)
    provenance = json.loads((tmp_path / "fitted/model.json").read_text())["provenance"]
    assert provenance["seeded_kmers"] == [motif]
    assert provenance["readout_fit"]["penalty"] in settings.fit_readout_penalties
    assert provenance["readout_fit"]["val_spearman"] > 0.9
    assert provenance["best_metric"] > 0.9
    train_fold(codes, train, val, settings, tmp_path / "again", progress=False, plots=False,
               init_weights=tmp_path / "fitted")
    again = json.loads((tmp_path / "again/model.json").read_text())["provenance"]
    assert again["readout_fit"] == {}
