"""Training one fold: learning a planted motif, exact kill-and-resume, devices, outputs."""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import plantt
from plantt.io import InputError
from plantt.metrics import regression_metrics
from plantt.models import load_model, read_model_info
from plantt.train import (
    CHECKPOINT,
    GPUUnavailableError,
    PairSet,
    TrainSettings,
    one_cycle_lr,
    predict_pairs,
    resolve_device,
    train_fold,
)

GPU_VISIBLE = torch.cuda.is_available()


def planted_motif_data(n_genes: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random windows; expression = effects of 10-bp motifs planted in fixed regions + noise."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n_genes, length), dtype=np.uint8)
    motifs = [np.array([0, 1, 2, 3, 3, 2, 1, 0, 2, 2], np.uint8),
              np.array([3, 3, 0, 1, 1, 0, 3, 2, 0, 1], np.uint8)]
    regions = [(0, length // 2), (length // 2, length)]
    effects = [2.0, -1.5]
    expression = rng.normal(0.0, 0.3, n_genes)
    for gene in range(n_genes):
        for motif, (lo, hi), effect in zip(motifs, regions, effects, strict=True):
            if rng.random() < 0.5:
                start = rng.integers(lo, hi - motif.size)
                codes[gene, start:start + motif.size] = motif
                expression[gene] += effect
    return codes, expression


def random_pairs(genes: np.ndarray, expression: np.ndarray, n: int, seed: int) -> PairSet:
    rng = np.random.default_rng(seed)
    a, b = rng.choice(genes, n), rng.choice(genes, n)
    return PairSet(a, b, (expression[a] - expression[b]).astype(np.float32))


def shuffled(pairs: PairSet, seed: int) -> PairSet:
    return PairSet(pairs.idx_a, pairs.idx_b, np.random.default_rng(seed).permutation(pairs.target))


def fast_settings(**changes) -> TrainSettings:
    values = dict(preset="small", max_epochs=3, patience=10, batch_size=16, max_lr=3e-3,
                  warmup_steps=5, num_threads=1, seed=0, eval_batch_size=64)
    values.update(changes)
    return TrainSettings(**values)


@pytest.fixture(scope="module")
def tiny():
    """96 training and 32 validation pairs of 256-bp windows (for mechanics, not learning)."""
    codes, expression = planted_motif_data(120, 256, seed=3)
    genes = np.arange(120)
    return codes, random_pairs(genes[:90], expression, 96, 1), \
        random_pairs(genes[90:], expression, 32, 2)


def final_weights(outdir: Path) -> dict[str, torch.Tensor]:
    return torch.load(outdir / "weights.pt", map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------------------------
def test_planted_motif_is_learned_and_beats_shuffled_labels(tmp_path):
    codes, expression = planted_motif_data(1500, 300, seed=0)
    genes = np.arange(1500)
    train = random_pairs(genes[:1005], expression, 2000, 1)
    val = random_pairs(genes[1005:1245], expression, 200, 2)
    test = random_pairs(genes[1245:], expression, 300, 3)
    settings = fast_settings(max_epochs=5, batch_size=32, warmup_steps=10, max_lr=5e-3)
    scores = {}
    for name, (tr, va) in {"real": (train, val),
                           "shuffled": (shuffled(train, 4), shuffled(val, 5))}.items():
        train_fold(codes, tr, va, settings, tmp_path / name, progress=False)
        model = load_model(tmp_path / name)
        prediction = predict_pairs(model, codes, test.idx_a, test.idx_b)
        scores[name] = regression_metrics(test.target, prediction)["spearman"]
    assert scores["real"] > 0.4, scores
    assert scores["real"] > scores["shuffled"] + 0.3, scores


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    from plantt.train import PairSet, TrainSettings, train_fold

    data, outdir, marker = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    load = lambda name: PairSet(*(np.load(data / f"{name}_{k}.npy")
                                  for k in ("idx_a", "idx_b", "target")))

    def stall_mid_epoch_2(epoch, step, global_step):
        if epoch == 2 and step == 3:
            marker.write_text("mid-epoch")
            time.sleep(120)  # killed here

    settings = TrainSettings(**eval(sys.argv[4]))
    train_fold(np.load(data / "codes.npy"), load("train"), load("val"), settings, outdir,
               progress=False, step_callback=stall_mid_epoch_2)
""")


def test_killed_and_resumed_run_matches_uninterrupted_run(tmp_path, tiny):
    codes, train, val = tiny
    # shift augmentation on: its random offsets must resume exactly too
    settings_kwargs = dict(preset="small", max_epochs=3, patience=10, batch_size=16, max_lr=3e-3,
                           warmup_steps=5, num_threads=1, seed=7, eval_batch_size=64,
                           shift_augment=3)
    settings = TrainSettings(**settings_kwargs)
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "codes.npy", codes)
    for name, pairs in (("train", train), ("val", val)):
        for key in ("idx_a", "idx_b", "target"):
            np.save(data / f"{name}_{key}.npy", getattr(pairs, key))
    interrupted, marker = tmp_path / "interrupted", tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": str(Path(plantt.__file__).parents[1])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data), str(interrupted), str(marker),
         repr(settings_kwargs)], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child never reached epoch 2"
            time.sleep(0.05)
        assert (interrupted / CHECKPOINT).exists(), "epoch 1 should have been checkpointed"
        assert not (interrupted / "weights.pt").exists()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()
    history_before = pd.read_csv(interrupted / "history.tsv", sep="\t")
    assert history_before["epoch"].tolist() == [1]

    resumed = train_fold(codes, train, val, settings, interrupted, progress=False)
    straight = train_fold(codes, train, val, settings, tmp_path / "straight", progress=False)

    a, b = final_weights(interrupted), final_weights(tmp_path / "straight")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
    metric_columns = [c for c in resumed.history.columns if c != "seconds"]
    pd.testing.assert_frame_equal(resumed.history[metric_columns],
                                  straight.history[metric_columns])
    assert resumed.epochs_run == 3 and resumed.best_epoch == straight.best_epoch


def test_same_seed_same_weights_other_seed_differs(tmp_path, tiny):
    codes, train, val = tiny
    runs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        train_fold(codes, train, val, fast_settings(max_epochs=1, seed=seed), tmp_path / name,
                   progress=False)
        runs[name] = final_weights(tmp_path / name)
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert not all(torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def test_outputs_history_and_best_weights(tmp_path, tiny):
    codes, train, val = tiny
    result = train_fold(codes, train, val, fast_settings(max_epochs=3), tmp_path, progress=False,
                        layout="toy_256", provenance={"fold": 1})
    history = pd.read_csv(tmp_path / "history.tsv", sep="\t")
    for column in ("epoch", "train_loss", "val_loss", "val_spearman", "val_pearson", "val_r2",
                   "val_auroc", "lr", "seconds"):
        assert column in history.columns
    assert history["epoch"].tolist() == [1, 2, 3]
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    info = read_model_info(tmp_path)
    assert info["layout"] == "toy_256" and info["provenance"]["fold"] == 1
    assert info["provenance"]["best_epoch"] == result.best_epoch
    assert info["provenance"]["train_settings"]["seed"] == 0
    best = history.loc[history["epoch"] == result.best_epoch, "val_spearman"].item()
    assert best == pytest.approx(history["val_spearman"].max(), abs=1e-5)
    # the saved weights are the best epoch's: they reproduce its validation Spearman
    prediction = predict_pairs(load_model(tmp_path), codes, val.idx_a, val.idx_b)
    assert regression_metrics(val.target, prediction)["spearman"] == pytest.approx(best, abs=1e-4)
    assert result.stop_reason.startswith("epoch budget")


def test_finished_run_is_not_retrained(tmp_path, tiny):
    codes, train, val = tiny
    first = train_fold(codes, train, val, fast_settings(max_epochs=1), tmp_path, progress=False)

    def fail(*_):
        raise AssertionError("a finished run should not train again")

    again = train_fold(codes, train, val, fast_settings(max_epochs=1), tmp_path, progress=False,
                       step_callback=fail)
    assert again.best_epoch == first.best_epoch


def test_checkpoint_of_another_run_is_ignored(tmp_path, tiny, caplog):
    codes, train, val = tiny
    train_fold(codes, train, val, fast_settings(max_epochs=1, seed=1), tmp_path, progress=False)
    with caplog.at_level(logging.WARNING, logger="plantt.train"):
        result = train_fold(codes, train, val, fast_settings(max_epochs=1, seed=2), tmp_path,
                            progress=False)
    assert "other settings or data" in caplog.text
    assert result.epochs_run == 1
    fresh = train_fold(codes, train, val, fast_settings(max_epochs=1, seed=2), tmp_path / "x",
                       progress=False)
    assert all(torch.equal(final_weights(tmp_path)[k], w)
               for k, w in final_weights(tmp_path / "x").items())
    assert fresh.best_metric == pytest.approx(result.best_metric)


def test_early_stopping_keeps_patience(tmp_path, tiny):
    codes, train, val = tiny
    result = train_fold(codes, shuffled(train, 0), shuffled(val, 1),
                        fast_settings(max_epochs=20, patience=2), tmp_path, progress=False)
    assert result.stop_reason.startswith("early stopping")
    assert result.epochs_run == result.best_epoch + 2


def test_washburn_training_with_flipped_pairs(tmp_path, tiny):
    codes, train, val = tiny
    steps = []
    result = train_fold(codes, train, val, fast_settings(max_epochs=1), tmp_path,
                        model_kind="washburn", progress=False,
                        step_callback=lambda epoch, step, total: steps.append(total))
    assert len(steps) == math.ceil(2 * len(train) / 16)  # both orientations of every pair
    assert result.metric_name == "val_auroc"
    assert "val_auroc" in result.history.columns and "val_spearman" not in result.history.columns
    model = load_model(tmp_path)
    assert read_model_info(tmp_path)["kind"] == "washburn"
    probability = predict_pairs(model, codes, val.idx_a, val.idx_b)
    assert np.all((probability > 0) & (probability < 1))


def test_init_weights_start_sequential_training(tmp_path, tiny):
    codes, train, val = tiny
    train_fold(codes, train, val, fast_settings(max_epochs=1), tmp_path / "pre", progress=False)
    train_fold(codes, train, val, fast_settings(max_epochs=1, seed=5, max_lr=1e-12,
                                                weight_decay=0.0),
               tmp_path / "down", init_weights=tmp_path / "pre", progress=False)
    before, after = final_weights(tmp_path / "pre"), final_weights(tmp_path / "down")
    for key, value in before.items():
        if "running" not in key and "num_batches" not in key:
            torch.testing.assert_close(after[key], value, atol=1e-6, rtol=0)
    assert read_model_info(tmp_path / "down")["provenance"]["init_weights"].endswith("pre")
    with pytest.raises(InputError, match="initial weights not found"):
        train_fold(codes, train, val, fast_settings(max_epochs=1), tmp_path / "bad",
                   init_weights=tmp_path / "missing", progress=False)


def test_one_cycle_schedule():
    lrs = [one_cycle_lr(step, 100, 10, 1e-3) for step in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(x < y for x, y in zip(lrs[:10], lrs[1:10], strict=False))
    assert all(x >= y for x, y in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] == 0.0 and max(lrs) == pytest.approx(1e-3)


def test_settings_from_config_rejects_unknown_keys():
    settings = TrainSettings.from_dict({"max_lr": 2e-3, "warmup_steps": 100, "preset": "small"})
    assert settings.max_lr == 2e-3 and settings.batch_size == 32
    assert TrainSettings().max_lr == 8e-5 and TrainSettings().warmup_steps == 900
    with pytest.raises(ValueError, match="unknown training setting.*max_learning_rate"):
        TrainSettings.from_dict({"max_learning_rate": 1.0})


def test_bad_pairs_are_rejected(tmp_path, tiny):
    codes, train, val = tiny
    bad = PairSet(train.idx_a, np.full_like(train.idx_b, 10_000), train.target)
    with pytest.raises(ValueError, match="out of range"):
        train_fold(codes, bad, val, fast_settings(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="model_kind"):
        train_fold(codes, train, val, fast_settings(), tmp_path, model_kind="cnn", progress=False)


@pytest.mark.skipif(GPU_VISIBLE, reason="a GPU is visible")
def test_required_gpu_missing_is_a_clear_error(tmp_path, tiny):
    codes, train, val = tiny
    with pytest.raises(GPUUnavailableError, match="GPU is required.*allow_cpu_fallback"):
        train_fold(codes, train, val, fast_settings(require_gpu=True), tmp_path, progress=False)
    with pytest.raises(GPUUnavailableError, match="allow_cpu_fallback"):
        resolve_device("cuda")
    assert not (tmp_path / CHECKPOINT).exists()


@pytest.mark.skipif(GPU_VISIBLE, reason="a GPU is visible")
def test_required_gpu_missing_with_fallback_trains_on_cpu(tmp_path, tiny):
    codes, train, val = tiny
    result = train_fold(codes, train, val,
                        fast_settings(max_epochs=1, require_gpu=True, allow_cpu_fallback=True),
                        tmp_path, progress=False)
    assert result.device == "cpu"
    assert (tmp_path / "weights.pt").exists()
    assert resolve_device("cuda", allow_cpu_fallback=True) == torch.device("cpu")


def test_settings_given_as_text_are_converted_or_refused() -> None:
    # `snakemake --config 'train={...}'` hands nested values over as strings
    settings = TrainSettings.from_dict({"max_epochs": "2", "max_lr": "2e-3", "amp": "false",
                                        "grad_clip": "1.5", "num_threads": "null",
                                        "preset": "small"})
    assert settings.max_epochs == 2 and settings.max_lr == 2e-3 and settings.amp is False
    assert settings.grad_clip == 1.5 and settings.num_threads is None and settings.preset == "small"
    with pytest.raises(ValueError, match="max_epochs: 'two'"):
        TrainSettings.from_dict({"max_epochs": "two"})
    with pytest.raises(ValueError, match="amp"):
        TrainSettings.from_dict({"amp": "maybe"})


def test_shift_rows_moves_bases_and_fills_with_n():
    from plantt.train import _shift_rows

    rows = torch.tensor([[0, 1, 2, 3, 0], [1, 1, 2, 2, 3], [3, 2, 1, 0, 0]], dtype=torch.uint8)
    shifted = _shift_rows(rows, torch.tensor([2, -1, 0]))
    assert shifted.tolist() == [[4, 4, 0, 1, 2], [1, 2, 2, 3, 4], [3, 2, 1, 0, 0]]
    assert shifted.dtype == torch.uint8


def test_shift_augmentation_changes_training_but_not_its_determinism(tmp_path, tiny):
    codes, train, val = tiny
    kwargs = dict(preset="small", max_epochs=1, batch_size=16, max_lr=3e-3, warmup_steps=5,
                  num_threads=1, seed=3)
    runs = {}
    for name, shift in (("plain", 0), ("shifted", 5), ("shifted_again", 5)):
        train_fold(codes, train, val, TrainSettings(**kwargs, shift_augment=shift),
                   tmp_path / name, progress=False, plots=False)
        runs[name] = final_weights(tmp_path / name)
    assert all(torch.equal(runs["shifted"][k], runs["shifted_again"][k]) for k in runs["plain"])
    assert not all(torch.equal(runs["plain"][k], runs["shifted"][k]) for k in runs["plain"])
    with pytest.raises(ValueError, match="shift_augment"):
        TrainSettings(shift_augment=-1)


def test_training_is_deterministic_inside_and_restores_torch_state_after(tmp_path, tiny):
    codes, train, val = tiny
    seen = []
    torch.use_deterministic_algorithms(False)
    from plantt import train as train_module

    original = train_module._FoldTrainer.run_epoch

    def spying_run_epoch(self, *args, **kwargs):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return original(self, *args, **kwargs)

    train_module._FoldTrainer.run_epoch = spying_run_epoch
    try:
        train_fold(codes, train, val, fast_settings(max_epochs=1), tmp_path, progress=False)
    finally:
        train_module._FoldTrainer.run_epoch = original
    assert seen == [True]
    assert not torch.are_deterministic_algorithms_enabled()

