"""plantt.interop: our towers as (N, 4, L) -> (N, 1) modules, and other modules as our towers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conftest import random_plantt_model
from plantt import ism
from plantt.encoding import soft_one_hot
from plantt.interop import ExternalTower, SequenceScore
from plantt.models import SingleSequenceModel, TowerSettings, TwoTower

SETTINGS = TowerSettings(stem_channels=8, stem_stride=2, stem_kernel=4, stage_kernels=(5, 3, 3),
                         blocks_per_stage=1, inner_convs=1, max_channels=16, embedding_dim=6)
LENGTH = 96


def _codes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, size=(n, LENGTH)).astype(np.uint8)


def test_sequence_score_is_the_towers_score_in_the_common_shape() -> None:
    model = random_plantt_model(SETTINGS, LENGTH, seed=3)
    scorer = SequenceScore(model).eval()
    x = soft_one_hot(torch.tensor(_codes(5, 0)))
    with torch.no_grad():
        out = scorer(x)
        assert out.shape == (5, 1)
        torch.testing.assert_close(out[:, 0], model.score(x))
        # the pair model's head is the difference of the two sequences' scores
        torch.testing.assert_close(model(x[:3], x[2:]), out[:3, 0] - out[2:, 0])
    assert scorer.seq_len == LENGTH
    assert scorer.tower is model.tower  # no copy: trained weights are shared
    with pytest.raises(ValueError, match=r"\(N, 4, L\)"):
        scorer(x.transpose(1, 2))


def test_tangermeme_ism_on_the_wrapper_equals_plantt_ism() -> None:
    """The same model through tangermeme's saturation mutagenesis (full passes and its own fast
    path) and through ours (sliced): equal effects in float64."""
    saturation = pytest.importorskip("tangermeme.saturation_mutagenesis")
    model = random_plantt_model(SETTINGS, LENGTH, seed=1).double()
    codes = _codes(2, 1)
    ours = np.stack([ism.ism_scores(model, row).effect for row in codes])  # (n, L, 4)
    x = torch.nn.functional.one_hot(torch.tensor(codes, dtype=torch.long), 4)
    x = x.permute(0, 2, 1).double()
    for fast in (False, True):
        y0, y_hat = saturation.saturation_mutagenesis(SequenceScore(model).eval(), x,
                                                      raw_outputs=True, fast=fast,
                                                      dtype=torch.float64, batch_size=64)
        theirs = (y_hat[..., 0] - y0[:, None, None, 0]).numpy()  # (n, 4, L)
        np.testing.assert_allclose(theirs.transpose(0, 2, 1), ours, atol=1e-9, rtol=0)


class _Linear(nn.Module):
    """A stand-in for another library's model: (N, 4, L) -> (N, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 2, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=-1)


def test_external_module_as_a_tower_of_our_models() -> None:
    torch.manual_seed(0)
    module = _Linear().eval()
    pair = TwoTower(ExternalTower(module, LENGTH)).eval()
    single = SingleSequenceModel(ExternalTower(module, LENGTH)).eval()
    codes = _codes(3, 2)
    x = soft_one_hot(torch.tensor(codes))
    with torch.no_grad():
        expected = module(x).sum(dim=-1)
        torch.testing.assert_close(single(x), expected)
        torch.testing.assert_close(pair(x, x.flip(0)), expected - expected.flip(0))
    # our ISM runs on it (full tower passes: the sliced path knows only our layers)
    result = ism.ism_scores(single, codes[0])
    mutant = codes[0].copy()
    mutant[10] = (mutant[10] + 1) % 4
    with torch.no_grad():
        direct = float(single(soft_one_hot(torch.tensor(mutant[None])))[0] - expected[0])
    assert result.effect[10, mutant[10]] == pytest.approx(direct, abs=1e-5)
    with pytest.raises(ValueError, match="sequences of 96 bases"):
        single(soft_one_hot(torch.tensor(_codes(1, 0)[:, :50])))
