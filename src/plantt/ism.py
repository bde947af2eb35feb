"""In-silico mutagenesis (ISM) of PlanTT's per-sequence expression estimate (paper Section 4.7).

PlanTT's head is ``f(a, b) = sum(z_a) - sum(z_b)``, so the predicted effect of a mutant ``m`` of a
sequence ``s`` is ``f(m, s) = sum(z_m) - sum(z_s)``: one tower pass per mutant, with the
reference embedding computed once. The paper reports it as a percent change (its Equation 3)::

    percent_change = 100 * (sum(z_m) - sum(z_s)) / |sum(z_s)|

with ``|sum(z_s)|`` replaced by ``1e-4`` when it is exactly zero (the sum may be negative, hence
the absolute value).

Every single-base substitution is scored: 3 per position. Positions holding N (the masked bases at
the TSS and TTS, gaps, bases past a contig end) are skipped by default, because the model never saw
a base at the masked positions and an "edit" of an unknown base has no biological meaning; with
``include_n`` all 4 bases are scored there. Results are ``(L, 4)`` arrays in base order A, C, G, T:
the reference base holds 0, skipped positions NaN.

Single-sequence models (``plantt fit``) are scored the same way: their prediction is the tower's
``sum(z)``, so ``effect`` is the change of the predicted expression and ``percent_change`` is
relative to the prediction for the reference. A seed ensemble (a directory with ``ensemble.json``)
is scored by the mean of its members' scores. Models trained by ``plantt fit`` state how sequences
of another length are padded or trimmed (:class:`plantt.tables.LengthPolicy`); their sequences have
no TSS or TTS, so the figures then mark none and the zoom shows the bases around the strongest
substitution. The published PlanTT-CNN imported by ``plantt import-weights`` (layout
``promoter1500_terminator1500`` in its model.json) has no TSS or TTS either: its figures mark the
promoter/terminator junction (index 1500) and ``--flank`` counts from it
(:class:`plantt.legacy.LegacyLayout`).

Speed: the core is :func:`mutant_embedding_sums` (``sum(z)`` of a batch of code arrays, one tower
pass). It is deliberately the only place that runs the tower, so it can later be replaced by a
version that recomputes only the receptive field of the mutated base. Mutants are built on the
fly from uint8 codes, ``batch_size`` at a time.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from plantt import fastism
from plantt.dataset import EncodedWindows, read_fasta_codes
from plantt.encoding import N_CODE, decode, soft_one_hot
from plantt.io import InputError, PathLike, atomic_path, get_logger, write_tsv
from plantt.legacy import LEGACY_LAYOUTS
from plantt.models import SingleSequenceModel, TwoTower, load_model
from plantt.progress import progress
from plantt.tables import LengthPolicy, encode_fixed, read_fasta_records
from plantt.windows import DEFAULT_LAYOUT, Anchor, SequenceLayout, WindowLayout

log = get_logger("ism")

ZERO_SCORE_EPS = 1e-4
BASES = "ACGT"
ISM_COLUMNS = ["gene", "position", "ref", "alt", "effect", "percent_change"]

# Models with a per-sequence score sum(z): PlanTT two-tower and single-sequence models.
ScoredModel = TwoTower | SingleSequenceModel


# ----------------------------------------------------------------------------------------------
# Models and sequences
# ----------------------------------------------------------------------------------------------
def require_plantt(model: nn.Module, source: PathLike | None = None) -> TwoTower:
    """The model as a :class:`TwoTower`; interpretation needs the per-sequence score ``sum(z)``."""
    if not isinstance(model, TwoTower):
        raise InputError(source, f"a PlanTT two-tower model is needed (sum(z) per sequence); "
                                 f"this is a {getattr(model, 'kind', type(model).__name__)} model")
    return model


def load_plantt(directory: PathLike, device: str | torch.device = "cpu") -> TwoTower:
    """Load a saved PlanTT model (eval mode) and check that it is one."""
    return require_plantt(load_model(directory, device), directory)


def require_scorer(model: nn.Module, source: PathLike | None = None) -> ScoredModel:
    """The model, when it scores single sequences (two-tower or single-sequence, or an ensemble
    of either); ISM and editing need that score."""
    if not isinstance(model, TwoTower | SingleSequenceModel):
        raise InputError(source, f"a PlanTT two-tower or a single-sequence model is needed "
                                 f"(a score per sequence); this is a "
                                 f"{getattr(model, 'kind', type(model).__name__)} model")
    return model


def load_scorer(directory: PathLike, device: str | torch.device = "cpu") -> ScoredModel:
    """Load a model or seed ensemble that scores single sequences (eval mode)."""
    return require_scorer(load_model(directory, device), directory)


def model_length_policy(model: nn.Module) -> LengthPolicy | None:
    """The length policy of a model trained by ``plantt fit`` (None: exact length only)."""
    info = getattr(model, "info", None)
    return LengthPolicy.from_model_info(info) if info else None


def model_layout(model: nn.Module) -> SequenceLayout | None:
    """The layout a model's ``model.json`` names when it is not the windows' (TSS/TTS) layout:
    the published PlanTT-CNN's promoter + terminator input; None otherwise."""
    info = getattr(model, "info", None) or {}
    return LEGACY_LAYOUTS.get(str(info.get("layout")))


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    param = next(model.parameters())
    return param.device, param.dtype


