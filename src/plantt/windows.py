"""Fixed-length sequence windows around each gene's TSS and TTS (the paper's Section 3.1.1, Figure 2).

Default layout, in transcript orientation (minus-strand genes are reverse-complemented)::

    index    0 ..  999   1000 .. 1499   1500 .. 1999   2000 .. 2999
             upstream    gene_start     gene_end       downstream
             (1000 bp    (first 500     (last 500      (1000 bp after
             before TSS)  gene bases)    gene bases)     the TTS)

Index 1000 is the TSS and index 1999 the TTS. The 3 bases from the TSS (1000-1002) and the 3 bases
ending at the TTS (1997-1999) are masked to N: many annotations lack UTRs, so these would otherwise
be the start and stop codons, which a model could use as a shortcut.

Bases past a contig end are N, lower case is upper-cased and every non-ACGT character is N (see
:mod:`plantt.encoding`). Genes shorter than two gene parts (1000 bp) keep the same layout: their
first and last 500 bases then overlap (and, below 500 bp, reach past the gene into its flanks), so
every window has the same length and the TSS and TTS stay at fixed indices.

Each window is read as two contiguous genomic blocks (upstream + gene_start and gene_end +
downstream), so 20,000 genes take about 40,000 pyfaidx reads; everything else is array arithmetic.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import pandas as pd
import pyfaidx

from plantt.annotation import Gene, read_genes
from plantt.encoding import N_CODE, decode, encode, reverse_complement_codes
from plantt.io import InputError, PathLike, atomic_open, get_logger, open_text, read_tsv, write_tsv

log = get_logger("windows")

UPSTREAM = 1000
GENE_PART = 500
DOWNSTREAM = 1000
MASK = 3
PARTS = ("upstream", "gene_start", "gene_end", "downstream")
COORD_COLUMNS = ["gene_id", "seqid", "strand", "part", "start", "end", "window_start",
                 "window_end", "n_padded", "clipped_left", "clipped_right"]


class Anchor(NamedTuple):
    """A landmark that figures of a layout mark: the TSS, the TTS, or a junction between parts.

    A base anchor is the base at ``index``; a ``boundary`` lies between ``index - 1`` and
    ``index`` (e.g. the first base of a part), and is drawn there.
    """

    index: int
    label: str
    boundary: bool = False

    @property
    def x(self) -> float:
        """Where a figure draws the anchor (window index; a boundary between two bases)."""
        return self.index - 0.5 if self.boundary else float(self.index)

    def flank_range(self, flank: int) -> range:
        """Indices within ``flank`` bp of the anchor: ``flank`` bases on each side of a boundary,
        the base itself and ``flank`` on each side of a base anchor (not clipped to the window)."""
        return range(self.index - flank, self.index + flank + (0 if self.boundary else 1))


class SequenceLayout(Protocol):
    """What ISM figures and ``--flank`` need of a layout: its length and its anchors."""

    @property
    def length(self) -> int: ...

    @property
    def axis_label(self) -> str: ...

    def anchors(self) -> tuple[Anchor, ...]: ...


@dataclass(frozen=True)
class WindowLayout:
    """Part lengths (bp) of a window; ``mask`` bases are masked at the TSS and at the TTS."""

    upstream: int = UPSTREAM
    gene_part: int = GENE_PART
    downstream: int = DOWNSTREAM
    mask: int = MASK

    def __post_init__(self) -> None:
        if min(self.upstream, self.gene_part, self.downstream, self.mask) < 0:
            raise ValueError("window part lengths and mask must be >= 0")
        if self.gene_part < 1 or self.mask > self.gene_part:
            raise ValueError("gene_part must be >= 1 and mask <= gene_part")

    @property
    def length(self) -> int:
        return self.upstream + 2 * self.gene_part + self.downstream

    @property
    def tss_index(self) -> int:
        return self.upstream

    @property
    def tts_index(self) -> int:
        return self.upstream + 2 * self.gene_part - 1

    @property
    def axis_label(self) -> str:
        return "window position (bp)"

    def anchors(self) -> tuple[Anchor, ...]:
        """The TSS and the TTS (bases of the window)."""
        return (Anchor(self.tss_index, "TSS"), Anchor(self.tts_index, "TTS"))

    @property
    def part_lengths(self) -> tuple[int, int, int, int]:
        return (self.upstream, self.gene_part, self.gene_part, self.downstream)

    def masked_indices(self) -> np.ndarray:
        """Window indices set to N: ``mask`` bases from the TSS and ``mask`` ending at the TTS."""
        tss = np.arange(self.tss_index, self.tss_index + self.mask)
        tts = np.arange(self.tts_index - self.mask + 1, self.tts_index + 1)
        return np.union1d(tss, tts)


DEFAULT_LAYOUT = WindowLayout()


@dataclass
class WindowSet:
    """Encoded windows (``codes``: n_genes x layout.length uint8) and their part coordinates."""

    gene_ids: list[str]
    codes: np.ndarray
    coords: pd.DataFrame


def part_intervals(genes: Sequence[Gene], layout: WindowLayout = DEFAULT_LAYOUT) -> pd.DataFrame:
    """Genomic interval of every part of every window, unclipped (may pass a contig end).

    One row per (gene, part) in window order, with the part's ``window_start``/``window_end``.
    On the minus strand the upstream part lies right of the gene and the parts read right to left.
    """
    n = len(genes)
    start = np.fromiter((g.start for g in genes), dtype=np.int64, count=n)
    end = np.fromiter((g.end for g in genes), dtype=np.int64, count=n)
    minus = np.fromiter((g.strand == "-" for g in genes), dtype=bool, count=n)
    up, part, down = layout.upstream, layout.gene_part, layout.downstream
    plus_iv = {"upstream": (start - up, start), "gene_start": (start, start + part),
               "gene_end": (end - part, end), "downstream": (end, end + down)}
    minus_iv = {"upstream": (end, end + up), "gene_start": (end - part, end),
                "gene_end": (start, start + part), "downstream": (start - down, start)}
    offsets = np.concatenate([[0], np.cumsum(layout.part_lengths)])
    frames = []
    for k, name in enumerate(PARTS):
        frames.append(pd.DataFrame({
            "gene_id": [g.gene_id for g in genes], "seqid": [g.seqid for g in genes],
            "strand": np.where(minus, "-", "+"), "part": name,
            "start": np.where(minus, minus_iv[name][0], plus_iv[name][0]),
            "end": np.where(minus, minus_iv[name][1], plus_iv[name][1]),
            "window_start": offsets[k], "window_end": offsets[k + 1],
            "_gene": np.arange(n), "_part": k}))
    table = pd.concat(frames, ignore_index=True).sort_values(["_gene", "_part"], kind="stable")
    return table.drop(columns=["_gene", "_part"]).reset_index(drop=True)


def _open_fasta(path: PathLike) -> pyfaidx.Fasta:
    try:
        return pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=False)
    except FileNotFoundError:
        raise InputError(path, "FASTA file not found") from None
    except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat, ValueError) as err:
        raise InputError(path, f"cannot index this FASTA: {err}") from None


def _check_contigs(genes: Sequence[Gene], contig_lengths: dict[str, int], fasta: PathLike,
                   annotation: PathLike | None) -> None:
    missing = [g for g in genes if g.seqid not in contig_lengths]
    if missing:
        examples = ", ".join(f"{g.gene_id} on {g.seqid!r}" for g in missing[:5])
        source = f" (annotation {annotation})" if annotation else ""
        raise InputError(fasta, f"{len(missing)} gene(s){source} lie on contigs absent from the "
                                f"FASTA: {examples}", record=missing[0].gene_id)


def _read_block(fasta: pyfaidx.Fasta, seqid: str, contig_length: int, start: int,
                end: int) -> str:
    """Bases of [start, end) with N for positions past either contig end."""
    pad_left = max(0, min(end, 0) - start)
    pad_right = max(0, end - max(start, contig_length))
    lo, hi = start + pad_left, end - pad_right
    bases = fasta[seqid][lo:hi] if hi > lo else ""
    if len(bases) != hi - lo:
        raise InputError(fasta.filename, f"read {len(bases)} bases of {seqid}:{lo}-{hi}, "
                                         f"expected {hi - lo} (is the .fai index stale?)")
    return "N" * pad_left + bases + "N" * pad_right


def extract_windows(fasta_path: PathLike, genes: Sequence[Gene],
                    layout: WindowLayout = DEFAULT_LAYOUT,
                    annotation: PathLike | None = None) -> WindowSet:
    """Windows of ``genes`` from ``fasta_path`` (transcript orientation, masked, encoded)."""
    fasta = _open_fasta(fasta_path)
    try:
        lengths = {name: len(record) for name, record in fasta.records.items()}
        _check_contigs(genes, lengths, fasta_path, annotation)
        parts = part_intervals(genes, layout)
        # Genomic left-to-right pairs of parts form two contiguous blocks per window.
        n_parts = len(PARTS)
        starts = parts["start"].to_numpy().reshape(-1, n_parts)
        ends = parts["end"].to_numpy().reshape(-1, n_parts)
        chunks: list[str] = []
        for i, gene in enumerate(genes):
            contig_length = lengths[gene.seqid]
            # plus: [upstream|gene_start] [gene_end|downstream]
            # minus: [downstream|gene_end] [gene_start|upstream] (genomic order)
            blocks = ((0, 1), (2, 3)) if gene.strand == "+" else ((3, 2), (1, 0))
            for left, right in blocks:
                chunks.append(_read_block(fasta, gene.seqid, contig_length,
                                          int(starts[i, left]), int(ends[i, right])))
    finally:
        fasta.close()
    codes = encode("".join(chunks)).reshape(len(genes), layout.length) if genes else np.zeros(
        (0, layout.length), dtype=np.uint8)
    minus = np.array([g.strand == "-" for g in genes], dtype=bool)
    if minus.any():
        codes[minus] = reverse_complement_codes(codes[minus])
    codes[:, layout.masked_indices()] = N_CODE
    contig_len = parts["seqid"].map(lengths).to_numpy(dtype=np.int64)
    start, end = parts["start"].to_numpy(), parts["end"].to_numpy()
    clip_lo = np.clip(start, 0, contig_len)
    clip_hi = np.maximum(np.clip(end, 0, contig_len), clip_lo)
    parts["clipped_left"] = start < 0
    parts["clipped_right"] = end > contig_len
    parts["n_padded"] = (end - start) - (clip_hi - clip_lo)
    parts["start"], parts["end"] = clip_lo, clip_hi
    n_clipped = int(parts.groupby("gene_id", sort=False)["n_padded"].sum().gt(0).sum())
    if n_clipped:
        log.info("%d window(s) pass a contig end; those bases are N", n_clipped)
    return WindowSet([g.gene_id for g in genes], codes, parts[COORD_COLUMNS])


def write_fasta(gene_ids: Sequence[str], codes: np.ndarray, out: PathLike) -> None:
    """One record per window, header = gene id, sequence on one line."""
    text = decode(codes.reshape(-1)) if len(gene_ids) else ""
    width = codes.shape[1] if codes.ndim == 2 else 0
    with atomic_open(out) as handle:
        for i, gene_id in enumerate(gene_ids):
            handle.write(f">{gene_id}\n{text[i * width:(i + 1) * width]}\n")


def read_gene_list(path: PathLike) -> list[str]:
    """Gene ids, one per line (blank lines and ``#`` comments ignored), first occurrence order."""
    with open_text(path) as handle:
        ids = [line.split("\t")[0].strip() for line in handle]
    ids = [i for i in ids if i and not i.startswith("#")]
    return list(dict.fromkeys(ids))


def genes_from_pairs(pairs_path: PathLike, species: str) -> list[str]:
    """Genes of ``species`` in a pairs table (either side), first occurrence order."""
    pairs = read_tsv(pairs_path, required=["gene_a", "species_a", "gene_b", "species_b"],
                     dtype=str, keep_default_na=False)
    ids = pd.concat([pairs.loc[pairs["species_a"] == species, "gene_a"],
                     pairs.loc[pairs["species_b"] == species, "gene_b"]])
    return list(dict.fromkeys(ids))


def select_genes(genes: dict[str, Gene], wanted: Sequence[str] | None,
                 source: PathLike | None) -> list[Gene]:
    """``wanted`` genes in that order (all genes when None); unknown ids are an error."""
    if wanted is None:
        return list(genes.values())
    unknown = [g for g in wanted if g not in genes]
    if unknown:
        raise InputError(source, f"{len(unknown)} gene id(s) not in the annotation: "
                                 f"{', '.join(unknown[:10])}" + (" ..." if len(unknown) > 10
                                                                 else ""), record=unknown[0])
    return [genes[g] for g in wanted]


def run(args: argparse.Namespace) -> int:
    genes = read_genes(Path(args.annotation))
    if args.genes and args.pairs:
        raise InputError(None, "give --genes or --pairs, not both")
    wanted, source = None, None
    if args.genes:
        wanted, source = read_gene_list(args.genes), args.genes
    elif args.pairs:
        if not args.species:
            raise InputError(args.pairs, "--pairs needs --species to pick that species' genes")
        wanted, source = genes_from_pairs(args.pairs, args.species), args.pairs
    selected = select_genes(genes, wanted, source)
    layout = WindowLayout(args.upstream, args.gene_part, args.downstream, args.mask)
    windows = extract_windows(args.fasta, selected, layout, annotation=args.annotation)
    write_fasta(windows.gene_ids, windows.codes, args.out)
    if args.coords:
        write_tsv(windows.coords, args.coords)
    log.info("%d windows of %d bp written to %s", len(selected), layout.length, args.out)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "windows", help="sequence windows around each gene's TSS and TTS",
        description="Write, per gene, upstream + first gene bases + last gene bases + "
                    "downstream in transcript orientation, with the TSS and TTS bases masked.")
    parser.add_argument("--fasta", required=True, help="genome FASTA")
    parser.add_argument("--annotation", required=True, help="GFF3 or GTF")
    parser.add_argument("--out", required=True, help="windows FASTA to write")
    parser.add_argument("--coords", help="TSV of the genomic coordinates of each part")
    parser.add_argument("--genes", help="file of gene ids, one per line (default: all genes)")
    parser.add_argument("--pairs", help="pairs TSV: take the genes of --species from it")
    parser.add_argument("--species", help="species id in --pairs")
    parser.add_argument("--upstream", type=int, default=UPSTREAM, help="default %(default)s")
    parser.add_argument("--gene-part", type=int, default=GENE_PART, help="default %(default)s")
    parser.add_argument("--downstream", type=int, default=DOWNSTREAM, help="default %(default)s")
    parser.add_argument("--mask", type=int, default=MASK, help="default %(default)s")
    parser.set_defaults(func=run)
