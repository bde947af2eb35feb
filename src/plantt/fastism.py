"""Fast in-silico mutagenesis for the PlanTT-CNN tower (the fastISM idea, Nair et al. 2022).

A substitution at input position ``p`` can only change the activations inside the receptive field
of ``p``. So the reference activations of every layer are computed once, and each batch of mutants
is pushed through the tower layer by layer on the slice of positions that may differ. Every row of
a batch has its own changed range (one width per layer, so that the batch is one tensor): the
mutants of an ISM run in groups of nearby positions that share one range (windows are then plain
slices of the reference), scattered edits such as a gene's SNVs each with its own range (windows
gathered per row); a row whose range is narrower than the batch's width recomputes a few unchanged
positions, which is exact. A convolution or pooling with kernel ``k``, stride ``s`` and left
padding ``pl`` maps a changed input range ``[a, b)`` to the outputs whose windows touch it, and
reads the input window those outputs need, filled from the reference activations outside the
changed range and padded exactly as the real layer pads (zeros for convolutions, ``-inf`` for
ceil-mode max pooling). Batch norm (eval: an affine map), activations, dropout (eval: identity)
and pointwise convolutions act on the slice alone; a residual block's output slice is the union of
its input's and its branch's changed ranges (the branch's always contains the input's).

The readout (optional adaptive average pooling, a linear projection, ``sum``; the legacy tower: a
sum) is affine in the trunk's final activations, so ``sum(z)`` of a mutant is the reference's plus
the readout's weights (its gradient, computed once) times the change of the final activations on
their changed slice: exact, and it never materialises a mutant's whole final map (for the demo's
``motif`` tower, 96 channels at base resolution, that map was most of a mutant's cost).

:func:`compile_tower` returns ``None`` for a tower it does not know how to slice (another module
type, a dilated convolution, training mode): callers then fall back to the straightforward path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from plantt.encoding import soft_one_hot
from plantt.legacy import LegacyCNNBlock, LegacyDenseBlock, LegacyTower, soft_to_legacy_one_hot
from plantt.models import ConvUnit, PlanTTCNNTower, ResidualBlock

Positions = int | np.ndarray  # a position, or one per row of a batch

_POSITIONWISE = (nn.BatchNorm1d, nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Dropout,
                 nn.Dropout1d, nn.Identity)


# ----------------------------------------------------------------------------------------------
# The tower as a list of sliceable operations
# ----------------------------------------------------------------------------------------------
@dataclass
class WindowOp:
    """A convolution or pooling over windows of ``kernel`` positions, ``stride`` apart, the first
    starting ``left_pad`` positions before the sequence; ``out_length(l_in)`` is the real layer's
    output length and ``fill`` the value it effectively pads with."""

    kernel: int
    stride: int
    left_pad: int
    fill: float
    apply: Callable[[torch.Tensor], torch.Tensor]  # on an explicitly padded window
    out_length: Callable[[int], int]
    macs: int = 0  # multiply-adds per output position (a convolution's weight count; for benchmarks)
    conv: nn.Conv1d | None = None  # the convolution, where this is one (batch norm folds into it)

    def changed_outputs(self, lo: Positions, hi: Positions, l_in: int
                        ) -> tuple[Positions, Positions]:
        """Outputs whose window touches input positions ``[lo, hi)`` (integers, or arrays of
        one range per row)."""
        first = np.maximum(0, -((self.kernel - 1 - lo - self.left_pad) // self.stride))
        last = np.minimum(self.out_length(l_in), (hi - 1 + self.left_pad) // self.stride + 1)
        return first, np.maximum(first, last)

    def needed_inputs(self, lo: Positions, width: int) -> tuple[Positions, int]:
        """(First input position, possibly outside the sequence, and number of positions) read by
        the ``width`` outputs from ``lo`` on."""
        return lo * self.stride - self.left_pad, (width - 1) * self.stride + self.kernel


@dataclass
class PointwiseOp:
    """A position-wise module (batch norm, activation, dropout in eval mode, 1x1 convolution)."""

    module: nn.Module


@dataclass
class ResidualOp:
    """``act(x + branch(x))``."""

    branch: list[Operation]
    activation: nn.Module | None


@dataclass
class DenseOp:
    """Units whose inputs grow by concatenation (``[x, y0, y1, ...]``); the output is the last
    unit's (the legacy tower's dense blocks)."""

    units: list[list[Operation]]


Operation = WindowOp | PointwiseOp | ResidualOp | DenseOp


@dataclass
class SlicedTower:
    """A tower compiled into sliceable operations, and its readout: the final activations
    ``(B, C, L)`` of the whole sequence -> ``sum(z)`` ``(B,)``."""

    tower: nn.Module
    ops: list[Operation] = field(default_factory=list)
    readout: Callable[[torch.Tensor], torch.Tensor] | None = None  # affine (see the module doc)


class _Unsupported(Exception):
    """A module the sliced path does not handle (the caller falls back)."""


def _conv_op(conv: nn.Conv1d, left_pad: int | None = None, right_pad: int | None = None
             ) -> Operation:
    k, s = conv.kernel_size[0], conv.stride[0]
    if conv.dilation[0] != 1 or conv.groups != 1 or conv.padding_mode != "zeros":
        raise _Unsupported("dilated, grouped or non-zero-padded convolution")
    if left_pad is None:
        if conv.padding == "same":
            left_pad, right_pad = (k - 1) // 2, (k - 1) - (k - 1) // 2
        elif conv.padding == "valid":
            left_pad = right_pad = 0
        else:
            left_pad = right_pad = conv.padding[0]
    if k == 1 and s == 1 and left_pad == 0 and right_pad == 0:
        return PointwiseOp(conv)
    assert right_pad is not None
    total = left_pad + right_pad

    def out_length(l_in: int) -> int:
        return (l_in + total - k) // s + 1

    def apply(x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, conv.weight, conv.bias, stride=s)

    return WindowOp(k, s, left_pad, 0.0, apply, out_length, conv.weight.numel(), conv)


def _maxpool_op(pool: nn.MaxPool1d) -> WindowOp:
    k = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
    s = pool.stride if isinstance(pool.stride, int) else pool.stride[0]
    pad = pool.padding if isinstance(pool.padding, int) else pool.padding[0]
    dilation = pool.dilation if isinstance(pool.dilation, int) else pool.dilation[0]
    if pad != 0 or dilation != 1 or pool.return_indices:
        raise _Unsupported("padded or dilated max pooling")
    ceil_mode = pool.ceil_mode

    def out_length(l_in: int) -> int:
        if not ceil_mode:
            return (l_in - k) // s + 1
        n = -(-(l_in - k) // s) + 1
        return n - 1 if (n - 1) * s >= l_in else n  # the last window must start inside

    def apply(x: torch.Tensor) -> torch.Tensor:
        return F.max_pool1d(x, k, s)

    return WindowOp(k, s, 0, -math.inf, apply, out_length)


class _FoldedConv(nn.Module):
    """A convolution with the batch norm after it folded in (eval mode: an affine map per channel)."""

    def __init__(self, conv: nn.Conv1d, norm: nn.BatchNorm1d):
        super().__init__()
        with torch.no_grad():
            assert norm.running_var is not None and norm.running_mean is not None
            scale = torch.rsqrt(norm.running_var + norm.eps)
            shift = -norm.running_mean * scale
            if norm.weight is not None:
                scale = scale * norm.weight
                shift = shift * norm.weight + norm.bias
            self.weight = (conv.weight * scale[:, None, None]).detach()
            bias = shift if conv.bias is None else conv.bias * scale + shift
            self.bias = bias.detach().to(conv.weight.dtype)
        self.stride = conv.stride[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight, self.bias, stride=self.stride)


def _fold_batch_norms(ops: list[Operation]) -> list[Operation]:
    """``ops`` with every eval-mode batch norm that follows a convolution folded into it, and
    dropout (the identity in eval mode) left out: fewer passes over each slice, same function."""
    out: list[Operation] = []
    for op in ops:
        if isinstance(op, ResidualOp):
            op = ResidualOp(_fold_batch_norms(op.branch), op.activation)
        elif isinstance(op, DenseOp):
            op = DenseOp([_fold_batch_norms(unit) for unit in op.units])
        elif isinstance(op, PointwiseOp) and isinstance(op.module, (nn.Dropout, nn.Dropout1d,
                                                                     nn.Identity)):
            continue
        elif (isinstance(op, PointwiseOp) and isinstance(op.module, nn.BatchNorm1d)
              and op.module.running_var is not None and out):
            previous = out[-1]
            if isinstance(previous, WindowOp) and previous.conv is not None:
                folded = _FoldedConv(previous.conv, op.module)
                out[-1] = WindowOp(previous.kernel, previous.stride, previous.left_pad, 0.0,
                                   folded, previous.out_length, previous.macs)
                continue
            if isinstance(previous, PointwiseOp) and isinstance(previous.module, nn.Conv1d):
                out[-1] = PointwiseOp(_FoldedConv(previous.module, op.module))
                continue
        out.append(op)
    return out


def _compile_module(module: nn.Module) -> list[Operation]:
    if isinstance(module, (nn.Sequential, ConvUnit)):
        return [op for child in module for op in _compile_module(child)]
    if isinstance(module, ResidualBlock):
        return [ResidualOp(_compile_module(module.branch), module.out_activation)]
    if isinstance(module, LegacyCNNBlock):  # base unit, then x + extra(x), then pooling
        ops = _compile_module(module.base)
        if module.extra is not None:
            ops.append(ResidualOp(_compile_module(module.extra), None))
        if module.pool is not None:
            ops += _compile_module(module.pool)
        return ops
    if isinstance(module, LegacyDenseBlock):
        return [DenseOp([_compile_module(unit) for unit in module.units])]
    if isinstance(module, nn.Identity):
        return []
    if isinstance(module, nn.Conv1d):
        return [_conv_op(module)]
    if isinstance(module, nn.MaxPool1d):
        return [_maxpool_op(module)]
    if isinstance(module, _POSITIONWISE):
        return [PointwiseOp(module)]
    raise _Unsupported(type(module).__name__)


class _SoftToLegacy(nn.Module):
    """The legacy tower's input conversion (position-wise)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return soft_to_legacy_one_hot(x)


