"""PlanTT two-tower contrast models, the PlanTT-CNN tower, and the Washburn et al. (2019) baseline.

PlanTT (paper Section 2.2)
--------------------------
Two towers with shared weights embed the soft one-hot sequences of genes ``a`` and ``b``; the head
is the sum of the difference of the embeddings, ``f(a, b) = sum(z_a - z_b)``. The head is an odd
function of ``z_a - z_b``, which makes the model satisfy Definition 1 by construction:
``f(a, a) = 0`` and ``f(a, b) = -f(b, a)`` (exactly in eval mode, up to float rounding). Because the
head can be rewritten as ``sum(z_a) - sum(z_b)``, ``sum(z)`` is a per-sequence expression estimate
(:meth:`TwoTower.score`), which in-silico mutagenesis turns into a percent change
``(sum(z_m) - sum(z)) / |sum(z)|`` (Section 4.7).

Both towers run in ONE call on the concatenated batch ``[a; b]``: it is faster than two calls, and in
training mode batch normalisation then normalises ``a`` and ``b`` with the same statistics, so the
two towers stay exactly the same function within a batch.

PlanTT-CNN tower (Section 3.2) and the choices we made where the paper is silent
-------------------------------------------------------------------------------
Input ``(B, 4, L)`` soft one-hot. Stem: a patch embedding, i.e. a convolution with kernel = stride = 3
to 64 channels. 8 stages of 2 residual blocks; stages 2-8 open with a stride-2 convolution that
doubles the channels up to 256 (64, 128, 256, 256, ...). A residual block is a kernel-3 convolution,
three convolutions with the stage's kernel (11, 9, 7, 7, 5, 5, 3, 3) and a pointwise convolution,
each followed by batch norm and dropout. Then a pointwise convolution to one channel and a linear
projection to a 50-d embedding. Every choice below is a field of :class:`TowerSettings`:

* Activation: ReLU (``activation``), after batch norm and before dropout, in every convolution unit
  except the block's last (pointwise) one. The paper names ResNet as its inspiration; ReLU is what
  ResNet uses and is the cheapest option. ``gelu`` and ``silu`` are available.
* Residual: ResNet-v1 style, ``act(x + branch(x))`` (``post_residual_activation``). The branch's last
  unit has no activation so it can add negative corrections; its batch-norm scale starts at zero
  (``zero_init_residual``, Goyal et al. 2017) so each block starts as the identity, a standard aid
  for training deep residual stacks.
* The stem is conv + batch norm + activation without dropout (dropping raw input patches would
  mostly erase motifs). Downsampling convolutions are kernel 3, stride 2, padding 1 (``ceil(l/2)``),
  followed by batch norm, activation and dropout like every other unit.
* Dropout probability: the paper does not give it; 0.1 (``dropout``).
* Lengths that are not multiples of the stem stride are zero-padded on the right (zero = "no base"),
  so no base is ever dropped and in-silico mutagenesis sees every position. The final linear layer
  is sized from the output length of the convolutional trunk, so any input length works (the length
  is fixed per model: it is part of the saved model).
* The final pointwise convolution has a bias and no normalisation; no activation is used between it
  and the linear projection (the embedding must be able to take any sign).

Presets (:data:`PLANTT_PRESETS`): ``paper`` is the description above (17.4 M parameters,
9.6 GFLOP per pair forward at 3 kb). ``small`` is the CPU demo's tower, the same family (stem, stages
of residual blocks with the block structure above, pointwise convolution to one channel, linear
projection) scaled down and made data-efficient: 16-32 channels, 3 stages (kernels 9, 5, 3) of one
block with one inner convolution, dropout 0.25. Three settings differ from ``paper`` because, on the
demo's ~3,400 training pairs, towers shaped like the paper's (patch stems, strided-convolution
downsampling, a linear layer over every trunk position) memorised the training set (validation
Spearman <= 0.14), while this one reached ~0.35 within four epochs (rnaseq3p fold 0, learning rate
2e-3, 100 warm-up steps; a single conv + mean-pool baseline reached 0.31):

* ``stem_pool``: a stride-1 convolution (kernel 11, enough for a 10-12 bp motif) then max pooling
  by 8, so a motif is detected at any offset instead of only where it falls inside one patch;
* ``downsample="maxpool"``: stages shrink the length with max pooling instead of a strided
  convolution (fewer parameters, position-invariant detections);
* ``readout_bins=4``: the one-channel map is averaged into 4 bins before the linear projection,
  i.e. coarse positions (quarters of the window) instead of a weight per trunk position.

One epoch of ~4,000 pairs of 3 kb takes ~15-20 s on 2 CPU cores (dropout sampling is a quarter of
it; ``channel_dropout`` is cheaper but learned less well on the demo).

``compact`` is the demo's tower since the k-mer ridge baseline (:mod:`plantt.kmer`) showed how far
``small`` was from what the data hold (rnaseq3p fold 0 test Spearman 0.23 against 0.77-0.85 for the
ridge). Four choices, each measured on that fold (``benchmarks/README.md``, "PlanTT against the k-mer
baseline"), none specific to a grammar's motifs or regions:

* a stride-1 stem of 32 kernel-15 detectors (motifs up to 15 bp at any offset) whose batch-norm
  shift starts at -2 (``stem_bias_init``), so that only strong matches pass the ReLU at first:
  with dense activations the detectors never formed (validation Spearman 0.37 at best), starting
  sparse and max pooling raised it to 0.47;
* max pooling by 25 (a detection per 25-bp step, its position kept to that resolution);
* one residual block of kernel 5 with dropout 0.25 on those 120 positions (0.57);
* ``readout_channels=8`` maps averaged into 30 bins of 100 bp, each map with its own weight per
  bin (a single map forces every motif to share one positional profile), and ``embedding_dim=1``
  (the sum of a larger embedding is the same linear readout).

It still overfits after 3-4 epochs and stays below the k-mer ridge (see the benchmark); 64 stem
channels gained another 0.05 at twice the cost.

``motif`` is the demo's tower now. Two findings made it (both measured on fold 0 of the demo and of
two other grammars, ``benchmarks/README.md``):

* Randomly initialised detectors do not find 6-15 bp motifs from a few thousand pairs before they
  overfit; detectors *seeded* with the k-mers that a ridge regression on the fold's own training
  pairs weighs most (:func:`seed_detectors`, ``TrainSettings.seed_stem_kmers``; 32 per k for k = 6,
  7, 8) start where the signal is and are refined by training (at a tenth of the learning rate).
  The seeds come from the training targets only, so the shuffled-label control is seeded from its
  shuffled labels; nothing in them is specific to a grammar.
* A mean over a 100-bp bin turns one detection into 0.01, so the readout needs weights of ~100 to
  express one log2 unit per occurrence, out of reach of a few hundred Adam steps: the readout
  underfit. ``readout_pool="sum"`` counts detections per bin instead (test Spearman 0.60 -> 0.68 on
  the far grammar).

A third finding came later: the readout of such a tower is linear in the binned detections, so
it can start at its least-squares optimum (``TrainSettings.fit_readout``,
:meth:`PlanTTCNNTower.readout_features`) instead of being found by Adam; the demo then trains one
epoch instead of two, and scores better on every grammar measured.

The tower is 96 kernel-15 detectors at base resolution (convolution with a bias, no batch norm,
ReLU), summed into 30 bins of 100 bp, and one weight per detector and bin (``readout_channels=None``:
no pointwise map in between), one output: a positional bag of learned motifs, the form of the
simulator's grammar and of many real promoter models, with every downstream tool (DeepLift, ISM,
editing) unchanged.

Washburn et al. (2019) ortholog-contrast classifier (Section 4.4)
----------------------------------------------------------------
Our reading of Washburn et al.'s CNN (PNAS 116:5542). What we could check against the paper here
(its abstract and significance statement; the methods' numbers were not reachable from this
machine): it classifies which of two orthologs is more abundant ("ortholog contrasts"), from
promoter and terminator sequence, evaluated by AUROC (0.75-0.94 in the paper), with gene-family
guided splits (our orthogroup-stratified folds). What follows is from memory of their methods and
not checked, which is why every number is a setting. The two genes' sequences are concatenated
along the length axis (``[a | b]``, ``2L`` bases) and passed through three convolutional blocks,
each two convolutions (kernel 8, ReLU) followed by max pooling (size 8, stride 8) and dropout 0.25,
with 64, 128 and 64 filters; then flatten, dense layers of 128 and 64 units (ReLU, dropout 0.25) and
one output logit for "gene a is more highly expressed than gene b". Convolutions use ``same``
padding here (an assumption), so the flattened size is ``64 * floor(floor(floor(2L/8)/8)/8)``.
As in the PlanTT paper, missing bases are soft-encoded (0.25 each) rather than given a fifth
channel; the model is not equivariant by construction, so training uses flipped-pair augmentation
(see :mod:`plantt.train`). Every number is a field of :class:`WashburnSettings`; ``small`` uses
16/32/16 filters and one dense layer of 32 units. ``motif`` (the demo's, not the paper's) uses
48/32/16 filters, one convolution per block and one dense layer of 32 units, and is trained with
the same seeded detectors as PlanTT's ``motif`` tower (its first convolution, kernel 8, holds
k-mers of 6-8 bases); randomly initialised, the classifier predicted one class on the demo
(AUROC 0.49), seeded it reached 0.87-0.93 on fold 0.

Towers and single-sequence models
---------------------------------
A model's ``tower`` is ``cnn`` (the PlanTT-CNN tower above) or ``camformer`` (the residual CNN of
:mod:`plantt.camformer`, for short promoter sequences). Either serves two kinds of model:
``plantt`` (:class:`TwoTower`, the contrast of two sequences) and ``single``
(:class:`SingleSequenceModel`, expression regressed on one sequence: its prediction is the tower's
per-sequence score ``sum(z)``, so in-silico mutagenesis and editing read it exactly as they read a
PlanTT score). Both tower kinds take their size from the sequence length.

Model directories (:func:`save_model` / :func:`load_model`)
-------------------------------------------------------------
``weights.pt`` (a state_dict, loaded with ``weights_only=True`` and ``map_location="cpu"``) and
``model.json`` (kind, preset, every setting, sequence length, layout name, training provenance).
A ``"tower": "legacy"`` entry marks the published PlanTT-CNN imported by ``plantt import-weights``
(:mod:`plantt.legacy`): a ``plantt`` two-tower model whose settings are ``LegacySettings``; other
towers are named by ``"tower"`` too (absent: ``cnn``). An optional ``"input"`` entry (written by
``plantt fit``) states how sequences of another length are brought to the model's (see
:class:`plantt.tables.LengthPolicy`); without it they must have exactly ``seq_len`` bases.

A directory holding ``ensemble.json`` instead is a seed ensemble (:func:`save_ensemble`): a list of
member model directories of the same kind, tower input and length. :func:`load_model` returns it as
one model of that kind whose tower is an :class:`EnsembleTower`: its per-sequence score is the mean
of the members' scores, so its predictions (for a two-tower model, ``mean(score_a) - mean(score_b)``,
which equals the mean of the members' predictions) and its in-silico mutagenesis are those of the
ensemble.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from plantt.camformer import CAMFORMER_PRESETS, CamformerSettings, CamformerTower
from plantt.encoding import encode
from plantt.io import InputError, PathLike, atomic_open, atomic_path

MODEL_JSON = "model.json"
ENSEMBLE_JSON = "ensemble.json"
WEIGHTS = "weights.pt"
MODEL_FORMAT_VERSION = 1
MODEL_KINDS = ("plantt", "washburn", "single")
TOWERS = ("cnn", "camformer")

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


# ----------------------------------------------------------------------------------------------
# Settings and presets
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TowerSettings:
    """Every architectural choice of the PlanTT-CNN tower (defaults: the ``paper`` preset)."""

    in_channels: int = 4
    stem_channels: int = 64
    stem_stride: int = 3
    stem_kernel: int = 3  # == stem_stride: non-overlapping patch embedding
    stem_pool: bool = False  # True: stride-1 convolution then max pooling by stem_stride
    stage_kernels: tuple[int, ...] = (11, 9, 7, 7, 5, 5, 3, 3)
    blocks_per_stage: int = 2
    inner_convs: int = 3  # convolutions with the stage's kernel inside a block
    entry_kernel: int = 3  # the block's first convolution
    downsample_kernel: int = 3
    downsample: str = "conv"  # "conv": strided convolution; "maxpool": max pooling + pointwise
    channel_growth: int = 2
    max_channels: int = 256
    embedding_dim: int = 50
    readout_bins: int | None = None  # None: linear over every trunk position (paper)
    readout_channels: int | None = 1  # maps before the readout (paper: 1); None: every channel
    readout_pool: str = "mean"  # how readout_bins pool: "mean", or "sum" (counts detections)
    stem_batchnorm: bool = True  # False: the stem convolution has a bias and no batch norm
    stem_bias_init: float = 0.0  # initial batch-norm shift of the stem (< 0: starts sparse)
    dropout: float = 0.1
    channel_dropout: bool = False  # True: drop whole channels (nn.Dropout1d), cheaper on CPU
    activation: str = "relu"
    post_residual_activation: bool = True
    zero_init_residual: bool = True

    def __post_init__(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        if not self.stem_pool and self.stem_kernel < self.stem_stride:
            raise ValueError("stem_kernel must be >= stem_stride (a stem may not skip bases)")
        if not self.stem_pool and (self.stem_kernel - self.stem_stride) % 2:
            raise ValueError("stem_kernel - stem_stride must be even (symmetric overlap)")
        if not self.stage_kernels or any(k < 1 or k % 2 == 0 for k in self.stage_kernels):
            raise ValueError("stage_kernels must be a non-empty list of odd kernel sizes")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if self.downsample not in ("conv", "maxpool"):
            raise ValueError(f"downsample must be 'conv' or 'maxpool', got {self.downsample!r}")
        if self.readout_bins is not None and self.readout_bins < 1:
            raise ValueError("readout_bins must be a positive number of bins (or None)")
        if self.readout_channels is not None and self.readout_channels < 1:
            raise ValueError("readout_channels must be >= 1 (or None: every channel)")
        if self.readout_pool not in ("mean", "sum"):
            raise ValueError(f"readout_pool must be 'mean' or 'sum', got {self.readout_pool!r}")
        if self.blocks_per_stage < 0:
            raise ValueError("blocks_per_stage must be >= 0")

    def stage_channels(self) -> list[int]:
        return [min(self.stem_channels * self.channel_growth ** i, self.max_channels)
                for i in range(len(self.stage_kernels))]


@dataclass(frozen=True)
class WashburnSettings:
    """Our reading of the Washburn et al. (2019) ortholog-contrast CNN (defaults: ``paper``)."""

    in_channels: int = 4
    block_channels: tuple[int, ...] = (64, 128, 64)
    convs_per_block: int = 2
    kernel_size: int = 8
    pool_size: int = 8
    dropout: float = 0.25
    dense_units: tuple[int, ...] = (128, 64)
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")


PLANTT_PRESETS: dict[str, TowerSettings] = {
    "paper": TowerSettings(),
    "small": TowerSettings(
        stem_channels=16, stem_stride=8, stem_kernel=11, stem_pool=True,
        stage_kernels=(9, 5, 3), blocks_per_stage=1, inner_convs=1, max_channels=32,
        downsample="maxpool", dropout=0.25, readout_bins=4,
    ),
    # A CPU tower for small datasets (see the module docstring): motif detectors at base
    # resolution that start sparse, pooled to 25-bp steps, one residual block, several maps each
    # with its own positional weights over 30 bins.
    "compact": TowerSettings(
        stem_channels=32, stem_stride=25, stem_kernel=15, stem_pool=True, stem_bias_init=-2.0,
        stage_kernels=(5,), blocks_per_stage=1, inner_convs=1, max_channels=32,
        downsample="maxpool", dropout=0.25, readout_bins=30, readout_channels=8, embedding_dim=1,
    ),
    # Motif counts by position (see the module docstring): 96 kernel-15 detectors at base
    # resolution, no normalisation, detections summed in 30 bins, one weight per detector and bin.
    # Meant to be trained with its detectors seeded from the fold's k-mer ridge (TrainSettings
    # seed_stem_kmers).
    "motif": TowerSettings(
        stem_channels=96, stem_stride=1, stem_kernel=15, stem_pool=True, stem_batchnorm=False,
        stage_kernels=(1,), blocks_per_stage=0, max_channels=96, dropout=0.0, readout_bins=30,
        readout_channels=None, readout_pool="sum", embedding_dim=1,
    ),
    # The small-data recipe's tower (config train.recipes.small_data): the motif tower with 320
    # detectors, room for 80 known matrices in both orientations (TrainSettings
    # seed_stem_matrices) and 32 k-mers for each of 5 k-mer groups (k = 6, 8, 10 exact, 8 and 10
    # with mismatches tolerated).
    "primed": TowerSettings(
        stem_channels=320, stem_stride=1, stem_kernel=15, stem_pool=True, stem_batchnorm=False,
        stage_kernels=(1,), blocks_per_stage=0, max_channels=320, dropout=0.0, readout_bins=30,
        readout_channels=None, readout_pool="sum", embedding_dim=1,
    ),
}

WASHBURN_PRESETS: dict[str, WashburnSettings] = {
    "paper": WashburnSettings(),
    "small": WashburnSettings(block_channels=(16, 32, 16), dense_units=(32,), dropout=0.1),
}
# The demo names one preset for every model it trains; the classifier's CPU size is `small`.
WASHBURN_PRESETS["compact"] = WASHBURN_PRESETS["small"]
# For the motif recipe (detectors seeded from k-mers): 48 first-layer filters to hold the seeds,
# one convolution per block so that the 6,000-base input costs little.
WASHBURN_PRESETS["motif"] = WashburnSettings(block_channels=(48, 32, 16), convs_per_block=1,
                                             dense_units=(32,), dropout=0.1)

Settings = TowerSettings | WashburnSettings | CamformerSettings

# (kind, tower) -> presets; the towers of "plantt" and "single" models share their presets.
_TOWER_PRESETS: dict[str, dict[str, Any]] = {"cnn": PLANTT_PRESETS, "camformer": CAMFORMER_PRESETS}
_TOWER_SETTINGS: dict[str, type] = {"cnn": TowerSettings, "camformer": CamformerSettings}


def _check_kind(kind: str, tower: str = "cnn") -> None:
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    if tower not in TOWERS:
        raise ValueError(f"unknown tower {tower!r}; expected one of {', '.join(TOWERS)}")
    if kind == "washburn" and tower != "cnn":
        raise ValueError("the Washburn classifier has no tower to choose; leave tower as 'cnn'")


def _presets(kind: str, tower: str) -> dict[str, Any]:
    return WASHBURN_PRESETS if kind == "washburn" else _TOWER_PRESETS[tower]


def _settings_class(kind: str, tower: str) -> type:
    return WashburnSettings if kind == "washburn" else _TOWER_SETTINGS[tower]


def get_preset(kind: str, name: str, overrides: dict[str, Any] | None = None,
               tower: str = "cnn") -> Settings:
    """The settings of preset ``name`` for model ``kind`` (and ``tower``), ``overrides`` applied."""
    _check_kind(kind, tower)
    presets = _presets(kind, tower)
    if name not in presets:
        what = kind if tower == "cnn" else f"{kind} ({tower} tower)"
        raise ValueError(f"unknown {what} preset {name!r}; expected one of {', '.join(presets)}")
    if not overrides:
        return presets[name]
    merged = {**dataclasses.asdict(presets[name]), **overrides}
    return settings_from_dict(kind, merged, tower)


def settings_from_dict(kind: str, values: dict[str, Any], tower: str = "cnn") -> Settings:
    """Rebuild a settings dataclass from a JSON/YAML mapping (lists -> tuples, unknown keys -> error)."""
    _check_kind(kind, tower)
    cls = _settings_class(kind, tower)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        what = kind if tower == "cnn" else f"{kind} ({tower} tower)"
        raise ValueError(f"unknown {what} model setting(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(names))}")
    defaults = cls()
    converted = {k: tuple(v) if isinstance(getattr(defaults, k), tuple) and isinstance(v, list)
                 else v for k, v in values.items()}
    return cls(**converted)


@dataclass
class ModelSpec:
    """What is needed to rebuild a model: kind, preset name, settings and input length."""

    kind: str
    preset: str
    seq_len: int
    settings: Settings = field(repr=False)
    tower: str = "cnn"  # "camformer"; "legacy": the published PlanTT-CNN (plantt.legacy)


# ----------------------------------------------------------------------------------------------
# PlanTT-CNN tower
# ----------------------------------------------------------------------------------------------
def _activation(name: str) -> nn.Module:
    return _ACTIVATIONS[name]()


class ConvUnit(nn.Sequential):
    """Convolution -> batch norm -> (activation) -> (dropout); ``same`` length unless strided."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, stride: int = 1,
                 activation: str | None = "relu", dropout: float = 0.0,
                 channel_dropout: bool = False):
        layers: list[nn.Module] = [
            nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm1d(c_out),
        ]
        if activation is not None:
            layers.append(_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout1d(dropout) if channel_dropout else nn.Dropout(dropout))
        super().__init__(*layers)


