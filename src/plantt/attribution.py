"""DeepLift attributions of PlanTT (paper Section 4.6, Figure 5) and a check against the grammar.

DeepLift with the Rescale rule (captum's :class:`~captum.attr.DeepLift`) explains an output
difference ``F(x) - F(x')`` between an input and a reference input as a sum of per-base,
per-channel contributions. Two uses here:

1. **Per-sequence** (Figure 5): ``F = sum(z)``, the tower's expression estimate, with an all-zero
   soft one-hot as the reference (as in the paper). Averaging ``|attribution|`` per position
   over many sequences (the attributions of the 4 channels of a position are summed first: that
   sum is the position's contribution) shows where the model looks.
2. **Per pair**: the predicted difference ``f(a, b) = sum(z_a) - sum(z_b)`` attributed to ortholog
   ``a`` with ``b`` as its reference (``f(a, b) - f(b, b) = f(a, b)``) and to ortholog ``b`` with
   ``a`` as its reference (``f(a, b) - f(a, a) = f(a, b)``): both explain the whole prediction.
   Because the head is ``sum(z_a) - sum(z_b)``, both reduce to DeepLift of ``sum(z)`` of one
   sequence against the other (the fixed tower's term is a constant), which is how they are
   computed: one tower pass over ``[input; reference]``, as captum expects.

**Completeness**: the attributions of a sequence sum to the output difference. The deviation
(captum's convergence delta) is reported with every result; it is at the level of float rounding
for ReLU towers (tests check it).

The model is prepared on a deep copy (the caller's model is left alone): eval mode (batch norm is
then an affine map and dropout the identity); every activation gets its own non-inplace module
instance (DeepLift keeps per-module state and breaks on a module used twice); and max pooling
(kernel = stride, as in the towers) is rewritten as a tree of pairwise maxima,
``max(a, b) = (a + b) / 2 + (ReLU(a - b) + ReLU(b - a)) / 2`` (:class:`PairwiseMaxPool1d`: the
same function), because captum's own max-pooling rule does not sum to the output difference when
the reference is not constant. The Rescale rule covers ReLU-like activations; GELU/SiLU towers are
attributed by plain gradients there, so completeness does not hold for them (a warning says so).
"""

from __future__ import annotations

import argparse
import copy
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from plantt.dataset import EncodedWindows, read_fasta_codes, read_splits
from plantt.encoding import soft_one_hot
from plantt.grammar import Grammar
from plantt.io import InputError, PathLike, atomic_path, get_logger, write_tsv
from plantt.ism import (
    command_device,
    fold_test_rows,
    load_plantt,
    model_device_dtype,
    read_sequences,
)
from plantt.models import TwoTower
from plantt.progress import progress
from plantt.windows import DEFAULT_LAYOUT, WindowLayout

log = get_logger("attribution")

# Which grammar processes each assay measures (docs/grammar.md): 3'-RNA-seq measures abundance
# (transcription x stability), PRO-seq transcription.
ASSAY_PROCESSES: dict[str, tuple[str, ...]] = {
    "rnaseq3p": ("transcription", "stability"),
    "proseq": ("transcription",),
}


# ----------------------------------------------------------------------------------------------
# DeepLift on the tower score
# ----------------------------------------------------------------------------------------------
class TowerScore(nn.Module):
    """``x -> sum(tower(x))``: PlanTT's per-sequence expression estimate as a module."""

    def __init__(self, tower: nn.Module):
        super().__init__()
        self.tower = tower

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tower(x).sum(dim=-1)


