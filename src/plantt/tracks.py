"""Strand-specific single-base bigWigs of counted read positions, and their replicate mean.

One track per genome strand, in counts per million counted positions (CPM, both strands together),
**positive on both tracks** (the minus track is not negated: deepTools averages and combines
tracks without sign handling). Positions without reads are not written. The tracks are built and
merged one genome chunk at a time (:mod:`plantt.chunks`), so memory does not grow with the genome.
The PRO-seq tracks (polymerase = RNA 3' end) and the 3'-RNA-seq tracks (read 5' ends, on the read's
strand) differ only in how a read is reduced to a position (:mod:`plantt.quantify`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pysam

from plantt.chunks import DEFAULT_CHUNK_SIZE, genome_chunks
from plantt.io import InputError, PathLike, atomic_path, get_logger
from plantt.quantify import CountSettings, iter_positions, skipped_read_stats

log = get_logger("tracks")


def bam_contig_lengths(bam_path: PathLike) -> dict[str, int]:
    try:
        with pysam.AlignmentFile(str(bam_path), "rb") as bam:
            return dict(zip(bam.references, bam.lengths, strict=True))
    except (OSError, ValueError) as err:
        raise InputError(bam_path, f"cannot open as BAM: {err}") from None


def write_bigwig_chunks(target: PathLike, contig_lengths: Mapping[str, int],
                        chunks: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> None:
    """Single-base bigWig from ``(contig, positions, values)`` chunks given in genome order (each
    chunk's positions sorted; positions of value 0 or NaN are left out). Entries go to the file as
    chunks arrive, so memory is set by a chunk.

    Written to a temporary name and renamed, so an interrupted job never leaves a truncated file.
    """
    import pyBigWig  # a deepTools dependency, only needed here

    with atomic_path(target, suffix=".bw") as tmp:
        bw = pyBigWig.open(str(tmp), "w")
        try:
            bw.addHeader([(c, int(n)) for c, n in contig_lengths.items()], maxZooms=10)
            for contig, positions, values in chunks:
                values = np.asarray(values, dtype=np.float64)
                keep = np.nan_to_num(values) != 0
                if keep.any():
                    bw.addEntries(contig, np.asarray(positions, dtype=np.int64)[keep],
                                  values=values[keep], span=1)
        finally:
            bw.close()


def write_bigwig(target: PathLike, contig_lengths: Mapping[str, int],
                 values: Mapping[str, np.ndarray]) -> None:
    """Single-base bigWig of ``values`` (one dense array per contig); zero and NaN positions are
    left out."""
    write_bigwig_chunks(target, contig_lengths, (
        (contig, np.arange(len(values[contig])), values[contig])
        for contig in contig_lengths if contig in values))


def _open_bigwig(path: PathLike):
    import pyBigWig

    if not Path(path).exists():
        raise InputError(path, "bigWig file not found")
    bw = pyBigWig.open(str(path))
    if bw is None or not bw.isBigWig():
        raise InputError(path, "not a bigWig file")
    return bw


def read_bigwig(path: PathLike) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """Contig lengths and per-base values (missing = 0) of a bigWig (whole contigs: for small
    genomes and tests)."""
    bw = _open_bigwig(path)
    try:
        lengths = dict(bw.chroms())
        values = {c: np.nan_to_num(bw.values(c, 0, n, numpy=True)) for c, n in lengths.items()}
    finally:
        bw.close()
    return lengths, values


class _Spool:
    """Per-chunk arrays parked in an unnamed temporary file, read back in the order written: the
    CPM scale needs the total count, known only after the whole BAM has been read once."""

    def __init__(self, directory: PathLike):
        self._file = tempfile.TemporaryFile(dir=directory)
        self._parts: list[tuple[str, str, int]] = []

    def add(self, contig: str, strand: str, positions: np.ndarray, counts: np.ndarray) -> None:
        self._file.write(positions.astype(np.int64).tobytes())
        self._file.write(counts.astype(np.int64).tobytes())
        self._parts.append((contig, strand, positions.size))

    def read(self, strand: str) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        self._file.seek(0)
        for contig, part_strand, size in self._parts:
            positions = np.frombuffer(self._file.read(8 * size), dtype=np.int64)
            counts = np.frombuffer(self._file.read(8 * size), dtype=np.int64)
            if part_strand == strand:
                yield contig, positions, counts

    def close(self) -> None:
        self._file.close()


def write_strand_bigwigs(bam_path: PathLike, plus: PathLike, minus: PathLike,
                         settings: CountSettings, chunk_size: int | None = DEFAULT_CHUNK_SIZE
                         ) -> int:
    """The plus- and minus-strand CPM bigWigs of one sample's counted positions (the assay's
    reduction of each read, :func:`plantt.quantify.chunk_positions`); returns their number.

    One pass over the BAM, one chunk of ``chunk_size`` bases at a time: each chunk's counted
    positions are parked on disk until the total (the CPM denominator) is known.
    """
    lengths = bam_contig_lengths(bam_path)
    Path(plus).parent.mkdir(parents=True, exist_ok=True)
    spool = _Spool(Path(plus).parent)
    stats = skipped_read_stats()
    total = 0
    try:
        for contig, _, _, by_strand in iter_positions(bam_path, settings, chunk_size, stats):
            for strand, positions in by_strand.items():
                unique, counts = np.unique(positions, return_counts=True)
                spool.add(contig, strand, unique, counts)
                total += int(positions.size)
        log.info("%s: %d %s positions; skipped %s", bam_path, total, settings.assay, stats)
        scale = 1e6 / total if total else 0.0
        for target, strand in ((plus, "+"), (minus, "-")):
            write_bigwig_chunks(target, lengths, ((contig, positions, counts * scale)
                                                  for contig, positions, counts
                                                  in spool.read(strand)))
    finally:
        spool.close()
    return total


def merge_bigwigs(paths: Sequence[PathLike], target: PathLike,
                  chunk_size: int | None = DEFAULT_CHUNK_SIZE) -> None:
    """Per-base mean of several bigWigs of the same genome (replicates), a chunk at a time."""
    if not paths:
        raise ValueError("no bigWig files to merge")
    handles = [_open_bigwig(path) for path in paths]
    try:
        lengths = dict(handles[0].chroms())
        for path, handle in zip(paths[1:], handles[1:], strict=True):
            if dict(handle.chroms()) != lengths:
                raise InputError(path, f"contigs differ from those of {paths[0]}")

        def mean_chunks() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
            for contig, start, end in genome_chunks(lengths, chunk_size):
                total = np.zeros(end - start)
                for handle in handles:
                    total += np.nan_to_num(handle.values(contig, start, end, numpy=True))
                where = np.flatnonzero(total)
                yield contig, start + where, total[where] / len(handles)

        write_bigwig_chunks(target, lengths, mean_chunks())
    finally:
        for handle in handles:
            handle.close()
