"""The Camformer-style tower, single-sequence models, seed ensembles, and single-sequence training."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from plantt.camformer import CAMFORMER_PRESETS, CamformerPair, CamformerTower, count_parameters
from plantt.encoding import soft_one_hot
from plantt.io import InputError
from plantt.models import (
    SingleSequenceModel,
    TwoTower,
    build_model,
    load_model,
    read_model_info,
    save_ensemble,
    save_model,
)
from plantt.train import PairSet, SequenceSet, TrainSettings, predict_sequences, train_fold

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def one_hot(n: int, length: int, seed: int) -> torch.Tensor:
    codes = np.random.default_rng(seed).integers(0, 5, size=(n, length), dtype=np.uint8)
    return soft_one_hot(codes)


def test_paper_preset_follows_the_camformer_paper():
    """Six convolutions in three residual pairs, one max pooling, three fully connected layers,
    512 channels, ~16.6 M parameters at 110 nt."""
    tower = CamformerTower(CAMFORMER_PRESETS["paper"], 110)
    convs = [m for m in tower.convs.modules() if isinstance(m, nn.Conv1d) and m.kernel_size[0] > 1]
    assert len(convs) == 6 and all(c.out_channels == 512 for c in convs)
    assert len([m for m in tower.convs if isinstance(m, CamformerPair)]) == 3
    assert len([m for m in tower.modules() if isinstance(m, nn.MaxPool1d)]) == 1
    assert len([m for m in tower.head if isinstance(m, nn.Linear)]) == 3
    assert abs(count_parameters(tower) - 16.6e6) / 16.6e6 < 0.05
    assert CAMFORMER_PRESETS["small"].channels == 256


def test_residual_connections_carry_the_input():
    """With both convolutions of a pair silenced, the pair passes its input through (ReLU)."""
    tower = CamformerTower(CAMFORMER_PRESETS["tiny"], 40).eval()
    pair = tower.convs[1]  # 32 -> 32 channels: identity skip
    with torch.no_grad():
        for unit in (pair.first, pair.second):
            unit[0].weight.zero_()
    x = torch.randn(2, 32, 40)
    with torch.no_grad():
        assert torch.allclose(pair(x), torch.relu(x), atol=1e-6)


@pytest.mark.parametrize("length", [110, 170, 37])
@pytest.mark.parametrize("preset", ["small", "tiny"])
def test_tower_size_follows_the_length(preset, length):
    settings = CAMFORMER_PRESETS[preset]
    tower = CamformerTower(settings, length).eval()
    first = next(m for m in tower.head if isinstance(m, nn.Linear))
    assert first.in_features == settings.channels * math.ceil(length / settings.pool_size)
    with torch.no_grad():
        assert tower(one_hot(3, length, 0)).shape == (3, 1)
    with pytest.raises(ValueError, match=f"built for sequences of {length}"):
        tower(one_hot(1, length + 1, 0))


def test_settings_are_checked():
    from plantt.camformer import CamformerSettings

    with pytest.raises(ValueError, match="even number"):
        CamformerSettings(kernel_sizes=(9, 7, 5))
    with pytest.raises(ValueError, match="odd"):
        CamformerSettings(kernel_sizes=(8, 8))
    with pytest.raises(ValueError, match="unknown single \\(camformer tower\\) preset"):
        build_model("single", "huge", 110, tower="camformer")
    with pytest.raises(ValueError, match="Washburn"):
        build_model("washburn", "small", 110, tower="camformer")


@pytest.mark.parametrize("tower", ["camformer", "cnn"])
def test_single_and_two_tower_models_with_either_tower(tmp_path, tower):
    preset = "tiny" if tower == "camformer" else "small"
    single = build_model("single", preset, 120, tower=tower).eval()
    x = one_hot(4, 120, 1)
    with torch.no_grad():
        assert single(x).shape == (4,)
        assert torch.equal(single(x), single.score(x))
    save_model(tmp_path / "single", single, input_spec={"pad_end": "left", "too_long": "trim",
                                                        "trim_end": "right"})
    info = read_model_info(tmp_path / "single")
    assert info["kind"] == "single" and info["input"]["pad_end"] == "left"
    assert info.get("tower", "cnn") == tower
    loaded = load_model(tmp_path / "single")
    assert isinstance(loaded, SingleSequenceModel)
    with torch.no_grad():
        assert torch.equal(loaded(x), single(x))
    contrast = build_model("plantt", preset, 120, tower=tower).eval()
    a, b = one_hot(3, 120, 2), one_hot(3, 120, 3)
    with torch.no_grad():
        torch.testing.assert_close(contrast(a, b), -contrast(b, a))
        torch.testing.assert_close(contrast(a, b), contrast.score(a) - contrast.score(b))


def test_ensemble_predicts_the_mean_of_its_members(tmp_path):
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        save_model(tmp_path / f"m{seed}", build_model("single", "tiny", 60, tower="camformer"))
        members.append(tmp_path / f"m{seed}")
    save_ensemble(tmp_path / "ens", members, {"note": "test"})
    assert json.loads((tmp_path / "ens" / "ensemble.json").read_text())["members"][0] == "../m0"
    info = read_model_info(tmp_path / "ens")
    assert len(info["ensemble"]) == 3 and info["provenance"]["note"] == "test"
    ensemble = load_model(tmp_path / "ens")
    codes = np.random.default_rng(0).integers(0, 4, size=(5, 60), dtype=np.uint8)
    each = [predict_sequences(load_model(m), codes, np.arange(5)) for m in members]
    np.testing.assert_allclose(predict_sequences(ensemble, codes, np.arange(5)),
                               np.mean(each, axis=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="ensemble"):
        save_model(tmp_path / "again", ensemble)
    save_model(tmp_path / "other", build_model("single", "tiny", 61, tower="camformer"))
    with pytest.raises(InputError, match="seq_len"):
        save_ensemble(tmp_path / "bad", [members[0], tmp_path / "other"])
    contrast = TwoTower(ensemble.tower)
    assert contrast.seq_len == 60


def test_single_sequence_training_uses_the_chosen_loss(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, size=(96, 40), dtype=np.uint8)
    target = (codes == 0).mean(axis=1) * 4.0
    train = SequenceSet(np.arange(64), target[:64])
    val = SequenceSet(np.arange(64, 96), target[64:])
    settings = TrainSettings(preset="tiny", tower="camformer", loss="mae", max_epochs=2,
                             batch_size=16, max_lr=1e-3, warmup_steps=2, num_threads=1)
    result = train_fold(codes, train, val, settings, tmp_path / "m", model_kind="single",
                        progress=False, plots=False)
    assert result.metric_name == "val_r_plus_rho"
    model = load_model(tmp_path / "m")
    predicted = predict_sequences(model, codes, val.idx)
    best = result.history.set_index("epoch").loc[result.best_epoch]
    assert best["val_loss"] == pytest.approx(float(np.mean(np.abs(predicted - val.target))),
                                             rel=1e-4)
    assert not (tmp_path / "m" / "curves.png").exists()
    with pytest.raises(ValueError, match="SequenceSet"):
        train_fold(codes, PairSet([0], [1], [0.0]), PairSet([0], [1], [0.0]), settings,
                   tmp_path / "x", model_kind="single")
    with pytest.raises(ValueError, match="pairs"):
        train_fold(codes, train, val, settings, tmp_path / "y", model_kind="plantt")
    with pytest.raises(ValueError, match="loss"):
        TrainSettings(loss="huber")