def tower_unit(c_in: int, c_out: int, kernel: int, s: TowerSettings, *, stride: int = 1,
               activate: bool = True) -> ConvUnit:
    """A :class:`ConvUnit` with the tower's activation and dropout."""
    return ConvUnit(c_in, c_out, kernel, stride=stride,
                    activation=s.activation if activate else None, dropout=s.dropout,
                    channel_dropout=s.channel_dropout)


class ResidualBlock(nn.Module):
    """Entry convolution, ``inner_convs`` stage-kernel convolutions and a pointwise convolution."""

    def __init__(self, channels: int, kernel: int, s: TowerSettings):
        super().__init__()
        units = [tower_unit(channels, channels, s.entry_kernel, s)]
        units += [tower_unit(channels, channels, kernel, s) for _ in range(s.inner_convs)]
        last = tower_unit(channels, channels, 1, s, activate=False)
        if s.zero_init_residual:
            nn.init.zeros_(last[1].weight)
        units.append(last)
        self.branch = nn.Sequential(*units)
        self.out_activation = _activation(s.activation) if s.post_residual_activation else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.branch(x)
        return self.out_activation(y) if self.out_activation is not None else y


def trunk_output_length(seq_len: int, s: TowerSettings) -> int:
    """Length of the convolutional trunk's output for an input of ``seq_len`` bases."""
    length = math.ceil(seq_len / s.stem_stride)
    for _ in s.stage_kernels[1:]:
        length = (length + 2 * (s.downsample_kernel // 2) - s.downsample_kernel) // 2 + 1
    return length


class PlanTTCNNTower(nn.Module):
    """The PlanTT-CNN tower: ``(B, 4, L)`` soft one-hot -> ``(B, embedding_dim)`` embedding."""

    def __init__(self, settings: TowerSettings = PLANTT_PRESETS["paper"], seq_len: int = 3000):
        super().__init__()
        s = settings
        if seq_len < 1:
            raise ValueError("seq_len must be positive")
        self.settings = s
        self.seq_len = seq_len
        channels = s.stage_channels()
        stem: list[nn.Module] = [
            nn.Conv1d(s.in_channels, s.stem_channels, s.stem_kernel,
                      stride=1 if s.stem_pool else s.stem_stride,
                      padding="same" if s.stem_pool else 0, bias=not s.stem_batchnorm),
        ]
        if s.stem_batchnorm:
            stem.append(nn.BatchNorm1d(s.stem_channels))
        stem.append(_activation(s.activation))
        if s.stem_bias_init:
            # the batch-norm shift, or the convolution's own bias without batch norm
            nn.init.constant_(stem[1].bias if s.stem_batchnorm else stem[0].bias,
                              s.stem_bias_init)
        if s.stem_pool and s.stem_stride > 1:
            stem.append(nn.MaxPool1d(s.stem_stride, ceil_mode=True))
        self.stem = nn.Sequential(*stem)
        stages: list[nn.Module] = []
        c_prev = s.stem_channels
        for i, (kernel, c) in enumerate(zip(s.stage_kernels, channels, strict=True)):
            layers: list[nn.Module] = []
            if i > 0 and s.downsample == "maxpool":
                layers.append(nn.MaxPool1d(2, ceil_mode=True))
                if c != c_prev:
                    layers.append(tower_unit(c_prev, c, 1, s))
            elif i > 0:
                layers.append(tower_unit(c_prev, c, s.downsample_kernel, s, stride=2))
            elif c != c_prev:
                layers.append(tower_unit(c_prev, c, 1, s))
            layers += [ResidualBlock(c, kernel, s) for _ in range(s.blocks_per_stage)]
            stages.append(nn.Sequential(*layers))
            c_prev = c
        self.stages = nn.Sequential(*stages)
        # Named for the paper's one-channel map; readout_channels > 1 keeps several maps, each
        # with its own positional weights in the projection.
        # with None, every trunk channel is read out directly (a weight per channel and bin).
        self.to_one_channel: nn.Module = (nn.Identity() if s.readout_channels is None
                                          else nn.Conv1d(c_prev, s.readout_channels, 1))
        maps = c_prev if s.readout_channels is None else s.readout_channels
        self.out_length = trunk_output_length(seq_len, s)
        self.readout_length = min(s.readout_bins or self.out_length, self.out_length)
        # "sum" pooling keeps a bin's value a count of detections whatever the bin's width, so the
        # projection's weights start on the scale of an effect per occurrence (a mean over 100
        # positions would need weights 100 times larger, too far for a few hundred Adam steps).
        self.bin_scale = (self.out_length / self.readout_length if s.readout_pool == "sum"
                          else 1.0)
        self.projection = nn.Linear(maps * self.readout_length, s.embedding_dim)

    def _pad_for_stem(self, x: torch.Tensor) -> torch.Tensor:
        s = self.settings
        if s.stem_pool:
            return x
        overlap = s.stem_kernel - s.stem_stride
        remainder = (-x.shape[-1]) % s.stem_stride
        if overlap == 0 and remainder == 0:
            return x
        return F.pad(x, (overlap // 2, overlap - overlap // 2 + remainder))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.seq_len:
            raise ValueError(f"tower built for sequences of {self.seq_len} bases, "
                             f"got {x.shape[-1]}")
        return self.read_out(self.to_one_channel(self.stages(self.stem(self._pad_for_stem(x)))))

    def read_out(self, h: torch.Tensor) -> torch.Tensor:
        """The trunk's readout maps ``(B, maps, out_length)`` -> embedding: bins, then projection."""
        return self.projection(self._binned(h))

    def _binned(self, h: torch.Tensor) -> torch.Tensor:
        if self.readout_length != self.out_length:
            h = F.adaptive_avg_pool1d(h, self.readout_length)
            if self.bin_scale != 1.0:
                h = h * self.bin_scale
        return h.flatten(1)

    def readout_features(self, x: torch.Tensor) -> torch.Tensor:
        """What the final projection reads, ``(B, maps * readout_bins)``: the embedding is
        ``projection(readout_features(x))``, so the projection can be fitted in closed form."""
        return self._binned(self.to_one_channel(self.stages(self.stem(self._pad_for_stem(x)))))

    @property
    def stem_conv(self) -> nn.Conv1d:
        """The first convolution (the motif detectors)."""
        return self.stem[0]


def seed_detectors(conv: nn.Conv1d, kmers: list[str], weight: float = 1.0,
                   mismatches: Sequence[int] | int = 0) -> int:
    """Make the first ``len(kmers)`` filters of a stride-1 convolution on one-hot DNA detectors
    of those k-mers; returns how many filters were seeded.

    Filter ``f`` gets ``+weight`` for the k-mer's base and ``-weight`` for the three others at
    each of its positions (centred in the kernel), zero elsewhere. With ``mismatches`` m (one
    value, or one per k-mer) its bias is ``-weight * (k - 2m - 1)``: a site with j mismatches
    scores ``weight * (2 (m - j) + 1)``, so after a ReLU the filter counts the sites within m
    mismatches of the k-mer, exact ones most (m = 0: exact occurrences only, scoring ``weight``).
    Degenerate sites of a real factor rarely match its best k-mer exactly (the mismatch kernel of
    Leslie et al. 2004 counts such neighbourhoods). Training may then widen or soften it.
    """
    kernel = conv.kernel_size[0]
    if conv.in_channels != 4 or conv.stride[0] != 1 or conv.groups != 1:
        raise ValueError("k-mer seeding needs a stride-1 convolution over 4 one-hot channels")
    if conv.bias is None:
        raise ValueError("k-mer seeding needs a convolution with a bias (no batch norm after it)")
    if len(kmers) > conv.out_channels:
        raise ValueError(f"{len(kmers)} k-mers for {conv.out_channels} filters")
    tolerated = [int(mismatches)] * len(kmers) if isinstance(mismatches, int) \
        else [int(m) for m in mismatches]
    if len(tolerated) != len(kmers):
        raise ValueError(f"{len(tolerated)} mismatch counts for {len(kmers)} k-mers")
    with torch.no_grad():
        for f, (kmer, m) in enumerate(zip(kmers, tolerated, strict=True)):
            k = len(kmer)
            codes = torch.from_numpy(encode(kmer).astype(np.int64))
            if not 1 <= k <= kernel or bool((codes > 3).any()) or kmer != kmer.upper():
                raise ValueError(f"k-mer {kmer!r}: expected 1-{kernel} bases of A, C, G, T")
            if not 0 <= 2 * m < k:
                raise ValueError(f"k-mer {kmer!r}: {m} mismatches tolerated; expected 0 to "
                                 f"{(k - 1) // 2} (fewer than half its bases)")
            offset = (kernel - k) // 2
            conv.weight[f].zero_()
            conv.weight[f, :, offset:offset + k] = -weight
            conv.weight[f, codes, torch.arange(offset, offset + k)] = weight
            conv.bias[f] = -weight * (k - 2 * m - 1)
    return len(kmers)


def seed_matrix_detectors(conv: nn.Conv1d, matrices: list[Any], threshold: float = 0.8,
                          first: int = 0) -> int:
    """Make filters ``first, first + 1, ...`` of a stride-1 convolution on one-hot DNA detectors
    of position weight matrices (:class:`plantt.jaspar.PositionMatrix`); returns how many.

    A filter holds the matrix's log-odds scaled so that its output is the site's relative score
    minus ``threshold`` (centred in the kernel; a matrix wider than the kernel keeps its most
    informative ``kernel`` columns): after a ReLU it is zero except at sites scoring above the
    threshold, and grows with their score. The caller passes both orientations where both
    strands count. Training may then reshape them.
    """
    kernel = conv.kernel_size[0]
    if conv.in_channels != 4 or conv.stride[0] != 1 or conv.groups != 1:
        raise ValueError("matrix seeding needs a stride-1 convolution over 4 one-hot channels")
    if conv.bias is None:
        raise ValueError("matrix seeding needs a convolution with a bias (no batch norm after it)")
    if first + len(matrices) > conv.out_channels:
        raise ValueError(f"{len(matrices)} matrices from filter {first} for {conv.out_channels} "
                         f"filters")
    with torch.no_grad():
        for f, matrix in enumerate(matrices, start=first):
            log_odds = np.asarray(matrix.log_odds(), dtype=np.float64)
            if len(log_odds) > kernel:
                span = log_odds.max(axis=1) - log_odds.min(axis=1)
                window = np.convolve(span, np.ones(kernel), mode="valid")
                start = int(np.argmax(window))
                log_odds = log_odds[start:start + kernel]
            lo, hi = float(log_odds.min(axis=1).sum()), float(log_odds.max(axis=1).sum())
            scale = hi - lo if hi > lo else 1.0
            offset = (kernel - len(log_odds)) // 2
            conv.weight[f].zero_()
            conv.weight[f, :, offset:offset + len(log_odds)] = torch.from_numpy(
                (log_odds / scale).T.copy()).to(conv.weight.dtype)
            conv.bias[f] = -(lo / scale) - threshold
    return len(matrices)


class TwoTower(nn.Module):
    """PlanTT: shared-weight towers and the odd head ``sum(z_a - z_b)``."""

    kind = "plantt"

    def __init__(self, tower: nn.Module):
        super().__init__()
        self.tower = tower
        self.seq_len: int = getattr(tower, "seq_len", 0)
        self.spec: ModelSpec | None = None

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Predicted expression difference ``e_a - e_b``, shape ``(B,)``."""
        z = self.tower(torch.cat([a, b], dim=0))
        z_a, z_b = z.split([a.shape[0], b.shape[0]], dim=0)
        return (z_a - z_b).sum(dim=-1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Tower embedding ``z`` of each sequence, shape ``(B, embedding_dim)``."""
        return self.tower(x)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sequence expression estimate ``sum(z)`` (the head is ``score(a) - score(b)``)."""
        return self.tower(x).sum(dim=-1)


class SingleSequenceModel(nn.Module):
    """One tower regressing expression on one sequence: the prediction is ``sum(z)``."""

    kind = "single"

    def __init__(self, tower: nn.Module):
        super().__init__()
        self.tower = tower
        self.seq_len: int = getattr(tower, "seq_len", 0)
        self.spec: ModelSpec | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted expression of each sequence, shape ``(B,)``."""
        return self.tower(x).sum(dim=-1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.tower(x)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """The prediction itself (named as :meth:`TwoTower.score` for interpretation code)."""
        return self.tower(x).sum(dim=-1)


class EnsembleTower(nn.Module):
    """The mean per-sequence score ``sum(z)`` of member towers, shape ``(B, 1)``."""

    def __init__(self, towers: list[nn.Module]):
        super().__init__()
        if not towers:
            raise ValueError("an ensemble needs at least one member")
        lengths = {getattr(t, "seq_len", None) for t in towers}
        if len(lengths) != 1:
            raise ValueError(f"ensemble members differ in sequence length: {sorted(map(str, lengths))}")
        self.members = nn.ModuleList(towers)
        self.seq_len: int = int(lengths.pop() or 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.stack([tower(x).sum(dim=-1) for tower in self.members])
        return scores.mean(dim=0).unsqueeze(-1)


def has_sequence_score(model: nn.Module) -> bool:
    """Whether the model scores single sequences (``model.tower(x).sum(-1)``): PlanTT two-tower
    and single-sequence models, and ensembles of them."""
    return isinstance(model, TwoTower | SingleSequenceModel)


# ----------------------------------------------------------------------------------------------
# Washburn et al. (2019) baseline
# ----------------------------------------------------------------------------------------------
def washburn_flat_length(seq_len: int, s: WashburnSettings) -> int:
    length = 2 * seq_len
    for _ in s.block_channels:
        length //= s.pool_size
    return length


class WashburnClassifier(nn.Module):
    """CNN on ``[a | b]`` (concatenated along length) -> logit of "gene a higher than gene b"."""

    kind = "washburn"

    def __init__(self, settings: WashburnSettings = WASHBURN_PRESETS["paper"],
                 seq_len: int = 3000):
        super().__init__()
        s = settings
        self.settings = s
        self.seq_len = seq_len
        self.spec: ModelSpec | None = None
        flat = washburn_flat_length(seq_len, s)
        if flat < 1:
            raise ValueError(f"sequences of {seq_len} bases are too short for "
                             f"{len(s.block_channels)} poolings of size {s.pool_size}")
        layers: list[nn.Module] = []
        c_prev = s.in_channels
        for c in s.block_channels:
            for _ in range(s.convs_per_block):
                # "same" padding, written out: the extra base of an even kernel goes right
                layers += [nn.ConstantPad1d(((s.kernel_size - 1) // 2, s.kernel_size // 2), 0.0),
                           nn.Conv1d(c_prev, c, s.kernel_size), _activation(s.activation)]
                c_prev = c
            layers += [nn.MaxPool1d(s.pool_size, stride=s.pool_size), nn.Dropout(s.dropout)]
        self.features = nn.Sequential(*layers)
        dense: list[nn.Module] = [nn.Flatten()]
        width = c_prev * flat
        for units in s.dense_units:
            dense += [nn.Linear(width, units), _activation(s.activation), nn.Dropout(s.dropout)]
            width = units
        dense.append(nn.Linear(width, 1))
        self.classifier = nn.Sequential(*dense)

    @property
    def stem_conv(self) -> nn.Conv1d:
        """The first convolution (the motif detectors)."""
        return self.features[1]

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logit of P(e_a > e_b), shape ``(B,)``."""
        return self.classifier(self.features(torch.cat([a, b], dim=-1))).squeeze(-1)


# ----------------------------------------------------------------------------------------------
# Building, saving and loading
# ----------------------------------------------------------------------------------------------
Model = TwoTower | WashburnClassifier | SingleSequenceModel


def build_model(kind: str = "plantt", preset: str = "paper", seq_len: int = 3000,
                overrides: dict[str, Any] | None = None, tower: str = "cnn") -> Model:
    """A freshly initialised model of ``kind`` ('plantt', 'washburn' or 'single') with a ``tower``
    ('cnn' or 'camformer'; not for 'washburn') from a named preset."""
    settings = get_preset(kind, preset, overrides, tower)
    return model_from_spec(ModelSpec(kind, preset if not overrides else f"{preset}+overrides",
                                     seq_len, settings, tower))


def build_tower(spec: ModelSpec) -> PlanTTCNNTower | CamformerTower:
    """The tower of a ``plantt`` or ``single`` model spec."""
    if spec.tower == "camformer":
        assert isinstance(spec.settings, CamformerSettings)
        return CamformerTower(spec.settings, spec.seq_len)
    assert isinstance(spec.settings, TowerSettings)
    return PlanTTCNNTower(spec.settings, spec.seq_len)


def model_from_spec(spec: ModelSpec) -> Model:
    _check_kind(spec.kind, spec.tower)
    model: Model
    if spec.kind == "plantt":
        model = TwoTower(build_tower(spec))
    elif spec.kind == "single":
        model = SingleSequenceModel(build_tower(spec))
    else:
        assert isinstance(spec.settings, WashburnSettings)
        model = WashburnClassifier(spec.settings, spec.seq_len)
    model.spec = spec
    return model


def spec_of(model: nn.Module) -> ModelSpec:
    """The :class:`ModelSpec` of a model (derived from its settings when built by hand)."""
    spec = getattr(model, "spec", None)
    if spec is not None:
        return spec
    if isinstance(model, TwoTower | SingleSequenceModel):
        kind = model.kind
        if isinstance(model.tower, PlanTTCNNTower):
            return ModelSpec(kind, "custom", model.tower.seq_len, model.tower.settings)
        if isinstance(model.tower, CamformerTower):
            return ModelSpec(kind, "custom", model.tower.seq_len, model.tower.settings, "camformer")
    if isinstance(model, WashburnClassifier):
        return ModelSpec("washburn", "custom", model.seq_len, model.settings)
    raise TypeError(f"cannot describe a {type(model).__name__} in model.json")


def save_model(directory: PathLike, model: nn.Module, settings: ModelSpec | None = None, *,
               layout: str | None = None, provenance: dict[str, Any] | None = None,
               input_spec: dict[str, Any] | None = None) -> Path:
    """Write ``weights.pt`` and ``model.json`` into ``directory`` (atomically, each).

    ``input_spec``: how other lengths are brought to the model's (``"input"`` in model.json).
    """
    if isinstance(getattr(model, "tower", None), EnsembleTower):
        raise TypeError("an ensemble is saved as its members' directories and an ensemble.json "
                        "(save_ensemble), not as one model")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec = settings if settings is not None else spec_of(model)
    info = {
        "format_version": MODEL_FORMAT_VERSION,
        "kind": spec.kind,
        "preset": spec.preset,
        "seq_len": spec.seq_len,
        "layout": layout,
        "settings": dataclasses.asdict(spec.settings),
        "provenance": provenance or {},
    }
    if spec.tower != "cnn":
        info["tower"] = spec.tower
    if input_spec is not None:
        info["input"] = input_spec
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS) as tmp:
        torch.save(state, tmp)
    with atomic_open(directory / MODEL_JSON) as handle:
        json.dump(info, handle, indent=2, sort_keys=False, default=_json_default)
        handle.write("\n")
    return directory


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(path, f"invalid JSON ({err.msg})", line=err.lineno) from None
    except UnicodeDecodeError:
        raise InputError(path, "not a text file (binary data), expected JSON") from None
    except RecursionError:  # deeply nested brackets
        raise InputError(path, "invalid JSON (nested too deeply)") from None
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, expected a JSON file") from None
    except PermissionError:
        raise InputError(path, "not readable (permission denied)") from None
    if not isinstance(info, dict):
        raise InputError(path, f"expected a JSON object, found {_json_type(info)}")
    return info


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


# ----------------------------------------------------------------------------------------------
# Reading weights files: the one place that calls torch.load
# ----------------------------------------------------------------------------------------------
UNSAFE_PICKLE = ("not a plain weights file: the safe loader (tensors and plain containers only) "
                 "refused its content{detail}. Unpickling it without that restriction could run "
                 "any code the file names, so it must not be loaded: write it again with plantt, "
                 "or get it from a source you trust")
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def load_torch_file(path: PathLike, what: str = "weights file") -> Any:
    """What a ``torch.save`` file holds, read safely (``weights_only=True``, onto the CPU).

    Every failure is an :class:`InputError` naming the file: missing, empty, truncated or not a
    PyTorch file at all; and a file that holds arbitrary Python objects (a pickle that the
    restricted unpickler refuses: it could run code when loaded) is reported as not a plain
    weights file that must not be loaded. The unrestricted unpickler is never used and never
    suggested. ``what`` names the file's role in the messages (e.g. ``"training checkpoint"``).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, f"{what} not found")
    if not path.is_file():
        raise InputError(path, f"is a directory, expected a {what}")
    if path.stat().st_size == 0:
        raise InputError(path, f"empty file (0 bytes), expected a {what} (was writing it "
                               "interrupted?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # What the restricted unpickler refuses in a pickle (a global to import or call:
        # "Unsupported global: GLOBAL posix.system ..."; an opcode it does not run, such as the
        # framing of pickle protocol 4) is reported as a file not to be loaded, never with
        # torch's own advice to lift the restriction. A file that is no pickle at all (neither
        # a pickle protocol header nor torch's zip container) and fails so is just not a
        # weights file.
        text = str(err)
        refused = _REFUSED_GLOBAL.search(text)
        with open(path, "rb") as handle:
            head = handle.read(2)
        if refused or any(mark in text for mark in ("safe_globals", "allowlisted",
                                                    "unrecognized function")) or \
                head[:1] == b"\x80" or head == b"PK":
            detail = f" (it asks for {refused.group(1)})" if refused else ""
            raise InputError(path, UNSAFE_PICKLE.format(detail=detail)) from None
        raise InputError(path, _unreadable(what, err)) from None
    except PermissionError:
        raise InputError(path, "not readable (permission denied)") from None
    except Exception as err:  # noqa: BLE001 - torch raises many types for a damaged file
        raise InputError(path, _unreadable(what, err)) from None


def _unreadable(what: str, err: BaseException) -> str:
    # torch's own texts can be long, and some advise the unrestricted loader: keep only a short
    # first sentence, and none that mentions it.
    detail = str(err).strip().split("\n")[0].split(". ")[0][:160]
    if "weights" in detail.lower() or not detail:
        detail = type(err).__name__
    return f"not a readable {what} (truncated, corrupt, or not written by torch.save: {detail})"


def load_state_dict_file(path: PathLike, what: str = "weights file") -> dict[str, torch.Tensor]:
    """A state_dict (parameter name -> tensor) from a ``torch.save`` file (see
    :func:`load_torch_file`); anything else in the file is an InputError."""
    state = load_torch_file(path, what)
    return check_state_dict(path, state, what)


def check_state_dict(path: PathLike, state: Any, what: str = "weights file"
                     ) -> dict[str, torch.Tensor]:
    """``state`` if it is a state_dict (str keys, tensor values), else an InputError."""
    if not isinstance(state, dict):
        raise InputError(path, f"expected a state_dict (parameter name -> tensor) in this {what}, "
                               f"found a {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise InputError(path, f"expected a state_dict (parameter name -> tensor) in this "
                                   f"{what}, found {type(key).__name__} key {key!r} -> "
                                   f"{type(value).__name__}")
    return state


def check_weights_fit(path: PathLike, model: nn.Module, state: dict[str, torch.Tensor],
                      against: str = MODEL_JSON) -> None:
    """InputError naming ``path`` unless ``state`` holds exactly ``model``'s parameters and
    buffers, with the same shapes and finite values (``model`` may live on the meta device)."""
    expected = model.state_dict()
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        problems.append(f"{len(missing)} missing parameter(s) ({_first(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected parameter(s) ({_first(unexpected)})")
    shapes = [f"{k}: {list(state[k].shape)} in the file, {list(v.shape)} in the model"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es) ({'; '.join(shapes[:3])}"
                        f"{'; ...' if len(shapes) > 3 else ''})")
    if problems:
        raise InputError(path, f"weights do not match {against}: " + ", ".join(problems))
    for key, value in state.items():
        if value.is_floating_point() and value.numel():
            # min and max are NaN or infinite exactly when some value is (and allocate nothing)
            low, high = torch.aminmax(value.detach())
            if not (math.isfinite(float(low)) and math.isfinite(float(high))):
                raise InputError(path, f"parameter {key!r} holds NaN or infinite values")


def _first(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def is_ensemble(directory: PathLike) -> bool:
    return (Path(directory) / ENSEMBLE_JSON).is_file()


def ensemble_members(directory: PathLike) -> list[Path]:
    """The member model directories of an ensemble directory (``ensemble.json``)."""
    path = Path(directory) / ENSEMBLE_JSON
    info = _read_json(path)
    members = info.get("members")
    if not isinstance(members, list) or not members or \
            not all(isinstance(m, str) for m in members):
        raise InputError(path, "'members' must be a non-empty list of model directories")
    resolved = [(path.parent / m) for m in members]
    for member in resolved:
        # an ensemble of ensembles (or one listing itself) would recurse without end
        if is_ensemble(member):
            raise InputError(path, f"member {member} is itself an ensemble; members must be "
                                   "model directories")
    return resolved


def save_ensemble(directory: PathLike, members: list[PathLike],
                  description: dict[str, Any] | None = None) -> Path:
    """Write ``directory/ensemble.json`` listing ``members`` (model directories, stored relative
    to ``directory`` so the whole tree can be moved). Every member must already be saved, and
    all must agree on kind, tower, length and input."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    infos = [read_model_info(m) for m in members]
    if not infos:
        raise ValueError("an ensemble needs at least one member")
    _check_members(directory / ENSEMBLE_JSON, infos, [Path(m) for m in members])
    relative = [os.path.relpath(Path(m).resolve(), directory.resolve()) for m in members]
    info = {"format_version": MODEL_FORMAT_VERSION, "members": relative, **(description or {})}
    with atomic_open(directory / ENSEMBLE_JSON) as handle:
        json.dump(info, handle, indent=2, default=_json_default)
        handle.write("\n")
    return directory


def _check_members(path: Path, infos: list[dict[str, Any]], members: list[Path]) -> None:
    first = infos[0]
    if first["kind"] == "washburn":
        raise InputError(path, "ensembles of Washburn classifiers are not supported")
    for member, info in zip(members[1:], infos[1:], strict=True):
        for key in ("kind", "tower", "seq_len", "input"):
            if info.get(key) != first.get(key):
                raise InputError(path, f"member {member} differs from {members[0]} in {key!r} "
                                       f"({info.get(key)!r} vs {first.get(key)!r})")


def read_model_info(directory: PathLike) -> dict[str, Any]:
    """The parsed ``model.json`` of a model directory (with clear errors for bad input).

    For an ensemble directory: the first member's, with ``ensemble`` (the member directories)
    added and ``provenance`` replaced by the ensemble's description.
    """
    directory = Path(directory)
    if is_ensemble(directory):
        members = ensemble_members(directory)
        infos = [read_model_info(m) for m in members]
        _check_members(directory / ENSEMBLE_JSON, infos, members)
        description = _read_json(directory / ENSEMBLE_JSON)
        description.pop("members", None)
        return {**infos[0], "ensemble": [str(m) for m in members], "provenance": description}
    path = directory / MODEL_JSON
    if not directory.is_dir():
        raise InputError(directory, "model directory not found" if not directory.exists() else
                         "not a model directory (a file; expected a directory holding "
                         f"{MODEL_JSON} and {WEIGHTS})")
    if not path.is_file():
        raise InputError(directory, f"not a model directory: neither {MODEL_JSON} nor "
                                    f"{ENSEMBLE_JSON} found")
    info = _read_json(path)
    _check_info(path, info)
    return info


# field -> (what it must be, test); absent optional fields are fine
_INFO_FIELDS: dict[str, tuple[str, Any]] = {
    "kind": ("a string", lambda v: isinstance(v, str)),
    "seq_len": ("a positive whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)
                and v >= 1),
    "settings": ("an object", lambda v: isinstance(v, dict)),
    "tower": ("a string", lambda v: isinstance(v, str)),
    "preset": ("a string", lambda v: isinstance(v, str)),
    "layout": ("a string or null", lambda v: v is None or isinstance(v, str)),
    "provenance": ("an object", lambda v: isinstance(v, dict)),
    "input": ("an object or null", lambda v: v is None or isinstance(v, dict)),
}


def _check_info(path: Path, info: dict[str, Any]) -> None:
    """InputError naming model.json for a missing required field or a field of the wrong type
    (``format_version`` absent is read as the current version, for hand-written files)."""
    version = info.get("format_version", MODEL_FORMAT_VERSION)
    if version != MODEL_FORMAT_VERSION or isinstance(version, bool):
        raise InputError(path, f"format_version {version!r}; this plantt reads model directories "
                               f"of format_version {MODEL_FORMAT_VERSION}")
    for key in ("kind", "seq_len", "settings"):
        if key not in info:
            raise InputError(path, f"missing key {key!r}")
    for key, (expected, ok) in _INFO_FIELDS.items():
        if key in info and not ok(info[key]):
            raise InputError(path, f"{key!r} must be {expected}, found {info[key]!r}"[:300])
    if info["kind"] not in MODEL_KINDS:
        raise InputError(path, f"unknown model kind {info['kind']!r}; expected one of "
                               f"{', '.join(MODEL_KINDS)}")


def _model_from_info(info: dict[str, Any]) -> Model:
    tower = info.get("tower", "cnn")
    if tower == "legacy":
        from plantt.legacy import legacy_model_from_info  # imports this module

        return legacy_model_from_info(info)
    settings = settings_from_dict(info["kind"], info["settings"], tower)
    spec = ModelSpec(info["kind"], info.get("preset", "custom"), int(info["seq_len"]), settings,
                     tower)
    return model_from_spec(spec)


# What building a model from nonsense settings raises (negative sizes, wrong types, lengths too
# short for the poolings, ...): all of it is the model.json's fault.
_BUILD_ERRORS = (TypeError, ValueError, RuntimeError, ArithmeticError, KeyError, IndexError,
                 AttributeError)


def load_model(directory: PathLike, device: str | torch.device = "cpu") -> Model:
    """Rebuild a saved model (or seed ensemble) in eval mode; ``model.spec`` and ``model.info``
    describe it."""
    directory = Path(directory)
    if is_ensemble(directory):
        return _load_ensemble(directory, device)
    info = read_model_info(directory)
    config = directory / MODEL_JSON
    # The architecture is first built on the meta device (shapes only, no memory), so that the
    # weights are checked against it before anything is allocated: a model.json whose settings
    # were damaged into huge sizes is an error, not an attempt to allocate them.
    try:
        with torch.device("meta"):
            skeleton: Model | None = _model_from_info(info)
    except Exception:  # noqa: BLE001 - bad settings (reported by the real build below) or
        skeleton = None  # construction code that cannot run on meta tensors
    if skeleton is None:
        _build_or_fail(config, info)  # raises the InputError of bad settings, if that is it
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise InputError(directory, f"{WEIGHTS} not found" if not weights.exists()
                         else f"{WEIGHTS} is not a file")
    state = load_state_dict_file(weights)
    model: Model | None = None
    if skeleton is not None:
        check_weights_fit(weights, skeleton, state, against=str(config))
        model = _assign_weights(skeleton, state)
    if model is None:
        model = _build_or_fail(config, info)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise InputError(weights, f"weights do not match {config}: {err}") from None
    model.info = info  # type: ignore[assignment]
    return model.to(device).eval()


def _assign_weights(skeleton: Model, state: dict[str, torch.Tensor]) -> Model | None:
    """The meta-device model with the loaded tensors as its parameters and buffers (no second,
    randomly initialised build), in the model's own dtypes; None if anything stayed on meta."""
    expected = skeleton.state_dict()
    cast = {k: v.to(dtype=expected[k].dtype) for k, v in state.items()}
    skeleton.load_state_dict(cast, assign=True)
    tensors = [*skeleton.parameters(), *skeleton.buffers()]
    return None if any(t.is_meta for t in tensors) else skeleton


def _build_or_fail(config: Path, info: dict[str, Any]) -> Model:
    try:
        return _model_from_info(info)
    except _BUILD_ERRORS as err:
        raise InputError(config, f"settings do not describe a model that can be built: "
                                 f"{str(err)[:300] or type(err).__name__}") from None


def _load_ensemble(directory: Path, device: str | torch.device) -> Model:
    info = read_model_info(directory)
    members = [load_model(m, "cpu") for m in ensemble_members(directory)]
    towers = [m.tower for m in members if isinstance(m, TwoTower | SingleSequenceModel)]
    tower = EnsembleTower(towers)
    model: Model = TwoTower(tower) if info["kind"] == "plantt" else SingleSequenceModel(tower)
    first = spec_of(members[0])
    model.spec = ModelSpec(first.kind, "ensemble", first.seq_len, first.settings, "ensemble")
    model.info = info  # type: ignore[assignment]
    return model.to(device).eval()