def read_sequences(path: PathLike, seq_len: int, genes: Sequence[str] | None = None,
                   policy: LengthPolicy | None = None) -> tuple[list[str], np.ndarray]:
    """Records of a FASTA as (ids, codes); every record must have the model's length, unless a
    length ``policy`` (of a ``plantt fit`` model) pads or trims them to it.

    ``genes`` picks records by id, in that order (an unknown id is an error).
    """
    if policy is not None:
        records = read_fasta_records(path)
        ids = [r.name for r in records]
        codes = encode_fixed([r.sequence for r in records], policy, path,
                             [r.line for r in records], ids)
    else:
        ids, codes = read_fasta_codes(path)
    if not ids:
        raise InputError(path, "no FASTA records found")
    if codes.shape[1] != seq_len:
        raise InputError(path, f"sequences have {codes.shape[1]} bases; the model expects "
                               f"exactly {seq_len}", record=ids[0])
    if genes:
        index = {gene: i for i, gene in enumerate(ids)}
        unknown = [g for g in genes if g not in index]
        if unknown:
            raise InputError(path, f"{len(unknown)} requested id(s) not in the FASTA: "
                                   f"{', '.join(unknown[:10])}", record=unknown[0])
        rows = [index[g] for g in genes]
        return list(genes), codes[rows]
    return ids, codes


# ----------------------------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------------------------
def mutant_embedding_sums(model: ScoredModel, codes: torch.Tensor) -> torch.Tensor:
    """``sum(z)`` (summed in float64) of each row of a ``(B, L)`` uint8 code tensor: one tower
    pass, eval mode: the full-pass path of ISM, editing and variant effects (towers that
    :mod:`plantt.fastism` can slice take the sliced path in :func:`ism_scores`).
    """
    device, dtype = model_device_dtype(model)
    with torch.inference_mode():
        return model.tower(soft_one_hot(codes.to(device), dtype=dtype)).double().sum(dim=-1)


def sequence_scores(model: ScoredModel, codes: np.ndarray, batch_size: int = 256
                    ) -> np.ndarray:
    """``sum(z)`` (float64) of each row of an ``(n, L)`` code array, ``batch_size`` at a time."""
    codes = np.asarray(codes, dtype=np.uint8)
    if codes.ndim == 1:
        codes = codes[None, :]
    _check_eval(model)
    out = np.empty(codes.shape[0], dtype=np.float64)
    for start in range(0, codes.shape[0], batch_size):
        chunk = torch.tensor(codes[start:start + batch_size])  # a copy: memmaps are read-only
        sums = mutant_embedding_sums(model, chunk)
        out[start:start + chunk.shape[0]] = sums.double().cpu().numpy()
    return out


