"""A Camformer-style single-sequence tower: a residual CNN for short promoter sequences.

Camformer (Camformer paper, Section 3.1.5 and Figure 2b) is the residual convolutional network that
ranked 4th in the Random Promoter DREAM Challenge 2022 (6.7 M yeast promoters of 110 nt). The paper
states: six convolutional layers with residual connections after layers 2, 4 and 6; a single max
pooling before the fully connected layers ("at the penultimate layer"); three fully connected layers
giving the predicted expression; 512 channels per convolutional layer (256 in Camformer-Small);
16.6 M trainable parameters; AdamW, MAE (L1) loss, early stopping on Pearson r + Spearman rho of a
validation set, at most 50 epochs; and seed ensembles (the mean of several seeds' predictions).
This module is our own implementation from that description. The paper leaves the following open,
so each is a field of :class:`CamformerSettings`:

* Kernel sizes (``kernel_sizes``): 9, 9, 7, 7, 5, 5 (wide first layers to read 6-10 bp motifs,
  narrower deeper ones); convolutions are stride 1 with ``same`` padding, so the length is kept
  until the pooling.
* Unit: convolution -> batch norm -> ReLU (``batch_norm``, ``activation``), then dropout
  (``conv_dropout``, 0 by default: the paper's data were millions of sequences).
* Residual connections: layers are taken two by two; the input of a pair is added to the output of
  its second convolution (after batch norm, before the activation), i.e. ResNet basic blocks. The
  first pair's input has 4 channels, so a pointwise convolution projects it to ``channels``.
* Pooling: max pooling with kernel = stride = ``pool_size`` (2), ``ceil_mode`` so no base is
  dropped at odd lengths; then flatten.
* Fully connected layers: ``dense_units`` (256, 256) hidden units with ReLU and dropout
  (``dense_dropout``, 0.2), then a linear layer to ``out_features`` (1) outputs.

With these choices the ``paper`` preset has 16.0 M parameters at 110 nt, close to the paper's 16.6 M
(:func:`count_parameters`); ``small`` has 5.8 M (the paper's Camformer-Small, 3.4 M, must have had
smaller dense layers, which the paper does not give). The size of the first fully connected layer
follows the sequence length (``channels * ceil(L / pool_size)`` inputs), so any fixed length works;
the length is part of a saved model. Presets: ``paper`` (512 channels), ``small`` (256 channels, the paper's
Camformer-Small) and ``tiny`` (32 channels, dense 64/32: seconds per epoch on a CPU, for tests and
small tables).

Input encoding: the package's soft one-hot (N = 0.25 in each channel; Camformer used all zeros for
N). Used as a tower, the output ``(B, out_features)`` is summed to a per-sequence score, as for the
PlanTT tower: :class:`plantt.models.SingleSequenceModel` regresses expression on it, and
:class:`plantt.models.TwoTower` contrasts two sequences with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


@dataclass(frozen=True)
class CamformerSettings:
    """Every architectural choice of the Camformer-style tower (defaults: the ``paper`` preset)."""

    in_channels: int = 4
    channels: int = 512
    kernel_sizes: tuple[int, ...] = (9, 9, 7, 7, 5, 5)
    pool_size: int = 2
    dense_units: tuple[int, ...] = (256, 256)
    out_features: int = 1
    batch_norm: bool = True
    conv_dropout: float = 0.0
    dense_dropout: float = 0.2
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        if not self.kernel_sizes or len(self.kernel_sizes) % 2:
            raise ValueError("kernel_sizes must list an even number of convolutions (residual "
                             "connections join them two by two)")
        if any(k < 1 or k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError("kernel_sizes must be odd (symmetric 'same' padding)")
        if self.channels < 1 or self.pool_size < 1 or self.out_features < 1:
            raise ValueError("channels, pool_size and out_features must be positive")
        if any(u < 1 for u in self.dense_units):
            raise ValueError("dense_units must be positive")
        for name in ("conv_dropout", "dense_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")


CAMFORMER_PRESETS: dict[str, CamformerSettings] = {
    "paper": CamformerSettings(),
    "small": CamformerSettings(channels=256),
    "tiny": CamformerSettings(channels=32, pool_size=4, dense_units=(64, 32), dense_dropout=0.1),
}


def pooled_length(seq_len: int, s: CamformerSettings) -> int:
    """Positions left after the max pooling (ceil mode) for ``seq_len`` bases."""
    return math.ceil(seq_len / s.pool_size)


class _ConvUnit(nn.Sequential):
    """Convolution (``same`` length) -> batch norm; the activation is applied by the caller."""

    def __init__(self, c_in: int, c_out: int, kernel: int, batch_norm: bool):
        layers: list[nn.Module] = [nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2,
                                             bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(c_out))
        super().__init__(*layers)


class CamformerPair(nn.Module):
    """Two convolutions with a residual connection: ``act(x' + unit2(act(unit1(x))))``, where
    ``x'`` is ``x`` (or its pointwise projection when the channel counts differ)."""

    def __init__(self, c_in: int, c_out: int, kernels: tuple[int, int], s: CamformerSettings):
        super().__init__()
        self.first = _ConvUnit(c_in, c_out, kernels[0], s.batch_norm)
        self.second = _ConvUnit(c_out, c_out, kernels[1], s.batch_norm)
        self.skip: nn.Module = nn.Identity() if c_in == c_out else nn.Conv1d(c_in, c_out, 1)
        self.act1 = _ACTIVATIONS[s.activation]()
        self.act2 = _ACTIVATIONS[s.activation]()
        self.dropout = nn.Dropout(s.conv_dropout) if s.conv_dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.act1(self.first(x)))
        return self.dropout(self.act2(self.second(h) + self.skip(x)))


class CamformerTower(nn.Module):
    """``(B, 4, L)`` soft one-hot -> ``(B, out_features)``: residual convolutions, max pooling,
    three fully connected layers."""

    def __init__(self, settings: CamformerSettings = CAMFORMER_PRESETS["paper"],
                 seq_len: int = 110):
        super().__init__()
        if seq_len < 1:
            raise ValueError("seq_len must be positive")
        s = settings
        self.settings = s
        self.seq_len = seq_len
        pairs: list[nn.Module] = []
        c_prev = s.in_channels
        for i in range(0, len(s.kernel_sizes), 2):
            pairs.append(CamformerPair(c_prev, s.channels, (s.kernel_sizes[i], s.kernel_sizes[i + 1]),
                                       s))
            c_prev = s.channels
        self.convs = nn.Sequential(*pairs)
        self.pool = nn.MaxPool1d(s.pool_size, ceil_mode=True)
        dense: list[nn.Module] = [nn.Flatten()]
        width = s.channels * pooled_length(seq_len, s)
        for units in s.dense_units:
            dense += [nn.Linear(width, units), _ACTIVATIONS[s.activation]()]
            if s.dense_dropout > 0:
                dense.append(nn.Dropout(s.dense_dropout))
            width = units
        dense.append(nn.Linear(width, s.out_features))
        self.head = nn.Sequential(*dense)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.seq_len:
            raise ValueError(f"tower built for sequences of {self.seq_len} bases, "
                             f"got {x.shape[-1]}")
        return self.head(self.pool(self.convs(x)))


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