def _compile_legacy(tower: LegacyTower) -> SlicedTower:
    ops: list[Operation] = []
    if tower.settings.in_channels == 5:
        ops.append(PointwiseOp(_SoftToLegacy()))
    ops = _fold_batch_norms(ops + _compile_module(tower.blocks))
    sign = float(tower.settings.output_sign)

    def readout(h: torch.Tensor) -> torch.Tensor:
        return h.flatten(1).double().sum(dim=-1) * sign

    return SlicedTower(tower, ops, readout)


def compile_tower(tower: nn.Module) -> SlicedTower | None:
    """The tower as sliceable operations, or ``None`` where the sliced path would not be exact."""
    if tower.training:
        return None
    if type(tower) is LegacyTower:
        try:
            return _compile_legacy(tower)
        except _Unsupported:
            return None
    if type(tower) is not PlanTTCNNTower or not isinstance(tower.projection, nn.Linear):
        return None  # the readout must be affine
    s = tower.settings
    try:
        stem = list(tower.stem)
        ops: list[Operation]
        if s.stem_pool:
            ops = _compile_module(tower.stem)
        else:  # the tower pads the input itself (see PlanTTCNNTower._pad_for_stem)
            overlap = s.stem_kernel - s.stem_stride
            remainder = (-tower.seq_len) % s.stem_stride
            ops = [_conv_op(stem[0], overlap // 2, overlap - overlap // 2 + remainder)]
            ops += [op for m in stem[1:] for op in _compile_module(m)]
        ops += _compile_module(tower.stages)
        ops += _compile_module(tower.to_one_channel)
    except _Unsupported:
        return None
    ops = _fold_batch_norms(ops)

    def readout(h: torch.Tensor) -> torch.Tensor:
        return tower.read_out(h).double().sum(dim=-1)

    return SlicedTower(tower, ops, readout)


# ----------------------------------------------------------------------------------------------
# Running a batch of mutants on slices
# ----------------------------------------------------------------------------------------------
@dataclass
class Slice:
    """Activations of a batch of sequences: row ``b`` equals its reference except at positions
    ``[lo[b], lo[b] + width)``, which hold ``values[b]`` (``values``: ``(B, C, width)``). Rows may
    start at different positions; they share one width. The reference is ``(1, C, L)``, shared by
    every row, or ``(G, C, L)`` with ``rows[b]`` the reference of row ``b`` (edits of several
    sequences in one batch)."""

    reference: torch.Tensor
    lo: np.ndarray  # (B,) int64
    values: torch.Tensor
    rows: torch.Tensor | None = None  # (B,) int64 on the device: each row's reference

    def _per_row(self, reference: torch.Tensor, batch: int) -> torch.Tensor:
        """``reference`` (``(1 or G, C, n)``) as one writable copy per row, ``(B, C, n)``."""
        if self.rows is None:
            return reference.expand(batch, -1, -1).clone()
        return reference.index_select(0, self.rows)

    @property
    def hi(self) -> np.ndarray:
        return self.lo + self.values.shape[-1]

    def window(self, starts: np.ndarray, width: int, fill: float) -> torch.Tensor:
        """Positions ``[starts[b], starts[b] + width)`` of every row ``b``, ``(B, C, width)``;
        outside the sequence: ``fill``."""
        changed = self.values.shape[-1]
        if changed == width and np.array_equal(starts, self.lo):
            return self.values
        batch, channels, device = self.values.shape[0], self.reference.shape[1], \
            self.values.device
        offset = self.lo - starts
        # changed positions outside the window are dropped: read a window wide enough to hold
        # them all, then cut it
        extra_left = max(0, -int(offset.min())) if changed else 0
        extra_right = max(0, int((offset + changed).max()) - width) if changed else 0
        first = starts - extra_left
        total = width + extra_left + extra_right
        length = self.reference.shape[-1]
        pad_left, pad_right = max(0, -int(first.min())), max(0, int(first.max()) + total - length)
        reference = F.pad(self.reference, (pad_left, pad_right), value=fill) \
            if pad_left or pad_right else self.reference
        if np.all(first == first[0]):
            a = int(first[0]) + pad_left
            out = self._per_row(reference[..., a:a + total], batch)
        else:
            index = torch.as_tensor(first + pad_left, device=device)[:, None] + \
                torch.arange(total, device=device)
            source = reference.expand(batch, -1, -1) if self.rows is None else \
                reference.index_select(0, self.rows)
            out = source.gather(2, index[:, None, :].expand(-1, channels, -1))
        if changed:
            at = offset + extra_left
            if np.all(at == at[0]):
                out[..., int(at[0]):int(at[0]) + changed] = self.values
            else:
                index = torch.as_tensor(at, device=device)[:, None] + \
                    torch.arange(changed, device=device)
                out.scatter_(2, index[:, None, :].expand(-1, out.shape[1], -1), self.values)
        return out[..., extra_left:extra_left + width] if total != width else out


@dataclass
class ConcatSlice:
    """Slices of the same rows concatenated along channels (a dense block's input); each part
    keeps its own changed ranges."""

    parts: list[Slice]

    @property
    def reference(self) -> torch.Tensor:  # only its length is read
        return self.parts[0].reference

    @property
    def lo(self) -> np.ndarray:
        return np.min([p.lo for p in self.parts if p.values.shape[-1]], axis=0)

    @property
    def hi(self) -> np.ndarray:
        return np.max([p.hi for p in self.parts if p.values.shape[-1]], axis=0)

    @property
    def values(self) -> torch.Tensor:  # only its batch size is read
        return self.parts[0].values

    @property
    def rows(self) -> torch.Tensor | None:
        return self.parts[0].rows

    def window(self, starts: np.ndarray, width: int, fill: float) -> torch.Tensor:
        return torch.cat([p.window(starts, width, fill) for p in self.parts], dim=1)


def _common_range(lo: np.ndarray, hi: np.ndarray, length: int) -> tuple[np.ndarray, int]:
    """Per-row starts and one width covering every row's ``[lo, hi)``, inside ``[0, length)``:
    rows needing less compute a few unchanged positions too (exact, and one batch)."""
    width = int((hi - lo).max())
    return np.minimum(lo, length - width), width


def _run_ops(ops: list[Operation], x: Slice | ConcatSlice, refs: list[torch.Tensor] | None,
             record: list[torch.Tensor] | None) -> Slice:
    """Push ``x`` through ``ops``; ``refs`` holds each op's reference output (consumed in order)
    or, in the reference pass (``refs is None``), is filled in ``record``."""
    for op in ops:
        length = x.reference.shape[-1]
        if isinstance(op, PointwiseOp):
            assert isinstance(x, Slice)
            values, lo = op.module(x.values), x.lo
        elif isinstance(op, DenseOp):
            parts: list[Slice] = [x] if isinstance(x, Slice) else list(x.parts)
            for unit in op.units:
                y = _run_ops(unit, ConcatSlice(parts), refs, record)
                parts.append(y)
            values, lo = y.values, y.lo
        elif isinstance(op, WindowOp):
            first, last = op.changed_outputs(x.lo, x.hi, length)
            lo, width = _common_range(first, last, op.out_length(length))
            if width > 0:
                values = op.apply(x.window(*op.needed_inputs(lo, width), op.fill))
            else:
                values = x.values.new_zeros(0)
        else:
            branch = _run_ops(op.branch, x, refs, record)
            lo, width = _common_range(np.minimum(x.lo, branch.lo), np.maximum(x.hi, branch.hi),
                                      length)
            values = x.window(lo, width, 0.0) + branch.window(lo, width, 0.0)
            if op.activation is not None:
                values = op.activation(values)
        if refs is None:
            assert record is not None
            record.append(values)
            reference = values
        else:
            reference = refs.pop(0)
        if values.ndim != 3 or values.shape[-1] == 0:  # nothing can change (no changed input)
            values = reference[:1, :, :0].expand(x.values.shape[0], -1, -1)
            lo = np.zeros_like(x.lo)
        x = Slice(reference, lo, values, x.rows)
    assert isinstance(x, Slice)
    return x


class FastIsm:
    """Sliced scoring of single-base substitutions (and other same-length edits) of one
    reference sequence.

    Build it once per sequence (one full tower pass records every layer's reference activations);
    :meth:`scores` then gives ``sum(z)`` of each mutant, :meth:`edited_scores` of each edit. Each
    row of a batch carries its own changed range (all of one width per layer), so edits anywhere
    in the sequence run together, each computing only its own receptive field (a batch size of
    one would fall on PyTorch's slow CPU convolution for small inputs).

    ``codes`` may also hold several sequences, ``(G, L)`` (a VCF's genes): one batched pass records
    them all, ``reference_scores`` holds their scores, and :meth:`edited_scores` takes each edit's
    sequence, so that the edits of many sequences share batches (:meth:`scores`, the ISM of one
    sequence, needs a single one).
    """

    def __init__(self, compiled: SlicedTower, codes: np.ndarray):
        tower = compiled.tower
        self.compiled = compiled
        param = next(tower.parameters())
        self.device, self.dtype = param.device, param.dtype
        # a copy: the caller's array may be read-only (a memory-mapped encoded.npy)
        codes = np.array(codes, dtype=np.uint8)
        if codes.ndim not in (1, 2) or codes.shape[-1] != tower.seq_len or codes.size == 0:
            raise ValueError(f"one sequence (or a (G, L) array of sequences) of {tower.seq_len} "
                             f"codes is needed")
        self.batch_codes = torch.tensor(np.atleast_2d(codes), device=self.device)
        self.codes = self.batch_codes[0]
        n = self.batch_codes.shape[0]
        with torch.inference_mode():
            one_hot = soft_one_hot(self.batch_codes, dtype=self.dtype)
            self.input_reference = one_hot
            self.references: list[torch.Tensor] = []
            full = Slice(one_hot, np.zeros(n, dtype=np.int64), one_hot)
            out = _run_ops(compiled.ops, full, None, self.references)
            scores = self._readout(out).double()
            self.reference_scores = scores.cpu().numpy()
            self.reference_score = float(self.reference_scores[0])
        self._reference_scores = scores
        self.readout_weights = self._readout_weights(out.reference)

    def _readout(self, x: Slice) -> torch.Tensor:
        assert self.compiled.readout is not None
        length = x.reference.shape[-1]
        return self.compiled.readout(x.window(np.zeros_like(x.lo), length, 0.0))

    def _readout_weights(self, final: torch.Tensor) -> torch.Tensor:
        """``d sum(z) / dh`` over the final activations ``h`` (``(1, C, L)``): constant, since the
        readout is affine."""
        assert self.compiled.readout is not None
        with torch.inference_mode(False), torch.enable_grad():
            h = torch.zeros(final[:1].shape, dtype=final.dtype, device=final.device,
                            requires_grad=True)
            (weights,) = torch.autograd.grad(self.compiled.readout(h).sum(), h)
        return weights.detach()

    def _mutant_scores(self, x: Slice) -> torch.Tensor:
        """``sum(z)`` of each row of the final activations ``x``: its reference's score plus the
        readout weights times the change on the row's changed slice."""
        width = x.values.shape[-1]
        base = self._reference_scores if x.rows is None else \
            self._reference_scores.index_select(0, x.rows)
        if width == 0:  # nothing changed
            return base.expand(x.values.shape[0]).clone() if x.rows is None else base
        unchanged = Slice(x.reference, x.lo, x.values[..., :0], x.rows).window(x.lo, width, 0.0)
        weights = Slice(self.readout_weights, x.lo, x.values[..., :0]).window(x.lo, width, 0.0)
        change = ((x.values - unchanged) * weights).sum(dim=(1, 2), dtype=torch.float64)
        return base + change

    def _batch_scores(self, lo: np.ndarray, window: torch.Tensor,
                      rows: torch.Tensor | None = None) -> np.ndarray:
        """``sum(z)`` of sequences equal to the reference (``rows[b]``'s where given) except that
        row ``b`` holds ``window[b]`` (codes, ``(B, width)``) at positions
        ``[lo[b], lo[b] + width)``."""
        if rows is None and self.batch_codes.shape[0] > 1:
            raise ValueError("several reference sequences: say which one each row edits")
        x = Slice(self.input_reference, lo, soft_one_hot(window, dtype=self.dtype), rows)
        out = _run_ops(self.compiled.ops, x, list(self.references), None)
        return self._mutant_scores(out).cpu().numpy()

    def edited_scores(self, edits: list[tuple[int, np.ndarray]], batch_size: int = 256,
                      sequences: np.ndarray | None = None) -> np.ndarray:
        """``sum(z)`` (float64) of each edited sequence: ``edits[i] = (start, codes)`` replaces the
        reference from ``start`` on by ``codes`` (one or more bases, the length unchanged: SNVs
        and MNVs of a variant call set); ``batch_size`` edits at a time, in order of position.
        With several reference sequences, ``sequences[i]`` is the one edit ``i`` changes.
        """
        length = self.codes.numel()
        n_refs = self.batch_codes.shape[0]
        starts = np.array([start for start, _ in edits], dtype=np.int64)
        ends = np.array([start + len(codes) for start, codes in edits], dtype=np.int64)
        if np.any(starts < 0) or np.any(ends > length) or np.any(ends <= starts):
            raise ValueError(f"edits must be non-empty and lie within the {length} bases")
        if sequences is None:
            if n_refs > 1:
                raise ValueError("several reference sequences: give each edit's in sequences")
            sequences = np.zeros(len(edits), dtype=np.int64)
        sequences = np.asarray(sequences, dtype=np.int64)
        if sequences.shape != starts.shape or (sequences.size and (
                sequences.min() < 0 or sequences.max() >= n_refs)):
            raise ValueError(f"sequences must give one of the {n_refs} references per edit")
        out = np.empty(len(edits), dtype=np.float64)
        order = np.argsort(starts, kind="stable")
        reference = self.batch_codes.cpu().numpy()
        with torch.inference_mode():
            for first in range(0, order.size, batch_size):
                rows = order[first:first + batch_size]
                lo, width = _common_range(starts[rows], ends[rows], length)
                window = reference[sequences[rows][:, None], lo[:, None] + np.arange(width)]
                for row, i in enumerate(rows):
                    start, codes = edits[i]
                    window[row, start - lo[row]:start - lo[row] + len(codes)] = codes
                which = None if n_refs == 1 else \
                    torch.as_tensor(sequences[rows], device=self.device)
                out[rows] = self._batch_scores(lo, torch.as_tensor(window, device=self.device),
                                               which)
        return out

    def scores(self, positions: np.ndarray, alts: np.ndarray, group_width: int = 24,
               batch_size: int = 256) -> np.ndarray:
        """``sum(z)`` (float64) of each mutant (``alts[i]`` at ``positions[i]``).

        Mutants within ``group_width`` bases of their group's first position run as one batch
        (at most ``batch_size``) on one shared slice: for the contiguous positions of an ISM this
        costs a few more positions per layer than a range per mutant, but the windows are then
        plain slices of the reference instead of per-row gathers, which is faster.
        """
        positions = np.asarray(positions, dtype=np.int64)
        alts = np.asarray(alts, dtype=np.uint8)
        out = np.empty(positions.size, dtype=np.float64)
        order = np.argsort(positions, kind="stable")
        sorted_pos = positions[order]
        with torch.inference_mode():
            start = 0
            while start < sorted_pos.size:
                stop = int(np.searchsorted(sorted_pos, sorted_pos[start] + group_width))
                rows = order[start:min(stop, start + batch_size)]
                lo, hi = int(positions[rows].min()), int(positions[rows].max()) + 1
                window = self.codes[lo:hi].unsqueeze(0).repeat(rows.size, 1)
                window[torch.arange(rows.size, device=self.device),
                       torch.as_tensor(positions[rows] - lo, device=self.device)] = \
                    torch.as_tensor(alts[rows], device=self.device)
                out[rows] = self._batch_scores(np.full(rows.size, lo), window)
                start += rows.size
        return out


def _propagate_ranges(ops: list[Operation], lo: np.ndarray, hi: np.ndarray, length: int
                      ) -> tuple[np.ndarray, np.ndarray, int]:
    """Changed ranges ``[lo, hi)`` (one per mutated input range) through ``ops``; also the length."""
    for op in ops:
        if isinstance(op, WindowOp):
            lo, hi = op.changed_outputs(lo, hi, length)
            length = op.out_length(length)
        elif isinstance(op, ResidualOp):
            b_lo, b_hi, _ = _propagate_ranges(op.branch, lo, hi, length)
            lo, hi = np.minimum(lo, b_lo), np.maximum(hi, b_hi)
        elif isinstance(op, DenseOp):
            parts = [(lo, hi)]
            for unit in op.units:
                u_lo = np.min([p[0] for p in parts], axis=0)
                u_hi = np.max([p[1] for p in parts], axis=0)
                y_lo, y_hi, _ = _propagate_ranges(unit, u_lo, u_hi, length)
                parts.append((y_lo, y_hi))
            lo, hi = parts[-1]
    return lo, hi, length


def output_ranges(compiled: SlicedTower, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each input position, the range ``[lo, hi)`` of final (pre-readout) positions that a
    substitution there can change (a superset: computed from kernel, stride and padding).

    The readout is linear over final positions (a sum, or a linear projection of averaged bins), so
    two substitutions whose ranges do not overlap change ``sum(z)`` additively: after an edit at
    ``p``, the effect of a substitution at ``q`` is unchanged unless their ranges overlap. The
    editor uses this to rescore only the neighbourhood of each edit.
    """
    positions = np.asarray(positions, dtype=np.int64)
    lo, hi, _ = _propagate_ranges(compiled.ops, positions, positions + 1,
                                  int(compiled.tower.seq_len))
    return lo, hi


def fast_ism_scorer(model: nn.Module) -> SlicedTower | None:
    """The compiled tower of a PlanTT model, when the sliced path applies (else ``None``)."""
    tower = getattr(model, "tower", None)
    return compile_tower(tower) if tower is not None else None


def mutant_scores(model: nn.Module, codes: np.ndarray, positions: np.ndarray, alts: np.ndarray,
                  group_width: int = 24, batch_size: int = 256) -> tuple[float, np.ndarray]:
    """(``sum(z)`` of the reference, ``sum(z)`` of each single-base mutant) by the sliced path.

    Raises ``ValueError`` for a model the sliced path does not handle.
    """
    compiled = fast_ism_scorer(model)
    if compiled is None:
        raise ValueError("the sliced ISM path needs a PlanTT-CNN tower in eval mode")
    fast = FastIsm(compiled, codes)
    return fast.reference_score, fast.scores(positions, alts, group_width, batch_size)
