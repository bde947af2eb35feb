"""Train one cross-validation fold of PlanTT or the Washburn baseline (paper Sections 3.3, 4.4, 4.5).

:func:`train_fold` takes plain arrays (no Snakemake): ``codes`` is an ``(n_genes, L)`` uint8 array of
encoded windows (A=0, C=1, G=2, T=3, N=4; a numpy memmap is fine) and ``train``/``val`` hold
``idx_a``, ``idx_b`` (rows of ``codes``) and ``target`` (the expression difference ``d_ab``).
A ``single`` (single-sequence) model instead takes :class:`SequenceSet` s: ``idx`` (rows of
``codes``) and ``target`` (the expression of each sequence); it is trained with MSE or, as
Camformer was, MAE (``loss``), and early-stopped on the validation Pearson r + Spearman rho
(``val_r_plus_rho``, Camformer's criterion).

Recipe (every number a field of :class:`TrainSettings`, defaults from the paper): AdamW (betas
0.9/0.999, eps 1e-8, weight decay 0.01); a one-cycle schedule, linear warm-up over 900 steps to 8e-5
then cosine decay reaching zero at the last step of the 50-epoch budget; batch 32; MSE (PlanTT) or
binary cross-entropy on flipped-pair-augmented data (Washburn); early stopping with patience 10 on
the validation Spearman (PlanTT) or AUROC (Washburn); the best weights are kept. Sequential
training (Section 4.5) starts from ``init_weights`` (a model directory or a ``weights.pt``).

Seeded detectors (``seed_stem_kmers`` > 0; the demo's recipe): before training, a ridge regression
on k-mer counts (:mod:`plantt.kmer`, one per k in ``seed_stem_ks``, penalty ``seed_stem_alpha``)
is fitted on the training examples, and the first filters of the stem convolution become exact
detectors of its strongest k-mers (:func:`plantt.models.seed_detectors`); the k-mers are logged
and written to ``model.json`` (``provenance.seeded_kmers``). ``stem_lr_scale`` lets the stem learn
at a fraction of the learning rate, ``batch_by_group`` builds batches from whole groups of
connected pairs (orthogroups), so that each gene's tower runs once per batch (PlanTT's forward pass
always embeds each distinct gene of a batch once).

Fitted readout (``fit_readout``; the demo's recipe): after seeding, the tower's final projection
(a PlanTT-CNN tower's linear readout of its binned maps, embedding_dim 1) is set to a ridge
regression of the training targets on what it reads, one pass of the tower per gene; the penalty,
a fraction of the features' mean variance from ``fit_readout_penalties``, is the one whose
predictions score best on the validation examples by the early-stopping metric. Trained by Adam
from random weights, that readout was still far from this optimum after two epochs: on fold 0 of
the demo and of two other grammars, one epoch from the fitted readout beat two from a random one
on every assay (``benchmarks/README.md``). The chosen penalty and its validation metric go to
``model.json`` (``provenance.readout_fit``). A start from ``init_weights`` keeps that model's
readout.

Reproducibility: the model is initialised from ``seed``; each epoch re-seeds torch from
``(seed, epoch)`` and shuffles with ``numpy.random.default_rng([seed, epoch])``, so an epoch's
randomness (order, dropout) does not depend on what ran before it in the process. At the end of
every epoch a checkpoint (model, optimizer, schedule position, RNG states, early-stopping state,
history) is written atomically to ``outdir/checkpoint.pt``; a rerun resumes from it, and a run
killed mid-epoch and rerun ends with exactly the same weights as an uninterrupted run (on CPU, with
the same thread count). A checkpoint written with different settings or data is ignored (warning).

Device: CUDA, then MPS, then CPU unless ``device`` is given. On CUDA the uint8 codes live on the GPU
and soft one-hot batches are built there; the forward pass runs under bf16 autocast (``amp``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import torch.utils.deterministic
from torch import nn

from plantt import __version__
from plantt.allocator import retain_freed_memory
from plantt.encoding import N_CODE, soft_one_hot
from plantt.io import InputError, PathLike, atomic_path, get_logger, remove_stale_temporaries, write_tsv
from plantt.metrics import regression_metrics, sign_metrics
from plantt.models import (
    MODEL_KINDS,
    WEIGHTS,
    build_model,
    load_state_dict_file,
    load_torch_file,
    save_model,
)

log = get_logger("train")

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.tsv"
CURVES = "curves.png"
CHECKPOINT_FORMAT = 1
_CHECKPOINT_SUFFIX = ".pt"  # of its temporary while written

LOSSES = ("auto", "mse", "mae")

# Settings that do not change the numbers a run produces (so they may differ on resume).
_RUNTIME_ONLY = frozenset({"num_threads", "require_gpu", "allow_cpu_fallback", "eval_batch_size"})


@dataclass
class TrainSettings:
    """Hyper-parameters of one training run; defaults are the paper's (Section 3.3)."""

    seed: int = 0
    preset: str = "paper"
    tower: str = "cnn"  # "camformer" (plantt and single models)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    loss: str = "auto"  # "mse" or "mae"; "auto": MSE (BCE for the Washburn classifier)
    max_epochs: int = 50
    patience: int = 10
    min_delta: float = 0.0
    batch_size: int = 32
    eval_batch_size: int = 128
    max_lr: float = 8e-5
    warmup_steps: int = 900
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.01
    grad_clip: float | None = None
    flip_augment: bool = True  # Washburn only: add (b, a, -d) for every (a, b, d)
    # Training only: shift every sequence by a random offset in [-shift_augment, shift_augment]
    # bases (N shifted in), each sequence of a pair on its own; 0: off.
    shift_augment: int = 0
    # Seed the stem's first filters as exact detectors of the k-mers that a ridge regression on
    # the fold's training pairs weighs most (plantt.kmer): this many per k in seed_stem_ks (0: off).
    seed_stem_kmers: int = 0
    seed_stem_ks: tuple[int, ...] = (6, 7, 8)
    # Mismatches each k-mer detector tolerates, one per k of seed_stem_ks (empty: exact only):
    # degenerate sites of a factor seldom match its best k-mer exactly (models.seed_detectors).
    seed_stem_kmer_mismatches: tuple[int, ...] = ()
    seed_stem_alpha: float = 100.0
    seed_stem_block_length: int = 750
    # Prime the stem's first filters with known motifs (plantt.jaspar, plantt.pwm): the matrices
    # that a ridge on their per-block occupancy on the fold's training examples weighs most (this
    # many, 0: off), each as two detectors (both orientations) that fire above the relative score
    # seed_stem_matrix_threshold; the k-mer seeds then fill the filters left. The matrices are
    # JASPAR's CORE plants collection (seed_stem_jaspar_release) or a MEME file's.
    seed_stem_matrices: int = 0
    seed_stem_motif_file: str | None = None
    seed_stem_jaspar_release: str = "JASPAR2024"
    seed_stem_matrix_threshold: float = 0.8
    seed_stem_matrix_block_length: int = 500
    stem_lr_scale: float = 1.0  # the stem convolution's learning rate relative to the rest
    # Before training, fit the tower's final projection in closed form: a ridge regression of the
    # training targets on what it reads (plantt.models.PlanTTCNNTower.readout_features), the
    # penalty chosen on the validation examples from fit_readout_penalties (each a fraction of the
    # features' mean variance). Needs a PlanTT-CNN tower with embedding_dim 1.
    fit_readout: bool = False
    fit_readout_penalties: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    # Readout bins summed in groups of these sizes before the fit (one weight per detector and
    # group, chosen on validation with the penalty): fewer weights where data are few.
    fit_readout_bin_groups: tuple[int, ...] = (1,)
    # Which seeded detectors the fitted readout reads, chosen on validation with the penalty:
    # "all" of them, only the known "matrices" or only the "kmers" (the others get weight 0, an
    # exact setting of the projection). Known matrices describe degenerate sites, exact k-mers
    # exact ones: which the data hold is the validation pairs' to say, not the recipe's.
    fit_readout_detector_sets: tuple[str, ...] = ("all",)
    # The readout is the mean of the this many fits of best validation metric (of every penalty,
    # single-gene weight, bin group and detector set tried): one linear readout still (the mean
    # of the weights), less at the mercy of which fit a few hundred validation pairs rank first.
    fit_readout_average_top: int = 1
    # The fitted readout's weights compete with the epochs' as "epoch 0": kept when no epoch
    # beats its validation metric (small data, where training from it can only overfit).
    keep_fitted_readout: bool = False
    # Single-gene rows in the fitted readout: each training gene's expression level (centred per
    # species, rescaled to the pairs' targets) joins the pairs with each of these weights, the
    # weight chosen with the penalty on the validation pairs (0 among them: pairs alone). A gene's
    # level holds every motif it carries, a pair only those that differ. Empty: off.
    single_gene_weights: tuple[float, ...] = ()
    # Batches made of whole groups of connected pairs (an orthogroup's pairs), so each gene's
    # tower runs once per batch rather than once per pair it is in.
    batch_by_group: bool = False
    amp: bool = True  # bf16 autocast on CUDA
    deterministic: bool = True
    num_threads: int | None = None
    require_gpu: bool = False
    allow_cpu_fallback: bool = False

    def __post_init__(self) -> None:
        checks = {
            # 0 epochs: the fitted readout alone (it must then be fitted and kept)
            "max_epochs": self.max_epochs >= 1 or (self.max_epochs == 0 and self.fit_readout
                                                   and self.keep_fitted_readout),
            "patience": self.patience >= 1,
            "batch_size": self.batch_size >= 1, "eval_batch_size": self.eval_batch_size >= 1,
            "max_lr": self.max_lr > 0, "warmup_steps": self.warmup_steps >= 0,
            "weight_decay": self.weight_decay >= 0, "shift_augment": self.shift_augment >= 0,
            "seed_stem_kmers": self.seed_stem_kmers >= 0, "stem_lr_scale": self.stem_lr_scale >= 0,
            "seed_stem_alpha": self.seed_stem_alpha > 0,
            "seed_stem_block_length": self.seed_stem_block_length >= 1,
            "seed_stem_matrices": self.seed_stem_matrices >= 0,
            "seed_stem_matrix_threshold": 0 < self.seed_stem_matrix_threshold < 1,
            "seed_stem_matrix_block_length": self.seed_stem_matrix_block_length >= 1,
        }
        self.seed_stem_ks = tuple(int(k) for k in self.seed_stem_ks)
        self.fit_readout_penalties = tuple(float(a) for a in self.fit_readout_penalties)
        self.single_gene_weights = tuple(float(w) for w in self.single_gene_weights)
        self.fit_readout_bin_groups = tuple(int(g) for g in self.fit_readout_bin_groups)
        checks["fit_readout_bin_groups"] = (bool(self.fit_readout_bin_groups)
                                            and min(self.fit_readout_bin_groups) >= 1)
        self.fit_readout_detector_sets = tuple(str(d) for d in self.fit_readout_detector_sets)
        checks["fit_readout_average_top"] = self.fit_readout_average_top >= 1
        checks["fit_readout_detector_sets"] = (
            bool(self.fit_readout_detector_sets)
            and set(self.fit_readout_detector_sets) <= set(DETECTOR_SETS))
        checks["single_gene_weights"] = all(w >= 0 for w in self.single_gene_weights)
        checks["fit_readout_penalties"] = (bool(self.fit_readout_penalties)
                                           and min(self.fit_readout_penalties) > 0)
        if self.seed_stem_kmers and (not self.seed_stem_ks or min(self.seed_stem_ks) < 1):
            checks["seed_stem_ks"] = False
        self.seed_stem_kmer_mismatches = tuple(int(m) for m in self.seed_stem_kmer_mismatches)
        checks["seed_stem_kmer_mismatches"] = not self.seed_stem_kmer_mismatches or (
            len(self.seed_stem_kmer_mismatches) == len(self.seed_stem_ks)
            and all(0 <= 2 * m < k for m, k in zip(self.seed_stem_kmer_mismatches,
                                                     self.seed_stem_ks, strict=True)))
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid training setting(s): {', '.join(bad)}")
        if self.loss is None:
            self.loss = "auto"
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> TrainSettings:
        """Build from a config mapping; unknown keys are an error (catches typos in config)."""
        values = dict(values or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown training setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(names))}")
        defaults = cls()
        for name, value in values.items():
            values[name] = _coerce_setting(name, value, getattr(defaults, name))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce_setting(name: str, value: Any, default: Any) -> Any:
    """Text from the command line (``snakemake --config`` hands nested values over as strings)
    converted to the type of the setting's default; anything else is returned unchanged."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    text = value.strip()
    if text.lower() in ("null", "none", "~"):
        return None
    try:
        if isinstance(default, bool):
            if text.lower() in ("true", "yes", "1"):
                return True
            if text.lower() in ("false", "no", "0"):
                return False
            raise ValueError(text)
        if isinstance(default, int) or (default is None and text.lstrip("-").isdigit()):
            return int(text)
        if isinstance(default, float) or default is None:
            return float(text)
    except ValueError:
        raise ValueError(f"training setting {name}: {value!r} is not a valid "
                         f"{type(default).__name__ if default is not None else 'number'}") from None
    return value


@dataclass
class PairSet:
    """Pairs of rows of ``codes`` and their targets (expression differences)."""

    idx_a: np.ndarray
    idx_b: np.ndarray
    target: np.ndarray

    def __post_init__(self) -> None:
        self.idx_a = np.asarray(self.idx_a, dtype=np.int64)
        self.idx_b = np.asarray(self.idx_b, dtype=np.int64)
        self.target = np.asarray(self.target, dtype=np.float32)
        if not (self.idx_a.shape == self.idx_b.shape == self.target.shape) or self.idx_a.ndim != 1:
            raise ValueError("idx_a, idx_b and target must be 1-d arrays of the same length")

    def __len__(self) -> int:
        return int(self.idx_a.size)

    @classmethod
    def coerce(cls, obj: Any) -> PairSet:
        """Accept a PairSet, a mapping/DataFrame with the three columns, or an object with them."""
        if isinstance(obj, PairSet):
            return obj
        try:
            if isinstance(obj, Mapping | pd.DataFrame):
                return cls(np.asarray(obj["idx_a"]), np.asarray(obj["idx_b"]),
                           np.asarray(obj["target"]))
            return cls(obj.idx_a, obj.idx_b, obj.target)
        except (KeyError, AttributeError) as err:
            raise ValueError(f"pairs need idx_a, idx_b and target (missing {err})") from None

    def flipped(self) -> PairSet:
        """Both orientations: (a, b, d) and (b, a, -d)."""
        return PairSet(np.concatenate([self.idx_a, self.idx_b]),
                       np.concatenate([self.idx_b, self.idx_a]),
                       np.concatenate([self.target, -self.target]))


@dataclass
class SequenceSet:
    """Rows of ``codes`` and their targets (the expression of each sequence)."""

    idx: np.ndarray
    target: np.ndarray

    def __post_init__(self) -> None:
        self.idx = np.asarray(self.idx, dtype=np.int64)
        self.target = np.asarray(self.target, dtype=np.float32)
        if self.idx.shape != self.target.shape or self.idx.ndim != 1:
            raise ValueError("idx and target must be 1-d arrays of the same length")

    def __len__(self) -> int:
        return int(self.idx.size)


Examples = PairSet | SequenceSet


@dataclass
class GeneLevels:
    """Single genes' expression (log2 of the mean over replicates + 1) with their species: what
    the fitted readout may also learn from (``single_gene_weights``), beside the pairs."""

    idx: np.ndarray
    target: np.ndarray
    species: np.ndarray

    def __post_init__(self) -> None:
        self.idx = np.asarray(self.idx, dtype=np.int64)
        self.target = np.asarray(self.target, dtype=np.float32)
        self.species = np.asarray(self.species).astype(str)
        if not (self.idx.shape == self.target.shape == self.species.shape) or self.idx.ndim != 1:
            raise ValueError("idx, target and species must be 1-d arrays of the same length")

    def __len__(self) -> int:
        return int(self.idx.size)

    def shuffled(self, seed: int) -> GeneLevels:
        """The levels permuted within each species (for the shuffled-label control)."""
        rng = np.random.default_rng(seed)
        target = self.target.copy()
        for sp in np.unique(self.species):
            rows = np.flatnonzero(self.species == sp)
            target[rows] = target[rng.permutation(rows)]
        return GeneLevels(self.idx, target, self.species)


def _index_arrays(examples: Examples) -> tuple[np.ndarray, ...]:
    if isinstance(examples, SequenceSet):
        return (examples.idx,)
    return examples.idx_a, examples.idx_b


@dataclass
class TrainResult:
    history: pd.DataFrame
    best_epoch: int
    best_metric: float
    metric_name: str
    epochs_run: int
    stop_reason: str
    device: str
    outdir: Path


class GPUUnavailableError(RuntimeError):
    """A GPU was required (``require_gpu``) but none is visible."""


# ----------------------------------------------------------------------------------------------
# Device, runtime and schedule
# ----------------------------------------------------------------------------------------------
def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str | torch.device | None = None, require_gpu: bool = False,
                   allow_cpu_fallback: bool = False) -> torch.device:
    """Pick CUDA, then MPS, then CPU; enforce ``require_gpu`` unless CPU fallback is allowed."""
    if device is not None:
        chosen = torch.device(device)
        available = {"cuda": torch.cuda.is_available(), "mps": _mps_available()}
        if chosen.type in available and not available[chosen.type]:
            if not allow_cpu_fallback:
                raise GPUUnavailableError(
                    f"device {chosen} was requested but is not available "
                    "(set allow_cpu_fallback to train on the CPU instead)")
            log.warning("device %s not available: falling back to the CPU", chosen)
            chosen = torch.device("cpu")
    elif torch.cuda.is_available():
        chosen = torch.device("cuda")
    elif _mps_available():
        chosen = torch.device("mps")
    else:
        chosen = torch.device("cpu")
    if require_gpu and chosen.type == "cpu":
        if not allow_cpu_fallback:
            raise GPUUnavailableError(
                "a GPU is required (require_gpu) but none is visible to PyTorch "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
                "check CUDA_VISIBLE_DEVICES and the job's GPU request, or set "
                "allow_cpu_fallback to train on the CPU (much slower)")
        log.warning("no GPU visible: training on the CPU (allow_cpu_fallback is set)")
    return chosen


@contextlib.contextmanager
def _torch_runtime(settings: TrainSettings, device: torch.device) -> Iterator[None]:
    """Thread count and deterministic algorithms for the run, restored afterwards."""
    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    old_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    old_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    old_fill = torch.utils.deterministic.fill_uninitialized_memory
    # Denormal floats (e.g. in Adam's second moments late in the cosine decay) can slow CPU
    # arithmetic many-fold; flushing them to zero changes nothing measurable.
    flushed = device.type == "cpu" and torch.set_flush_denormal(True)
    # Without this, a CPU step re-faults every activation's pages (plantt.allocator).
    retain_freed_memory()
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    if settings.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        # Deterministic mode also fills every new tensor with NaN (a debugging aid): up to a
        # third of a CPU training step for small towers, and no part of reproducibility.
        torch.utils.deterministic.fill_uninitialized_memory = False
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = device.type == "cuda"
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_deterministic, warn_only=old_warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = old_fill
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old_cudnn


def one_cycle_lr(step: int, total_steps: int, warmup_steps: int, max_lr: float) -> float:
    """Learning rate of optimizer step ``step`` (0-based) of ``total_steps``.

    Linear warm-up reaching ``max_lr`` at step ``warmup_steps - 1``, then cosine decay that reaches
    exactly zero at the last step, ``total_steps - 1``.
    """
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    decay_steps = total_steps - warmup_steps
    if decay_steps <= 0:
        return max_lr
    progress = min(1.0, (step - warmup_steps + 1) / decay_steps)
    return max_lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------------------
# Batches and prediction
# ----------------------------------------------------------------------------------------------
class CodeBank:
    """Encoded windows, on the GPU when training there; builds soft one-hot batches on the fly."""

    def __init__(self, codes: np.ndarray | torch.Tensor, device: torch.device):
        self.device = device
        if codes.ndim != 2:
            raise ValueError(f"codes must be a 2-d (n_genes, length) array, got shape "
                             f"{tuple(codes.shape)}")
        self.n_genes, self.seq_len = int(codes.shape[0]), int(codes.shape[1])
        if isinstance(codes, torch.Tensor):
            self.codes: np.ndarray | torch.Tensor = codes.to(device) if device.type == "cuda" \
                else codes
        elif device.type == "cuda":
            # np.array copies (a read-only memmap cannot back a tensor), then one upload
            self.codes = torch.from_numpy(np.array(codes, dtype=np.uint8, order="C")).to(device)
        else:
            self.codes = codes  # numpy (memmap): gather rows per batch

    def one_hot(self, idx: np.ndarray, shifts: np.ndarray | None = None) -> torch.Tensor:
        """Soft one-hot rows ``idx``; row ``i`` moved ``shifts[i]`` bases to the right (left if
        negative), the bases shifted in being N."""
        if isinstance(self.codes, torch.Tensor):
            rows = self.codes[torch.as_tensor(idx, device=self.codes.device)]
        else:
            rows = torch.from_numpy(np.ascontiguousarray(self.codes[idx], dtype=np.uint8))
        rows = rows.to(self.device, non_blocking=True)
        if shifts is not None and np.any(shifts):
            rows = _shift_rows(rows, torch.as_tensor(shifts, device=rows.device))
        return soft_one_hot(rows)

    def pair_batch(self, idx_a: np.ndarray, idx_b: np.ndarray, shifts: np.ndarray | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.one_hot(np.concatenate([idx_a, idx_b]), shifts)
        return x[: idx_a.size], x[idx_a.size:]


def _shift_rows(rows: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """uint8 code rows, row ``i`` shifted by ``shifts[i]`` positions with N filling the gap."""
    length = rows.shape[1]
    source = torch.arange(length, device=rows.device)[None, :] - shifts[:, None].long()
    inside = (source >= 0) & (source < length)
    moved = torch.gather(rows, 1, source.clamp(0, length - 1))
    return torch.where(inside, moved, torch.full_like(moved, N_CODE))


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _forward(model: nn.Module, bank: CodeBank, *index: np.ndarray,
             shifts: np.ndarray | None = None) -> torch.Tensor:
    """The model's output for one batch: a sequence per row (one index array) or a pair per row
    (two). A single-sequence model predicts a pair as the difference of its two predictions; a
    two-tower model predicts a sequence as its score ``sum(z)``. ``shifts``: one per sequence
    (for pairs, the a's then the b's), see :meth:`CodeBank.one_hot`."""
    single = getattr(model, "kind", "plantt") == "single"
    if len(index) == 1:
        x = bank.one_hot(index[0], shifts)
        return model(x) if single else model.score(x)
    if shifts is None and getattr(model, "kind", None) == "plantt" and hasattr(model, "embed"):
        # each distinct gene of the batch through the tower once: z_a - z_b as TwoTower computes
        genes, inverse = np.unique(np.concatenate(index), return_inverse=True)
        z = model.embed(bank.one_hot(genes))
        inverse_t = torch.as_tensor(inverse, device=z.device)
        n = index[0].size
        return (z[inverse_t[:n]] - z[inverse_t[n:]]).sum(dim=-1)
    xa, xb = bank.pair_batch(*index, shifts=shifts)
    if single:
        out = model(torch.cat([xa, xb]))
        return out[: xa.shape[0]] - out[xa.shape[0]:]
    return model(xa, xb)


def _predict_raw(model: nn.Module, bank: CodeBank, index: tuple[np.ndarray, ...],
                 batch_size: int, amp: bool) -> np.ndarray:
    """Raw model outputs in eval mode, float32: for pairs (two index arrays) PlanTT's difference
    or Washburn's logit, for sequences (one) the prediction or score of each sequence."""
    was_training = model.training
    model.eval()
    n = index[0].size
    out = np.empty(n, dtype=np.float32)
    try:
        with torch.inference_mode(), _autocast(bank.device, amp):
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                batch = [i[start:stop] for i in index]
                out[start:stop] = _forward(model, bank, *batch).float().cpu().numpy()
    finally:
        model.train(was_training)
    return out