class PairwiseMaxPool1d(nn.Module):
    """Max pooling with ``kernel == stride`` rewritten as a tree of pairwise maxima,
    ``max(a, b) = (a + b) / 2 + (ReLU(a - b) + ReLU(b - a)) / 2``: the same function, made of
    linear maps and ReLUs only, so DeepLift's Rescale rule applies and its attributions sum
    exactly to the output difference. (captum's own max-pooling rule does not: with a reference
    other than a constant, its attributions miss the output difference by a lot.) A partial last
    window (``ceil_mode``) is padded with copies of its last element, which leaves its maximum
    unchanged. Every ReLU is its own module instance, as DeepLift needs.
    """

    def __init__(self, kernel: int, ceil_mode: bool):
        super().__init__()
        self.kernel = kernel
        self.ceil_mode = ceil_mode
        levels = max(0, math.ceil(math.log2(kernel))) if kernel > 1 else 0
        self.relus = nn.ModuleList(nn.ModuleList([nn.ReLU(), nn.ReLU()]) for _ in range(levels))

    @classmethod
    def convertible(cls, pool: nn.Module) -> bool:
        if not isinstance(pool, nn.MaxPool1d):
            return False
        kernel, stride = (_single(pool.kernel_size), _single(pool.stride or pool.kernel_size))
        return (kernel == stride and _single(pool.padding) == 0 and _single(pool.dilation) == 1
                and not pool.return_indices)

    @classmethod
    def from_pool(cls, pool: nn.MaxPool1d) -> PairwiseMaxPool1d:
        return cls(_single(pool.kernel_size), bool(pool.ceil_mode))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, length = self.kernel, x.shape[-1]
        n_out = -(-length // k) if self.ceil_mode else length // k
        if n_out * k > length:
            x = torch.cat([x, x[..., -1:].expand(*x.shape[:-1], n_out * k - length)], dim=-1)
        x = x[..., :n_out * k].reshape(*x.shape[:-1], n_out, k)
        for relu_ab, relu_ba in self.relus:
            if x.shape[-1] % 2:
                x = torch.cat([x, x[..., -1:]], dim=-1)
            a, b = x[..., 0::2], x[..., 1::2]
            x = 0.5 * (a + b) + 0.5 * (relu_ab(a - b) + relu_ba(b - a))
        return x[..., 0]


def _single(value: int | tuple[int, ...]) -> int:
    return int(value[0]) if isinstance(value, tuple) else int(value)


def _prepare_modules(module: nn.Module) -> None:
    """Give every activation its own non-inplace instance; rewrite max pooling (see above)."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.ReLU | nn.ELU | nn.LeakyReLU):
            replacement = copy.deepcopy(child)
            replacement.inplace = False
            setattr(module, name, replacement)
        elif isinstance(child, nn.GELU | nn.SiLU | nn.Sigmoid | nn.Tanh):
            setattr(module, name, copy.deepcopy(child))
        elif PairwiseMaxPool1d.convertible(child):
            setattr(module, name, PairwiseMaxPool1d.from_pool(child))
        else:
            _prepare_modules(child)


def deeplift_module(model: TwoTower) -> TowerScore:
    """A deep copy of the tower, ready for DeepLift (eval mode, one activation instance per use,
    max pooling as pairwise maxima)."""
    tower = copy.deepcopy(model.tower).eval()
    _prepare_modules(tower)
    unsupported = sorted({type(m).__name__ for m in tower.modules()
                          if isinstance(m, nn.GELU | nn.SiLU | nn.MaxPool1d)})
    if unsupported:
        log.warning("DeepLift's Rescale rule does not cover %s: attributions will not sum "
                    "exactly to the output difference", ", ".join(unsupported))
    return TowerScore(tower).eval()


@dataclass
class Attributions:
    """DeepLift of ``sum(z)``: ``values`` (n, 4, L), the output difference each row explains
    (``output - reference_output``) and captum's completeness deviation per row."""

    values: np.ndarray
    output: np.ndarray
    reference_output: np.ndarray
    delta: np.ndarray

    @property
    def per_position(self) -> np.ndarray:
        """(n, L): the contribution of each position (its 4 channels summed)."""
        return self.values.sum(axis=1)

    @property
    def max_abs_delta(self) -> float:
        return float(np.max(np.abs(self.delta))) if self.delta.size else 0.0


def _deeplift(module: TowerScore, inputs: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
    from captum.attr import DeepLift

    explainer = DeepLift(module, multiply_by_inputs=True)
    with warnings.catch_warnings():
        # captum warns at every call that it sets hooks; nothing to act on.
        warnings.filterwarnings("ignore", message=".*[Ss]etting forward, backward hooks.*")
        attributions = explainer.attribute(inputs.requires_grad_(), baselines=baselines)
    return attributions.detach()


def deeplift_scores(model: TwoTower, codes: np.ndarray, reference_codes: np.ndarray | None = None,
                    batch_size: int = 64, show_progress: bool = False) -> Attributions:
    """DeepLift of ``sum(z)`` for each row of ``codes`` (n, L) against ``reference_codes`` (same
    shape: row i is row i's reference) or, when None, against an all-zero input.

    ``delta`` is captum's convergence delta, ``sum(attributions) - (output - reference output)``,
    computed here from the outputs this function needs anyway (captum's
    ``return_convergence_delta`` would run both forward passes again).
    """
    codes = np.atleast_2d(np.asarray(codes, dtype=np.uint8))
    if reference_codes is not None:
        reference_codes = np.atleast_2d(np.asarray(reference_codes, dtype=np.uint8))
        if reference_codes.shape != codes.shape:
            raise ValueError(f"reference codes of shape {reference_codes.shape} for codes of "
                             f"shape {codes.shape}")
    module = deeplift_module(model)
    device, dtype = model_device_dtype(model)
    n, length = codes.shape
    values = np.empty((n, 4, length), dtype=np.float32 if dtype != torch.float64 else np.float64)
    output, reference_output = np.empty(n), np.empty(n)
    starts = range(0, n, batch_size)
    for start in progress(starts, desc="DeepLift", unit="batch", log=log) if show_progress \
            else starts:
        stop = min(n, start + batch_size)
        x = soft_one_hot(torch.tensor(codes[start:stop], device=device), dtype=dtype)
        if reference_codes is None:
            base = torch.zeros_like(x)
        else:
            base = soft_one_hot(torch.tensor(reference_codes[start:stop], device=device),
                                dtype=dtype)
        attr = _deeplift(module, x, base)
        with torch.inference_mode():
            out = module(torch.cat([x.detach(), base])).double().cpu().numpy()
        values[start:stop] = attr.cpu().numpy()
        output[start:stop] = out[:stop - start]
        reference_output[start:stop] = out[stop - start:]
    delta = values.sum(axis=(1, 2), dtype=np.float64) - (output - reference_output)
    return Attributions(values, output, reference_output, delta)


@dataclass
class PairAttributions:
    """Attributions of ``f(a, b)`` to ``a`` (reference ``b``) and to ``b`` (reference ``a``)."""

    a: np.ndarray
    b: np.ndarray
    prediction: np.ndarray
    delta_a: np.ndarray
    delta_b: np.ndarray

    @property
    def max_abs_delta(self) -> float:
        deltas = np.concatenate([self.delta_a, self.delta_b])
        return float(np.max(np.abs(deltas))) if deltas.size else 0.0


def pair_attributions(model: TwoTower, codes_a: np.ndarray, codes_b: np.ndarray,
                      batch_size: int = 64) -> PairAttributions:
    """Attribute each pair's prediction ``f(a, b)`` to both orthologs, each against the other.

    ``a``: DeepLift of ``sum(z)`` at ``a`` with reference ``b`` (sums to ``f(a, b)``); ``b``: minus
    DeepLift of ``sum(z)`` at ``b`` with reference ``a`` (sums to ``-(sum(z_b) - sum(z_a))``, the
    same ``f(a, b)``). The Rescale rule's multipliers are symmetric in input and reference, so the
    two arrays come out equal: at a position where the orthologs differ, the channel of ``a``'s
    base and the channel of ``b``'s base both carry a share (``(x_a - x_b) * multiplier``), and
    positions where they agree carry nothing. Both are returned so either side can be read on its
    own terms.
    """
    codes_a = np.atleast_2d(np.asarray(codes_a, dtype=np.uint8))
    codes_b = np.atleast_2d(np.asarray(codes_b, dtype=np.uint8))
    if codes_a.shape != codes_b.shape:
        raise ValueError("codes_a and codes_b must have the same shape")
    n = codes_a.shape[0]
    both = deeplift_scores(model, np.concatenate([codes_a, codes_b]),
                           np.concatenate([codes_b, codes_a]), batch_size)
    prediction = both.output[:n] - both.reference_output[:n]
    return PairAttributions(both.values[:n], -both.values[n:], prediction,
                            both.delta[:n], -both.delta[n:])


def position_profile(per_position: np.ndarray) -> np.ndarray:
    """Mean over sequences of ``|contribution|`` per position: (n, L) -> (L,)."""
    return np.abs(np.asarray(per_position, dtype=np.float64)).mean(axis=0)


# ----------------------------------------------------------------------------------------------
# Cross-validation folds: test genes of every fold, each attributed by its fold's model
# ----------------------------------------------------------------------------------------------
@dataclass
class CvAttribution:
    """DeepLift over the test genes of every fold.

    ``profile``: ``position``, ``mean_abs_attribution`` (over all genes) and ``fold_<k>`` (over the
    genes of fold k); ``summary``: per fold the genes attributed, their mean score and the largest
    completeness deviation; ``genes``: ``fold, species, gene_id, row`` (row of the encoded
    windows) of each attributed gene; ``contribution``: (genes, L) float32 signed contribution of
    each position (its 4 channels summed), in the order of ``genes``.
    """

    profile: pd.DataFrame
    summary: pd.DataFrame
    genes: pd.DataFrame
    contribution: np.ndarray

    def save_genes(self, path: PathLike, codes: np.ndarray | None = None) -> None:
        """``.npz`` with ``fold``, ``species``, ``gene_id``, ``row``, ``contribution`` and, when
        given, the genes' window ``codes``."""
        arrays = {"fold": self.genes["fold"].to_numpy(), "species": self.genes["species"]
                  .to_numpy(dtype=str), "gene_id": self.genes["gene_id"].to_numpy(dtype=str),
                  "row": self.genes["row"].to_numpy(), "contribution": self.contribution}
        if codes is not None:
            arrays["codes"] = np.asarray(codes, dtype=np.uint8)
        save_attributions_npz(path, arrays)


def cv_attribution_profile(model_dirs: Mapping[int, PathLike], codes_npy: PathLike,
                           genes_tsv: PathLike, splits_tsv: PathLike,
                           max_genes_per_fold: int | None = None, seed: int = 0,
                           batch_size: int = 64) -> CvAttribution:
    """DeepLift (zero reference) of the test genes of every fold, each gene attributed by the model
    of the fold that held it out, and their mean ``|contribution|`` profile (paper Figure 5)."""
    windows = EncodedWindows.load(codes_npy, genes_tsv, mmap=True)
    splits = read_splits(splits_tsv)
    length = windows.codes.shape[1]
    columns: dict[str, np.ndarray] = {}
    summary, gene_tables, contributions = [], [], []
    for fold in progress(sorted(model_dirs), desc="DeepLift", unit="fold", log=log):
        genes, rows = fold_test_rows(windows, splits, fold, max_genes_per_fold, seed, genes_tsv)
        model = load_plantt(model_dirs[fold])
        result = deeplift_scores(model, np.asarray(windows.codes[rows]), batch_size=batch_size)
        contribution = result.per_position.astype(np.float32)
        columns[f"fold_{fold}"] = np.abs(contribution, dtype=np.float64).mean(axis=0) \
            if len(rows) else np.zeros(length)
        contributions.append(contribution)
        gene_tables.append(genes.assign(fold=fold, row=rows)[["fold", "species", "gene_id",
                                                              "row"]])
        summary.append({"fold": fold, "n_genes": len(rows),
                        "mean_score": float(result.output.mean()) if len(rows) else np.nan,
                        "max_abs_delta": result.max_abs_delta,
                        "max_abs_output": float(np.abs(result.output - result.reference_output)
                                                .max()) if len(rows) else np.nan})
        log.info("fold %d: %d test genes attributed; completeness deviation <= %.3g", fold,
                 len(rows), result.max_abs_delta)
    contribution = np.concatenate(contributions) if contributions else \
        np.zeros((0, length), dtype=np.float32)
    mean = np.abs(contribution, dtype=np.float64).mean(axis=0) if len(contribution) else \
        np.zeros(length)
    profile = pd.DataFrame({"position": np.arange(length), "mean_abs_attribution": mean,
                            **columns})
    genes_table = pd.concat(gene_tables, ignore_index=True) if gene_tables else \
        pd.DataFrame(columns=["fold", "species", "gene_id", "row"])
    return CvAttribution(profile, pd.DataFrame(summary), genes_table, contribution)


def plot_attribution_profile(profile: pd.DataFrame, target: PathLike,
                             layout: WindowLayout = DEFAULT_LAYOUT, title: str = "",
                             regions: Sequence[tuple[str, int, int]] = ()) -> None:
    """Mean |attribution| over window positions, TSS and TTS marked (paper Figure 5).

    ``regions`` (name, start, end) are shaded, e.g. the grammar's motif regions in the demo.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plantt.plots import save_figure

    fig, ax = plt.subplots(figsize=(11, 3.2))
    for _, start, end in regions:
        ax.axvspan(start, end, color="tab:orange", alpha=0.12, lw=0)
    ax.plot(profile["position"], profile["mean_abs_attribution"], lw=0.7, color="tab:blue")
    for index, label in ((layout.tss_index, "TSS"), (layout.tts_index, "TTS")):
        ax.axvline(index, color="black", lw=0.8, ls="--")
        ax.text(index, 1.0, label, transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=8)
    ax.set_xlim(0, len(profile) - 1)
    ax.set_xlabel("window position (bp)")
    ax.set_ylabel("mean |attribution|")
    ax.set_title(title, pad=14)
    save_figure(fig, target)


# ----------------------------------------------------------------------------------------------
# Ground truth check (simulated demo)
# ----------------------------------------------------------------------------------------------
def grammar_window_regions(grammar: Grammar | PathLike | None = None,
                           processes: Sequence[str] | None = None,
                           layout: WindowLayout = DEFAULT_LAYOUT) -> list[tuple[str, int, int]]:
    """The grammar's motif regions as half-open window index ranges ``(name, start, end)``.

    ``tss`` offsets map to ``layout.tss_index + offset`` (offset 0 = first transcribed base =
    index 1000), ``tts`` offsets to ``layout.tts_index + 1 + offset`` (offset -1 = the last
    annotated base = index 1999). ``grammar``: a :class:`plantt.grammar.Grammar`, a YAML path or
    None (the packaged default); ``processes`` restricts to e.g. ``("transcription",)``.
    """
    from plantt.grammar import load_grammar

    parsed = grammar if isinstance(grammar, Grammar) else load_grammar(grammar)
    regions = []
    for process in parsed.processes:
        if processes is not None and process.name not in processes:
            continue
        for motif in process.motifs:
            origin = layout.tss_index if motif.anchor == "tss" else layout.tts_index + 1
            start = max(0, origin + motif.start)
            end = min(layout.length, origin + motif.end)
            if end > start:
                regions.append((motif.name, start, end))
    return regions


def _motif_occurrences(codes: np.ndarray, motif_codes: np.ndarray, start: int,
                       end: int) -> tuple[np.ndarray, np.ndarray]:
    """The occurrences of one motif that count, in (n, L) window ``codes``: an (n, L) bool mask of
    the bases they cover and the (n,) number of occurrences per row (overlapping matches count
    separately, as in the simulator). Only matches lying entirely inside ``[start, end)``."""
    mask = np.zeros(codes.shape, dtype=bool)
    k = motif_codes.size
    if end - start < k:
        return mask, np.zeros(codes.shape[0], dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(codes[:, start:end], k, axis=1)
    hits = np.all(windows == motif_codes, axis=2)  # (n, end - start - k + 1)
    for offset in range(k):
        mask[:, start + offset:end - k + 1 + offset] |= hits
    return mask, hits.sum(axis=1)


def motif_occurrence_mask(codes: np.ndarray, grammar: Grammar | PathLike | None = None,
                          processes: Sequence[str] | None = None,
                          layout: WindowLayout = DEFAULT_LAYOUT) -> np.ndarray:
    """(n, L) bool: window bases covered by an occurrence of a grammar motif that counts.

    An occurrence counts as the simulator counts it (docs/grammar.md): an exact match of the
    motif in transcript orientation (the window's) lying entirely inside the motif's region
    (:func:`grammar_window_regions`). ``codes``: (n, L) or (L,) window codes.
    """
    from plantt.grammar import load_grammar

    parsed = grammar if isinstance(grammar, Grammar) else load_grammar(grammar)
    codes = np.atleast_2d(np.asarray(codes, dtype=np.uint8))
    mask = np.zeros(codes.shape, dtype=bool)
    regions = {name: (start, end) for name, start, end in
               grammar_window_regions(parsed, processes, layout)}
    for motif in parsed.motifs:
        if motif.name in regions:
            mask |= _motif_occurrences(codes, motif.codes, *regions[motif.name])[0]
    return mask


#: Columns of :func:`motif_attribution_table` (and of the header-only table written without a
#: grammar, i.e. outside the demo).
MOTIF_ATTRIBUTION_COLUMNS = [
    "motif", "process", "sequence", "anchor", "effect_log2", "region_start", "region_end",
    "n_genes", "n_genes_with_occurrence", "n_occurrences", "n_positions", "mean_abs_at_motif",
    "mean_abs_elsewhere", "ratio", "top_fraction_inside", "top_fraction_chance",
]
#: The ``motif`` (and ``process``) of the row that pools every motif of the table.
ALL_MOTIFS = "all"


def motif_attribution_table(contribution: np.ndarray, codes: np.ndarray,
                            grammar: Grammar | PathLike | None = None,
                            processes: Sequence[str] | None = None,
                            layout: WindowLayout = DEFAULT_LAYOUT) -> pd.DataFrame:
    """Per grammar motif, how much more |contribution| its occurrences get than the background.

    The region-level profile check (:func:`attribution_peak_enrichment` on
    :func:`grammar_window_regions`) dilutes a motif over its whole region, and the pooled
    occurrence check lets a strong motif hide a missed one; this asks, motif by motif, whether the
    model attends to the bases the simulator actually counted.

    ``contribution``: (n, L) per-position contributions (channels summed, signed or not: the
    absolute value is used), e.g. :attr:`CvAttribution.contribution`; ``codes``: the (n, L) windows
    of the same genes, in the same order. ``processes`` picks the motifs (e.g.
    ``ASSAY_PROCESSES[assay]``; None: every motif). Occurrences count as in
    :func:`motif_occurrence_mask` (exact matches lying entirely inside the motif's region, window
    coordinates).

    One row per motif of the chosen processes whose region lies in the window, in grammar order,
    then a row ``motif == process == "all"`` pooling them (the union of their occurrences):

    * ``mean_abs_at_motif``: mean |contribution| over the bases covered by the motif's occurrences
      (pooled over genes; a base covered twice counts once);
    * ``mean_abs_elsewhere``: mean |contribution| over every base covered by no occurrence of any
      motif of the table: the same background for every row, so one motif's occurrences never
      raise another's baseline;
    * ``ratio``: at / elsewhere (NaN, and ``n_occurrences`` 0, when the motif never occurs);
    * ``top_fraction_inside``: share of the ``n_positions`` highest-|contribution| bases, among the
      motif's bases and the background, that are the motif's; ``top_fraction_chance`` is that share
      by chance (``n_positions`` over the bases ranked).

    The bases the windows mask at the TSS and TTS (``layout.masked_indices()``; N for every gene,
    whatever the model does there) are left out of both sides.
    """
    from plantt.grammar import load_grammar

    parsed = grammar if isinstance(grammar, Grammar) else load_grammar(grammar)
    values = np.abs(np.atleast_2d(np.asarray(contribution, dtype=np.float64)))
    codes = np.atleast_2d(np.asarray(codes, dtype=np.uint8))
    if values.shape != codes.shape:
        raise ValueError(f"contribution of shape {values.shape} for codes of shape {codes.shape}")
    if codes.shape[1] != layout.length:
        raise ValueError(f"windows of {codes.shape[1]} bases for a layout of {layout.length}")
    regions = {name: (start, end) for name, start, end in
               grammar_window_regions(parsed, processes, layout)}
    used = np.ones(codes.shape, dtype=bool)
    used[:, layout.masked_indices()] = False
    process_of = {m.name: p.name for p in parsed.processes for m in p.motifs}
    motifs = [m for m in parsed.motifs if m.name in regions]
    occurrences = {m.name: _motif_occurrences(codes, m.codes, *regions[m.name]) for m in motifs}
    covered = np.zeros(codes.shape, dtype=bool)
    for mask, _ in occurrences.values():
        covered |= mask
    background = used & ~covered
    elsewhere = float(values[background].mean()) if background.any() else np.nan

    def row(inside: np.ndarray, counts: np.ndarray) -> dict[str, float | int]:
        inside = inside & used
        k = int(inside.sum())
        at = float(values[inside].mean()) if k else np.nan
        ranked = inside | background
        top = chance = np.nan
        if k:
            ranked_values = values[ranked]
            order = np.argsort(-ranked_values, kind="stable")[:k]
            top = float(inside[ranked][order].mean())
            chance = k / int(ranked.sum())
        return {"n_genes": len(codes), "n_genes_with_occurrence": int((counts > 0).sum()),
                "n_occurrences": int(counts.sum()), "n_positions": k,
                "mean_abs_at_motif": at, "mean_abs_elsewhere": elsewhere,
                "ratio": at / elsewhere if k and elsewhere > 0 else np.nan,
                "top_fraction_inside": top, "top_fraction_chance": chance}

    rows = []
    for motif in motifs:
        mask, counts = occurrences[motif.name]
        start, end = regions[motif.name]
        rows.append({"motif": motif.name, "process": process_of[motif.name],
                     "sequence": motif.sequence, "anchor": motif.anchor,
                     "effect_log2": motif.effect_log2, "region_start": start,
                     "region_end": end, **row(mask, counts)})
    total = sum((c for _, c in occurrences.values()), np.zeros(len(codes), dtype=np.int64))
    rows.append({"motif": ALL_MOTIFS, "process": ALL_MOTIFS, **row(covered, total)})
    table = pd.DataFrame(rows).reindex(columns=MOTIF_ATTRIBUTION_COLUMNS)
    return table.astype({"region_start": "Int64", "region_end": "Int64"})


def plot_motif_attribution(table: pd.DataFrame, target: PathLike, title: str = "") -> None:
    """Bars: ``ratio`` per motif of :func:`motif_attribution_table` (the pooled row last, grey),
    on a log scale (a ratio of 1/3 is as far from 1 as 3); dashed lines at 1 (no enrichment) and
    3 (what a model that learned the motifs should exceed). Motifs without an occurrence are
    marked instead of drawn. An empty table (no grammar: not the demo) gives a figure saying so,
    so that the report always has the file."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plantt.plots import save_figure

    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(table) + 2.0), 3.4))
    if table.empty:
        ax.text(0.5, 0.5, "no grammar (not the simulated demo): no motif to check",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title(title)
        save_figure(fig, target)
        return
    colors = {"transcription": "tab:blue", "stability": "tab:green", ALL_MOTIFS: "0.5"}
    ratios = table["ratio"].to_numpy(dtype=np.float64)
    finite = ratios[np.isfinite(ratios) & (ratios > 0)]
    low = min(0.5, float(finite.min()) / 1.5) if finite.size else 0.5
    high = max(5.0, float(finite.max()) * 1.5) if finite.size else 5.0
    high *= 1.6  # room for the occurrence counts above the bars
    x = np.arange(len(table))
    rows = zip(ratios, table["process"], table["n_occurrences"], strict=True)
    for i, (ratio, process, n_occurrences) in enumerate(rows):
        if np.isfinite(ratio) and ratio > 0:
            ax.bar(i, ratio - low, bottom=low, color=colors.get(process, "tab:purple"), width=0.7)
            ax.text(i, ratio * 1.08, f"n={int(n_occurrences)}", ha="center", va="bottom",
                    fontsize=6, color="0.3")
        else:
            ax.text(i, low * 1.15, "no occurrence", rotation=90, ha="center", va="bottom",
                    fontsize=7, color="0.3")
    for level in (1.0, 3.0):
        ax.axhline(level, color="black", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_ylim(low, high)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks(sorted({1.0, 3.0} | {t for t in (0.1, 0.3, 10.0, 30.0, 100.0, 300.0)
                                        if low <= t <= high}))
    ax.set_xlim(-0.6, len(table) - 0.4)
    ax.set_xticks(x, table["motif"], rotation=45, ha="right")
    ax.set_ylabel("mean |DeepLift| at motif / elsewhere")
    handles = [plt.Rectangle((0, 0), 1, 1, color=color) for name, color in colors.items()
               if name in set(table["process"])]
    labels = [name for name in colors if name in set(table["process"])]
    ax.legend(handles, labels, fontsize=7, frameon=False, loc="upper left",
              bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title)
    save_figure(fig, target)


def attribution_peak_enrichment(profile: np.ndarray | pd.DataFrame,
                                truth_regions: Sequence[tuple[str, int, int]] |
                                Sequence[tuple[int, int]] | np.ndarray,
                                exclude: np.ndarray | None = None) -> dict[str, float]:
    """How much more attribution falls on the truth than elsewhere.

    Two uses:

    * ``profile`` (L,): a mean |attribution| profile (or the profile table of
      :func:`cv_attribution_profile`), ``truth_regions``: half-open window ranges ``(start, end)``
      or ``(name, start, end)``, e.g. :func:`grammar_window_regions`;
    * ``profile`` (n, L): per-gene |contribution|, ``truth_regions``: an (n, L) bool mask, e.g.
      :func:`motif_occurrence_mask` (the positions of each gene's actual motif occurrences).

    ``exclude``: window positions left out of both sides (e.g. ``layout.masked_indices()``).
    Returns ``inside_mean``, ``outside_mean``, ``ratio`` (inside / outside; > 1: the attribution
    peaks on the truth), ``inside_fraction`` (share of the positions that are inside, i.e. what
    ``top_fraction_inside`` is by chance) and ``top_fraction_inside`` (share of the ``k``
    highest-valued positions that are inside, ``k`` = the number of inside positions).
    """
    values = np.asarray(profile["mean_abs_attribution"] if isinstance(profile, pd.DataFrame)
                        else profile, dtype=np.float64)
    if isinstance(truth_regions, np.ndarray) and truth_regions.dtype == bool:
        if truth_regions.shape != values.shape:
            raise ValueError(f"truth mask of shape {truth_regions.shape} for values of shape "
                             f"{values.shape}")
        inside = truth_regions.copy()
    else:
        inside = np.zeros(values.shape, dtype=bool)
        for region in truth_regions:
            start, end = int(region[-2]), int(region[-1])
            inside[..., max(0, start):min(values.shape[-1], end)] = True
    used = np.ones(values.shape, dtype=bool)
    if exclude is not None:
        used[..., np.asarray(exclude, dtype=np.int64)] = False
    inside_used, outside_used = inside & used, ~inside & used
    if not inside_used.any() or not outside_used.any():
        raise ValueError("the truth must cover some but not all of the used positions")
    inside_mean = float(values[inside_used].mean())
    outside_mean = float(values[outside_used].mean())
    k = int(inside_used.sum())
    flat_values = np.where(used, values, -np.inf).ravel()
    order = np.argsort(-flat_values, kind="stable")[:k]
    return {
        "inside_mean": inside_mean,
        "outside_mean": outside_mean,
        "ratio": inside_mean / outside_mean if outside_mean > 0 else float("inf"),
        "inside_fraction": k / int(used.sum()),
        "top_fraction_inside": float(inside.ravel()[order].mean()),
    }


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def save_attributions_npz(path: PathLike, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def run(args: argparse.Namespace) -> int:
    model = load_plantt(args.model, command_device(args))
    genes, codes = read_sequences(args.fasta, model.seq_len)
    if args.reference:
        ref_genes, ref_codes = read_fasta_codes(args.reference)
        if len(ref_genes) != len(genes) or ref_codes.shape != codes.shape:
            raise InputError(args.reference, f"expected {len(genes)} records of {model.seq_len} "
                                             "bases, paired by order with --fasta")
        pairs = pair_attributions(model, codes, ref_codes, args.batch_size)
        arrays = {"genes": np.array(genes, dtype=str), "reference_genes":
                  np.array(ref_genes, dtype=str), "attribution_a": pairs.a,
                  "attribution_b": pairs.b, "prediction": pairs.prediction,
                  "delta_a": pairs.delta_a, "delta_b": pairs.delta_b}
        per_position, deviation = pairs.a.sum(axis=1), pairs.max_abs_delta
    else:
        result = deeplift_scores(model, codes, batch_size=args.batch_size, show_progress=True)
        arrays = {"genes": np.array(genes, dtype=str), "attribution": result.values,
                  "score": result.output, "delta": result.delta}
        per_position, deviation = result.per_position, result.max_abs_delta
    save_attributions_npz(args.out, arrays)
    log.info("%d sequence(s) attributed; completeness deviation <= %.3g", len(genes), deviation)
    if args.profile:
        profile = pd.DataFrame({"position": np.arange(codes.shape[1]),
                                "mean_abs_attribution": position_profile(per_position)})
        write_tsv(profile, args.profile, float_format="%.6g")
    return 0
