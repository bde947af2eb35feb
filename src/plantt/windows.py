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
downstream), so 20,000 genes take about 40,000 FASTA reads; everything else is array arithmetic. The
genome FASTA may be plain or bgzip-compressed (:func:`open_genome`); plain gzip is refused.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, Protocol

import numpy as np
import pandas as pd
import pyfaidx
import pysam

from plantt.annotation import Gene, read_genes
from plantt.encoding import N_CODE, decode, encode, reverse_complement_codes
from plantt.io import (
    InputError,
    PathLike,
    atomic_open,
    atomic_path,
    get_logger,
    is_gzip,
    iter_lines,
    read_tsv,
)

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


_BGZF_EXTRA = b"BC\x02\x00"  # the BGZF extra subfield that tells bgzip data from plain gzip
# What a genome FASTA may hold in sequence lines: IUPAC letters (any case) and gap symbols.
_SEQUENCE_CHARS = re.compile(r"[A-Za-z*.\-]*")


def fasta_compression(path: PathLike) -> str:
    """``"bgzip"``, ``"gzip"`` or ``"none"``, from the file's first bytes (not its name)."""
    if not is_gzip(path):
        return "none"
    with open(path, "rb") as handle:
        header = handle.read(18)
    # gzip header: FLG (byte 3) with FEXTRA, XLEN (bytes 10-11), then BGZF's "BC" subfield.
    return "bgzip" if len(header) == 18 and header[3] & 4 and header[12:16] == _BGZF_EXTRA else "gzip"


class GenomeFasta:
    """Random access to a genome FASTA: plain text (pyfaidx) or bgzip-compressed (pysam).

    Open it with :func:`open_genome`. Record names are the first word of each header line.
    """

    def __init__(self, path: PathLike, reader: pyfaidx.Fasta | pysam.FastaFile):
        self.path = path
        self._reader = reader
        if isinstance(reader, pyfaidx.Fasta):
            self.lengths = {name: len(record) for name, record in reader.records.items()}
        else:
            self.lengths = dict(zip(reader.references, reader.lengths, strict=True))

    def __enter__(self) -> GenomeFasta:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._reader.close()

    def fetch(self, seqid: str, start: int, end: int) -> str:
        """Bases of [start, end) of ``seqid`` (0-based) as in the file, N past either contig end.

        Bytes that are not sequence letters (binary data, a stale index pointing into the wrong
        place) are an InputError rather than silently read as N.
        """
        length = self.lengths.get(seqid)
        if length is None:
            raise InputError(self.path, f"no sequence named {seqid!r} in this FASTA", record=seqid)
        pad_left = max(0, min(end, 0) - start)
        pad_right = max(0, end - max(start, length))
        lo, hi = start + pad_left, end - pad_right
        bases = ""
        if hi > lo:
            try:
                if isinstance(self._reader, pyfaidx.Fasta):
                    bases = self._reader[seqid][lo:hi]
                else:
                    bases = self._reader.fetch(seqid, lo, hi)
            except UnicodeDecodeError:
                raise InputError(self.path, f"{seqid}:{lo + 1}-{hi} is not text (binary data "
                                            "in the sequence)", record=seqid) from None
            except (OSError, ValueError) as err:
                raise InputError(self.path, f"cannot read {seqid}:{lo + 1}-{hi}: {err}",
                                 record=seqid) from None
        if len(bases) != hi - lo:
            raise InputError(self.path, f"read {len(bases)} bases of {seqid}:{lo}-{hi}, "
                                        f"expected {hi - lo} (is the .fai index stale?)", record=seqid)
        if not _SEQUENCE_CHARS.fullmatch(bases):
            bad = next(c for c in bases if not _SEQUENCE_CHARS.fullmatch(c))
            raise InputError(self.path, f"unexpected character {bad!r} in {seqid}:{lo + 1}-{hi}; "
                                        "expected sequence letters (is the file binary, or its "
                                        ".fai index stale?)", record=seqid)
        return "N" * pad_left + bases + "N" * pad_right


def _index_plain_fasta(fasta: str) -> None:
    """Build the ``.fai`` of a plain FASTA through a temporary when it is missing, empty or older
    than the FASTA. pyfaidx writes the index in place: a run killed while it wrote would leave an
    empty or truncated index, newer than the FASTA, that every later run would trust."""
    fai, source = Path(fasta + ".fai"), Path(fasta)
    try:
        index, data = fai.stat(), source.stat()
        if index.st_mtime >= data.st_mtime and (index.st_size > 0 or data.st_size == 0):
            return
    except FileNotFoundError:
        pass
    with atomic_path(fai, suffix=".fai") as tmp:
        tmp.unlink()  # pyfaidx would read the empty temporary as an up-to-date index
        pyfaidx.Faidx(fasta, indexname=str(tmp), as_raw=True).close()