def predict_pairs(model: nn.Module, codes: np.ndarray | torch.Tensor, idx_a: np.ndarray,
                  idx_b: np.ndarray, batch_size: int = 128,
                  device: str | torch.device | None = None, amp: bool = False) -> np.ndarray:
    """Predictions for pairs of rows of ``codes`` (eval mode; the model's mode is restored).

    PlanTT: predicted difference ``e_a - e_b``. Washburn: probability that ``e_a > e_b``.
    ``device`` defaults to the model's device (the model is moved there otherwise). Reported
    predictions are float32 unless ``amp``: bf16 keeps ~3 significant digits, so two towers'
    sums of order 1000 (the published model's) would differ by several units from rounding.
    """
    dev = torch.device(device) if device is not None else _model_device(model)
    model.to(dev)
    idx_a = np.asarray(idx_a, dtype=np.int64)
    idx_b = np.asarray(idx_b, dtype=np.int64)
    raw = _predict_raw(model, CodeBank(codes, dev), (idx_a, idx_b), batch_size, amp)
    if getattr(model, "kind", "plantt") == "washburn":
        return (1.0 / (1.0 + np.exp(-raw.astype(np.float64)))).astype(np.float32)
    return raw


def predict_sequences(model: nn.Module, codes: np.ndarray | torch.Tensor, idx: np.ndarray,
                      batch_size: int = 128, device: str | torch.device | None = None,
                      amp: bool = False) -> np.ndarray:
    """Per-sequence outputs for rows ``idx`` of ``codes``: a single-sequence model's predicted
    expression, or a two-tower model's score ``sum(z)`` (expression up to an offset)."""
    if getattr(model, "kind", "plantt") == "washburn":
        raise ValueError("the Washburn classifier scores pairs only")
    dev = torch.device(device) if device is not None else _model_device(model)
    model.to(dev)
    return _predict_raw(model, CodeBank(codes, dev), (np.asarray(idx, dtype=np.int64),),
                        batch_size, amp)


