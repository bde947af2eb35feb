"""Per-gene read counts from BAM files, and CPM/TPM expression tables.

Counting conventions (also in config/README.md):

* Each alignment is reduced to **one genomic position on one strand**, then assigned to the gene whose
  counting region contains that position on that strand. A position inside the regions of two or more
  genes of the same strand is *ambiguous* and counted for none. Unmapped, secondary, supplementary,
  QC-failed alignments and those with MAPQ below ``min_mapq`` (STAR: 255 = unique) are not counted.
* ``rnaseq3p`` (QuantSeq 3' mRNA-seq FWD, reads on the sense strand): the position is the read's 5'
  end, on the read's own strand. The counting region is the gene span extended past its annotated 3'
  end by ``extension`` bp, because annotations often lack 3' UTRs and QuantSeq reads pile up there; the
  extension stops before the next gene on the same strand and at the contig end.
* ``proseq`` (paired-end PRO-seq, read 1 = reverse complement of the RNA's 3' end): only read 1 is
  used; the position is read 1's 5' end (the RNA 3' end, i.e. the polymerase), on the strand
  **opposite** to read 1's alignment. The counting region is the gene body from ``tss_offset`` bp after
  the TSS to the TTS.
* Positions on the opposite strand inside a gene's region are reported as ``antisense`` (a library
  whose antisense count exceeds its sense count is probably of the other strandedness).

Normalisation: CPM = count / (sum of the sample's assigned counts) x 1e6. TPM = (count / length) /
sum(count / length) x 1e6 with length = exonic length of the gene's longest transcript for rnaseq3p
(the paper's "length of each transcript") and the counting region's length for proseq (nascent RNA
covers introns). Per gene, ``mean``, ``sd`` (ddof=1) and ``n`` over the replicates of a species and assay.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pysam

from plantt.annotation import Gene, read_genes
from plantt.chunks import DEFAULT_CHUNK_SIZE, add_chunk_size_argument, genome_chunks
from plantt.io import InputError, PathLike, get_logger, read_tsv, write_tsv

ASSAYS = ("rnaseq3p", "proseq")
SUMMARY_COLUMNS = ["assigned", "ambiguous", "no_feature", "antisense", "low_mapq", "unmapped",
                   "secondary_or_supplementary", "not_read1"]

log = get_logger("quantify")


@dataclass(frozen=True)
class CountSettings:
    assay: str
    min_mapq: int = 255
    extension: int = 500  # rnaseq3p: bp past the annotated 3' end
    tss_offset: int = 0  # proseq: bp after the TSS where counting starts


def counting_regions(genes: dict[str, Gene], settings: CountSettings,
                     contig_lengths: dict[str, int] | None = None) -> pd.DataFrame:
    """One counting region per gene: ``gene_id, seqid, strand, start, end, length`` (0-based)."""
    if settings.assay not in ASSAYS:
        raise ValueError(f"unknown assay {settings.assay!r}, expected one of {ASSAYS}")
    rows = []
    by_strand: dict[tuple[str, str], list[Gene]] = {}
    for gene in genes.values():
        by_strand.setdefault((gene.seqid, gene.strand), []).append(gene)
    for (seqid, strand), group in by_strand.items():
        group.sort(key=lambda g: (g.start, g.end))
        starts = np.array([g.start for g in group])
        ends = np.array([g.end for g in group])
        contig_end = (contig_lengths or {}).get(seqid)
        for gene in group:
            start, end = gene.start, gene.end
            if settings.assay == "rnaseq3p" and settings.extension:
                if strand == "+":
                    later = starts[starts >= gene.end]
                    limit = later.min() if later.size else np.inf
                    end = int(min(end + settings.extension, limit))
                    if contig_end is not None:
                        end = min(end, contig_end)
                else:
                    earlier = ends[ends <= gene.start]
                    limit = earlier.max() if earlier.size else 0
                    start = int(max(start - settings.extension, limit, 0))
            elif settings.assay == "proseq" and settings.tss_offset:
                if strand == "+":
                    start = min(start + settings.tss_offset, end)
                else:
                    end = max(end - settings.tss_offset, start)
            rows.append((gene.gene_id, seqid, strand, start, end, end - start))
    regions = pd.DataFrame(rows, columns=["gene_id", "seqid", "strand", "start", "end", "length"])
    order = {gid: k for k, gid in enumerate(genes)}
    return regions.sort_values("gene_id", key=lambda s: s.map(order)).reset_index(drop=True)


# unmapped (0x4), secondary (0x100), QC-failed (0x200), supplementary (0x800)
_SKIPPED_FLAGS = 0x4 | 0x100 | 0x200 | 0x800


def open_bam(bam_path: PathLike) -> pysam.AlignmentFile:
    """An indexed BAM, or an :class:`InputError` saying what is wrong with it."""
    try:
        bam = pysam.AlignmentFile(str(bam_path), "rb")
    except (OSError, ValueError) as err:
        raise InputError(bam_path, f"cannot open as BAM: {err}") from None
    if not bam.has_index():
        bam.close()
        raise InputError(bam_path, "has no index (.csi or .bai): run `samtools index -c` on it "
                                   "(a .bai holds no position past 2^29 bp); "
                                   "reads are read one genome chunk at a time through the index")
    return bam


def skipped_read_stats() -> dict[str, int]:
    return dict.fromkeys(["low_mapq", "unmapped", "secondary_or_supplementary", "not_read1"], 0)


def chunk_positions(bam: pysam.AlignmentFile, contig: str, start: int, end: int,
                    settings: CountSettings, stats: dict[str, int]) -> dict[str, np.ndarray]:
    """Sorted counted positions in ``[start, end)`` of ``contig``, per strand (``"+"``, ``"-"``).

    An alignment belongs to the chunk that holds its counted position, so that adjacent chunks never
    count it twice; a skipped alignment is added to ``stats`` by the chunk that holds its leftmost
    base, for the same reason.
    """
    plus: list[int] = []
    minus: list[int] = []
    proseq = settings.assay == "proseq"
    min_mapq = settings.min_mapq
    for aln in bam.fetch(contig, start, end):
        flag = aln.flag
        if (flag & _SKIPPED_FLAGS or aln.mapping_quality < min_mapq
                or (proseq and flag & 0x1 and not flag & 0x40)):
            if start <= aln.reference_start < end:
                if flag & 0x4:
                    stats["unmapped"] += 1
                elif flag & 0x900:
                    stats["secondary_or_supplementary"] += 1
                elif flag & 0x200 or aln.mapping_quality < min_mapq:
                    stats["low_mapq"] += 1
                else:
                    stats["not_read1"] += 1
            continue
        if flag & 0x10:  # reverse: the 5' end is the last aligned base
            position, on_plus = aln.reference_end - 1, proseq  # proseq: read 1 is antisense
        else:
            position, on_plus = aln.reference_start, not proseq
        if start <= position < end:
            (plus if on_plus else minus).append(position)
    return {"+": np.sort(np.asarray(plus, dtype=np.int64)),
            "-": np.sort(np.asarray(minus, dtype=np.int64))}


def iter_positions(bam_path: PathLike, settings: CountSettings,
                   chunk_size: int | None = DEFAULT_CHUNK_SIZE,
                   stats: dict[str, int] | None = None
                   ) -> Iterator[tuple[str, int, int, dict[str, np.ndarray]]]:
    """``(contig, start, end, positions per strand)`` for every chunk of the BAM's contigs, in order.

    Memory is set by the reads of one chunk. ``stats`` (if given) collects the skipped alignments,
    the unplaced unmapped ones (no contig, read from the index) included.
    """
    stats = skipped_read_stats() if stats is None else stats
    with open_bam(bam_path) as bam:
        lengths = dict(zip(bam.references, bam.lengths, strict=True))
        for contig, start, end in genome_chunks(lengths, chunk_size):
            yield contig, start, end, chunk_positions(bam, contig, start, end, settings, stats)
        stats["unmapped"] += bam.nocoordinate


class RegionIndex:
    """The counting regions of a genome, indexed per (contig, strand) for assigning positions."""

    def __init__(self, regions: pd.DataFrame):
        self.regions = regions.reset_index(drop=True)
        self._groups: dict[tuple[str, str], tuple[np.ndarray, ...]] = {}
        for key, group in self.regions.groupby(["seqid", "strand"], sort=False):
            starts, ends = group["start"].to_numpy(), group["end"].to_numpy()
            self._groups[key] = (group.index.to_numpy(), starts, ends, np.sort(starts),
                                 np.sort(ends))

    def _containing(self, key: tuple[str, str], positions: np.ndarray) -> np.ndarray:
        """For each position, how many regions of ``key`` contain it."""
        group = self._groups.get(key)
        if group is None:
            return np.zeros(positions.size, dtype=np.int64)
        sorted_starts, sorted_ends = group[3], group[4]
        return (np.searchsorted(sorted_starts, positions, side="right")
                - np.searchsorted(sorted_ends, positions, side="right"))

    def assign(self, contig: str, strand: str, positions: np.ndarray, counts: np.ndarray,
               summary: dict[str, int]) -> None:
        """Add sorted ``positions`` of one strand to ``counts`` (one per region, in region order)
        and to ``summary``; a position in several same-strand regions is ambiguous."""
        multiplicity = self._containing((contig, strand), positions)
        group = self._groups.get((contig, strand))
        if group is not None:
            rows, starts, ends = group[:3]
            unique = positions[multiplicity == 1]
            counts[rows] += (np.searchsorted(unique, ends, side="left")
                             - np.searchsorted(unique, starts, side="left"))
        summary["assigned"] += int((multiplicity == 1).sum())
        summary["ambiguous"] += int((multiplicity > 1).sum())
        outside = positions[multiplicity == 0]
        summary["no_feature"] += int(outside.size)
        if outside.size:
            other = "-" if strand == "+" else "+"
            summary["antisense"] += int((self._containing((contig, other), outside) > 0).sum())


def count_reads(bam_path: PathLike, annotation: PathLike, settings: CountSettings,
                chunk_size: int | None = DEFAULT_CHUNK_SIZE) -> tuple[pd.DataFrame, dict[str, int]]:
    """Per-gene counts of one BAM: a table ``gene_id, count`` and a summary dict.

    The BAM is read one chunk of ``chunk_size`` bases at a time (memory does not grow with the
    genome; the counts do not depend on the chunk size).
    """
    genes = read_genes(annotation)
    with open_bam(bam_path) as bam:
        contig_lengths = dict(zip(bam.references, bam.lengths, strict=True))
    missing = {g.seqid for g in genes.values()} - set(contig_lengths)
    if missing and len(missing) == len({g.seqid for g in genes.values()}):
        raise InputError(annotation, f"no annotated contig is in the BAM header of {bam_path} "
                                     f"(annotation has e.g. {sorted(missing)[:3]})")
    index = RegionIndex(counting_regions(genes, settings, contig_lengths))
    counts = np.zeros(len(index.regions), dtype=np.int64)
    summary = {"assigned": 0, "ambiguous": 0, "no_feature": 0, "antisense": 0}
    stats = skipped_read_stats()
    for contig, _, _, by_strand in iter_positions(bam_path, settings, chunk_size, stats):
        for strand, positions in by_strand.items():
            index.assign(contig, strand, positions, counts, summary)
    summary.update(stats)
    table = pd.DataFrame({"gene_id": index.regions["gene_id"], "count": counts})
    sense, anti = summary["assigned"] + summary["ambiguous"], summary["antisense"]
    if anti > sense:
        log.warning("%s: more reads antisense (%d) than sense (%d) to genes: is the library of "
                    "the strandedness the assay %s assumes?", bam_path, anti, sense, settings.assay)
    return table, summary


def tpm_lengths(annotation: PathLike, settings: CountSettings) -> pd.Series:
    """The length used for TPM, per gene (see the module docstring)."""
    genes = read_genes(annotation)
    if settings.assay == "rnaseq3p":
        return pd.Series({gid: g.transcript_length for gid, g in genes.items()}, name="length")
    regions = counting_regions(genes, settings)
    return pd.Series(regions["length"].to_numpy(), index=regions["gene_id"], name="length")


def cpm(counts: pd.DataFrame) -> pd.DataFrame:
    totals = counts.sum(axis=0)
    return counts.div(totals.where(totals > 0, 1), axis=1) * 1e6


def tpm(counts: pd.DataFrame, lengths: pd.Series) -> pd.DataFrame:
    rate = counts.div(lengths.clip(lower=1).reindex(counts.index), axis=0)
    totals = rate.sum(axis=0)
    return rate.div(totals.where(totals > 0, 1), axis=1) * 1e6


def expression_table(counts: pd.DataFrame, lengths: pd.Series, species: str, assay: str
                     ) -> pd.DataFrame:
    """Long table, two rows per gene (unit cpm and tpm): ``gene_id, species, assay, unit, n, mean,
    sd, rep_<replicate>...``; ``counts`` has genes as index and ``rep_<replicate>`` columns."""
    frames = []
    for unit, values in (("cpm", cpm(counts)), ("tpm", tpm(counts, lengths))):
        frame = pd.DataFrame({
            "gene_id": values.index, "species": species, "assay": assay, "unit": unit,
            "n": values.shape[1], "mean": values.mean(axis=1).to_numpy(),
            "sd": values.std(axis=1, ddof=1).to_numpy() if values.shape[1] > 1 else np.nan,
        })
        frames.append(pd.concat([frame.reset_index(drop=True),
                                 values.reset_index(drop=True)], axis=1))
    return pd.concat(frames, ignore_index=True)


def build_expression(count_files: dict[int, PathLike], annotation: PathLike, species: str,
                     settings: CountSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """From per-replicate count tables, the counts matrix and the expression table."""
    columns = {}
    for replicate, path in sorted(count_files.items()):
        table = read_tsv(path, required=["gene_id", "count"])
        columns[f"rep_{replicate}"] = table.set_index("gene_id")["count"]
    counts = pd.DataFrame(columns)
    if counts.isna().any().any():
        raise InputError(None, f"count tables of {species}/{settings.assay} list different genes")
    lengths = tpm_lengths(annotation, settings)
    matrix = counts.copy()
    matrix.insert(0, "length", lengths.reindex(counts.index).to_numpy())
    matrix = matrix.rename_axis("gene_id").reset_index()
    return matrix, expression_table(counts, lengths, species, settings.assay)


def _run_count(args: argparse.Namespace) -> int:
    settings = CountSettings(args.assay, args.min_mapq, args.extension, args.tss_offset)
    table, summary = count_reads(args.bam, args.annotation, settings, args.chunk_size)
    write_tsv(table, args.out)
    if args.summary:
        write_tsv(pd.DataFrame([{"sample": Path(args.bam).stem, **summary}]), args.summary)
    return 0


COUNT_DESCRIPTION = """\
Count the reads of one BAM file per gene. Each alignment counts once, at one position on one
strand: for rnaseq3p (QuantSeq FWD) the read's 5' end on its own strand, in the gene extended past
its 3' end by --extension bp (annotations often lack 3' UTRs); for proseq (paired-end PRO-seq)
read 1's 5' end, which is the polymerase, on the strand opposite to read 1, in the gene body from
--tss-offset bp after the TSS. Positions shared by two genes of one strand count for neither;
opposite-strand positions are reported as antisense. Unmapped, secondary, supplementary,
QC-failed and low-MAPQ alignments are not counted."""


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("count", help="count reads per gene in a BAM file",
                                   description=COUNT_DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bam", required=True, help="aligned reads (BAM, indexed)")
    parser.add_argument("--annotation", required=True, help="GFF3 or GTF")
    parser.add_argument("--assay", required=True, choices=ASSAYS,
                        help="rnaseq3p: read 5' ends in the 3'-extended gene; proseq: RNA 3' ends "
                             "in the gene body")
    parser.add_argument("--out", required=True, help="TSV: gene_id, count")
    parser.add_argument("--summary", help="TSV of assigned/ambiguous/... counts")
    parser.add_argument("--min-mapq", type=int, default=255,
                        help="count only alignments of at least this MAPQ (STAR: 255 = unique)")
    add_chunk_size_argument(parser)
    parser.add_argument("--extension", type=int, default=500,
                        help="rnaseq3p: extend genes this many bp past their 3' end (not into "
                             "the next gene on the strand)")
    parser.add_argument("--tss-offset", type=int, default=0,
                        help="proseq: count from this many bp after the TSS (0 = whole gene)")
    parser.set_defaults(func=_run_count)