def _check_eval(model: nn.Module) -> None:
    if model.training:
        raise ValueError("put the model in eval mode first (model.eval()): in training mode batch "
                         "normalisation and dropout make a sequence's score depend on its batch")


def percent_change(effect: np.ndarray | float, reference_score: np.ndarray | float
                   ) -> np.ndarray:
    """``100 * effect / |reference score|``, with a zero reference replaced by 1e-4 (Equation 3)."""
    ref = np.abs(np.asarray(reference_score, dtype=np.float64))
    denominator = np.where(ref == 0, ZERO_SCORE_EPS, ref)
    return 100.0 * np.asarray(effect, dtype=np.float64) / denominator


def substitutions(codes: np.ndarray, positions: np.ndarray | None = None,
                  include_n: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every single-base substitution of a sequence as ``(position, alt code)`` arrays.

    Position-major, then alt in A, C, G, T order. ``positions`` restricts the positions scored;
    N positions give all 4 bases with ``include_n`` and nothing otherwise.
    """
    codes = np.asarray(codes, dtype=np.uint8)
    pos = np.arange(codes.size) if positions is None else np.unique(np.asarray(positions))
    if pos.size and (pos.min() < 0 or pos.max() >= codes.size):
        raise ValueError(f"positions must lie in [0, {codes.size})")
    ref = codes[pos]
    if not include_n:
        pos, ref = pos[ref != N_CODE], ref[ref != N_CODE]
    alts = np.arange(4, dtype=np.uint8)
    keep = ref[:, None] != alts[None, :]
    return np.broadcast_to(pos[:, None], keep.shape)[keep].astype(np.int64), \
        np.broadcast_to(alts[None, :], keep.shape)[keep].astype(np.uint8)


def mutant_batch(codes: np.ndarray, positions: np.ndarray, alts: np.ndarray) -> torch.Tensor:
    """``(len(positions), L)`` codes: the sequence with one substitution per row."""
    base = torch.tensor(np.asarray(codes, dtype=np.uint8))
    batch = base.unsqueeze(0).repeat(len(positions), 1)
    rows = torch.arange(len(positions))
    batch[rows, torch.tensor(positions, dtype=torch.long)] = torch.tensor(alts, dtype=torch.uint8)
    return batch


@dataclass
class IsmResult:
    """ISM of one sequence: ``effect[i, b] = sum(z)`` of the sequence with base ``b`` at ``i``
    minus ``sum(z)`` of the sequence (0 at the reference base, NaN where not scored)."""

    codes: np.ndarray
    reference_score: float
    effect: np.ndarray

    @property
    def percent_change(self) -> np.ndarray:
        return percent_change(self.effect, self.reference_score)

    def strongest_per_position(self) -> np.ndarray:
        """The signed effect of the largest-magnitude edit at each position (NaN if unscored)."""
        magnitude = np.where(np.isnan(self.effect), -1.0, np.abs(self.effect))
        best = magnitude.argmax(axis=1)
        values = self.effect[np.arange(self.effect.shape[0]), best]
        return np.where(np.isnan(self.effect).all(axis=1), np.nan, values)

    def to_frame(self, gene: str) -> pd.DataFrame:
        """Long table of the scored substitutions (the reference base left out)."""
        ref = self.codes.astype(np.int64)
        pos, alt = np.nonzero(~np.isnan(self.effect))
        keep = ref[pos] != alt
        pos, alt = pos[keep], alt[keep]
        effect = self.effect[pos, alt]
        return pd.DataFrame({
            "gene": gene, "position": pos,
            "ref": np.array(list("ACGTN"))[ref[pos]], "alt": np.array(list(BASES))[alt],
            "effect": effect, "percent_change": percent_change(effect, self.reference_score),
        }, columns=ISM_COLUMNS)


def ism_scores(model: ScoredModel, codes: np.ndarray, batch_size: int = 256,
               positions: np.ndarray | None = None, include_n: bool = False,
               sliced: bool = True) -> IsmResult:
    """Predicted effect ``f(mutant, reference)`` of every single-base substitution of ``codes``.

    ``positions`` restricts the scored positions (others stay NaN); see the module docstring for N.
    PlanTT-CNN and legacy towers are scored by :mod:`plantt.fastism` (only the receptive field of each
    mutated base is recomputed; same results up to float rounding); ``sliced=False`` forces one
    full tower pass per mutant (:func:`mutant_embedding_sums`), the path used for other towers.
    """
    _check_eval(model)
    codes = np.asarray(codes, dtype=np.uint8)
    if codes.ndim != 1:
        raise ValueError("ism_scores takes one sequence (a 1-d code array)")
    reference = float(sequence_scores(model, codes)[0])
    pos, alt = substitutions(codes, positions, include_n)
    effect = np.full((codes.size, 4), np.nan)
    scored = np.unique(pos)
    base_at = codes[scored]
    is_base = base_at != N_CODE
    effect[scored[is_base], base_at[is_base]] = 0.0
    compiled = fastism.fast_ism_scorer(model) if sliced else None
    if compiled is not None:
        fast = fastism.FastIsm(compiled, codes)
        # relative to the sliced path's own reference pass, so that rounding cancels
        effect[pos, alt] = fast.scores(pos, alt, batch_size=batch_size) - fast.reference_score
        return IsmResult(codes.copy(), reference, effect)
    for start in range(0, pos.size, batch_size):
        p, a = pos[start:start + batch_size], alt[start:start + batch_size]
        sums = mutant_embedding_sums(model, mutant_batch(codes, p, a)).double().cpu().numpy()
        effect[p, a] = sums - reference
    return IsmResult(codes.copy(), reference, effect)


def flank_positions(flank: int | None, seq_len: int, layout: SequenceLayout = DEFAULT_LAYOUT
                    ) -> np.ndarray | None:
    """Positions within ``flank`` bp of the layout's anchors (the TSS and TTS of a window; the
    junction of the published model's promoter + terminator input) (None: the whole window)."""
    if flank is None:
        return None
    if flank < 0:
        raise ValueError("flank must be >= 0")
    ranges = []
    for anchor in layout.anchors():
        span = anchor.flank_range(flank)
        ranges.append(np.arange(max(0, span.start), min(seq_len, span.stop)))
    return np.unique(np.concatenate(ranges)) if ranges else np.arange(0)


def fold_test_genes(splits: pd.DataFrame, fold: int, max_genes: int | None = None,
                    seed: int = 0, species: str | None = None) -> pd.DataFrame:
    """Distinct (species, gene_id) of a fold's test pairs in a ``plantt splits`` table,
    optionally of one species; a seeded random subset of at most ``max_genes`` (kept in the order
    of first appearance)."""
    rows = splits[(splits["fold"] == fold) & (splits["set"] == "test")]
    genes = pd.concat([
        pd.DataFrame({"species": rows["species_a"], "gene_id": rows["gene_a"].astype(str)}),
        pd.DataFrame({"species": rows["species_b"], "gene_id": rows["gene_b"].astype(str)}),
    ], ignore_index=True).drop_duplicates(ignore_index=True)
    if species is not None:
        genes = genes[genes["species"] == species].reset_index(drop=True)
    if max_genes is not None and len(genes) > max_genes:
        rng = np.random.default_rng([seed, fold])
        keep = np.sort(rng.choice(len(genes), size=max_genes, replace=False))
        genes = genes.iloc[keep].reset_index(drop=True)
    return genes


def fold_test_rows(windows: EncodedWindows, splits: pd.DataFrame, fold: int,
                   max_genes: int | None, seed: int, source: PathLike,
                   species: str | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`fold_test_genes` and their rows in ``windows``; a gene without an encoded window
    is an InputError naming ``source`` (the windows' gene table)."""
    genes = fold_test_genes(splits, fold, max_genes, seed, species)
    rows = windows.indices_of(genes["species"], genes["gene_id"])
    if (rows < 0).any():
        missing = genes.loc[rows < 0, "gene_id"].tolist()
        raise InputError(source, f"{len(missing)} test gene(s) of fold {fold} have no encoded "
                                 "window", record=missing[0])
    return genes, rows


def ism_test_panel(model_dir: PathLike, codes_npy: PathLike, genes_tsv: PathLike,
                   splits_tsv: PathLike, fold: int, n_genes: int | None, seed: int = 0,
                   species: str | None = None, positions: np.ndarray | None = None,
                   batch_size: int = 256) -> tuple[list[str], list[IsmResult]]:
    """ISM of a panel of test genes of one fold, scored by that fold's model (Figure 6 uses
    genes not seen in training). Returns gene ids and results in panel order."""
    from plantt.dataset import read_splits

    windows = EncodedWindows.load(codes_npy, genes_tsv, mmap=True)
    panel, rows = fold_test_rows(windows, read_splits(splits_tsv), fold, n_genes, seed,
                                 genes_tsv, species)
    if panel.empty:
        raise InputError(splits_tsv, f"no test genes in fold {fold}"
                                     + (f" of species {species}" if species else ""))
    model = load_plantt(model_dir)
    results = []
    for gene, row in zip(panel["gene_id"], rows, strict=True):
        results.append(ism_scores(model, np.asarray(windows.codes[row]), batch_size, positions))
        log.info("%s: sum(z) = %.4g", gene, results[-1].reference_score)
    return panel["gene_id"].tolist(), results


# ----------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------
def ism_table(genes: Sequence[str], results: Sequence[IsmResult]) -> pd.DataFrame:
    frames = [r.to_frame(g) for g, r in zip(genes, results, strict=True)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ISM_COLUMNS)


def save_ism_npz(path: PathLike, genes: Sequence[str], results: Sequence[IsmResult]) -> None:
    """``genes`` (n,), ``effect`` and ``percent_change`` (n, L, 4; gene i's array is
    ``effect[i]``), ``reference_score`` (n,) and ``codes`` (n, L)."""
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(
            handle, genes=np.array(list(genes), dtype=str),
            effect=np.stack([r.effect for r in results]).astype(np.float32),
            percent_change=np.stack([r.percent_change for r in results]).astype(np.float32),
            reference_score=np.array([r.reference_score for r in results]),
            codes=np.stack([r.codes for r in results]))


def measured_expression(splits: pd.DataFrame) -> dict[str, float]:
    """Each gene's measured mean expression (the labels' ``mean_a``/``mean_b``: the unit the
    labels were computed on) from a labels or splits table."""
    sides = [splits[[f"gene_{s}", f"mean_{s}"]].set_axis(["gene", "mean"], axis=1) for s in "ab"]
    table = pd.concat(sides, ignore_index=True).drop_duplicates("gene")
    return dict(zip(table["gene"].astype(str), table["mean"].astype(float), strict=True))


def order_by_score(genes: Sequence[str], results: Sequence[IsmResult],
                   measured: Mapping[str, float] | None = None
                   ) -> tuple[list[str], list[IsmResult]]:
    """Genes and results by descending measured expression where ``measured`` covers every gene
    (the paper's Figure 6), else by descending predicted score ``sum(z)``."""
    if measured is not None and all(g in measured for g in genes):
        order = sorted(range(len(results)), key=lambda i: -measured[genes[i]])
    else:
        if measured is not None:
            log.warning("ISM heatmap: not every gene has a measured expression; rows ordered by "
                        "the predicted sum(z) instead")
        order = sorted(range(len(results)), key=lambda i: -results[i].reference_score)
    return [genes[i] for i in order], [results[i] for i in order]


def representative_gene(results: Sequence[IsmResult]) -> int:
    """Index of the gene whose strongest single edit is the largest (the zoom figure's gene)."""
    strongest = [np.nanmax(np.abs(r.effect)) if np.isfinite(r.effect).any() else -1.0
                 for r in results]
    return int(np.argmax(strongest))


def _symmetric_limit(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0:
        return 1.0
    limit = float(np.quantile(finite, 0.99))
    return limit if limit > 0 else float(finite.max()) or 1.0


def plot_ism_heatmap(genes: Sequence[str], results: Sequence[IsmResult], target: PathLike,
                     layout: SequenceLayout | None = DEFAULT_LAYOUT, title: str = "",
                     measured: Mapping[str, float] | None = None) -> None:
    """Genes (rows, by descending measured expression, or predicted score without ``measured``)
    x positions: the strongest edit at each base (the paper's Figure 6, left), the layout's
    anchors marked (a window's TSS and TTS, the published model's promoter/terminator junction);
    ``layout=None``: nothing to mark."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plantt.plots import save_figure

    by_measured = measured is not None and all(g in measured for g in genes)
    genes, results = order_by_score(genes, results, measured)
    matrix = np.stack([r.strongest_per_position() for r in results]) if results else \
        np.zeros((0, layout.length if layout is not None else 1))
    limit = _symmetric_limit(matrix)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#e8e8e8")
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.28 * max(len(genes), 1)))
    image = ax.imshow(np.ma.masked_invalid(matrix), aspect="auto", interpolation="nearest",
                      cmap=cmap, vmin=-limit, vmax=limit)
    for anchor in layout.anchors() if layout is not None else ():
        ax.axvline(anchor.x, color="black", lw=0.8, ls="--")
        ax.text(anchor.x, 1.01, anchor.label, ha="center", va="bottom", fontsize=8,
                transform=ax.get_xaxis_transform())
    ax.set_yticks(range(len(genes)))
    ax.set_yticklabels(genes, fontsize=7)
    ax.set_ylabel("genes by measured expression" if by_measured else "genes by predicted sum(z)",
                  fontsize=8)
    ax.set_xlabel(layout.axis_label if layout is not None else "position (bp)")
    ax.set_title(title or "strongest predicted edit per position", pad=14)
    fig.colorbar(image, ax=ax, label="effect sum(z_m) - sum(z)", fraction=0.03, pad=0.01)
    save_figure(fig, target)


def plot_ism_zoom(gene: str, result: IsmResult, target: PathLike,
                  layout: SequenceLayout | None = DEFAULT_LAYOUT, flank: int = 25,
                  title: str = "") -> None:
    """The 4 bases x positions around each anchor of the layout (a window's TSS and TTS, Fig. 6
    right; the published model's promoter/terminator junction) of one gene; the reference base
    is left blank. ``layout=None``: around the strongest substitution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plantt.plots import save_figure

    length = result.effect.shape[0]
    display = result.effect.copy()
    is_base = result.codes != N_CODE
    display[np.nonzero(is_base)[0], result.codes[is_base]] = np.nan
    limit = _symmetric_limit(display)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
    anchors: list[Anchor] = list(layout.anchors()) if layout is not None else []
    if not anchors:
        strongest = np.where(np.isnan(result.effect), -1.0, np.abs(result.effect))
        anchors = [Anchor(int(np.unravel_index(np.argmax(strongest), strongest.shape)[0]),
                          "strongest")]
    fig, axes = plt.subplots(len(anchors), 1, figsize=(11, 1.8 * len(anchors)), squeeze=False)
    axes = axes[:, 0]
    image = None
    for ax, anchor in zip(axes, anchors, strict=True):
        span = anchor.flank_range(flank)
        lo, hi = max(0, span.start), min(length, span.stop)
        image = ax.imshow(np.ma.masked_invalid(display[lo:hi].T), aspect="auto",
                          interpolation="nearest", cmap=cmap, vmin=-limit, vmax=limit,
                          extent=(lo - 0.5, hi - 0.5, 3.5, -0.5))
        ax.set_yticks(range(4))
        ax.set_yticklabels(list(BASES))
        ticks = np.arange(lo, hi)
        ax.set_xticks(ticks)
        ax.set_xticklabels([decode(result.codes[i:i + 1]) for i in ticks], fontsize=6)
        ax.axvline(anchor.x, color="black", lw=0.8, ls="--")
        ax.set_ylabel(f"{anchor.label}\n({anchor.index})", fontsize=8)
    where = "window position" if isinstance(layout, WindowLayout) else "position"
    axes[-1].set_xlabel(f"reference base at each {where}")
    fig.suptitle(title or f"{gene}: predicted effect of each substitution")
    fig.colorbar(image, ax=axes, label="effect", fraction=0.03, pad=0.01)
    save_figure(fig, target)


def write_ism_outputs(outdir: PathLike, genes: Sequence[str], results: Sequence[IsmResult],
                      layout: SequenceLayout | None = DEFAULT_LAYOUT, title: str = "",
                      zoom_flank: int = 25, measured: Mapping[str, float] | None = None
                      ) -> dict[str, Path]:
    """``ism.tsv``, ``ism.npz``, ``heatmap.png`` (rows by ``measured`` expression when given)
    and ``zoom.png`` in ``outdir``."""
    outdir = Path(outdir)
    paths = {"table": outdir / "ism.tsv", "npz": outdir / "ism.npz",
             "heatmap": outdir / "heatmap.png", "zoom": outdir / "zoom.png"}
    write_tsv(ism_table(genes, results), paths["table"], float_format="%.6g")
    save_ism_npz(paths["npz"], genes, results)
    plot_ism_heatmap(genes, results, paths["heatmap"], layout, title, measured)
    chosen = representative_gene(results)
    plot_ism_zoom(genes[chosen], results[chosen], paths["zoom"], layout, zoom_flank,
                  f"{title}: {genes[chosen]}" if title else "")
    return paths


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    model = load_scorer(args.model, command_device(args))
    if args.float64:
        model = model.double()
    policy = model_length_policy(model)
    genes, codes = read_sequences(args.fasta, model.seq_len, args.genes, policy)
    layout: SequenceLayout | None = None
    if policy is None:
        layout = model_layout(model)
        if layout is not None:
            log.info("model layout %s: figures mark %s; --flank counts from there (the window "
                     "layout options do not apply)", getattr(model, "info", {}).get("layout"),
                     ", ".join(f"{a.label} at {a.index}" for a in layout.anchors()))
        else:
            layout = WindowLayout(args.upstream, args.gene_part, args.downstream, args.mask)
        if layout.length != model.seq_len:
            log.warning("layout length %d differs from the model's %d bases: the TSS/TTS "
                        "positions (--flank, figures) may be off", layout.length, model.seq_len)
    elif args.flank is not None:
        raise InputError(None, "--flank needs TSS/TTS windows; this model takes sequences of "
                               "its own (plantt fit): score every position, or --include-n")
    positions = flank_positions(args.flank, model.seq_len, layout) if layout is not None else None
    results = []
    for gene, row in progress(list(zip(genes, codes, strict=True)), desc="ism", unit="sequence",
                              log=log):
        result = ism_scores(model, row, args.batch_size, positions, args.include_n)
        log.info("%s: sum(z) = %.4g; strongest edit %.4g", gene, result.reference_score,
                 np.nanmax(np.abs(result.effect)) if np.isfinite(result.effect).any() else 0.0)
        results.append(result)
    write_ism_outputs(args.out, genes, results, layout)
    log.info("ISM of %d sequence(s) written to %s", len(genes), args.out)
    return 0


def command_device(args: argparse.Namespace) -> torch.device:
    """The device a command computes on (``--device``; else CUDA, MPS or the CPU)."""
    from plantt.train import resolve_device

    return resolve_device(getattr(args, "device", None))