# ----------------------------------------------------------------------------------------------
# Losses and validation metrics
# ----------------------------------------------------------------------------------------------
def _bce_target(target: torch.Tensor) -> torch.Tensor:
    """1 where a > b, 0 where a < b, 0.5 for an exact tie (consistent under flipping)."""
    return (target > 0).float() + 0.5 * (target == 0).float()


def _loss(kind: str, output: torch.Tensor, target: torch.Tensor, loss: str | None = None
          ) -> torch.Tensor:
    if kind == "washburn":
        return F.binary_cross_entropy_with_logits(output, _bce_target(target))
    if loss == "mae":
        return F.l1_loss(output, target)
    return F.mse_loss(output, target)


def _validation_metrics(kind: str, raw: np.ndarray, target: np.ndarray, loss: str | None = None
                        ) -> dict[str, float]:
    loss_value = float(_loss(kind, torch.from_numpy(raw), torch.from_numpy(target), loss))
    if kind == "washburn":
        prob = 1.0 / (1.0 + np.exp(-raw.astype(np.float64)))
        metrics = sign_metrics(target, prob, threshold=0.5)
    elif kind == "single":
        metrics = regression_metrics(target, raw)
        metrics["r_plus_rho"] = metrics["pearson"] + metrics["spearman"]
    else:
        metrics = {**regression_metrics(target, raw), **sign_metrics(target, raw, threshold=0.0)}
    metrics.pop("n", None)
    return {"val_loss": loss_value, **{f"val_{k}": v for k, v in metrics.items()}}


