"""PRO-seq polymerase tracks, promoter-proximal pausing and PRO-seq vs 3'-RNA-seq comparisons.

Polymerase position (the same reduction as :func:`plantt.quantify.chunk_positions` for ``proseq``,
which this module calls): read 1 only, its 5' end, on the strand **opposite** to read 1's alignment,
which is the nascent RNA's 3' end; unmapped, secondary, supplementary, QC-failed and low-MAPQ
alignments are dropped.

* **bigWigs**: one track per genome strand, single-base resolution, in counts per million counted
  read-1 positions (CPM, both strands together). Values are **positive on both tracks** (the minus
  track is not negated): deepTools averages and combines tracks without sign handling, and the sense
  signal of a minus-strand gene is read from the minus track as is. Positions without reads are not
  written (deepTools reads them as missing; ``--missingDataAsZero`` makes them 0). The merged track
  of a species is the mean of its replicates' CPM tracks (each replicate weighs the same, like the
  mean CPM of the expression tables).
* **Pause index** (as in PEPPRO): the pause window is the ``window``-bp window (default 50) with the
  most reads between the TSS and ``region`` bp after it (default 300); the gene body runs from
  ``body_start`` bp after the TSS (default 500) to ``body_end_before_tts`` bp before the TTS (default
  0: the TTS included). Densities are reads per bp; pause index = pause density / body density. Reads
  are the raw counts pooled over a species' replicates, on the gene's strand. Genes with fewer than
  ``min_reads`` gene-body reads (or no gene body) are marked ``covered = False``, not dropped.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
import pysam

from plantt.annotation import Gene, read_genes
from plantt.chunks import DEFAULT_CHUNK_SIZE, add_chunk_size_argument, gene_blocks
from plantt.io import InputError, PathLike, atomic_open, get_logger, read_tsv, write_tsv
from plantt.quantify import CountSettings, chunk_positions, open_bam, skipped_read_stats
from plantt.tracks import (  # noqa: F401 (the track functions, also reachable from here)
    bam_contig_lengths,
    merge_bigwigs,
    read_bigwig,
    write_bigwig,
    write_bigwig_chunks,
    write_strand_bigwigs,
)

log = get_logger("proseq")

TRACKS = {"plus": "+", "minus": "-"}
PAUSE_COLUMNS = ["gene_id", "seqid", "strand", "length", "pause_region_reads", "pause_window_start",
                 "pause_window_reads", "pause_density", "body_start", "body_length", "body_reads",
                 "body_density", "pause_index", "covered"]


# ---- polymerase positions (the bigWigs themselves: plantt.tracks) ---------------------------


@dataclass
class PolymeraseCounts:
    """Raw polymerase counts per base: ``counts[(contig, strand)]`` has one value per contig base."""

    contig_lengths: dict[str, int]
    counts: dict[tuple[str, str], np.ndarray]

    @property
    def total(self) -> int:
        return int(sum(int(v.sum()) for v in self.counts.values()))

    def track(self, contig: str, strand: str) -> np.ndarray:
        """Counts of one contig and strand (zeros where no read was counted)."""
        found = self.counts.get((contig, strand))
        if found is None:
            return np.zeros(self.contig_lengths[contig], dtype=np.int64)
        return found


def _proseq_settings(min_mapq: int) -> CountSettings:
    return CountSettings("proseq", min_mapq=min_mapq)


def write_polymerase_bigwigs(bam_path: PathLike, plus: PathLike, minus: PathLike,
                             min_mapq: int = 255, chunk_size: int | None = DEFAULT_CHUNK_SIZE
                             ) -> int:
    """The plus- and minus-strand CPM bigWigs of one PRO-seq sample's polymerase positions;
    returns their number."""
    return write_strand_bigwigs(bam_path, plus, minus, _proseq_settings(min_mapq), chunk_size)


def block_tracks(bams: Sequence[pysam.AlignmentFile], contig: str, start: int, end: int,
                 min_mapq: int = 255) -> dict[str, np.ndarray]:
    """Raw polymerase counts over ``[start, end)`` of ``contig``, pooled over ``bams``, per strand
    (index 0 = base ``start``)."""
    # int32: 4 bytes per base and strand (a base would need 2^31 reads to overflow it)
    tracks = {strand: np.zeros(end - start, dtype=np.int32) for strand in TRACKS.values()}
    settings, stats = _proseq_settings(min_mapq), skipped_read_stats()
    for bam in bams:
        for strand, positions in chunk_positions(bam, contig, start, end, settings, stats).items():
            where, counts = np.unique(positions, return_counts=True)
            tracks[strand][where - start] += counts.astype(np.int32)
    return tracks


# ---- gene regions for deepTools --------------------------------------------------------------


def metagene_genes(genes: Mapping[str, Gene], min_length: int = 0, max_genes: int | None = None,
                   seed: int = 0) -> list[Gene]:
    """Genes at least ``min_length`` bp long, sorted by position; at most ``max_genes`` of them,
    drawn at random with ``seed`` (deepTools' computeMatrix spends about 0.1 ms per bin and gene,
    so a few hundred genes give a clear metagene at a fraction of the cost of all of them)."""
    chosen = sorted((g for g in genes.values() if g.length >= min_length),
                    key=lambda g: (g.seqid, g.start, g.end, g.gene_id))
    if max_genes is not None and len(chosen) > max_genes:
        keep = np.sort(np.random.default_rng(seed).choice(len(chosen), max_genes, replace=False))
        chosen = [chosen[k] for k in keep]
    return chosen


def _bed_lines(genes: Iterable[Gene]) -> list[str]:
    return [f"{g.seqid}\t{g.start}\t{g.end}\t{g.gene_id}\t0\t{g.strand}\n" for g in genes]


def write_gene_beds(annotation: PathLike, out: Mapping[str, PathLike], min_length: int = 0,
                    max_genes: int | None = None, seed: int = 0) -> dict[str, int]:
    """BED6 files of the metagene genes (:func:`metagene_genes`), for deepTools.

    ``out`` names up to four files: ``plus_genes`` and ``minus_genes`` (genes of each strand), and
    ``plus_signal`` and ``minus_signal``: the regions to read from the plus or the minus bigWig, in
    two deepTools groups separated by ``#sense`` / ``#antisense`` lines (deepTools names a group by
    the ``#`` line that follows its regions). The plus track is the sense signal of plus-strand
    genes and the antisense signal of minus-strand genes, and the other way round.
    Returns the number of genes per strand.
    """
    chosen = metagene_genes(read_genes(annotation), min_length, max_genes, seed)
    by_strand = {s: [g for g in chosen if g.strand == s] for s in ("+", "-")}
    for strand, genes in by_strand.items():
        if not genes:
            name = "plus" if strand == "+" else "minus"
            raise InputError(annotation, f"no {name}-strand gene of at least {min_length} bp: "
                                         "the sense/antisense metagenes need genes on both strands")
    contents = {
        "plus_genes": _bed_lines(by_strand["+"]),
        "minus_genes": _bed_lines(by_strand["-"]),
        "plus_signal": [*_bed_lines(by_strand["+"]), "#sense\n",
                        *_bed_lines(by_strand["-"]), "#antisense\n"],
        "minus_signal": [*_bed_lines(by_strand["-"]), "#sense\n",
                         *_bed_lines(by_strand["+"]), "#antisense\n"],
    }
    for key, path in out.items():
        with atomic_open(path) as handle:
            handle.writelines(contents[key])
    return {"+": len(by_strand["+"]), "-": len(by_strand["-"])}


def read_profile_data(path: PathLike) -> pd.DataFrame:
    """plotProfile's ``--outFileNameData`` as a long table: ``sample, group, bin, value``.

    ``bin`` counts from 0 at the first bin of each sample (bins are ``--binSize`` bp wide).
    """
    rows = []
    with open(path) as handle:
        lines = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    for cols in lines:
        if cols[0] in ("bin labels", "bins") or len(cols) < 3:
            continue
        sample, group, values = cols[0], cols[1], cols[2:]
        for k, value in enumerate(values):
            if value != "":
                rows.append((sample, group, k, float(value)))
    if not rows:
        raise InputError(path, "no profile rows (expected plotProfile --outFileNameData output)")
    return pd.DataFrame(rows, columns=["sample", "group", "bin", "value"])


# ---- promoter-proximal pausing ---------------------------------------------------------------


@dataclass(frozen=True)
class PauseSettings:
    region: int = 300  # the pause window is searched from the TSS to this many bp after it
    window: int = 50  # width of the pause window
    body_start: int = 500  # the gene body starts this many bp after the TSS ...
    body_end_before_tts: int = 0  # ... and ends this many bp before the TTS (0: TTS included)
    min_reads: int = 10  # genes with fewer gene-body reads are marked covered = False

    def __post_init__(self) -> None:
        if self.window < 1 or self.region < self.window:
            raise ValueError(f"need 1 <= window <= region, got window={self.window}, "
                             f"region={self.region}")
        if self.body_start < 0 or self.body_end_before_tts < 0 or self.min_reads < 0:
            raise ValueError("body_start, body_end_before_tts and min_reads must be >= 0")


def sense_profile(track: np.ndarray, gene: Gene, first: int, last: int, offset: int = 0
                  ) -> np.ndarray:
    """Counts at offsets ``first..last-1`` from the TSS in transcript orientation, clipped to the
    gene (offset 0 = TSS, ``gene.length - 1`` = TTS). ``track[i]`` is the count of genome base
    ``offset + i`` (``offset`` = 0: a whole contig)."""
    first, last = max(first, 0), min(last, gene.length)
    if last <= first:
        return np.zeros(0, dtype=track.dtype)
    if gene.strand == "+":
        return track[gene.start - offset + first:gene.start - offset + last]
    tss = gene.end - 1 - offset
    return track[tss - last + 1:tss - first + 1][::-1]


def best_window(profile: np.ndarray, window: int) -> tuple[int, int]:
    """Start and read count of the ``window``-bp window with the most reads (the first of ties,
    i.e. the one closest to the TSS); a profile shorter than the window is one window."""
    if profile.size <= window:
        return 0, int(profile.sum())
    cumulative = np.concatenate([[0], np.cumsum(profile)])
    sums = cumulative[window:] - cumulative[:-window]
    start = int(np.argmax(sums))
    return start, int(sums[start])


def pause_index_row(track: np.ndarray, gene: Gene, settings: PauseSettings, offset: int = 0
                    ) -> dict:
    """Pause-window and gene-body reads, densities and the pause index of one gene (``track`` as
    in :func:`sense_profile`)."""
    region = sense_profile(track, gene, 0, settings.region, offset)
    start, in_window = best_window(region, settings.window)
    width = min(settings.window, region.size)
    body = sense_profile(track, gene, settings.body_start,
                         gene.length - settings.body_end_before_tts, offset)
    body_reads = int(body.sum())
    pause_density = in_window / width if width else np.nan
    body_density = body_reads / body.size if body.size else np.nan
    covered = bool(body.size > 0 and body_reads >= settings.min_reads and body_reads > 0)
    return {
        "gene_id": gene.gene_id, "seqid": gene.seqid, "strand": gene.strand,
        "length": gene.length, "pause_region_reads": int(region.sum()),
        "pause_window_start": start, "pause_window_reads": in_window,
        "pause_density": pause_density, "body_start": settings.body_start,
        "body_length": int(body.size), "body_reads": body_reads, "body_density": body_density,
        "pause_index": pause_density / body_density if body_reads > 0 else np.nan,
        "covered": covered,
    }


def pause_indices(genes: Mapping[str, Gene], counts: PolymeraseCounts,
                  settings: PauseSettings) -> pd.DataFrame:
    """One row per gene (annotation order), columns :data:`PAUSE_COLUMNS`, from whole-contig counts
    held in memory (small genomes and tests; :func:`pause_indices_from_bams` streams)."""
    rows = []
    missing = 0
    for gene in genes.values():
        if gene.seqid not in counts.contig_lengths:
            missing += 1
            continue
        rows.append(pause_index_row(counts.track(gene.seqid, gene.strand), gene, settings))
    if missing:
        log.warning("%d genes on contigs absent from the BAM header were skipped", missing)
    return pd.DataFrame(rows, columns=PAUSE_COLUMNS)


def pause_indices_from_bams(genes: Mapping[str, Gene], bam_paths: Sequence[PathLike],
                            settings: PauseSettings, min_mapq: int = 255,
                            chunk_size: int | None = DEFAULT_CHUNK_SIZE) -> pd.DataFrame:
    """Pause indices from raw counts pooled over ``bam_paths`` (replicates), read one block of
    genes of at most ``chunk_size`` bases at a time (:func:`plantt.chunks.gene_blocks`): memory is
    set by a block, and the table does not depend on the block size. One row per gene, annotation
    order."""
    if not bam_paths:
        raise ValueError("no BAM files to pool")
    lengths = bam_contig_lengths(bam_paths[0])
    for path in bam_paths[1:]:
        if bam_contig_lengths(path) != lengths:
            raise InputError(path, f"contigs differ from those of {bam_paths[0]}: replicates of "
                                   "one species must be mapped to the same genome")
    placed = [g for g in genes.values() if g.seqid in lengths]
    if len(placed) < len(genes):
        log.warning("%d genes on contigs absent from the BAM header were skipped",
                    len(genes) - len(placed))
    rows: dict[str, dict] = {}
    bams = [open_bam(path) for path in bam_paths]
    try:
        for block in gene_blocks(placed, chunk_size):
            tracks = block_tracks(bams, block.contig, block.start, block.end, min_mapq)
            for gene in block.genes:
                rows[gene.gene_id] = pause_index_row(tracks[gene.strand], gene, settings,
                                                     offset=block.start)
    finally:
        for bam in bams:
            bam.close()
    return pd.DataFrame([rows[g.gene_id] for g in placed], columns=PAUSE_COLUMNS)


def pause_summary(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per species: genes, covered genes and the quartiles of the pause index of covered genes."""
    rows = []
    for species, table in tables.items():
        covered = table.loc[table["covered"].astype(bool), "pause_index"]
        q = covered.quantile([0.25, 0.5, 0.75]) if len(covered) else pd.Series([np.nan] * 3)
        rows.append({"species": species, "genes": len(table), "covered_genes": len(covered),
                     "median_pause_index": q.iloc[1], "q25_pause_index": q.iloc[0],
                     "q75_pause_index": q.iloc[2],
                     "median_pause_window_start": table.loc[table["covered"].astype(bool),
                                                            "pause_window_start"].median()})
    return pd.DataFrame(rows)


