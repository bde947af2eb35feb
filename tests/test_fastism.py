"""Sliced (fastISM) scoring agrees with one full tower pass per mutant, and falls back cleanly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conftest import random_plantt_model
from plantt import fastism, ism
from plantt.encoding import N_CODE, soft_one_hot
from plantt.legacy import LegacySettings, LegacyTower, legacy_two_tower
from plantt.models import PlanTTCNNTower, TowerSettings, TwoTower, get_preset

ATOL = 1e-5
# Effects of ~0.1 computed two ways (a sliced tower and a full one) sum their fp32 convolutions in
# different orders, and how far that moves the last digits depends on the CPU's kernels (oneDNN's
# or PyTorch's own): 1.3e-5 was seen on a CI machine for the paper preset. A slicing error moves
# effects by ~1e-2.
SLICED_ATOL = 5e-5


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: on a shared 2-core machine, torch's thread pool only adds waiting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sensitive_model(settings: TowerSettings, seq_len: int, seed: int, gain: float = 1.0
                    ) -> TwoTower:
    """A random model (random batch-norm statistics); ``gain`` scales every convolution so that
    deep towers do not damp single-base effects to float-rounding size."""
    model = random_plantt_model(settings, seq_len, seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv1d):
                module.weight.mul_(gain)
    return model


def random_codes(length: int, seed: int, n_fraction: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=length).astype(np.uint8)
    codes[rng.random(length) < n_fraction] = N_CODE
    return codes


def ends_and_middle(length: int, width: int) -> np.ndarray:
    middle = length // 2 - width // 2
    return np.r_[0:width, middle:middle + width, length - width:length]


def assert_sliced_matches_full(model: TwoTower, codes: np.ndarray, positions: np.ndarray | None,
                               min_effect: float = 1e-3, atol: float = SLICED_ATOL, **kwargs
                               ) -> ism.IsmResult:
    sliced = ism.ism_scores(model, codes, positions=positions, **kwargs)
    full = ism.ism_scores(model, codes, positions=positions, sliced=False, **kwargs)
    assert np.array_equal(np.isnan(sliced.effect), np.isnan(full.effect))
    np.testing.assert_allclose(sliced.effect, full.effect, atol=atol, rtol=0)
    # the effects are large enough for the comparison above to be able to fail
    assert np.nanmax(np.abs(full.effect)) > min_effect
    return sliced


SMALL_SETTINGS = TowerSettings(stem_channels=8, stem_stride=2, stem_kernel=4,
                               stage_kernels=(5, 3, 3), blocks_per_stage=1, inner_convs=1,
                               max_channels=16, embedding_dim=6)


@pytest.mark.parametrize("seq_len", [48, 51])
def test_every_substitution_matches_for_a_random_model(seq_len: int) -> None:
    model = sensitive_model(SMALL_SETTINGS, seq_len, seed=seq_len)
    codes = random_codes(seq_len, seed=1, n_fraction=0.1)
    assert_sliced_matches_full(model, codes, None)
    assert_sliced_matches_full(model, codes, None, include_n=True, batch_size=5)


@pytest.mark.parametrize("seq_len", [600, 601])
def test_paper_preset_matches_at_both_ends(seq_len: int) -> None:
    settings = get_preset("plantt", "paper", {"stem_channels": 8, "max_channels": 16,
                                              "embedding_dim": 8})
    model = sensitive_model(settings, seq_len, seed=3, gain=2.0)
    assert_sliced_matches_full(model, random_codes(seq_len, 4), ends_and_middle(seq_len, 8))


def test_paper_preset_with_overlapping_stem_matches() -> None:
    settings = get_preset("plantt", "paper", {"stem_channels": 8, "max_channels": 16,
                                              "stem_kernel": 5, "stage_kernels": [11, 9, 7],
                                              "embedding_dim": 4})
    model = sensitive_model(settings, 301, seed=5, gain=1.5)
    assert_sliced_matches_full(model, random_codes(301, 6), ends_and_middle(301, 10))


def test_small_preset_matches_at_3000_bases() -> None:
    model = sensitive_model(get_preset("plantt", "small"), 3000, seed=7)
    assert model.tower.readout_length < model.tower.out_length  # adaptive pooling is exercised
    assert_sliced_matches_full(model, random_codes(3000, 8), ends_and_middle(3000, 6),
                               batch_size=7)


def test_short_small_preset_with_partial_pooling_windows_matches() -> None:
    settings = get_preset("plantt", "small", {"stem_channels": 8, "max_channels": 8})
    model = sensitive_model(settings, 75, seed=9)  # 75 = 9 * 8 + 3: ceil-mode windows at the end
    assert_sliced_matches_full(model, random_codes(75, 10), None)


@pytest.mark.parametrize("overrides", [
    # several readout maps, each with its own positional weights; no residual block at all
    {"stage_kernels": [5], "blocks_per_stage": 0, "readout_channels": 3, "readout_bins": 5,
     "stem_stride": 5, "stem_kernel": 9},
    # a stride-1 stem without pooling (one position per base up to the readout)
    {"stage_kernels": [3], "blocks_per_stage": 1, "readout_channels": 2, "readout_bins": 4,
     "stem_stride": 1, "stem_kernel": 7, "stem_bias_init": -1.0},
])
def test_multi_channel_readouts_match(overrides: dict) -> None:
    settings = get_preset("plantt", "small", {"stem_channels": 8, "max_channels": 8,
                                              "embedding_dim": 3, **overrides})
    model = sensitive_model(settings, 120, seed=13)
    assert model.tower.to_one_channel.out_channels == overrides["readout_channels"]
    assert_sliced_matches_full(model, random_codes(120, 14), None, batch_size=9)


def test_motif_preset_with_summed_bins_matches() -> None:
    """The motif tower (bias-only stem, no pointwise map, summed bins) on the sliced path."""
    settings = get_preset("plantt", "motif", {"stem_channels": 6, "max_channels": 6,
                                              "stem_kernel": 9, "readout_bins": 6})
    model = sensitive_model(settings, 120, seed=15)
    assert isinstance(model.tower.to_one_channel, torch.nn.Identity)
    assert model.tower.bin_scale == pytest.approx(20.0)
    assert fastism.compile_tower(model.tower) is not None
    assert_sliced_matches_full(model, random_codes(120, 16), None, batch_size=9)


def test_group_width_and_batch_size_do_not_change_scores() -> None:
    """Any grouping gives the same scores as full passes, the ends of the sequence included."""
    model = sensitive_model(SMALL_SETTINGS, 40, seed=11)
    codes = random_codes(40, 12)
    positions, alts = ism.substitutions(codes)
    reference, expected = fastism.mutant_scores(model, codes, positions, alts)
    for width, batch in [(1, 3), (7, 256), (100, 50)]:
        ref, scores = fastism.mutant_scores(model, codes, positions, alts, width, batch)
        assert ref == pytest.approx(reference, abs=1e-6)
        np.testing.assert_allclose(scores, expected, atol=ATOL)
    straight = ism.sequence_scores(model, ism.mutant_batch(codes, positions, alts).numpy())
    np.testing.assert_allclose(expected, straight, atol=ATOL)


def test_multi_base_edits_match_full_passes() -> None:
    """SNVs and MNVs (one to five bases, at both ends, overlapping) scored on slices equal full
    passes over the edited sequences, whatever the batching."""
    seq_len = 60
    model = sensitive_model(SMALL_SETTINGS, seq_len, seed=21)
    codes = random_codes(seq_len, 22)
    rng = np.random.default_rng(23)
    edits = []
    for start, width in [(0, 1), (0, 3), (2, 5), (29, 2), (30, 1), (31, 4), (55, 5), (59, 1)]:
        replacement = (codes[start:start + width] + rng.integers(1, 4, width)) % 4
        edits.append((start, replacement.astype(np.uint8)))
    edited = np.repeat(codes[None], len(edits), axis=0)
    for row, (start, replacement) in enumerate(edits):
        edited[row, start:start + len(replacement)] = replacement
    expected = ism.sequence_scores(model, edited)
    fast = fastism.FastIsm(fastism.compile_tower(model.tower), codes)
    reference = float(ism.sequence_scores(model, codes)[0])
    assert np.abs(expected - reference).min() > 10 * ATOL  # every edit changes the score
    for batch in [256, 1, 3]:
        np.testing.assert_allclose(fast.edited_scores(edits, batch), expected, atol=ATOL)
    # one base at a time, the same as the single-substitution path
    singles = [(start, r[:1]) for start, r in edits]
    positions = np.array([start for start, _ in singles])
    alts = np.array([r[0] for _, r in singles])
    np.testing.assert_allclose(fast.edited_scores(singles), fast.scores(positions, alts),
                               atol=ATOL)
    for bad in [(-1, codes[:1]), (seq_len - 1, codes[:2]), (3, codes[:0])]:
        with pytest.raises(ValueError, match="within the 60 bases"):
            fast.edited_scores([bad])


def test_unsupported_towers_fall_back_to_full_passes() -> None:
    model = sensitive_model(SMALL_SETTINGS, 32, seed=13)
    assert fastism.fast_ism_scorer(model) is not None
    assert fastism.fast_ism_scorer(model.train()) is None  # training mode: not sliceable
    model.eval()
    dilated = sensitive_model(SMALL_SETTINGS, 32, seed=13)
    dilated.tower.stages[0][0].branch[0][0].dilation = (2,)
    assert fastism.fast_ism_scorer(dilated) is None

    class Flat(nn.Module):
        seq_len = 32

        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential(nn.Flatten(), nn.Linear(4 * 32, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layers(x)

    other = TwoTower(Flat()).eval()
    assert fastism.fast_ism_scorer(other) is None
    codes = random_codes(32, 14)
    result = ism.ism_scores(other, codes)  # the straightforward path still works
    assert np.isfinite(result.effect).all()
    with pytest.raises(ValueError, match="PlanTT-CNN"):
        fastism.mutant_scores(other, codes, np.array([0]), np.array([1]))


def test_sequence_of_the_wrong_length_is_refused() -> None:
    model = sensitive_model(SMALL_SETTINGS, 32, seed=15)
    compiled = fastism.compile_tower(model.tower)
    assert isinstance(model.tower, PlanTTCNNTower) and compiled is not None
    with pytest.raises(ValueError, match="32 codes"):
        fastism.FastIsm(compiled, random_codes(31, 0))


def random_legacy_model(seq_len: int, seed: int, channels=(8, 8, 8, 8, 8, 1)) -> TwoTower:
    """A random legacy tower with random batch-norm statistics, scaled so that single-base
    effects are well above float rounding."""
    torch.manual_seed(seed)
    tower = LegacyTower(LegacySettings(cnn_channels=channels), seq_len=seq_len)
    with torch.no_grad():
        for module in tower.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(1.0, 2.0)
                module.bias.normal_(0, 0.2)
            elif isinstance(module, nn.Conv1d):
                module.weight.mul_(2.0)
    return legacy_two_tower(tower).eval()


@pytest.mark.parametrize("seq_len", [64, 120])
def test_legacy_tower_matches_every_substitution(seq_len: int) -> None:
    model = random_legacy_model(seq_len, seed=seq_len)
    assert fastism.fast_ism_scorer(model) is not None
    codes = random_codes(seq_len, seed=2, n_fraction=0.1)
    # float64: the two paths agree to rounding of float64
    assert_sliced_matches_full(model.double(), codes, None, atol=1e-9, include_n=True,
                               batch_size=50)
    # float32: the sliced path is no further from float64 than the full float32 passes are
    exact = ism.ism_scores(model, codes, include_n=True, sliced=False).effect
    model.float()
    full = ism.ism_scores(model, codes, include_n=True, sliced=False).effect
    sliced = ism.ism_scores(model, codes, include_n=True).effect
    rounding = np.nanmax(np.abs(full - exact))
    assert np.nanmax(np.abs(sliced - exact)) <= 2 * rounding + 1e-6


def test_scattered_edits_match_full_passes_for_both_tower_kinds() -> None:
    """One batch of edits scattered over the sequence (each row its own changed range, through
    residual blocks, max pooling and the legacy tower's dense blocks), in float64."""
    for model, seq_len in [(sensitive_model(get_preset("plantt", "small", {
            "stem_channels": 8, "max_channels": 8}), 300, seed=31), 300),
            (random_legacy_model(160, seed=32), 160)]:
        model.double()
        codes = random_codes(seq_len, 33)
        rng = np.random.default_rng(34)
        starts = np.r_[0, rng.choice(np.arange(1, seq_len - 3), 10, replace=False), seq_len - 3]
        edits = [(int(start), (codes[start:start + 1 + i % 3] + 1) % 4)
                 for i, start in enumerate(starts)]
        edited = np.repeat(codes[None], len(edits), axis=0)
        for row, (start, replacement) in enumerate(edits):
            edited[row, start:start + len(replacement)] = replacement
        expected = ism.sequence_scores(model, edited)
        fast = fastism.FastIsm(fastism.compile_tower(model.tower), codes)
        assert np.abs(expected - fast.reference_score).min() > 1e-6
        np.testing.assert_allclose(fast.edited_scores(edits), expected, atol=1e-9, rtol=0)


def test_edits_of_several_sequences_share_batches() -> None:
    """Several references recorded in one pass, their edits mixed in batches (rows of different
    references next to each other, through residual blocks, max pooling and the legacy tower's
    dense blocks): the same scores as full passes, and as each reference on its own, in float64."""
    for model, seq_len in [(sensitive_model(get_preset("plantt", "small", {
            "stem_channels": 8, "max_channels": 8}), 300, seed=41), 300),
            (random_legacy_model(160, seed=42), 160)]:
        model.double()
        references = np.stack([random_codes(seq_len, 43 + g) for g in range(3)])
        rng = np.random.default_rng(44)
        starts = rng.integers(0, seq_len - 3, 14)
        sequences = rng.integers(0, 3, 14)
        edits = [(int(start), (references[g, start:start + 1 + i % 3] + 1) % 4)
                 for i, (start, g) in enumerate(zip(starts, sequences, strict=True))]
        edited = references[sequences].copy()
        for row, (start, replacement) in enumerate(edits):
            edited[row, start:start + len(replacement)] = replacement
        compiled = fastism.compile_tower(model.tower)
        fast = fastism.FastIsm(compiled, references)
        np.testing.assert_allclose(fast.reference_scores, ism.sequence_scores(model, references),
                                   atol=1e-9, rtol=0)
        scores = fast.edited_scores(edits, batch_size=5, sequences=sequences)
        np.testing.assert_allclose(scores, ism.sequence_scores(model, edited), atol=1e-9, rtol=0)
        one = fastism.FastIsm(compiled, references[1])
        mine = np.flatnonzero(sequences == 1)
        np.testing.assert_allclose(one.edited_scores([edits[i] for i in mine]), scores[mine],
                                   atol=1e-9, rtol=0)
        with pytest.raises(ValueError, match="several reference sequences"):
            fast.edited_scores(edits)
        with pytest.raises(ValueError, match="one of the 3 references"):
            fast.edited_scores(edits, sequences=np.full(14, 3))


def test_output_ranges_cover_every_changed_final_position() -> None:
    """A substitution changes the final map only inside the range :func:`output_ranges` gives."""
    for model in (sensitive_model(SMALL_SETTINGS, 160, seed=21),
                  random_legacy_model(320, seed=22)):
        model.double()  # so that "changed" is not float32 noise of differently batched passes
        tower = model.tower
        compiled = fastism.fast_ism_scorer(model)
        length = tower.seq_len
        codes = random_codes(length, 23)
        positions, alts = ism.substitutions(codes)
        lo, hi = fastism.output_ranges(compiled, positions)

        with torch.inference_mode():
            reference = final_map(compiled, codes[None]).values
            mutants = final_map(compiled, ism.mutant_batch(codes, positions, alts).numpy()).values
        changed = (mutants - reference).abs().amax(dim=1) > 1e-9  # (mutants, final positions)
        index = torch.arange(changed.shape[1])
        inside = (index[None] >= torch.as_tensor(lo)[:, None]) & \
            (index[None] < torch.as_tensor(hi)[:, None])
        assert not (changed & ~inside).any()
        assert changed.any()  # the check above could fail
        assert (hi - lo).max() < changed.shape[1]  # and the ranges are not the whole map


def final_map(compiled: fastism.SlicedTower, batch: np.ndarray) -> fastism.Slice:
    """The final (pre-readout) map of each row, by the sliced path's reference pass (the whole
    sequence as one slice), in float64."""
    one_hot = soft_one_hot(torch.as_tensor(batch), dtype=torch.float64)
    whole = fastism.Slice(one_hot, np.zeros(len(batch), dtype=np.int64), one_hot)
    return fastism._run_ops(compiled.ops, whole, None, [])


def _flat_ops(ops: list) -> list:
    out = []
    for op in ops:
        out.append(op)
        if isinstance(op, fastism.ResidualOp):
            out += _flat_ops(op.branch)
        elif isinstance(op, fastism.DenseOp):
            out += [o for unit in op.units for o in _flat_ops(unit)]
    return out


def test_batch_norms_are_folded_into_the_convolutions_and_scores_stay_exact() -> None:
    settings = get_preset("plantt", "paper", {"stem_channels": 8, "max_channels": 16,
                                              "embedding_dim": 4, "dropout": 0.2})
    model = sensitive_model(settings, 600, seed=11, gain=2.0).double()
    compiled = fastism.fast_ism_scorer(model)
    assert compiled is not None
    norms = [m for m in model.tower.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) > 10
    ops = _flat_ops(compiled.ops)
    # no batch norm or dropout left as an operation of its own on the slices
    assert not [op for op in ops if isinstance(op, fastism.PointwiseOp)
                and isinstance(op.module, (nn.BatchNorm1d, nn.Dropout, nn.Dropout1d))]
    codes = random_codes(600, 12)
    fast = fastism.FastIsm(compiled, codes)
    # the folded tower's reference pass is the tower's own function
    with torch.no_grad():
        tower_score = model.tower(soft_one_hot(torch.as_tensor(codes)[None], torch.float64)).sum()
    assert fast.reference_score == pytest.approx(float(tower_score), abs=1e-10)
    # the readout weights are the gradient of the real readout
    final = fast.references[-1]
    h = final.detach().clone().requires_grad_(True)
    model.tower.read_out(h).sum().backward()
    torch.testing.assert_close(fast.readout_weights, h.grad, rtol=0, atol=1e-12)
    assert_sliced_matches_full(model, codes, ends_and_middle(600, 6), atol=1e-9)
