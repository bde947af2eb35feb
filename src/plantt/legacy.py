"""The published PlanTT-CNN ("legacy" tower): rebuild it and load the released weights exactly.

The only trained PlanTT model anyone can download is ``models/planttcnn.pt`` of the PlanTT
repository (Amii-Open-Source/PlanTT, licence CC BY-NC 4.0). It predates the 2025 paper's tower and
uses another input layout. This module rebuilds that tower from the shapes of the released
state_dict, checked numerically against the one published figure (below). The weights are never
shipped with this project: users fetch ``planttcnn.pt`` from the PlanTT repository themselves and
run ``plantt import-weights planttcnn.pt --out-dir MODEL_DIR``.

Input and layout (``promoter1500_terminator1500``)
--------------------------------------------------
3000 bases: the 1500 bases of promoter followed by the 1500 bases of terminator (not the 2025
paper's 1000 + 500 + 500 + 1000 window). The released network reads a ``(B, 5, 3000)`` one-hot in
the order A, C, G, T, N (anything else is N). :class:`LegacyTower` takes the house's soft one-hot
``(B, 4, L)`` (N = 0.25 each, as made by :func:`plantt.encoding.soft_one_hot`) so that
:class:`plantt.models.TwoTower`, in-silico mutagenesis and editing work unchanged, and converts it
internally, piecewise linearly (so gradients still flow for attribution)::

    n    = 4/3 * relu(sum_c x_c - max_c x_c)     # 1 for an N column, 0 for a base, 0 for zeros
    acgt = x - n / 4                             # the N column's 0.25s become 0

A base column ``[1,0,0,0]`` gives ``[1,0,0,0,0]``, an N column gives ``[0,0,0,0,1]`` and an all-zero
column (no base) stays all zero. A 5-channel tensor is taken as is.

Wiring, as derived from the state_dict and verified
---------------------------------------------------
Every convolution is ``Conv1d(kernel 3, padding 1, bias)`` -> ``BatchNorm1d`` (eps 1e-5) ->
``LeakyReLU(0.01)`` ("unit" below; 31 of them). Eleven blocks in sequence, lengths in brackets::

    0  CNN   5 -> 32             x = u(x); x = x + u'(x)                       [3000]
    1  dense 32                                                              [3000]
    2  CNN   32 -> 64            x = u(x); x = x + u'(x)                       [3000]
    3  dense 64                                                              [3000]
    4  CNN   64 -> 128           x = u(x); x = x + u'(x); x = maxpool2(x)      [1500]
    5  dense 128                                                             [1500]
    6  CNN   128 -> 64           (same, max-pool 2)                            [750]
    7  dense 64                                                              [750]
    8  CNN   64 -> 32            (same, max-pool 2)                            [375]
    9  dense 32                                                              [375]
    10 CNN   32 -> 1             x = u(x)   (one unit, no residual, no pool)   [375]

A CNN block is a "base" unit (c_in -> c_out) and, except in the last block, an "extra" unit
(c_out -> c_out) added back to its input (a residual *after* the extra unit's activation); max
pooling (kernel 2, stride 2) comes last. A dense block of width c has four units with inputs
c, 2c, 3c, 4c: ``h = x; for unit: y = unit(h); h = cat([h, y])`` (new features appended after the
old ones, i.e. channels ``[x, y0, y1, ...]``), and its output is the last ``y`` (c channels).
The embedding is the final activation flattened: 375 values; the head ``sum(z_a - z_b)`` has no
parameters, so the released file holds the tower only.

Of the orderings we tried (pool before / between / after the two units of a CNN block, residual or
not, dense concatenation appended or prepended or any permutation, dense output = last / sum /
residual), only this one reproduces the published figure: for ``example + example`` (the
repository's 1500-base example used as both halves) the summed embedding is 1226.256 (published,
fp32); we get 1226.2588 in fp32 and 1226.2579 in fp64 on CPU; the next-best wiring is 83 away.

Key mapping (released name -> ours; the released names carry Python's name mangling of private
attributes ``__tower``, ``__conv_blocks``, ``__base_layers``, ...)::

    _PlanTT__tower._CNN1D__conv_blocks.{i}._CNNBlock1D__base_layers.{0|1}.*
        -> blocks.{i}.base.{0|1}.*                      (0 = Conv1d, 1 = BatchNorm1d)
    _PlanTT__tower._CNN1D__conv_blocks.{i}._CNNBlock1D__extra_layers.{0|1}.*
        -> blocks.{i}.extra.{0|1}.*
    _PlanTT__tower._CNN1D__conv_blocks.{i}._DenseBlock1D__conv_blocks.{j}._CNNBlock1D__base_layers.{0|1}.*
        -> blocks.{i}.units.{j}.{0|1}.*

Sign of the predictions
-----------------------
The released model was trained on expression *ranks*, and its documentation says that a lower
rank means higher expression. ``sum(z)`` therefore grows with the rank number: the raw published
``f(a, b) = sum(z_a) - sum(z_b)`` estimates ``rank_a - rank_b`` and is POSITIVE when ``a`` is LESS
expressed than ``b``, the opposite of this project's convention (``f > 0``: ``a`` more expressed;
``score`` = higher expression; ``plantt edit --direction up`` raises expression). So
``import-weights`` by default stores the tower with ``output_sign = -1`` (the embedding is negated),
which makes the imported model follow the house convention everywhere; ``--keep-rank-sign`` keeps
the raw published sign (``output_sign = +1``), which is what reproduces the published figure.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from plantt import tables
from plantt.encoding import decode, encode, normalize
from plantt.io import InputError, PathLike, atomic_open, get_logger, write_tsv
from plantt.windows import Anchor

if TYPE_CHECKING:
    from plantt.models import TwoTower

log = get_logger("legacy")

LEGACY_TOWER = "legacy"
LEGACY_LAYOUT = "promoter1500_terminator1500"
PROMOTER_LEN = 1500
TERMINATOR_LEN = 1500
LEGACY_SEQ_LEN = PROMOTER_LEN + TERMINATOR_LEN
PUBLISHED_PRESET = "published"
SIGN_NOTE = ("sign: the published model predicts expression RANK differences (lower rank = higher "
             "expression), so its raw f(a, b) > 0 means a is LESS expressed than b")


@dataclass(frozen=True)
class LegacySettings:
    """Shape of the legacy tower (defaults: the released PlanTT-CNN) and its output sign."""

    in_channels: int = 5
    cnn_channels: tuple[int, ...] = (32, 64, 128, 64, 32, 1)
    pooled: tuple[bool, ...] = (False, False, True, True, True, False)
    dense_units: int = 4
    kernel_size: int = 3
    negative_slope: float = 0.01
    output_sign: int = 1  # +1: raw published (rank) sign; -1: house sign (higher = more expressed)

    def __post_init__(self) -> None:
        if len(self.pooled) != len(self.cnn_channels):
            raise ValueError("pooled must have one flag per CNN block (cnn_channels)")
        if self.output_sign not in (1, -1):
            raise ValueError(f"output_sign must be +1 or -1, got {self.output_sign!r}")
        if self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd (same-length convolutions)")

    def embedding_length(self, seq_len: int) -> int:
        length = seq_len
        for pool in self.pooled:
            length = length // 2 if pool else length
        return length * self.cnn_channels[-1]


@dataclass(frozen=True)
class LegacyLayout:
    """The released model's input: ``promoter`` bases, then ``terminator`` bases. Its one
    landmark is the junction (the first terminator base, index 1500), not a TSS and a TTS: ISM
    figures mark it and ``plantt ism --flank`` counts from it."""

    promoter: int = PROMOTER_LEN
    terminator: int = TERMINATOR_LEN

    @property
    def length(self) -> int:
        return self.promoter + self.terminator

    @property
    def junction_index(self) -> int:
        return self.promoter

    @property
    def axis_label(self) -> str:
        return (f"input position (bp): promoter 0-{self.promoter - 1}, terminator "
                f"{self.promoter}-{self.length - 1}")

    def anchors(self) -> tuple[Anchor, ...]:
        return (Anchor(self.junction_index, "promoter | terminator", boundary=True),)


LEGACY_LAYOUTS = {LEGACY_LAYOUT: LegacyLayout()}


# ----------------------------------------------------------------------------------------------
# The tower
# ----------------------------------------------------------------------------------------------
class LegacyUnit(nn.Sequential):
    """Conv1d (same length, bias) -> BatchNorm1d -> LeakyReLU; indices 0 and 1 hold the weights."""

    def __init__(self, c_in: int, c_out: int, kernel: int, negative_slope: float):
        super().__init__(nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2),
                         nn.BatchNorm1d(c_out), nn.LeakyReLU(negative_slope))


class LegacyCNNBlock(nn.Module):
    """Base unit, optional residual extra unit (``x + extra(x)``), optional max pooling by 2."""

    def __init__(self, c_in: int, c_out: int, s: LegacySettings, *, extra: bool, pool: bool):
        super().__init__()
        self.base = LegacyUnit(c_in, c_out, s.kernel_size, s.negative_slope)
        self.extra = LegacyUnit(c_out, c_out, s.kernel_size, s.negative_slope) if extra else None
        self.pool = nn.MaxPool1d(2) if pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.base(x)
        if self.extra is not None:
            x = x + self.extra(x)
        return self.pool(x) if self.pool is not None else x


class LegacyDenseBlock(nn.Module):
    """Units whose inputs grow by concatenation (``[x, y0, y1, ...]``); returns the last output."""

    def __init__(self, channels: int, s: LegacySettings):
        super().__init__()
        self.units = nn.ModuleList(
            LegacyUnit(channels * (j + 1), channels, s.kernel_size, s.negative_slope)
            for j in range(s.dense_units))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = x
        y = x
        for unit in self.units:
            y = unit(features)
            features = torch.cat([features, y], dim=1)
        return y


def soft_to_legacy_one_hot(x: torch.Tensor) -> torch.Tensor:
    """``(B, 4, L)`` soft one-hot -> ``(B, 5, L)`` A, C, G, T, N one-hot (see module docstring)."""
    n = F.relu(x.sum(dim=1, keepdim=True) - x.amax(dim=1, keepdim=True)) * (4.0 / 3.0)
    return torch.cat([x - n / 4.0, n], dim=1)


class LegacyTower(nn.Module):
    """The published PlanTT-CNN tower: ``(B, 4, 3000)`` soft one-hot -> ``(B, 375)`` embedding."""

    def __init__(self, settings: LegacySettings = LegacySettings(),
                 seq_len: int = LEGACY_SEQ_LEN):
        super().__init__()
        s = settings
        self.settings = s
        self.seq_len = seq_len
        self.embedding_dim = s.embedding_length(seq_len)
        if self.embedding_dim < 1:
            raise ValueError(f"sequences of {seq_len} bases are too short for this tower")
        blocks: list[nn.Module] = []
        c_prev = s.in_channels
        last = len(s.cnn_channels) - 1
        for i, (c, pool) in enumerate(zip(s.cnn_channels, s.pooled, strict=True)):
            blocks.append(LegacyCNNBlock(c_prev, c, s, extra=i < last, pool=pool))
            if i < last:
                blocks.append(LegacyDenseBlock(c, s))
            c_prev = c
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.seq_len:
            raise ValueError(f"tower built for sequences of {self.seq_len} bases, "
                             f"got {x.shape[-1]}")
        if x.shape[1] == 4 and self.settings.in_channels == 5:
            x = soft_to_legacy_one_hot(x)
        z = self.blocks(x).flatten(1)
        return z if self.settings.output_sign == 1 else -z


# ----------------------------------------------------------------------------------------------
# Released weights
# ----------------------------------------------------------------------------------------------
_KEY_RULES = [
    (re.compile(r"^_PlanTT__tower\._CNN1D__conv_blocks\.(\d+)\._DenseBlock1D__conv_blocks\.(\d+)"
                r"\._CNNBlock1D__base_layers\.(.+)$"), r"blocks.\1.units.\2.\3"),
    (re.compile(r"^_PlanTT__tower\._CNN1D__conv_blocks\.(\d+)\._CNNBlock1D__base_layers\.(.+)$"),
     r"blocks.\1.base.\2"),
    (re.compile(r"^_PlanTT__tower\._CNN1D__conv_blocks\.(\d+)\._CNNBlock1D__extra_layers\.(.+)$"),
     r"blocks.\1.extra.\2"),
]


def map_published_key(key: str) -> str:
    """Our :class:`LegacyTower` parameter name of a released state_dict key."""
    for pattern, replacement in _KEY_RULES:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    raise KeyError(key)


def read_published_state_dict(path: PathLike) -> dict[str, torch.Tensor]:
    """The released state_dict, its keys renamed for :class:`LegacyTower` (CPU tensors)."""
    from plantt.models import load_state_dict_file  # plantt.models imports this module

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found (fetch models/planttcnn.pt from the PlanTT "
                               "repository, Amii-Open-Source/PlanTT)")
    # the one safe loader: damaged files and pickles of arbitrary objects are InputErrors
    state = load_state_dict_file(path, "PyTorch state_dict")
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        try:
            renamed[map_published_key(key)] = value
        except KeyError:
            raise InputError(path, f"unexpected parameter {key!r}: not the published "
                                   "PlanTT-CNN") from None
    return renamed


def load_published_state_dict(path: PathLike, output_sign: int = 1) -> LegacyTower:
    """A :class:`LegacyTower` (eval mode) holding the released weights.

    ``output_sign=1`` (default) keeps the published rank sign (reproduces the published figure);
    ``-1`` negates the embedding so that higher means more expressed (the house convention).
    """
    state = read_published_state_dict(path)
    tower = LegacyTower(LegacySettings(output_sign=output_sign))
    from plantt.models import check_weights_fit

    check_weights_fit(path, tower, state, against="the published PlanTT-CNN (legacy tower)")
    try:
        tower.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise InputError(path, f"weights do not fit the legacy tower: {err}") from None
    return tower.eval()


def legacy_two_tower(tower: LegacyTower, preset: str = PUBLISHED_PRESET) -> TwoTower:
    """``TwoTower(tower)`` with its :class:`plantt.models.ModelSpec` (so save_model can write it)."""
    from plantt.models import ModelSpec, TwoTower

    model = TwoTower(tower)
    model.spec = ModelSpec("plantt", preset, tower.seq_len, tower.settings,  # type: ignore[arg-type]
                           tower=LEGACY_TOWER)
    return model


def legacy_model_from_info(info: dict[str, Any]) -> TwoTower:
    """An untrained legacy TwoTower shaped as a model.json says (for :func:`load_model`)."""
    values = dict(info.get("settings") or {})
    for name in ("cnn_channels", "pooled"):
        if name in values and isinstance(values[name], list):
            values[name] = tuple(values[name])
    settings = LegacySettings(**values)
    return legacy_two_tower(LegacyTower(settings, int(info["seq_len"])),
                            info.get("preset", PUBLISHED_PRESET))


# ----------------------------------------------------------------------------------------------
# Inputs in the legacy layout
# ----------------------------------------------------------------------------------------------
def legacy_input(promoter: str, terminator: str) -> str:
    """The 3000-base input: 1500 bases of promoter then 1500 of terminator (normalised, N for
    anything but ACGT). Both lengths are checked: the released model saw exactly this layout."""
    problems = []
    if len(promoter) != PROMOTER_LEN:
        problems.append(f"promoter has {len(promoter)} bases, expected {PROMOTER_LEN}")
    if len(terminator) != TERMINATOR_LEN:
        problems.append(f"terminator has {len(terminator)} bases, expected {TERMINATOR_LEN}")
    if problems:
        raise ValueError("; ".join(problems) + f" (layout {LEGACY_LAYOUT}: 1500 bases of "
                         "promoter, then 1500 bases of terminator)")
    return normalize(promoter + terminator)


def read_fasta_records(path: PathLike) -> list[tuple[str, str]]:
    """(id, sequence) of every record of a (possibly gzipped) FASTA file."""
    return [(record.name, record.sequence) for record in tables.read_fasta_records(path)]


def legacy_inputs_from_files(promoter: PathLike | None = None, terminator: PathLike | None = None,
                             sequence: PathLike | None = None) -> tuple[list[str], np.ndarray]:
    """(ids, ``(n, 3000)`` codes) from ``--promoter``/``--terminator`` FASTAs (paired by order,
    ids from the promoter file) or from one FASTA of 3000-base sequences."""
    if sequence is not None:
        if promoter is not None or terminator is not None:
            raise InputError(sequence, "give either a 3000-base FASTA or --promoter and "
                                       "--terminator, not both")
        records = read_fasta_records(sequence)
        for name, seq in records:
            if len(seq) != LEGACY_SEQ_LEN:
                raise InputError(sequence, f"sequence has {len(seq)} bases, expected "
                                           f"{LEGACY_SEQ_LEN} (layout {LEGACY_LAYOUT})",
                                 record=name)
        ids, seqs = [n for n, _ in records], [normalize(s) for _, s in records]
    else:
        if promoter is None or terminator is None:
            raise InputError(promoter or terminator or "-", "both --promoter and --terminator "
                                                            "FASTA files are needed")
        proms, terms = read_fasta_records(promoter), read_fasta_records(terminator)
        if len(proms) != len(terms):
            raise InputError(terminator, f"{len(terms)} record(s), but the promoter FASTA has "
                                         f"{len(proms)} (records are paired by order)")
        ids, seqs = [], []
        for (p_id, p_seq), (t_id, t_seq) in zip(proms, terms, strict=True):
            try:
                seqs.append(legacy_input(p_seq, t_seq))
            except ValueError as err:
                bad = promoter if len(p_seq) != PROMOTER_LEN else terminator
                raise InputError(bad, str(err), record=p_id if bad == promoter else t_id) from None
            ids.append(p_id)
    codes = np.stack([encode(s) for s in seqs]) if seqs else np.zeros((0, LEGACY_SEQ_LEN),
                                                                        np.uint8)
    return ids, codes


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def import_weights(path: PathLike, out: PathLike, keep_rank_sign: bool = False) -> Path:
    """Write a model directory (``weights.pt`` + ``model.json``) holding the released weights."""
    from plantt.models import save_model

    sign = 1 if keep_rank_sign else -1
    tower = load_published_state_dict(path, output_sign=sign)
    model = legacy_two_tower(tower)
    provenance = {
        "source": "PlanTT repository (Amii-Open-Source/PlanTT), models/planttcnn.pt",
        "licence": "CC BY-NC 4.0 (the weights; do not redistribute commercially)",
        "imported_from": str(Path(path).resolve()),
        "output_sign": sign,
        "sign_note": SIGN_NOTE + ("; kept as published (raw rank sign)" if keep_rank_sign else
                                  "; negated here, so higher score = higher expression"),
    }
    return save_model(out, model, layout=LEGACY_LAYOUT, provenance=provenance)


def run_import_weights(args: argparse.Namespace) -> int:
    out = import_weights(args.weights, args.out, args.keep_rank_sign)
    print(f"wrote {out} (legacy PlanTT-CNN tower, layout {LEGACY_LAYOUT}: 1500 bases of promoter "
          f"then 1500 of terminator)")
    print(SIGN_NOTE + ".")
    if args.keep_rank_sign:
        print("kept the published sign: in this model, f(a, b) > 0 and a higher score mean LOWER "
              "expression (opposite to the other plantt models)")
    else:
        print("stored with the embedding negated: in this model, as in every plantt model, "
              "f(a, b) > 0 means a is MORE expressed and a higher score means higher expression")
    sys.stdout.flush()
    return 0


def run_legacy_input(args: argparse.Namespace) -> int:
    ids, codes = legacy_inputs_from_files(args.promoter, args.terminator, args.sequences)
    with atomic_open(args.out) as handle:
        for name, row in zip(ids, codes, strict=True):
            handle.write(f">{name}\n{decode(row)}\n")
    log.info("wrote %d input(s) of %d bases to %s", len(ids), LEGACY_SEQ_LEN, args.out)
    if args.model is not None:
        import pandas as pd

        from plantt.ism import load_plantt, sequence_scores

        model = load_plantt(args.model)
        if model.seq_len != LEGACY_SEQ_LEN:
            raise InputError(args.model, f"model expects {model.seq_len} bases, not the "
                                         f"{LEGACY_SEQ_LEN} of layout {LEGACY_LAYOUT}")
        table = pd.DataFrame({"gene": ids, "score": sequence_scores(model, codes)})
        if args.scores is not None:
            write_tsv(table, args.scores, float_format="%.8g")
        table.to_string(sys.stdout, index=False, float_format=lambda v: f"{v:.6g}")
        sys.stdout.write("\n")
    return 0