# ---- PRO-seq vs 3'-RNA-seq -------------------------------------------------------------------


def mean_cpm(expression_table: PathLike) -> pd.Series:
    """Mean CPM per gene from an expression table (``unit == cpm`` rows)."""
    table = read_tsv(expression_table, required=["gene_id", "unit", "mean"])
    cpm = table[table["unit"] == "cpm"]
    if cpm.empty:
        raise InputError(expression_table, "no rows with unit 'cpm'")
    return cpm.set_index("gene_id")["mean"].astype(float)


def log_values(x: pd.Series | np.ndarray, y: pd.Series | np.ndarray, pseudocount: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """log10(value + pseudocount) of the pairs where both are finite and positive after adding it."""
    xs = np.asarray(x, dtype=float) + pseudocount
    ys = np.asarray(y, dtype=float) + pseudocount
    keep = np.isfinite(xs) & np.isfinite(ys) & (xs > 0) & (ys > 0)
    return np.log10(xs[keep]), np.log10(ys[keep])


def r_squared(x: np.ndarray, y: np.ndarray) -> float:
    """Squared Pearson correlation (NaN with fewer than 3 points or no variance)."""
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def assay_agreement(proseq: pd.Series, rnaseq: pd.Series, pseudocount: float
                    ) -> tuple[pd.DataFrame, float]:
    """Genes of both tables with their mean CPMs, and R^2 of log10(CPM + pseudocount)."""
    joined = pd.concat({"proseq": proseq, "rnaseq3p": rnaseq}, axis=1, join="inner")
    x, y = log_values(joined["rnaseq3p"], joined["proseq"], pseudocount)
    return joined.rename_axis("gene_id").reset_index(), r_squared(x, y)


def ortholog_conservation(pairs: pd.DataFrame, expression: Mapping[tuple[str, str], pd.Series],
                          species_order: Sequence[str], pseudocount: float) -> pd.DataFrame:
    """Per species pair and assay, R^2 between orthologs of log10(mean CPM + pseudocount).

    ``expression[(species, assay)]`` is a species' mean CPM per gene; pairs are oriented so that
    ``species_a`` comes first in ``species_order``.
    """
    rank = {s: k for k, s in enumerate(species_order)}
    flip = pairs["species_a"].map(rank) > pairs["species_b"].map(rank)
    oriented = pairs.copy()
    for col in ("gene", "species"):
        oriented.loc[flip, [f"{col}_a", f"{col}_b"]] = pairs.loc[flip, [f"{col}_b", f"{col}_a"]].values
    assays = sorted({assay for _, assay in expression}, key=lambda a: (a != "proseq", a))
    rows = []
    for sp_a, sp_b in combinations(species_order, 2):
        chosen = oriented[(oriented["species_a"] == sp_a) & (oriented["species_b"] == sp_b)]
        for assay in assays:
            if (sp_a, assay) not in expression or (sp_b, assay) not in expression:
                continue
            a = chosen["gene_a"].map(expression[(sp_a, assay)])
            b = chosen["gene_b"].map(expression[(sp_b, assay)])
            x, y = log_values(a, b, pseudocount)
            rows.append({"species_a": sp_a, "species_b": sp_b, "assay": assay,
                         "pairs": len(chosen), "pairs_used": len(x), "r2": r_squared(x, y)})
    return pd.DataFrame(rows, columns=["species_a", "species_b", "assay", "pairs", "pairs_used",
                                       "r2"])


# ---- figures ---------------------------------------------------------------------------------


def plot_pause_distribution(tables: Mapping[str, pd.DataFrame], target: PathLike) -> None:
    """Histogram (log-spaced bins, log x axis) of the pause index of covered genes, per species,
    with each species' median as a dashed line."""
    from plantt.plots import plt, save_figure

    covered = {sp: t.loc[t["covered"].astype(bool), "pause_index"].to_numpy(dtype=float)
               for sp, t in tables.items()}
    positive = {sp: v[np.isfinite(v) & (v > 0)] for sp, v in covered.items()}
    pooled = np.concatenate([v for v in positive.values() if v.size] or [np.array([1.0])])
    bins = np.logspace(np.log10(pooled.min()) - 0.05, np.log10(pooled.max()) + 0.05, 40)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for k, (species, v) in enumerate(positive.items()):
        color = f"C{k % 10}"
        median = float(np.median(covered[species])) if covered[species].size else np.nan
        ax.hist(v, bins=bins, histtype="step", linewidth=1.5, color=color,
                label=f"{species} (n={covered[species].size}, median {median:.2f})")
        if median > 0:
            ax.axvline(median, color=color, linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("pause index (pause-window density / gene-body density)")
    ax.set_ylabel("genes")
    ax.legend(frameon=False, fontsize=8)
    save_figure(fig, target)


def plot_assay_agreement(data: Mapping[str, tuple[pd.DataFrame, float]], pseudocount: float,
                         target: PathLike) -> None:
    """One log-log scatter per species: mean CPM of PRO-seq (y) against 3'-RNA-seq (x)."""
    from plantt.plots import plt, save_figure

    n = max(len(data), 1)
    cols = min(n, 2)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.8 * rows), squeeze=False)
    for ax, (species, (joined, r2)) in zip(axes.flat, data.items(), strict=False):
        x, y = log_values(joined["rnaseq3p"], joined["proseq"], pseudocount)
        ax.scatter(10 ** x, 10 ** y, s=4, alpha=0.4, color="C0", linewidths=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{species}: R² = {r2:.2f} (n = {len(x)})", fontsize=10)
        ax.set_xlabel(f"3'-RNA-seq mean CPM + {pseudocount:g}")
        ax.set_ylabel(f"PRO-seq mean CPM + {pseudocount:g}")
    for ax in list(axes.flat)[len(data):]:
        ax.set_visible(False)
    fig.tight_layout()
    save_figure(fig, target)


def plot_ortholog_conservation(table: pd.DataFrame, target: PathLike) -> None:
    """Left: R^2 per assay over species pairs (box plot with the pairs as points). Right: R^2 per
    species pair, one bar per assay."""
    from plantt.plots import plt, save_figure

    assays = list(dict.fromkeys(table["assay"]))
    colors = {a: f"C{k}" for k, a in enumerate(assays)}
    fig, (box_ax, bar_ax) = plt.subplots(1, 2, figsize=(10, 4), width_ratios=[1, 2.2])
    data = [table.loc[table["assay"] == a, "r2"].dropna().to_numpy() for a in assays]
    box_ax.boxplot(data, tick_labels=assays, widths=0.5, showfliers=False)
    rng = np.random.default_rng(0)  # jitter only
    for k, values in enumerate(data, start=1):
        box_ax.scatter(k + rng.uniform(-0.12, 0.12, len(values)), values, s=18,
                       color=colors[assays[k - 1]], zorder=3)
    box_ax.set_ylabel("R² of log10 expression between orthologs")
    box_ax.set_title("species pairs", fontsize=10)
    pairs = list(dict.fromkeys(zip(table["species_a"], table["species_b"], strict=True)))
    width = 0.8 / max(len(assays), 1)
    for k, assay in enumerate(assays):
        part = table[table["assay"] == assay].set_index(["species_a", "species_b"])["r2"]
        heights = [part.get(p, np.nan) for p in pairs]
        bar_ax.bar(np.arange(len(pairs)) + (k - (len(assays) - 1) / 2) * width, heights, width,
                   color=colors[assay], label=assay)
    bar_ax.set_xticks(np.arange(len(pairs)), [f"{a}\n{b}" for a, b in pairs], fontsize=8)
    bar_ax.set_ylabel("R²")
    bar_ax.legend(frameon=False)
    top = float(np.nanmax(table["r2"])) if table["r2"].notna().any() else 1.0
    for ax in (box_ax, bar_ax):
        ax.set_ylim(0, min(1.0, max(top * 1.15, 0.05)))
    fig.tight_layout()
    save_figure(fig, target)


# ---- command line ----------------------------------------------------------------------------


def _run_bigwig(args: argparse.Namespace) -> int:
    total = write_polymerase_bigwigs(args.bam, args.plus, args.minus, args.min_mapq,
                                     args.chunk_size)
    log.info("%s: %d polymerase positions", args.bam, total)
    return 0


def _run_pausing(args: argparse.Namespace) -> int:
    settings = PauseSettings(args.region, args.window, args.body_start, args.body_end_before_tts,
                             args.min_reads)
    table = pause_indices_from_bams(read_genes(args.annotation), args.bam, settings,
                                    args.min_mapq, args.chunk_size)
    write_tsv(table, args.out)
    log.info("%d genes, %d covered", len(table), int(table["covered"].sum()))
    return 0


BIGWIG_DESCRIPTION = """\
Write the polymerase signal of one paired-end PRO-seq BAM as two bigWigs, one per strand, in
counts per million: each read pair counts once, at read 1's 5' end (the RNA's 3' end, where the
polymerase was), on the strand opposite to read 1's alignment. Minus-strand values are positive."""
PAUSE_DESCRIPTION = """\
Pause index per gene from pooled PRO-seq replicates, as PEPPRO defines it: the polymerase density
in the pause window (the --window bp with the most reads within --region bp after the TSS)
divided by the density in the gene body (from --body-start after the TSS to
--body-end-before-tts before the TTS). Genes with fewer than --min-reads gene-body reads are
marked not covered."""


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    bigwig = subparsers.add_parser(
        "proseq-bigwig", help="PRO-seq polymerase (RNA 3' end) CPM bigWigs, one per strand",
        description=BIGWIG_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    bigwig.add_argument("--bam", required=True, help="paired-end PRO-seq alignments (BAM, indexed)")
    bigwig.add_argument("--plus", required=True, help="bigWig of the plus strand")
    bigwig.add_argument("--minus", required=True, help="bigWig of the minus strand (values > 0)")
    bigwig.add_argument("--min-mapq", type=int, default=255,
                        help="use only alignments of at least this MAPQ")
    add_chunk_size_argument(bigwig)
    bigwig.set_defaults(func=_run_bigwig)

    pausing = subparsers.add_parser(
        "pause-index", help="PRO-seq pause index per gene (PEPPRO-style pause window)",
        description=PAUSE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    pausing.add_argument("--bam", required=True, nargs="+", help="replicates, pooled")
    pausing.add_argument("--annotation", required=True, help="GFF3 or GTF")
    pausing.add_argument("--out", required=True, help="TSV, one row per gene")
    pausing.add_argument("--min-mapq", type=int, default=255,
                         help="use only alignments of at least this MAPQ")
    add_chunk_size_argument(pausing)
    defaults = PauseSettings()
    pausing.add_argument("--region", type=int, default=defaults.region,
                         help="the pause window is searched from the TSS to this many bp after it")
    pausing.add_argument("--window", type=int, default=defaults.window,
                         help="pause window width (bp): the one with most reads in the region")
    pausing.add_argument("--body-start", type=int, default=defaults.body_start,
                         help="the gene body starts this many bp after the TSS")
    pausing.add_argument("--body-end-before-tts", type=int, default=defaults.body_end_before_tts,
                         help="the gene body ends this many bp before the TTS")
    pausing.add_argument("--min-reads", type=int, default=defaults.min_reads,
                         help="genes with fewer gene-body reads (pooled) are marked not covered")
    pausing.set_defaults(func=_run_pausing)