def open_genome(path: PathLike) -> GenomeFasta:
    """Open a genome FASTA for random access, building its index if it has none.

    Plain FASTA is read with pyfaidx (index ``.fai`` beside it), bgzip-compressed FASTA with
    pysam (``.fai`` and ``.gzi``, as ``samtools faidx`` writes them), whatever the file's name.
    Plain gzip cannot be read by position, so it is an InputError that says how to fix it; so are
    a missing file, a FASTA that cannot be indexed (the reason given) and non-text data.
    """
    compression = fasta_compression(path)  # InputError for a missing file or a directory
    if compression == "gzip":
        raise InputError(path, "plain gzip-compressed FASTA cannot be read by position; decompress "
                               "it (gunzip), or compress it with `bgzip` and index it with "
                               "`samtools faidx`")
    name = str(path)
    try:
        # pyfaidx picks its reader by the name (".gz" means BioPython's bgzip reader), so plain
        # text named .gz and all bgzip data go to pysam, which reads either by content.
        if compression == "bgzip" or name.lower().endswith((".gz", ".bgz")):
            return GenomeFasta(path, pysam.FastaFile(name))
        _index_plain_fasta(name)
        return GenomeFasta(path, pyfaidx.Fasta(name, as_raw=True, sequence_always_upper=False))
    except UnicodeDecodeError:
        raise InputError(path, "not a text FASTA (binary data, or compressed other than with "
                               "bgzip)") from None
    except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat, ValueError) as err:
        raise InputError(path, f"cannot index this FASTA: {err}") from None
    except OSError as err:
        # pysam reports only "error when opening file"; htslib prints the reason to stderr.
        kind = "bgzip-compressed " if compression == "bgzip" else ""
        raise InputError(path, f"cannot read or index this {kind}FASTA ({err}); expected "
                               "'>name' header lines and, within a record, sequence lines of one "
                               "length but the last (`samtools faidx` names the offending line), "
                               "and a writable directory for the index") from None


def _check_contigs(genes: Sequence[Gene], contig_lengths: dict[str, int], fasta: PathLike,
                   annotation: PathLike | None) -> None:
    missing = [g for g in genes if g.seqid not in contig_lengths]
    if missing:
        examples = ", ".join(f"{g.gene_id} on {g.seqid!r}" for g in missing[:5])
        source = f" (annotation {annotation})" if annotation else ""
        raise InputError(fasta, f"{len(missing)} gene(s){source} lie on contigs absent from the "
                                f"FASTA: {examples}", record=missing[0].gene_id)


def extract_windows(fasta_path: PathLike, genes: Sequence[Gene],
                    layout: WindowLayout = DEFAULT_LAYOUT,
                    annotation: PathLike | None = None) -> WindowSet:
    """Windows of ``genes`` from ``fasta_path`` (transcript orientation, masked, encoded)."""
    with open_genome(fasta_path) as fasta:
        _check_contigs(genes, fasta.lengths, fasta_path, annotation)
        return _windows_from(fasta, genes, layout)


# Genes whose windows are held at once by write_windows: 6 MB of windows, so that memory does not
# grow with the number of genes (benchmarks/scale.py).
WINDOW_BATCH = 2000


def write_windows(fasta_path: PathLike, genes: Sequence[Gene], out: PathLike,
                  coords: PathLike | None = None, layout: WindowLayout = DEFAULT_LAYOUT,
                  annotation: PathLike | None = None, batch_genes: int = WINDOW_BATCH) -> None:
    """The windows FASTA (:func:`write_fasta`'s format) and the part coordinates TSV of ``genes``,
    extracted and written ``batch_genes`` genes at a time; both files appear complete or not at
    all (temporary names, renamed at the end)."""
    with open_genome(fasta_path) as fasta, ExitStack() as files:
        _check_contigs(genes, fasta.lengths, fasta_path, annotation)
        fasta_out = files.enter_context(atomic_open(out))
        coords_out = files.enter_context(atomic_open(coords)) if coords else None
        for first in range(0, max(len(genes), 1), batch_genes):
            batch = _windows_from(fasta, genes[first:first + batch_genes], layout)
            _write_records(batch.gene_ids, batch.codes, fasta_out)
            if coords_out is not None:
                batch.coords.to_csv(coords_out, sep="\t", index=False, header=first == 0)


def _windows_from(fasta: GenomeFasta, genes: Sequence[Gene], layout: WindowLayout) -> WindowSet:
    lengths = fasta.lengths
    parts = part_intervals(genes, layout)
    # Genomic left-to-right pairs of parts form two contiguous blocks per window.
    n_parts = len(PARTS)
    starts = parts["start"].to_numpy().reshape(-1, n_parts)
    ends = parts["end"].to_numpy().reshape(-1, n_parts)
    chunks: list[str] = []
    for i, gene in enumerate(genes):
        # plus: [upstream|gene_start] [gene_end|downstream]
        # minus: [downstream|gene_end] [gene_start|upstream] (genomic order)
        blocks = ((0, 1), (2, 3)) if gene.strand == "+" else ((3, 2), (1, 0))
        for left, right in blocks:
            chunks.append(fasta.fetch(gene.seqid, int(starts[i, left]), int(ends[i, right])))
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
    with atomic_open(out) as handle:
        _write_records(gene_ids, codes, handle)


def _write_records(gene_ids: Sequence[str], codes: np.ndarray, handle: IO[str]) -> None:
    text = decode(codes.reshape(-1)) if len(gene_ids) else ""
    width = codes.shape[1] if codes.ndim == 2 else 0
    for i, gene_id in enumerate(gene_ids):
        handle.write(f">{gene_id}\n{text[i * width:(i + 1) * width]}\n")


def read_gene_list(path: PathLike) -> list[str]:
    """Gene ids, one per line (blank lines and ``#`` comments ignored), first occurrence order."""
    ids = [line.split("\t")[0].strip() for _, line in iter_lines(path)]
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
    write_windows(args.fasta, selected, args.out, args.coords, layout,
                  annotation=args.annotation)
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