def early_stopping_metric(kind: str) -> str:
    return {"washburn": "val_auroc", "single": "val_r_plus_rho"}.get(kind, "val_spearman")


# ----------------------------------------------------------------------------------------------
# Progress, plots, checkpoints
# ----------------------------------------------------------------------------------------------
class _Progress:
    """A one-line progress bar on a terminal; elsewhere (log files) a line a minute in long epochs.
    """

    def __init__(self, enabled: bool, total: int, label: str):
        self.enabled = enabled
        self.total = max(total, 1)
        self.label = label
        self.tty = enabled and sys.stderr.isatty()
        self.start = time.monotonic()
        self.last = self.start

    def update(self, done: int, loss: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        rate = done / max(now - self.start, 1e-9)
        text = f"{self.label} {done}/{self.total} steps, loss {loss:.4g}, {rate:.1f} steps/s"
        if self.tty:
            if now - self.last >= 0.2 or done == self.total:
                bar = "#" * int(20 * done / self.total)
                sys.stderr.write(f"\r[{bar:<20}] {text}")
                sys.stderr.flush()
                self.last = now
        elif now - self.last >= 60.0 and done < self.total:
            sys.stderr.write(text + "\n")
            self.last = now

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


def plot_curves(history: pd.DataFrame, path: PathLike, metric: str,
                best_epoch: int | None = None) -> None:
    """Loss and early-stopping metric per epoch (Agg canvas, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_metric = fig.subplots(1, 2)
    epochs = history["epoch"].to_numpy()
    ax_loss.plot(epochs, history["train_loss"], marker="o", label="train")
    ax_loss.plot(epochs, history["val_loss"], marker="o", label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_metric.plot(epochs, history[metric], marker="o", color="tab:green")
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel(metric.replace("_", " "))
    for ax in (ax_loss, ax_metric):
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1)
        ax.grid(alpha=0.3)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached"]))
    py_state = state["python"]
    random.setstate((py_state[0], tuple(py_state[1]), py_state[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _fingerprint(settings: TrainSettings, kind: str, codes_shape: tuple[int, ...],
                 train: Examples, val: Examples, init_weights: PathLike | None) -> str:
    """Identity of a run: a checkpoint from another run (other data or settings) is not resumed."""
    digest = hashlib.sha256()
    fields = {k: v for k, v in settings.to_dict().items() if k not in _RUNTIME_ONLY}
    digest.update(json.dumps([fields, kind, list(codes_shape), str(init_weights)],
                             sort_keys=True, default=str).encode())
    for examples in (train, val):
        for array in (*_index_arrays(examples), examples.target):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _load_init_weights(model: nn.Module, init_weights: PathLike) -> None:
    path = Path(init_weights)
    if path.is_dir():
        path = path / WEIGHTS
    if not path.is_file():
        raise InputError(init_weights, "initial weights not found (expected a model directory "
                                       f"or a {WEIGHTS} file)")
    state = load_state_dict_file(path, "initial weights")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise InputError(path, f"initial weights do not fit this model: {err}") from None


# ----------------------------------------------------------------------------------------------
# Seeded detectors, parameter groups and grouped batches
# ----------------------------------------------------------------------------------------------
def _seed_stem(model: nn.Module, codes: np.ndarray | torch.Tensor, train: Examples,
               val: Examples, settings: TrainSettings, matrix_scan: Any = None
               ) -> tuple[list[str], list[str]]:
    """Seed the stem: first the known matrices a ridge on their occupancy weighs most (both
    orientations each, ``seed_stem_matrices``), then in the filters left the k-mers a ridge on the
    training examples weighs most, per k (``seed_stem_kmers``). Returns the matrix ids and the
    k-mers.

    Only the training targets choose the k-mers (the validation set is needed by the fitting
    function's interface but a single alpha leaves it nothing to choose), so a shuffled-label
    control is seeded from its own shuffled labels; the matrices' ridge picks its penalty on the
    validation examples (never the test set).
    """
    from plantt.models import seed_detectors, seed_matrix_detectors

    conv = _stem_conv(model)
    if conv is None:
        raise ValueError("seed_stem_kmers and seed_stem_matrices need a PlanTT-CNN tower "
                         "(tower: cnn) or the Washburn classifier")
    array = codes.cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    matrix_ids: list[str] = []
    first = 0
    if settings.seed_stem_matrices:
        matrices = _top_known_matrices(array, train, val, settings,
                                       min(settings.seed_stem_matrices, conv.out_channels // 2),
                                       matrix_scan)
        oriented = [m for pm in matrices for m in (pm, pm.reverse_complement())]
        first = seed_matrix_detectors(conv, oriented, settings.seed_stem_matrix_threshold)
        matrix_ids = [pm.id for pm in matrices]
        log.info("stem primed with %d known matrices (%d detectors), strongest: %s",
                 len(matrices), first, ", ".join(f"{pm.id} {pm.name}" for pm in matrices[:5]))
    if not settings.seed_stem_kmers:
        return matrix_ids, []
    from plantt.kmer import KmerSettings, fit_kmer_pairs, fit_kmer_sequences

    free = conv.out_channels - first
    per_k = min(settings.seed_stem_kmers, free // len(settings.seed_stem_ks))
    if per_k < settings.seed_stem_kmers:
        log.info("seed_stem_kmers: %d k-mers for each of %d values of k do not fit in %d "
                    "filters: seeding %d per k", settings.seed_stem_kmers,
                    len(settings.seed_stem_ks), free, per_k)
    if per_k < 1:
        raise ValueError(f"seed_stem_kmers: {free} filters cannot hold a k-mer for "
                         f"each of the {len(settings.seed_stem_ks)} values of k")
    if max(settings.seed_stem_ks) > conv.kernel_size[0]:
        raise ValueError(f"seed_stem_ks: k-mers of up to {max(settings.seed_stem_ks)} bases do "
                         f"not fit in kernels of {conv.kernel_size[0]}")
    kmers: list[str] = []
    mismatches: list[int] = []
    tolerated = settings.seed_stem_kmer_mismatches or (0,) * len(settings.seed_stem_ks)
    chosen: dict[int, list[str]] = {}  # a k listed twice (exact and tolerant) is fitted once
    for k, m in zip(settings.seed_stem_ks, tolerated, strict=True):
        if k not in chosen:
            grid = KmerSettings(ks=(k,), alphas=(settings.seed_stem_alpha,),
                                block_length=settings.seed_stem_block_length)
            if isinstance(train, SequenceSet):
                ridge, _ = fit_kmer_sequences(array, train, val, grid)
            else:
                ridge, _ = fit_kmer_pairs(array, train, val, grid)
            chosen[k] = ridge.top_kmers(per_k)
        top = chosen[k]
        kmers += top
        mismatches += [m] * len(top)
    _seed_after(conv, kmers, first,
                lambda view, chosen: seed_detectors(view, chosen, mismatches=mismatches))
    log.info("stem seeded with %d k-mers (k = %s), strongest: %s", len(kmers),
             ", ".join(map(str, settings.seed_stem_ks)), ", ".join(kmers[:5]))
    return matrix_ids, kmers


def _seed_after(conv: nn.Conv1d, kmers: list[str], first: int, seed: Any) -> None:
    """Seed ``kmers`` into filters ``first, first + 1, ...`` of ``conv`` (through a view of those
    filters, so :func:`plantt.models.seed_detectors` keeps its simple interface)."""
    if not first:
        seed(conv, kmers)
        return
    view = nn.Conv1d(conv.in_channels, conv.out_channels - first, conv.kernel_size[0])
    with torch.no_grad():
        view.weight.copy_(conv.weight[first:])
        view.bias.copy_(conv.bias[first:])
        seed(view, kmers)
        conv.weight[first:].copy_(view.weight)
        conv.bias[first:].copy_(view.bias)


def seeding_scan_settings(settings: TrainSettings) -> Any:
    """The :class:`plantt.pwm.PwmSettings` of the ridge that chooses the known matrices of
    ``seed_stem_matrices``: what a scan made once for every fold job
    (:func:`plantt.pwm.write_matrix_scan`) must be made with."""
    from plantt.pwm import PwmSettings

    return PwmSettings(release=settings.seed_stem_jaspar_release,
                       motif_file=settings.seed_stem_motif_file,
                       block_lengths=(settings.seed_stem_matrix_block_length,),
                       threshold=settings.seed_stem_matrix_threshold)


def _top_known_matrices(codes: np.ndarray, train: Examples, val: Examples,
                        settings: TrainSettings, n: int, matrix_scan: Any = None) -> list[Any]:
    """The ``n`` known matrices a ridge on their per-block occupancy (both strands) on the
    training examples weighs most (penalty chosen on the validation examples from the ``pwm``
    baseline's own grid, 10-1e8: a narrower one, 1e2-1e5, was left at its edge). ``matrix_scan``:
    the windows' scan made once (:func:`plantt.pwm.load_matrix_scan` with
    :func:`seeding_scan_settings`), else they are scanned here."""
    from plantt.pwm import fit_pwm_pairs, fit_pwm_sequences

    grid = seeding_scan_settings(settings)
    if isinstance(train, SequenceSet):
        ridge, _ = fit_pwm_sequences(codes, train, val, grid, scanned=matrix_scan)
    else:
        ridge, _ = fit_pwm_pairs(codes, train, val, grid, scanned=matrix_scan)
    return [top.matrix for top in ridge.top_matrices(n)]


def _readout_tower(model: nn.Module) -> nn.Module:
    """The PlanTT-CNN tower whose projection :func:`_fit_readout` can fit, or a ValueError."""
    from plantt.models import PlanTTCNNTower

    tower = getattr(model, "tower", None)
    if not isinstance(tower, PlanTTCNNTower) or tower.projection.out_features != 1:
        raise ValueError("fit_readout needs a PlanTT or single-sequence model with a PlanTT-CNN "
                         "tower (tower: cnn) of embedding_dim 1")
    return tower


@torch.no_grad()
def _readout_features(tower: nn.Module, bank: CodeBank, genes: np.ndarray,
                      batch_size: int) -> np.ndarray:
    tower.eval()
    rows = [tower.readout_features(bank.one_hot(genes[i:i + batch_size])).float().cpu().numpy()
            for i in range(0, genes.size, batch_size)]
    return np.concatenate(rows) if rows else np.zeros((0, tower.projection.in_features))


def _fit_readout(model: nn.Module, bank: CodeBank, train: Examples, val: Examples,
                 settings: TrainSettings, kind: str, levels: GeneLevels | None = None,
                 channels: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Set the tower's final projection to a ridge regression of the training targets on the
    features it reads; returns the chosen penalty and its validation metric.

    A linear readout trained from random weights by a few hundred Adam steps starts far from
    its optimum, which a least-squares solve reaches at the cost of one forward pass per gene.
    The pairs' model is ``w . (f(a) - f(b))`` (the bias cancels), a single-sequence model's
    ``w . f(x) + b``. The penalty is ``fraction * trace(X'X) / p`` (X the centred design, p its
    columns: n times the features' mean variance), one ridge per fraction, chosen by the same
    validation metric as the epochs. ``channels``: the stem filters of each seeded detector set
    (``fit_readout_detector_sets``), the others' weights set to 0 where a set is chosen.
    """
    import scipy.linalg

    tower = _readout_tower(model)
    start = time.monotonic()
    use_levels = (levels is not None and len(levels) > 0 and bool(settings.single_gene_weights)
                  and isinstance(train, PairSet))
    extra = [levels.idx] if use_levels else []
    genes = np.unique(np.concatenate([*_index_arrays(train), *_index_arrays(val), *extra]))
    features = _readout_features(tower, bank, genes, settings.eval_batch_size)
    features_seconds = time.monotonic() - start

    n_bins = int(getattr(tower, "readout_length", 1))
    paired = isinstance(train, PairSet)
    y_train = train.target.astype(np.float32)
    metric = early_stopping_metric(kind)
    maps = features.shape[1] // n_bins
    # the readout reads the stem's filters themselves only with nothing between them
    direct = (isinstance(getattr(tower, "to_one_channel", None), nn.Identity)
              and not any(True for _ in tower.stages.parameters()))
    detector_sets = _detector_sets(settings.fit_readout_detector_sets, channels or {}, maps,
                                   direct)
    # every fit's validation metric and predictions, its weights kept while among the best
    fits: list[tuple[float, int, tuple[float, float, int, str], np.ndarray, float, np.ndarray]] = []
    n_ridges = 0
    for group, (set_name, kept) in itertools.product(settings.fit_readout_bin_groups,
                                                     detector_sets.items()):
        # neighbouring bins summed: one weight per detector and group, the same on each of its
        # bins (an exact setting of the projection), fewer weights for small data
        coarse = _coarser_bins(features, n_bins, group)
        group_bins = coarse.shape[1] // maps
        if kept is not None:
            coarse = np.ascontiguousarray(
                coarse.reshape(len(coarse), maps, group_bins)[:, kept].reshape(len(coarse), -1))

        def design(examples: Examples, table: np.ndarray = coarse) -> np.ndarray:
            rows = [table[np.searchsorted(genes, idx)] for idx in _index_arrays(examples)]
            return rows[0] - rows[1] if len(rows) == 2 else rows[0]

        x_train, x_val = design(train), design(val)
        # Pairs: no intercept (the odd head has none); sequences: centre, then add it back.
        x_mean = (np.zeros(x_train.shape[1], dtype=np.float32) if paired
                  else x_train.mean(axis=0, dtype=np.float64).astype(np.float32))
        y_mean = 0.0 if paired else float(y_train.mean(dtype=np.float64))
        xc = x_train - x_mean
        # float32 throughout: the result only starts training, and a Cholesky solve per penalty
        # in float64 took 0.46 s for 2,880 features on one core (0.25 s in float32).
        gram = xc.T @ xc
        rhs = xc.T @ (y_train - np.float32(y_mean))
        scale = max(float(np.trace(gram, dtype=np.float64)) / max(gram.shape[0], 1), 1e-12)
        level_weights: tuple[float, ...] = (0.0,)
        if use_levels:
            assert levels is not None
            x_levels, y_levels = _level_rows(coarse[np.searchsorted(genes, levels.idx)], levels,
                                             train, float(np.std(y_train)))
            gram_levels, rhs_levels = x_levels.T @ x_levels, x_levels.T @ y_levels
            # per-row weight relative to a pair row, so the grid means the same at any size
            level_weights = settings.single_gene_weights
        for level_weight in level_weights:
            g, r = gram, rhs
            if level_weight > 0:
                g = gram + np.float32(level_weight) * gram_levels
                r = rhs + np.float32(level_weight) * rhs_levels
            for fraction in settings.fit_readout_penalties:
                regularised = g + np.float32(fraction * scale) * np.eye(g.shape[0],
                                                                         dtype=np.float32)
                weights = scipy.linalg.cho_solve(scipy.linalg.cho_factor(regularised), r)
                raw = ((x_val - x_mean) @ weights + np.float32(y_mean)).astype(np.float32)
                value = _validation_metrics(kind, raw, val.target, settings.loss)[metric]
                n_ridges += 1
                rank_value = -math.inf if math.isnan(value) else value
                if (len(fits) < settings.fit_readout_average_top
                        or rank_value > fits[-1][0]):
                    full = weights
                    if kept is not None:
                        full = np.zeros((maps, group_bins), dtype=np.float32)
                        full[kept] = weights.reshape(len(kept), group_bins)
                    fine = _finer_weights(full.reshape(-1), n_bins, group)
                    bias = y_mean - float(x_mean.astype(np.float64) @ weights)
                    # ties keep the earlier fit first (a stable sort on the metric alone)
                    fits.append((rank_value, n_ridges, (fraction, level_weight, group, set_name),
                                 fine, bias, raw))
                    fits.sort(key=lambda fit: (-fit[0], fit[1]))
                    del fits[settings.fit_readout_average_top:]
    assert fits  # fit_readout_penalties is never empty (TrainSettings checks it)
    fraction, level_weight, group, set_name = fits[0][2]
    weights = np.mean([fit[3] for fit in fits], axis=0).astype(np.float32)
    bias = float(np.mean([fit[4] for fit in fits]))
    value = math.nan if fits[0][0] == -math.inf else fits[0][0]
    if len(fits) > 1:
        # the mean readout's own validation figure (its predictions are the fits' mean)
        averaged = np.mean([fit[5] for fit in fits], axis=0).astype(np.float32)
        value = _validation_metrics(kind, averaged, val.target, settings.loss)[metric]
    with torch.no_grad():
        tower.projection.weight.copy_(torch.from_numpy(weights).reshape(1, -1))
        tower.projection.bias.fill_(bias)
    log.info("readout fitted in closed form: penalty %.3g of the mean feature variance, "
             "single-gene weight %.3g, bins in groups of %d, detectors %s (the best of %d "
             "fits averaged), validation %s %.4f (%d genes' features %.1f s, %d ridges %.1f s)",
             fraction, level_weight, group, set_name, len(fits), metric, value, genes.size,
             features_seconds, n_ridges,
             time.monotonic() - start - features_seconds)
    fit: dict[str, Any] = {"penalty": fraction, metric: value}
    if len(fits) > 1:
        # the fits averaged, best first: penalty, single-gene weight, bin group, detectors
        fit["averaged"] = [list(f[2]) for f in fits]
    if len(detector_sets) > 1 or set_name != "all":
        fit["detector_set"] = set_name
    if use_levels:
        fit["single_gene_weight"] = level_weight
    if settings.fit_readout_bin_groups != (1,):
        fit["bin_group"] = group
    return fit


DETECTOR_SETS = ("all", "matrices", "kmers")


def _detector_sets(names: tuple[str, ...], channels: dict[str, np.ndarray], maps: int,
                   direct: bool) -> dict[str, np.ndarray | None]:
    """The readout's maps each named detector set keeps (None: every map). A set whose detectors
    were not seeded is left out (with a log line), "all" never; a set other than "all" where the
    readout does not read the stem's filters directly (``direct`` false: a tower with layers
    after its stem) is a ValueError."""
    sets: dict[str, np.ndarray | None] = {}
    for name in names:
        if name == "all":
            sets[name] = None
            continue
        kept = np.asarray(channels.get(name, np.zeros(0)), dtype=np.int64)
        if kept.size == 0:
            log.info("fit_readout_detector_sets: no %s were seeded, that set is left out", name)
            continue
        if not direct or int(kept.max()) >= maps:
            raise ValueError(f"fit_readout_detector_sets: the readout reads {maps} maps, not the "
                             f"stem's seeded filters (a tower with stages after its stem)")
        sets[name] = kept
    if not sets:
        sets["all"] = None
    return sets


def _coarser_bins(features: np.ndarray, n_bins: int, group: int) -> np.ndarray:
    """``(n, maps * n_bins)`` readout features with every ``group`` neighbouring bins of a map
    summed (the last group may be shorter): ``(n, maps * ceil(n_bins / group))``."""
    if group == 1:
        return features
    n, width = features.shape
    maps = width // n_bins
    edges = np.arange(0, n_bins, group)
    return np.add.reduceat(features.reshape(n, maps, n_bins), edges, axis=2).reshape(n, -1)


def _finer_weights(weights: np.ndarray, n_bins: int, group: int) -> np.ndarray:
    """The projection weights over every bin of grouped weights (each bin its group's)."""
    if group == 1:
        return np.asarray(weights, dtype=np.float32)
    groups = -(-n_bins // group)
    per_map = np.asarray(weights, dtype=np.float32).reshape(-1, groups)
    return np.repeat(per_map, group, axis=1)[:, :n_bins].reshape(-1)


def _level_rows(features: np.ndarray, levels: GeneLevels, train: PairSet, target_sd: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Design rows and targets of the single genes: features and levels centred per species
    (a species' trans effects and library depth are no window's doing), the levels rescaled so
    that their differences over the training pairs have the pairs' targets' SD."""
    x = features.astype(np.float32).copy()
    y = levels.target.astype(np.float64).copy()
    for sp in np.unique(levels.species):
        rows = levels.species == sp
        x[rows] -= x[rows].mean(axis=0)
        y[rows] -= y[rows].mean()
    by_gene = dict(zip(levels.idx.tolist(), y.tolist(), strict=True))
    diffs = np.array([by_gene[a] - by_gene[b] for a, b in zip(train.idx_a.tolist(),
                                                              train.idx_b.tolist(), strict=True)
                      if a in by_gene and b in by_gene])
    spread = float(np.std(diffs)) if diffs.size > 1 else 0.0
    factor = target_sd / spread if spread > 0 else 1.0
    return x, (y * factor).astype(np.float32)


def _stem_conv(model: nn.Module) -> nn.Conv1d | None:
    """The first convolution of a PlanTT-CNN tower or of the Washburn classifier, else None."""
    conv = getattr(getattr(model, "tower", None), "stem_conv", None)
    if conv is None:
        conv = getattr(model, "stem_conv", None)
    return conv if isinstance(conv, nn.Conv1d) else None


def _param_groups(model: nn.Module, stem_lr_scale: float) -> list[dict[str, Any]]:
    """One optimizer group, or two when the stem convolution learns at its own rate."""
    conv = _stem_conv(model)
    if stem_lr_scale == 1.0 or conv is None:
        return [{"params": list(model.parameters()), "lr_scale": 1.0}]
    stem_ids = {id(p) for p in conv.parameters()}
    rest = [p for p in model.parameters() if id(p) not in stem_ids]
    return [{"params": list(conv.parameters()), "lr_scale": stem_lr_scale},
            {"params": rest, "lr_scale": 1.0}]


def pair_groups(pairs: PairSet) -> np.ndarray:
    """Connected components of the pairs' gene graph (an orthogroup's pairs are one group): a
    group id per pair (scipy's component labels, in order of each group's smallest gene)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    genes, inverse = np.unique(np.concatenate([pairs.idx_a, pairs.idx_b]), return_inverse=True)
    n = len(pairs)
    graph = coo_matrix((np.ones(n), (inverse[:n], inverse[n:])), shape=(genes.size, genes.size))
    _, labels = connected_components(graph, directed=False)
    return labels[inverse[:n]].astype(np.int64)


def _group_order(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pairs in a random order of groups, each group's pairs together in a random order."""
    group_rank = rng.permutation(int(groups.max()) + 1)
    tiebreak = rng.permutation(groups.size)
    return np.lexsort((tiebreak, group_rank[groups]))


# ----------------------------------------------------------------------------------------------
# The trainer
# ----------------------------------------------------------------------------------------------
StepCallback = Callable[[int, int, int], None]


class _FoldTrainer:
    def __init__(self, codes: np.ndarray | torch.Tensor, train: Examples, val: Examples,
                 settings: TrainSettings, outdir: Path, kind: str,
                 init_weights: PathLike | None, device: torch.device, progress: bool,
                 layout: str | None, provenance: dict[str, Any] | None,
                 step_callback: StepCallback | None, input_spec: dict[str, Any] | None = None,
                 plots: bool = True, levels: GeneLevels | None = None,
                 matrix_scan: Any = None):
        self.s = settings
        self.kind = kind
        self.outdir = outdir
        self.device = device
        self.progress = progress
        self.layout = layout
        self.extra_provenance = provenance or {}
        self.step_callback = step_callback
        self.init_weights = init_weights
        self.input_spec = input_spec
        self.plots = plots
        self.bank = CodeBank(codes, device)
        self.val = val
        self.train: Examples = train
        if kind == "washburn" and settings.flip_augment and isinstance(train, PairSet):
            self.train = train.flipped()
        self.n_train_pairs = len(train)
        self.metric = early_stopping_metric(kind)
        self.steps_per_epoch = math.ceil(len(self.train) / settings.batch_size)
        self.total_steps = self.steps_per_epoch * settings.max_epochs
        self.fingerprint = _fingerprint(settings, kind, (self.bank.n_genes, self.bank.seq_len),
                                        train, val, init_weights)

        self.groups = (pair_groups(self.train) if settings.batch_by_group
                       and isinstance(self.train, PairSet) else None)

        _seed_everything(settings.seed)
        self.model = build_model(kind, settings.preset, self.bank.seq_len,
                                 settings.model_overrides or None, settings.tower)
        self.seeded_kmers: list[str] = []
        self.seeded_matrices: list[str] = []
        if init_weights is not None:
            _load_init_weights(self.model, init_weights)
        elif settings.seed_stem_kmers or settings.seed_stem_matrices:
            self.seeded_matrices, self.seeded_kmers = _seed_stem(self.model, codes, train, val,
                                                                 settings, matrix_scan)
        self.model.to(device)
        self.readout_fit: dict[str, float] = {}
        if settings.fit_readout and init_weights is None:
            matrix_detectors = 2 * len(self.seeded_matrices)
            channels = {"matrices": np.arange(matrix_detectors),
                        "kmers": np.arange(matrix_detectors,
                                           matrix_detectors + len(self.seeded_kmers))}
            self.readout_fit = _fit_readout(self.model, self.bank, train, val, settings, kind,
                                            levels, channels)
        lr0 = one_cycle_lr(0, self.total_steps, settings.warmup_steps, settings.max_lr)
        self.optimizer = torch.optim.AdamW(
            _param_groups(self.model, settings.stem_lr_scale), lr=lr0,
            betas=(settings.beta1, settings.beta2), eps=settings.eps,
            weight_decay=settings.weight_decay)
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.best_metric = math.nan
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.stop_reason = ""
        if settings.keep_fitted_readout and self.readout_fit:
            # the fitted start is "epoch 0": scored as every epoch is, kept unless beaten
            metrics = self.evaluate()
            self.history.append({"epoch": 0, "train_loss": math.nan, **metrics, "lr": 0.0,
                                 "seconds": 0.0})
            if not math.isnan(metrics[self.metric]):
                self.best_metric, self.best_state = metrics[self.metric], _cpu_state(self.model)
        if settings.max_epochs == 0:
            self.stop_reason = "no epochs (max_epochs 0): the fitted readout"

    # -- checkpoints ---------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.outdir / CHECKPOINT

    def save_checkpoint(self) -> None:
        state = {
            "format": CHECKPOINT_FORMAT,
            "fingerprint": self.fingerprint,
            "epoch": self.epoch,
            "step": self.step,
            "model": _cpu_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "schedule": {"step": self.step, "total_steps": self.total_steps,
                         "warmup_steps": self.s.warmup_steps, "max_lr": self.s.max_lr},
            "rng": _rng_state(),
            "best": {"metric": self.best_metric, "epoch": self.best_epoch,
                     "state": self.best_state},
            "bad_epochs": self.bad_epochs,
            "stop_reason": self.stop_reason,
            "history": self.history,
        }
        with atomic_path(self.checkpoint_path, suffix=_CHECKPOINT_SUFFIX) as tmp:
            torch.save(state, tmp)

    def try_resume(self) -> bool:
        # A run killed while writing a checkpoint leaves its temporary behind. The next successful
        # checkpoint write removes it, but a rerun of a run whose checkpoint says it has finished
        # writes none (and versions before that cleanup left them too): clear them at the start.
        # A live writer's temporary is kept (plantt.io.remove_stale_temporaries).
        remove_stale_temporaries(self.checkpoint_path, _CHECKPOINT_SUFFIX)
        if not self.checkpoint_path.is_file():
            return False
        try:
            state = load_torch_file(self.checkpoint_path, "training checkpoint")
        except InputError as err:  # a corrupt or foreign checkpoint means: start again
            log.warning("ignoring checkpoint: %s", err)
            return False
        if (not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT
                or state.get("fingerprint") != self.fingerprint):
            log.warning("ignoring checkpoint %s: it was written with other settings or data",
                        self.checkpoint_path)
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.best_metric = float(state["best"]["metric"])
        self.best_epoch = int(state["best"]["epoch"])
        self.best_state = state["best"]["state"]
        self.bad_epochs = int(state["bad_epochs"])
        self.stop_reason = str(state["stop_reason"])
        self.history = [dict(row) for row in state["history"]]
        _set_rng_state(state["rng"])
        log.info("resumed from %s after epoch %d (step %d)", self.checkpoint_path, self.epoch,
                 self.step)
        return True

    # -- one epoch ----------------------------------------------------------------------------
    def _set_lr(self) -> float:
        lr = one_cycle_lr(self.step, self.total_steps, self.s.warmup_steps, self.s.max_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def train_one_epoch(self) -> tuple[float, float]:
        epoch = self.epoch + 1
        torch.manual_seed(_epoch_seed(self.s.seed, epoch))
        rng = np.random.default_rng([self.s.seed, epoch])
        order = (_group_order(self.groups, rng) if self.groups is not None
                 else rng.permutation(len(self.train)))
        # Its own stream, so that turning the augmentation on leaves the batch order alone.
        shift_rng = np.random.default_rng([self.s.seed, epoch, 1])
        self.model.train()
        total_loss, seen, lr = 0.0, 0, 0.0
        bar = _Progress(self.progress, self.steps_per_epoch, f"epoch {epoch}/{self.s.max_epochs}")
        for i in range(self.steps_per_epoch):
            batch = order[i * self.s.batch_size:(i + 1) * self.s.batch_size]
            index = [array[batch] for array in _index_arrays(self.train)]
            target = torch.from_numpy(self.train.target[batch]).to(self.device)
            lr = self._set_lr()
            shifts = None
            if self.s.shift_augment:
                shifts = shift_rng.integers(-self.s.shift_augment, self.s.shift_augment + 1,
                                            size=batch.size * len(index))
            with _autocast(self.device, self.s.amp):
                output = _forward(self.model, self.bank, *index, shifts=shifts)
            loss = _loss(self.kind, output.float(), target, self.s.loss)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.s.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.s.grad_clip)
            self.optimizer.step()
            self.step += 1
            total_loss += float(loss.detach()) * batch.size
            seen += batch.size
            bar.update(i + 1, total_loss / seen)
            if self.step_callback is not None:
                self.step_callback(epoch, i + 1, self.step)
        bar.close()
        return total_loss / max(seen, 1), lr

    def evaluate(self) -> dict[str, float]:
        raw = _predict_raw(self.model, self.bank, _index_arrays(self.val),
                           self.s.eval_batch_size, self.s.amp)
        return _validation_metrics(self.kind, raw, self.val.target, self.s.loss)

    def _improved(self, value: float) -> bool:
        if self.best_state is None:
            return True
        if math.isnan(value):
            return False
        return math.isnan(self.best_metric) or value > self.best_metric + self.s.min_delta

    def run_epoch(self) -> None:
        start = time.monotonic()
        train_loss, lr = self.train_one_epoch()
        metrics = self.evaluate()
        self.epoch += 1
        row = {"epoch": self.epoch, "train_loss": train_loss, **metrics, "lr": lr,
               "seconds": time.monotonic() - start}
        self.history.append(row)
        value = metrics[self.metric]
        if self._improved(value):
            self.best_metric, self.best_epoch = value, self.epoch
            self.best_state = _cpu_state(self.model)
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs >= self.s.patience:
            self.stop_reason = f"early stopping: no {self.metric} improvement in " \
                               f"{self.s.patience} epochs"
        elif self.epoch >= self.s.max_epochs:
            self.stop_reason = f"epoch budget of {self.s.max_epochs} reached"
        log.info("epoch %d/%d: train loss %.4g, val loss %.4g, %s %.4f (best %.4f at epoch %d), "
                 "lr %.3g, %.1f s", self.epoch, self.s.max_epochs, train_loss,
                 metrics["val_loss"], self.metric, value, self.best_metric, self.best_epoch, lr,
                 row["seconds"])
        self.write_history()
        self.save_checkpoint()

    # -- outputs --------------------------------------------------------------------------------
    def history_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.history)

    def write_history(self) -> None:
        write_tsv(self.history_frame(), self.outdir / HISTORY, float_format="%.6g")

    def provenance(self) -> dict[str, Any]:
        return {
            "plantt_version": __version__,
            "torch_version": torch.__version__,
            "device": str(self.device),
            "seed": self.s.seed,
            "best_epoch": self.best_epoch,
            "early_stopping_metric": self.metric,
            "best_metric": self.best_metric,
            "epochs_run": self.epoch,
            "stop_reason": self.stop_reason,
            "n_train_pairs": self.n_train_pairs,
            "n_val_pairs": len(self.val),
            "init_weights": str(self.init_weights) if self.init_weights is not None else None,
            "seeded_kmers": self.seeded_kmers,
            "seeded_matrices": self.seeded_matrices,
            "readout_fit": self.readout_fit,
            "train_settings": self.s.to_dict(),
            **self.extra_provenance,
        }

    def finish(self) -> TrainResult:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        save_model(self.outdir, self.model, layout=self.layout, provenance=self.provenance(),
                   input_spec=self.input_spec)
        history = self.history_frame()
        self.write_history()
        if self.plots:
            plot_curves(history, self.outdir / CURVES, self.metric, self.best_epoch)
        log.info("finished: %s; best %s %.4f at epoch %d; model written to %s", self.stop_reason,
                 self.metric, self.best_metric, self.best_epoch, self.outdir)
        return TrainResult(history, self.best_epoch, self.best_metric, self.metric, self.epoch,
                           self.stop_reason, str(self.device), self.outdir)

    def run(self) -> TrainResult:
        self.try_resume()
        while not self.stop_reason:
            self.run_epoch()
        return self.finish()


def _log_run_header(settings: TrainSettings, kind: str, device: torch.device, n_train: int,
                    n_val: int, seq_len: int) -> None:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "-"
    log.info("training %s (preset %s) on %s (%s); python %s, torch %s, numpy %s, plantt %s; "
             "%d threads", kind, settings.preset, device, gpu, platform.python_version(),
             torch.__version__, np.__version__, __version__, torch.get_num_threads())
    unit = "sequences" if kind == "single" else "pairs"
    log.info("seed %d; %d training %s, %d validation %s, %d bases per sequence",
             settings.seed, n_train, unit, n_val, unit, seq_len)


def _check_pairs(examples: Examples, n_genes: int, name: str) -> None:
    if len(examples) == 0:
        raise ValueError(f"the {name} set is empty")
    for values in _index_arrays(examples):
        if values.min() < 0 or values.max() >= n_genes:
            raise ValueError(f"{name} indices out of range [0, {n_genes})")
    if not np.all(np.isfinite(examples.target)):
        raise ValueError(f"{name} targets contain NaN or infinite values")


def _coerce_examples(obj: Any, kind: str) -> Examples:
    if kind == "single":
        if not isinstance(obj, SequenceSet):
            raise ValueError("a single-sequence model trains on SequenceSet (idx, target) data")
        return obj
    if isinstance(obj, SequenceSet):
        raise ValueError(f"a {kind} model trains on pairs (PairSet), not on single sequences")
    return PairSet.coerce(obj)


def train_fold(codes: np.ndarray | torch.Tensor, train: Any, val: Any,
               settings: TrainSettings | None = None, outdir: PathLike = ".",
               model_kind: str = "plantt", init_weights: PathLike | None = None,
               device: str | torch.device | None = None, progress: bool = True, *,
               layout: str | None = None, provenance: dict[str, Any] | None = None,
               step_callback: StepCallback | None = None,
               input_spec: dict[str, Any] | None = None, plots: bool = True,
               levels: GeneLevels | None = None, matrix_scan: Any = None) -> TrainResult:
    """Train one fold; write ``weights.pt``, ``model.json``, ``history.tsv``, ``curves.png``.

    ``train``/``val``: :class:`PairSet`, or anything with ``idx_a``, ``idx_b``, ``target``; for
    ``model_kind="single"``, :class:`SequenceSet`.
    ``layout`` (the window layout's name), ``provenance`` (e.g. assay, fold) and ``input_spec``
    (how other lengths are brought to this one, :mod:`plantt.tables`) go to model.json.
    ``step_callback(epoch, step_in_epoch, global_step)`` is called after every optimizer step.
    ``plots=False`` skips ``curves.png``.
    ``matrix_scan``: the windows' scan for ``seed_stem_matrices``, made once for every fold
    (:func:`plantt.pwm.load_matrix_scan` with :func:`seeding_scan_settings`); the same matrices
    are chosen as without it, and faster.
    Resumes from ``outdir/checkpoint.pt`` when it belongs to the same run.
    """
    settings = settings or TrainSettings()
    if model_kind not in MODEL_KINDS:
        raise ValueError(f"model_kind must be one of {', '.join(MODEL_KINDS)}, got {model_kind!r}")
    train_set, val_set = _coerce_examples(train, model_kind), _coerce_examples(val, model_kind)
    n_genes = int(codes.shape[0])
    _check_pairs(train_set, n_genes, "training")
    _check_pairs(val_set, n_genes, "validation")
    dev = resolve_device(device, settings.require_gpu, settings.allow_cpu_fallback)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    with _torch_runtime(settings, dev):
        _log_run_header(settings, model_kind, dev, len(train_set), len(val_set),
                        int(codes.shape[1]))
        trainer = _FoldTrainer(codes, train_set, val_set, settings, outdir, model_kind,
                               init_weights, dev, progress, layout, provenance, step_callback,
                               input_spec, plots, levels, matrix_scan)
        # (no epochs, max_epochs 0: the fitted readout is the model, there is no schedule)
        if 0 < trainer.total_steps <= settings.warmup_steps:
            log.warning("warm-up (%d steps) is not shorter than the whole budget (%d steps): "
                        "the learning rate never decays", settings.warmup_steps,
                        trainer.total_steps)
        return trainer.run()
