"""PlanTT / Washburn models: equivariance, shapes, presets, save/load, and ``plantt predict``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from plantt import model_commands
from plantt.encoding import decode, soft_one_hot
from plantt.io import InputError
from plantt.models import (
    PLANTT_PRESETS,
    PlanTTCNNTower,
    ResidualBlock,
    TowerSettings,
    TwoTower,
    WashburnClassifier,
    build_model,
    get_preset,
    load_model,
    read_model_info,
    save_model,
    settings_from_dict,
    trunk_output_length,
)


def random_soft_one_hot(n: int, length: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 5, size=(n, length), dtype=np.uint8)  # includes N
    return soft_one_hot(codes)


def randomize_normalization(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random batch-norm scales and shifts (zero-initialised residual scales would otherwise hide
    the residual branches), then running statistics calibrated on random input, as after
    training, so that input differences survive the depth of the paper tower in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    with torch.no_grad():
        for module in norms:
            module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
            module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batches
        length = model.seq_len
        model.train()
        for i in range(2):
            x = random_soft_one_hot(8, length, 100 + i)
            model(x[:4], x[4:])
        for module in norms:
            module.momentum = 0.1
    return model.eval()


def assert_equivariant(model: TwoTower, a: torch.Tensor, b: torch.Tensor) -> None:
    model.eval()
    with torch.no_grad():
        f_ab = model(a, b)
        f_ba = model(b, a)
        f_aa = model(a, a)
        scale = float(model.score(a).abs().max()) + 1.0
    assert f_ab.abs().max() > 1e-4 * scale, "the model should not be trivially zero"
    torch.testing.assert_close(f_aa, torch.zeros_like(f_aa), atol=1e-5 * scale, rtol=0)
    torch.testing.assert_close(f_ab, -f_ba, atol=1e-5 * scale, rtol=0)


@pytest.mark.parametrize(("preset", "length"), [("paper", 600), ("small", 3000),
                                                ("compact", 3000), ("motif", 3000)])
def test_random_model_is_equivariant(preset: str, length: int):
    torch.manual_seed(1)
    model = randomize_normalization(build_model("plantt", preset, length))
    a, b = random_soft_one_hot(3, length, 1), random_soft_one_hot(3, length, 2)
    assert_equivariant(model, a, b)


def test_briefly_trained_model_is_equivariant():
    torch.manual_seed(2)
    model = build_model("plantt", "small", 400)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for step in range(4):
        a, b = random_soft_one_hot(8, 400, 10 + step), random_soft_one_hot(8, 400, 20 + step)
        loss = ((model(a, b) - torch.randn(8)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    last_bn = [m for m in model.modules() if isinstance(m, ResidualBlock)][0].branch[-1][1]
    assert last_bn.weight.abs().sum() > 0, "training should have moved the zero-initialised scales"
    assert_equivariant(model, random_soft_one_hot(4, 400, 5), random_soft_one_hot(4, 400, 6))


def test_head_is_difference_of_scores():
    torch.manual_seed(3)
    model = randomize_normalization(build_model("plantt", "small", 500)).eval()
    a, b = random_soft_one_hot(2, 500, 3), random_soft_one_hot(2, 500, 4)
    with torch.no_grad():
        torch.testing.assert_close(model(a, b), model.score(a) - model.score(b), atol=1e-4,
                                   rtol=1e-5)
        assert model.embed(a).shape == (2, 50)


def test_towers_share_one_batched_call():
    calls = []
    model = build_model("plantt", "small", 300)
    model.tower.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
    model(random_soft_one_hot(3, 300, 0), random_soft_one_hot(3, 300, 1))
    assert calls == [6]


@pytest.mark.parametrize("length", [1, 7, 100, 301, 3000])
@pytest.mark.parametrize("preset", ["paper", "small", "compact", "motif"])
def test_tower_shapes_for_any_length(preset: str, length: int):
    settings = PLANTT_PRESETS[preset]
    tower = PlanTTCNNTower(settings, length).eval()
    trunk_lengths = []
    tower.to_one_channel.register_forward_hook(
        lambda mod, inp, out: trunk_lengths.append(out.shape[-1]))
    with torch.no_grad():
        z = tower(random_soft_one_hot(2, length, 0))
    assert z.shape == (2, settings.embedding_dim)
    assert trunk_lengths == [trunk_output_length(length, settings)]
    bins = settings.readout_bins or trunk_lengths[0]
    maps = settings.readout_channels or settings.stage_channels()[-1]
    assert tower.projection.in_features == maps * min(bins, trunk_lengths[0])
    model = TwoTower(tower).eval()
    with torch.no_grad():
        assert model(random_soft_one_hot(2, length, 1), random_soft_one_hot(2, length, 2)).shape \
            == (2,)
    with pytest.raises(ValueError, match="built for sequences of"):
        tower(random_soft_one_hot(1, length + 1, 0))


def test_paper_tower_follows_section_3_2():
    tower = PlanTTCNNTower(PLANTT_PRESETS["paper"], 3000)
    assert tower.stem[0].stride == (3,) and tower.stem[0].out_channels == 64
    assert len(tower.stages) == 8
    assert PLANTT_PRESETS["paper"].stage_channels() == [64, 128, 256, 256, 256, 256, 256, 256]
    for i, (stage, kernel) in enumerate(zip(tower.stages, (11, 9, 7, 7, 5, 5, 3, 3), strict=True)):
        blocks = [m for m in stage if isinstance(m, ResidualBlock)]
        assert len(blocks) == 2
        convs = [m for m in blocks[0].branch.modules() if isinstance(m, nn.Conv1d)]
        assert [c.kernel_size[0] for c in convs] == [3, kernel, kernel, kernel, 1]
        assert all(isinstance(u[1], nn.BatchNorm1d) for u in blocks[0].branch)
        if i > 0:
            assert stage[0][0].stride == (2,)
    assert trunk_output_length(3000, PLANTT_PRESETS["paper"]) == 8
    assert tower.to_one_channel.out_channels == 1
    assert (tower.projection.in_features, tower.projection.out_features) == (8, 50)


def test_washburn_shapes_and_length_limits():
    model = build_model("washburn", "paper", 3000).eval()
    assert isinstance(model, WashburnClassifier)
    with torch.no_grad():
        out = model(random_soft_one_hot(3, 3000, 0), random_soft_one_hot(3, 3000, 1))
    assert out.shape == (3,)
    assert model.classifier[1].in_features == 64 * 11  # 6000 -> 750 -> 93 -> 11
    small = build_model("washburn", "small", 300).eval()
    with torch.no_grad():
        assert small(random_soft_one_hot(2, 300, 0), random_soft_one_hot(2, 300, 1)).shape == (2,)
    with pytest.raises(ValueError, match="too short"):
        build_model("washburn", "paper", 200)


def test_presets_and_settings_round_trip():
    assert get_preset("plantt", "paper") == TowerSettings()
    changed = get_preset("plantt", "small", {"dropout": 0.3, "stage_kernels": [5, 3]})
    assert changed.dropout == 0.3 and changed.stage_kernels == (5, 3)
    as_json = json.loads(json.dumps(__import__("dataclasses").asdict(changed)))
    assert settings_from_dict("plantt", as_json) == changed
    with pytest.raises(ValueError, match="unknown plantt preset"):
        get_preset("plantt", "huge")
    with pytest.raises(ValueError, match="unknown model kind"):
        get_preset("transformer", "paper")
    with pytest.raises(ValueError, match="unknown plantt model setting"):
        settings_from_dict("plantt", {"n_layers": 3})
    with pytest.raises(ValueError, match="activation"):
        TowerSettings(activation="tanh")


@pytest.mark.parametrize("kind", ["plantt", "washburn"])
def test_save_load_round_trip(tmp_path, kind: str):
    torch.manual_seed(4)
    model = build_model(kind, "small", 320)
    if kind == "plantt":
        randomize_normalization(model)
    model.eval()
    save_model(tmp_path / "m", model, layout="tss1000_500+tts500_1000",
               provenance={"fold": 2, "assay": "rna"})
    info = read_model_info(tmp_path / "m")
    assert info["kind"] == kind and info["preset"] == "small" and info["seq_len"] == 320
    assert info["layout"] == "tss1000_500+tts500_1000" and info["provenance"]["fold"] == 2
    loaded = load_model(tmp_path / "m")
    assert not loaded.training
    a, b = random_soft_one_hot(4, 320, 7), random_soft_one_hot(4, 320, 8)
    with torch.no_grad():
        assert torch.equal(model(a, b), loaded(a, b))
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_load_model_errors(tmp_path):
    with pytest.raises(InputError, match="not a model directory"):
        load_model(tmp_path)
    save_model(tmp_path / "m", build_model("plantt", "small", 300))
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    info["settings"]["stem_channels"] = 8  # the convolutions no longer fit the weights
    (tmp_path / "m" / "model.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match="weights do not match"):
        load_model(tmp_path / "m")


# ----------------------------------------------------------------------------------------------
# plantt predict
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(5)
    directory = tmp_path_factory.mktemp("model")
    save_model(directory, randomize_normalization(build_model("plantt", "small", 120)).eval())
    return directory


def random_sequences(n: int, length: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [decode(rng.integers(0, 4, size=length, dtype=np.uint8)) for _ in range(n)]


def run_predict(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    model_commands.register_cli(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_predict_from_pairs_tsv(tmp_path, model_dir):
    seq_a, seq_b = random_sequences(5, 120, 1), random_sequences(5, 120, 2)
    seq_a[0] = seq_a[0].lower()[:60] + "NNRY" + seq_a[0][64:]  # lower case and ambiguity codes
    table = pd.DataFrame({"pair_id": [f"p{i}" for i in range(5)], "sequence_a": seq_a,
                          "sequence_b": seq_b})
    table.to_csv(tmp_path / "pairs.tsv", sep="\t", index=False)
    assert run_predict(["predict", "--model", str(model_dir), "--pairs",
                        str(tmp_path / "pairs.tsv"), "--out", str(tmp_path / "out.tsv")]) == 0
    out = pd.read_csv(tmp_path / "out.tsv", sep="\t")
    assert list(out.columns) == ["pair_id", "prediction"]
    assert out["pair_id"].tolist() == table["pair_id"].tolist()
    model = load_model(model_dir)
    from plantt.encoding import encode

    a = soft_one_hot(np.stack([encode(s) for s in seq_a]))
    b = soft_one_hot(np.stack([encode(s) for s in seq_b]))
    with torch.no_grad():
        expected = model(a, b).numpy()
    np.testing.assert_allclose(out["prediction"].to_numpy(), expected, rtol=1e-4, atol=1e-4)


def write_fasta(path, names, seqs):
    path.write_text("".join(f">{n} some description\n{s[:50]}\n{s[50:]}\n"
                            for n, s in zip(names, seqs, strict=True)))


def test_predict_from_fasta_is_antisymmetric(tmp_path, model_dir):
    seq_a, seq_b = random_sequences(3, 120, 3), random_sequences(3, 120, 4)
    write_fasta(tmp_path / "a.fa", ["ga1", "ga2", "ga3"], seq_a)
    write_fasta(tmp_path / "b.fa", ["gb1", "gb2", "gb3"], seq_b)
    run_predict(["predict", "--model", str(model_dir), "--fasta-a", str(tmp_path / "a.fa"),
                 "--fasta-b", str(tmp_path / "b.fa"), "--out", str(tmp_path / "ab.tsv")])
    run_predict(["predict", "--model", str(model_dir), "--fasta-a", str(tmp_path / "b.fa"),
                 "--fasta-b", str(tmp_path / "a.fa"), "--out", str(tmp_path / "ba.tsv")])
    ab = pd.read_csv(tmp_path / "ab.tsv", sep="\t")
    ba = pd.read_csv(tmp_path / "ba.tsv", sep="\t")
    assert ab["id_a"].tolist() == ["ga1", "ga2", "ga3"] and ab["id_b"].tolist() == ba["id_a"].tolist()
    np.testing.assert_allclose(ab["prediction"], -ba["prediction"], atol=1e-4)


def test_predict_rejects_wrong_lengths_naming_the_record(tmp_path, model_dir):
    seqs = random_sequences(2, 120, 5)
    write_fasta(tmp_path / "a.fa", ["ok", "too_short"], [seqs[0], seqs[1][:119]])
    write_fasta(tmp_path / "b.fa", ["x", "y"], seqs)
    with pytest.raises(InputError, match=r"a\.fa.*'too_short'.*119 bases.*expects exactly 120"):
        run_predict(["predict", "--model", str(model_dir), "--fasta-a", str(tmp_path / "a.fa"),
                     "--fasta-b", str(tmp_path / "b.fa"), "--out", str(tmp_path / "o.tsv")])
    pd.DataFrame({"sequence_a": [seqs[0], seqs[0] + "A"], "sequence_b": seqs}).to_csv(
        tmp_path / "p.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"line 3.*121 bases"):
        run_predict(["predict", "--model", str(model_dir), "--pairs", str(tmp_path / "p.tsv"),
                     "--out", str(tmp_path / "o.tsv")])
    write_fasta(tmp_path / "c.fa", ["x"], seqs[:1])
    with pytest.raises(InputError, match="paired by order"):
        run_predict(["predict", "--model", str(model_dir), "--fasta-a", str(tmp_path / "a.fa"),
                     "--fasta-b", str(tmp_path / "c.fa"), "--out", str(tmp_path / "o.tsv")])
    assert not (tmp_path / "o.tsv").exists()


def test_multi_channel_readout_and_sparse_stem_settings():
    """readout_channels keeps several maps with their own positional weights; a stem with
    stride 1 has no pooling layer; stem_bias_init sets the stem's starting batch-norm shift."""
    model = build_model("plantt", "small", 600, {
        "stem_channels": 8, "max_channels": 8, "stem_stride": 1, "stem_kernel": 7,
        "stage_kernels": [3], "blocks_per_stage": 0, "readout_channels": 3, "readout_bins": 10,
        "embedding_dim": 1, "stem_bias_init": -2.0})
    tower = model.tower
    assert not any(isinstance(m, nn.MaxPool1d) for m in tower.stem)
    assert tower.out_length == 600 and tower.readout_length == 10
    assert tower.projection.in_features == 30
    assert torch.all(tower.stem[1].bias == -2.0)
    x = soft_one_hot(torch.from_numpy(np.random.default_rng(0).integers(0, 4, (2, 600))
                                      .astype(np.uint8)))
    assert model(x[:1], x[1:]).shape == (1,)
    with pytest.raises(ValueError, match="readout_channels"):
        build_model("plantt", "small", 600, {"readout_channels": 0})
    with pytest.raises(ValueError, match="blocks_per_stage"):
        build_model("plantt", "small", 600, {"blocks_per_stage": -1})
