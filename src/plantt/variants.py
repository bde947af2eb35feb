"""Predicted effects of genomic variants (VCF) on expression, through each gene's PlanTT window.

For every VCF allele that changes a gene's 3000 bp window (layout of :mod:`plantt.windows`), the
REF window (the reference genome, exactly as ``plantt windows`` extracts it) and the ALT window
(the same gene with the allele applied) are built in transcript orientation, and the predicted
effect is ``f(ALT, REF) = sum(z_ALT) - sum(z_REF)`` (with its percent change, as for ISM).

How an allele is applied (the window stays 3000 bp)
---------------------------------------------------
Alleles are trimmed to their minimal form (shared leading, then trailing bases removed), so
``REF=ACG ALT=A`` at POS p deletes the two bases at 1-based ``p+1..p+2``. The ALT haplotype is
the genome with those reference bases replaced by the ALT bases. Each window part is anchored at
its gene end: ``upstream`` is the 1000 bases ending at the TSS, ``gene_start`` the 500 bases
starting at it, ``gene_end`` the 500 bases ending at the TTS, ``downstream`` the 1000 bases
starting after it, all read from the haplotype. So:

* the TSS and TTS stay at window indices 1000 and 1999 (and stay masked);
* an **insertion** pushes bases out at the far end of its part (the end away from the TSS/TTS);
  a **deletion** pulls in the next genomic bases from beyond that far end;
* an insertion exactly at a gene end goes to the flank (upstream of the TSS / downstream of the
  TTS), so the annotated first and last gene bases stay at the anchors; a length-changing allele
  that spans the TSS or TTS has no defined placement and gets status ``spans_anchor``;
* an allele changes a window only if it touches a part (an insertion at the far end of a part,
  or anywhere between the two gene parts of a long gene, changes nothing and is not reported).

Minus-strand windows are reverse-complemented, so the ALT allele appears reverse-complemented at
its window index. ``window_index`` is the 5'-most (transcript orientation) window index of the
allele's bases (ALT bases in the ALT window; for a deletion, the deleted bases in the REF window).

Statuses (one row per ALT allele and affected gene; records on contigs absent from the FASTA get
one row per allele with an empty gene): ``ok`` (scored), ``no_change`` (the allele only touches
masked or N bases: the windows are identical, effect 0), ``spans_anchor``, ``ref_mismatch`` (VCF
REF differs from the genome), ``symbolic`` (``<DEL>`` etc.), ``breakend``,
``spanning_deletion`` (``*``), ``invalid_allele`` (characters other than ACGTN),
``alt_equals_ref``, ``unknown_contig``, ``filtered`` (FILTER neither ``PASS`` nor ``.``, with
``--filter pass``, the default; the ``filter`` column names the failed filters). Only ``ok`` rows
have effects. A VCF that does not
belong to the FASTA is an error, not a table of ``ref_mismatch`` / ``unknown_contig`` rows: when
none of its contigs is in the FASTA, or REF differs from the genome in more than
``--max-ref-mismatch`` (default 5%) of its records (:func:`check_vcf_against_genome`).
Multi-allelic records give one row per ALT allele (``multiallelic`` true, ``allele_index``
1-based), each ALT against REF. Records with no ALT (``.``) are counted in the log.

Reading: a bgzip VCF with a tabix (``.tbi``) or CSI index is read through the index, only over
the genomic spans of the genes' windows (:func:`window_regions`): a whole-genome call set costs
what its windows hold. Any other VCF is read from start to end.

Speed: ALT windows are scored in batches of full tower passes, except where the sliced path of
:mod:`plantt.fastism` applies (PlanTT-CNN towers): the ALT windows of a gene that differ from its
REF window only within ``SLICED_MAX_SPAN`` bases (SNVs, MNVs) then recompute only the receptive
field of the change, from one recorded pass over the REF window, which also gives the gene's REF
score (about a third of a tower pass per allele for the ``paper`` tower instead of a whole one, so
even a gene with a single SNV gains: :func:`score_alt_windows`). Both paths give the same effects
up to float rounding.
"""

from __future__ import annotations

import argparse
import bisect
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import torch

from plantt import fastism
from plantt.annotation import Gene, read_genes
from plantt.encoding import N_CODE, encode, reverse_complement_codes
from plantt.io import InputError, PathLike, get_logger, is_gzip, iter_lines, write_tsv
from plantt.ism import (
    command_device,
    load_plantt,
    percent_change,
    sequence_scores,
)
from plantt.models import TwoTower
from plantt.progress import progress
from plantt.windows import DEFAULT_LAYOUT, PARTS, WindowLayout, open_genome

log = get_logger("variants")

SLICED_MAX_SPAN = 24  # bases: wider changes (indels shift a whole part) take full passes
# Genes whose REF windows one batched pass records for the sliced path: their SNVs then share
# batches. Bounds the recorded activations (45 MB per gene for the `paper` tower in float32).
SLICED_GENES = 8
# On a GPU, larger batches keep it busy: windows per tower pass and genes per recorded pass there
# (64 genes: about 3 GB of recorded activations for the `paper` tower).
GPU_BATCH_SIZE = 1024
GPU_SLICED_GENES = 64
CPU_BATCH_SIZE = 128


def default_batch_size(device: torch.device) -> int:
    """Windows per tower pass when none is given: larger on a GPU."""
    return GPU_BATCH_SIZE if device.type == "cuda" else CPU_BATCH_SIZE


def sliced_genes(device: torch.device) -> int:
    """Genes whose REF windows one batched pass records for the sliced path, on ``device``."""
    return GPU_SLICED_GENES if device.type == "cuda" else SLICED_GENES

VARIANT_COLUMNS = ["chrom", "pos", "id", "ref", "alt", "allele_index", "multiallelic", "filter",
                   "kind", "gene", "strand", "part", "window_index", "status", "ref_score",
                   "alt_score", "effect", "percent_change"]
GENE_COLUMNS = ["gene", "seqid", "strand", "n_variants", "n_scored", "ref_score", "sum_effect",
                "sum_percent_change", "strongest_variant", "strongest_effect"]
_VALID_BASES = set("ACGTN")


# ----------------------------------------------------------------------------------------------
# VCF
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VcfRecord:
    chrom: str
    pos: int  # 1-based, as in the file
    id: str
    ref: str
    alts: tuple[str, ...]
    line: int | None  # None: read through the tabix index (no line numbers there)
    filters: tuple[str, ...] = ()  # the failed FILTERs; () for PASS, "." or no FILTER column

    @property
    def where(self) -> str:
        return f"line {self.line} {self.chrom}:{self.pos}" if self.line else \
            f"{self.chrom}:{self.pos}"


FILTER_MODES = ("pass", "all")


# The empty block bgzip writes last; a bgzip file without it was cut short (htslib warns too).
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_POS = re.compile(r"[0-9]+")


def is_bgzf(path: PathLike) -> bool:
    """Whether the file is bgzip (blocked gzip) data: gzip with the ``BC`` extra subfield."""
    with open(path, "rb") as handle:
        head = handle.read(18)
    return len(head) >= 14 and head[:2] == b"\x1f\x8b" and bool(head[3] & 4) and \
        head[12:14] == b"BC"


def _warn_if_bgzf_truncated(path: PathLike) -> None:
    if not is_bgzf(path):
        return
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - len(BGZF_EOF)))
        tail = handle.read()
    if tail != BGZF_EOF:
        # a cut exactly between two blocks reads as valid gzip: only this marker tells
        log.warning("%s: bgzip data without its end-of-file marker: the file may be truncated",
                    path)


def tabix_index(path: PathLike) -> Path | None:
    """The tabix (``.tbi``) or CSI (``.csi``) index beside a bgzip VCF, if there is one."""
    for suffix in (".tbi", ".csi"):
        index = Path(f"{path}{suffix}")
        if index.is_file():
            return index
    return None


def read_vcf_regions(path: PathLike, regions: dict[str, list[tuple[int, int]]]
                     ) -> Iterator[VcfRecord]:
    """Records overlapping ``regions`` (0-based half-open intervals per contig), read through the
    VCF's tabix/CSI index with pysam (only those parts of the file are decompressed); each record
    once, in file order within a contig. Records are checked as :func:`read_vcf` checks them,
    named by CHROM:POS (an index gives no line numbers)."""
    index = tabix_index(path)
    if index is None or not is_bgzf(path):
        raise InputError(path, "region queries need a bgzip VCF with a tabix index "
                               "(bgzip FILE.vcf && tabix -p vcf FILE.vcf.gz)")
    if Path(path).stat().st_mtime > index.stat().st_mtime + 1:
        log.warning("%s: the index %s is older than the VCF: rebuild it with tabix -f", path,
                    index)

    try:
        tabix = pysam.TabixFile(str(path), index=str(index))
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot open with its index {index}: {err}") from None
    with tabix:
        header = list(tabix.header)
        if not header or not header[-1].startswith("#CHROM\tPOS\tID\tREF\tALT"):
            raise InputError(path, "header line must start with #CHROM POS ID REF ALT "
                                   "(tab-separated)")
        for contig in tabix.contigs:  # the file's order, as a whole-file read gives
            intervals = regions.get(contig)
            if not intervals:
                continue
            seen: set[tuple[int, int]] = set()
            for start, end in intervals:
                try:
                    lines = list(tabix.fetch(contig, max(start, 0), end))
                except (OSError, ValueError) as err:
                    raise InputError(path, f"cannot read {contig}:{start + 1}-{end} through the "
                                           f"index: {err}") from None
                for line in lines:
                    record = _parse_record(path, line, None)
                    # a long deletion can reach into two regions: report it once
                    key = (record.pos, hash(line))
                    if key not in seen:
                        seen.add(key)
                        yield record


def indexed_contigs(path: PathLike) -> list[str]:
    """The contigs that a bgzip VCF's tabix/CSI index holds records of."""

    index = tabix_index(path)
    try:
        with pysam.TabixFile(str(path), index=str(index) if index else None) as tabix:
            return list(tabix.contigs)
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot open with its index {index}: {err}") from None


def read_vcf(path: PathLike) -> Iterator[VcfRecord]:
    """Records of a VCF (plain or gzip/bgzip-compressed, detected by content): CHROM, POS, ID,
    REF, ALT and FILTER (when the line has it) are used, later columns are not read (data lines
    need at least the first five).

    Why not ``pysam.VariantFile``: htslib reads ``POS`` ``+5`` as 5 and an empty REF as ``.``
    without a word, and names no line; these records are refused here. pysam serves the region
    queries of an indexed VCF (:func:`read_vcf_regions`), whose lines are checked the same way.

    Every malformed input is an :class:`~plantt.io.InputError` naming the line: a file that is not
    text or whose gzip data is truncated or corrupt, no ``#CHROM`` header line (an empty file
    too), a header not starting ``#CHROM POS ID REF ALT``, data before the header, ``##``/``#``
    lines after it (concatenated files), fewer than five tab-separated columns, an empty CHROM,
    POS that is not an integer >= 1 (digits only), an empty REF, an empty ALT column (``.``
    means none) or an empty allele in the ALT list. A last line without a line end (a plain file cut short, or
    written without one) and bgzip data without its end-of-file block are read, with a warning.
    """
    if is_gzip(path):  # also: missing file / a directory -> InputError
        _warn_if_bgzf_truncated(path)
    header_seen = False
    last_line, last_text = 0, "\n"
    for line_no, text in iter_lines(path):
        last_line, last_text = line_no, text
        line = text.rstrip("\r\n")
        if not line.strip():
            continue
        if line.startswith("#"):
            if header_seen:
                raise InputError(path, "header line after the #CHROM header line (two VCF "
                                       "files concatenated?)", line=line_no)
            if line.startswith("##"):
                continue
            columns = line[1:].split("\t")
            if columns[:5] != ["CHROM", "POS", "ID", "REF", "ALT"]:
                raise InputError(path, "header line must start with "
                                       "#CHROM POS ID REF ALT (tab-separated)", line=line_no)
            header_seen = True
            continue
        if not header_seen:
            raise InputError(path, "data line before the #CHROM header line; is this a "
                                   "VCF file?", line=line_no)
        yield _parse_record(path, line, line_no)
    if not header_seen:
        raise InputError(path, "no #CHROM header line: empty, truncated, or not a VCF file"
                         if last_line else "empty file, expected a VCF")
    if not last_text.endswith("\n"):
        log.warning("%s, line %d: the last line has no line end: the file may be truncated",
                    path, last_line)


def _parse_record(path: PathLike, line: str, line_no: int | None) -> VcfRecord:
    fields = line.split("\t")
    if line_no is None:  # a line read through the index: name it by its position
        where = ":".join(fields[:2])[:60]
        try:
            return _parse_fields(path, fields, None)
        except InputError as err:
            raise InputError(path, f"record {where}: {err.problem}") from None
    return _parse_fields(path, fields, line_no)


def _parse_fields(path: PathLike, fields: list[str], line_no: int | None) -> VcfRecord:
    if len(fields) < 5:
        raise InputError(path, f"expected at least 5 tab-separated columns (CHROM POS ID REF "
                               f"ALT), found {len(fields)}", line=line_no)
    chrom, pos_text, vid, ref, alt = fields[:5]
    if not chrom:
        raise InputError(path, "CHROM is empty", line=line_no)
    # int() would also take '+5', ' 5', '5_000' and other scripts' digits
    if not _POS.fullmatch(pos_text):
        raise InputError(path, f"POS must be an integer (digits only), got {pos_text[:40]!r}",
                         line=line_no)
    pos = int(pos_text)
    if pos < 1:
        raise InputError(path, f"POS must be >= 1, got {pos}", line=line_no)
    if not ref or ref == ".":
        raise InputError(path, "REF is empty", line=line_no)
    if not alt:
        raise InputError(path, "ALT is empty (a record without ALT alleles has '.')", line=line_no)
    alts = tuple(alt.split(",")) if alt != "." else ()
    if any(not a for a in alts):
        raise InputError(path, f"empty allele in ALT {alt[:40]!r}", line=line_no)
    filters: tuple[str, ...] = ()
    if len(fields) > 6 and fields[6] not in ("", ".", "PASS"):
        filters = tuple(f for f in fields[6].split(";") if f and f != "PASS")
    return VcfRecord(chrom, pos, vid, ref.upper(), alts, line_no, filters)


def allele_problem(ref: str, alt: str) -> str | None:
    """Why an allele cannot be applied as a sequence change (None: it can)."""
    if alt.startswith("<"):
        return "symbolic"
    if "[" in alt or "]" in alt or (len(alt) > 1 and (alt.startswith(".") or alt.endswith("."))):
        return "breakend"
    if alt == "*":
        return "spanning_deletion"
    if not set(alt.upper()) <= _VALID_BASES or not set(ref) <= _VALID_BASES:
        return "invalid_allele"
    if alt.upper() == ref:
        return "alt_equals_ref"
    return None


@dataclass(frozen=True)
class Edit:
    """A minimal sequence change: reference bases ``[start, end)`` (0-based) become ``alt``."""

    start: int
    end: int
    alt: str

    @property
    def delta(self) -> int:
        return len(self.alt) - (self.end - self.start)

    @property
    def kind(self) -> str:
        n_ref, n_alt = self.end - self.start, len(self.alt)
        if n_ref == n_alt:
            return "snv" if n_ref == 1 else "mnv"
        if n_ref == 0:
            return "insertion"
        if n_alt == 0:
            return "deletion"
        return "complex"


def minimal_edit(pos: int, ref: str, alt: str) -> Edit:
    """Trim shared leading (VCF's anchor base), then trailing bases of an allele (``pos``
    1-based). In a repeat other trimmings give the same haplotype, so the same windows."""
    ref, alt = ref.upper(), alt.upper()
    start = pos - 1
    while ref and alt and ref[0] == alt[0]:
        ref, alt, start = ref[1:], alt[1:], start + 1
    while ref and alt and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    return Edit(start, start + len(ref), alt)


# ----------------------------------------------------------------------------------------------
# Windows on a haplotype
# ----------------------------------------------------------------------------------------------
class Genome:
    """Upper-case reference bases by 0-based half-open ranges, N past either contig end.

    The package's one genome reader, :func:`plantt.windows.open_genome`, does the reading: plain
    FASTA through pyfaidx (its ``.fai`` built through a temporary file when missing), bgzip through
    pysam; plain gzip, binary data and unindexable files are InputErrors naming the file.
    """

    def __init__(self, path: PathLike):
        self.path = path
        self._fasta = open_genome(path)
        self.lengths = self._fasta.lengths

    def close(self) -> None:
        self._fasta.close()

    def fetch(self, seqid: str, start: int, end: int) -> str:
        return self._fasta.fetch(seqid, start, end).upper()


@dataclass(frozen=True)
class Anchors:
    """A gene's TSS and TTS boundaries (coordinates *between* bases) on one haplotype.

    ``tss`` is the boundary between the upstream part and the first gene base, ``tts`` between
    the last gene base and the downstream part (plus strand: ``start`` and ``end``; minus strand:
    ``end`` and ``start``).
    """

    tss: int
    tts: int


def reference_anchors(gene: Gene) -> Anchors:
    return Anchors(gene.start, gene.end) if gene.strand == "+" else Anchors(gene.end, gene.start)


def _shift_boundary(boundary: int, edit: Edit, flank_is_left: bool) -> int | None:
    """Where a boundary lies on the ALT haplotype (None: a length change spans it)."""
    if edit.start == edit.end == boundary:  # insertion at the boundary: it goes to the flank
        return boundary + len(edit.alt) if flank_is_left else boundary
    if edit.end <= boundary:
        return boundary + edit.delta
    if edit.start >= boundary:
        return boundary
    return boundary if edit.delta == 0 else None


def alt_anchors(gene: Gene, edit: Edit) -> Anchors | None:
    ref = reference_anchors(gene)
    plus = gene.strand == "+"
    # The upstream flank is left of the TSS on the plus strand; the downstream flank right of
    # the TTS. Both are the other way round on the minus strand.
    tss = _shift_boundary(ref.tss, edit, flank_is_left=plus)
    tts = _shift_boundary(ref.tts, edit, flank_is_left=not plus)
    return None if tss is None or tts is None else Anchors(tss, tts)


def part_ranges(gene: Gene, anchors: Anchors, layout: WindowLayout = DEFAULT_LAYOUT
                ) -> list[tuple[str, int, int, int]]:
    """``(part, haplotype start, haplotype end, window start)`` of each part, in window order."""
    up, gp, down = layout.upstream, layout.gene_part, layout.downstream
    tss, tts = anchors.tss, anchors.tts
    if gene.strand == "+":
        spans = [(tss - up, tss), (tss, tss + gp), (tts - gp, tts), (tts, tts + down)]
    else:
        spans = [(tss, tss + up), (tss - gp, tss), (tts, tts + gp), (tts - down, tts)]
    offsets = np.concatenate([[0], np.cumsum(layout.part_lengths)])
    return [(name, lo, hi, int(offsets[k])) for k, (name, (lo, hi)) in
            enumerate(zip(PARTS, spans, strict=True))]


def window_indices(gene: Gene, anchors: Anchors, coords: Sequence[int],
                   layout: WindowLayout = DEFAULT_LAYOUT) -> list[tuple[int, str]]:
    """Window ``(index, part)`` of each haplotype coordinate that lies in a part (a base of a
    gene shorter than two gene parts may lie in both gene parts: both are returned)."""
    found = []
    for name, lo, hi, offset in part_ranges(gene, anchors, layout):
        for g in coords:
            if lo <= g < hi:
                index = offset + (g - lo if gene.strand == "+" else hi - 1 - g)
                found.append((index, name))
    return sorted(found)


class Haplotype:
    """A contig of the reference genome, optionally with one edit applied."""

    def __init__(self, genome: Genome, seqid: str, edit: Edit | None = None):
        self.genome, self.seqid, self.edit = genome, seqid, edit

    def fetch(self, start: int, end: int) -> str:
        edit = self.edit
        if edit is None:
            return self.genome.fetch(self.seqid, start, end)
        n_alt = len(edit.alt)
        pieces = []
        if start < edit.start:
            pieces.append(self.genome.fetch(self.seqid, start, min(end, edit.start)))
        lo, hi = max(start, edit.start), min(end, edit.start + n_alt)
        if hi > lo:
            pieces.append(edit.alt[lo - edit.start:hi - edit.start])
        lo = max(start, edit.start + n_alt)
        if end > lo:
            pieces.append(self.genome.fetch(self.seqid, lo - edit.delta, end - edit.delta))
        return "".join(pieces)


def build_window(haplotype: Haplotype, gene: Gene, anchors: Anchors,
                 layout: WindowLayout = DEFAULT_LAYOUT) -> np.ndarray:
    """The encoded, masked window of ``gene`` on ``haplotype`` (transcript orientation)."""
    parts = part_ranges(gene, anchors, layout)
    if gene.strand == "+":
        codes = encode("".join(haplotype.fetch(lo, hi) for _, lo, hi, _ in parts))
    else:  # each part read on the genome and reverse-complemented, in window order
        codes = np.concatenate([reverse_complement_codes(encode(haplotype.fetch(lo, hi)))
                                for _, lo, hi, _ in parts])
    codes[layout.masked_indices()] = N_CODE
    return codes


# ----------------------------------------------------------------------------------------------
# Matching variants to genes
# ----------------------------------------------------------------------------------------------
class GeneIndex:
    """Genes by contig, searchable by the genomic span their window reads."""

    def __init__(self, genes: Sequence[Gene], layout: WindowLayout = DEFAULT_LAYOUT):
        self.layout = layout
        by_seqid: dict[str, list[tuple[int, int, Gene]]] = {}
        for gene in genes:
            lo, hi = self.span(gene)
            by_seqid.setdefault(gene.seqid, []).append((lo, hi, gene))
        self._lo: dict[str, list[int]] = {}
        self._items: dict[str, list[tuple[int, int, Gene]]] = {}
        self._max_width: dict[str, int] = {}
        for seqid, items in by_seqid.items():
            items.sort(key=lambda item: (item[0], item[2].gene_id))
            self._items[seqid] = items
            self._lo[seqid] = [item[0] for item in items]
            self._max_width[seqid] = max(hi - lo for lo, hi, _ in items)

    def span(self, gene: Gene) -> tuple[int, int]:
        parts = part_ranges(gene, reference_anchors(gene), self.layout)
        return min(p[1] for p in parts), max(p[2] for p in parts)

    def overlapping(self, seqid: str, start: int, end: int) -> list[Gene]:
        """Genes whose window span touches ``[start, end]`` (closed: insertions at its edges)."""
        if seqid not in self._items:
            return []
        lo_values = self._lo[seqid]
        first = bisect.bisect_left(lo_values, start - self._max_width[seqid])
        last = bisect.bisect_right(lo_values, end)
        return [gene for lo, hi, gene in self._items[seqid][first:last]
                if lo <= end and hi >= start]


# ----------------------------------------------------------------------------------------------
# Effects
# ----------------------------------------------------------------------------------------------
@dataclass
class _Pending:
    row: dict
    gene_id: str
    codes: np.ndarray


def _affected_index(gene: Gene, edit: Edit, ref_anchors: Anchors, alt: Anchors,
                    layout: WindowLayout) -> tuple[int, str] | None:
    if edit.alt:
        found = window_indices(gene, alt, range(edit.start, edit.start + len(edit.alt)), layout)
    else:
        found = window_indices(gene, ref_anchors, range(edit.start, edit.end), layout)
    return found[0] if found else None


def _base_row(record: VcfRecord, allele_index: int) -> dict:
    return {"chrom": record.chrom, "pos": record.pos, "id": record.id, "ref": record.ref,
            "alt": record.alts[allele_index], "allele_index": allele_index + 1,
            "multiallelic": len(record.alts) > 1, "filter": ";".join(record.filters) or "PASS",
            "kind": "", "gene": "", "strand": "",
            "part": "", "window_index": -1, "status": "", "ref_score": np.nan,
            "alt_score": np.nan, "effect": np.nan, "percent_change": np.nan}


def _ref_matches(genome: Genome, record: VcfRecord) -> bool:
    start = record.pos - 1
    if start + len(record.ref) > genome.lengths[record.chrom]:
        return False
    return genome.fetch(record.chrom, start, start + len(record.ref)) == record.ref


def _local_edit(alt: np.ndarray, ref: np.ndarray) -> tuple[int, np.ndarray] | None:
    """``(start, codes)`` of an ALT window that differs from its REF window only within
    ``SLICED_MAX_SPAN`` bases (SNVs, MNVs), else None (indels shift a whole part)."""
    changed = np.flatnonzero(alt != ref)
    if changed.size and changed[-1] - changed[0] < SLICED_MAX_SPAN:
        lo, hi = int(changed[0]), int(changed[-1]) + 1
        return lo, alt[lo:hi]
    return None


def score_alt_windows(model: TwoTower, ref_windows: Mapping[str, np.ndarray],
                      alts: Sequence[tuple[str, np.ndarray]], ref_scores: dict[str, float],
                      batch_size: int = CPU_BATCH_SIZE, compiled: fastism.SlicedTower | None = None,
                      genes_per_pass: int = SLICED_GENES) -> np.ndarray:
    """``sum(z)`` (float64) of each ALT window ``alts[i] = (gene_id, codes)``; the REF score of
    every gene involved is added to ``ref_scores`` (kept where already there).

    The path of ``plantt variants``. With ``compiled`` (:func:`plantt.fastism.fast_ism_scorer`),
    the ALT windows of a gene that differ from its REF window only locally are scored on slices
    of one recorded pass over the REF window, and that pass also gives the gene's REF score: a
    gene costs one pass plus a fraction of one per such allele, even with a single SNV. The REF
    windows of up to ``genes_per_pass`` genes are recorded in one batched pass and their alleles
    share batches. Every other ALT window (indels, towers that cannot be sliced) takes a full
    pass, in batches across genes, and REF windows not scored yet take full passes in one batch.
    """
    out = np.full(len(alts), np.nan)
    local: dict[str, tuple[list[int], list[tuple[int, np.ndarray]]]] = {}
    if compiled is not None:
        for i, (gene_id, codes) in enumerate(alts):
            edit = _local_edit(codes, ref_windows[gene_id])
            if edit is not None:
                indices, edits = local.setdefault(gene_id, ([], []))
                indices.append(i)
                edits.append(edit)
    genes = list(local)
    for first in range(0, len(genes), genes_per_pass):
        group = genes[first:first + genes_per_pass]
        fast = fastism.FastIsm(compiled, np.stack([ref_windows[g] for g in group]))
        indices = [i for g in group for i in local[g][0]]
        edits = [edit for g in group for edit in local[g][1]]
        sequences = np.repeat(np.arange(len(group)), [len(local[g][0]) for g in group])
        sums = fast.edited_scores(edits, batch_size=batch_size, sequences=sequences)
        # relative to each gene's REF score (this pass's own where it is the first), so that the
        # rounding of the recorded pass cancels in the effect
        references = np.array([ref_scores.setdefault(g, float(score))
                               for g, score in zip(group, fast.reference_scores, strict=True)])
        out[indices] = references[sequences] + (sums - fast.reference_scores[sequences])
    new_refs = sorted({gene_id for gene_id, _ in alts} - set(ref_scores))
    if new_refs:
        scores = sequence_scores(model, np.stack([ref_windows[g] for g in new_refs]), batch_size)
        ref_scores.update(zip(new_refs, scores.tolist(), strict=True))
    full = np.flatnonzero(np.isnan(out))
    if full.size:
        out[full] = sequence_scores(model, np.stack([alts[i][1] for i in full]), batch_size)
    return out


class VariantScorer:
    """Turns VCF records into rows of the variant table, scoring ALT windows in batches."""

    def __init__(self, model: TwoTower, genome: Genome, genes: Sequence[Gene],
                 layout: WindowLayout = DEFAULT_LAYOUT, batch_size: int = CPU_BATCH_SIZE,
                 sliced: bool = True, filters: str = "pass"):
        if filters not in FILTER_MODES:
            raise ValueError(f"filters must be one of {FILTER_MODES}, got {filters!r}")
        self.pass_only = filters == "pass"
        if model.seq_len != layout.length:
            raise InputError(None, f"the model expects {model.seq_len} bases but the window "
                                   f"layout has {layout.length}")
        self.model, self.genome, self.layout, self.batch_size = model, genome, layout, batch_size
        usable = [g for g in genes if g.seqid in genome.lengths]
        if len(usable) < len(genes):
            log.warning("%d gene(s) lie on contigs absent from the FASTA and are left out",
                        len(genes) - len(usable))
        self.index = GeneIndex(usable, layout)
        self.ref_windows: dict[str, np.ndarray] = {}
        self.ref_scores: dict[str, float] = {}
        self.rows: list[dict] = []
        self.pending: list[_Pending] = []
        self.counts: dict[str, int] = {}
        self.compiled = fastism.fast_ism_scorer(model) if sliced else None
        self.genes_per_pass = sliced_genes(next(model.parameters()).device)

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def ref_window(self, gene: Gene) -> np.ndarray:
        if gene.gene_id not in self.ref_windows:
            self.ref_windows[gene.gene_id] = build_window(
                Haplotype(self.genome, gene.seqid), gene, reference_anchors(gene), self.layout)
        return self.ref_windows[gene.gene_id]

    def add(self, record: VcfRecord) -> None:
        if not record.alts:
            self._count("no_alt")
            return
        if record.chrom not in self.genome.lengths:
            self._count("unknown_contig")
            for k in range(len(record.alts)):
                self.rows.append({**_base_row(record, k), "status": "unknown_contig"})
            return
        ref_span = (record.pos - 1, record.pos - 1 + len(record.ref))
        ref_ok = None
        for k, alt in enumerate(record.alts):
            problem = "filtered" if self.pass_only and record.filters else None
            problem = problem or allele_problem(record.ref, alt)
            if problem is None:
                ref_ok = _ref_matches(self.genome, record) if ref_ok is None else ref_ok
                if not ref_ok:
                    problem = "ref_mismatch"
            if problem is not None:
                genes = self.index.overlapping(record.chrom, *ref_span)
                self._count(problem if genes else f"{problem} (in no window)")
                for gene in genes:
                    self.rows.append({**_base_row(record, k), "gene": gene.gene_id,
                                      "strand": gene.strand, "status": problem})
                continue
            self._add_allele(record, k, minimal_edit(record.pos, record.ref, alt))

    def _add_allele(self, record: VcfRecord, k: int, edit: Edit) -> None:
        touched = False
        for gene in self.index.overlapping(record.chrom, edit.start, edit.end):
            row = {**_base_row(record, k), "kind": edit.kind, "gene": gene.gene_id,
                   "strand": gene.strand}
            ref_anchors = reference_anchors(gene)
            anchors = alt_anchors(gene, edit)
            if anchors is None:
                touched = True
                self.rows.append({**row, "status": "spans_anchor"})
                continue
            where = _affected_index(gene, edit, ref_anchors, anchors, self.layout)
            if where is None:
                continue  # e.g. between the two gene parts of a long gene
            touched = True
            row["window_index"], row["part"] = where
            alt_codes = build_window(Haplotype(self.genome, gene.seqid, edit), gene, anchors,
                                     self.layout)
            if np.array_equal(alt_codes, self.ref_window(gene)):
                self.rows.append({**row, "status": "no_change", "effect": 0.0,
                                  "percent_change": 0.0})
                continue
            self.pending.append(_Pending(row, gene.gene_id, alt_codes))
            if len(self.pending) >= 16 * self.batch_size:
                self.flush()
        self._count("in a window" if touched else "in no window")

    def flush(self) -> None:
        """Score the pending ALT windows (and any REF window not scored yet)."""
        if not self.pending:
            return
        alt_scores = score_alt_windows(
            self.model, self.ref_windows, [(p.gene_id, p.codes) for p in self.pending],
            self.ref_scores, self.batch_size, self.compiled, self.genes_per_pass)
        for item, alt_score in zip(self.pending, alt_scores.tolist(), strict=True):
            ref_score = self.ref_scores[item.gene_id]
            effect = alt_score - ref_score
            self.rows.append({**item.row, "status": "ok", "ref_score": ref_score,
                              "alt_score": alt_score, "effect": effect,
                              "percent_change": float(percent_change(effect, ref_score))})
        self.pending = []

    def table(self) -> pd.DataFrame:
        """Every row so far (pending windows scored first); ``no_change`` rows get their gene's
        score as both ``ref_score`` and ``alt_score``."""
        self.flush()
        unchanged = [row for row in self.rows if row["status"] == "no_change"]
        missing = sorted({row["gene"] for row in unchanged} - set(self.ref_scores))
        if missing:
            scores = sequence_scores(self.model, np.stack([self.ref_windows[g] for g in missing]),
                                     self.batch_size)
            self.ref_scores.update(zip(missing, scores.tolist(), strict=True))
        for row in unchanged:
            row["ref_score"] = row["alt_score"] = self.ref_scores[row["gene"]]
        return pd.DataFrame(self.rows, columns=VARIANT_COLUMNS)


def variant_label(row: pd.Series) -> str:
    return f"{row['chrom']}:{row['pos']}:{row['ref']}>{row['alt']}"


def gene_table(variants: pd.DataFrame, genes: dict[str, Gene]) -> pd.DataFrame:
    """Per gene with at least one reported allele: how many were scored, the sum of their
    effects and percent changes, and the strongest one (largest |effect|)."""
    rows = []
    reported = variants[variants["gene"] != ""]
    for gene_id, part in reported.groupby("gene", sort=True):
        scored = part[part["status"].isin(["ok", "no_change"])]
        gene = genes[gene_id]
        row = {"gene": gene_id, "seqid": gene.seqid, "strand": gene.strand,
               "n_variants": len(part), "n_scored": len(scored),
               "ref_score": float(part["ref_score"].dropna().iloc[0])
               if part["ref_score"].notna().any() else np.nan,
               "sum_effect": float(scored["effect"].sum()) if len(scored) else np.nan,
               "sum_percent_change": float(scored["percent_change"].sum())
               if len(scored) else np.nan,
               "strongest_variant": "", "strongest_effect": np.nan}
        if len(scored):
            best = scored.loc[scored["effect"].abs().idxmax()]
            row["strongest_variant"] = variant_label(best)
            row["strongest_effect"] = float(best["effect"])
        rows.append(row)
    return pd.DataFrame(rows, columns=GENE_COLUMNS)


DEFAULT_MAX_REF_MISMATCH = 0.05
_SHOW = 5  # records / contigs named in a message


def _names(names: Sequence[str], n: int = _SHOW) -> str:
    shown = ", ".join(names[:n])
    return shown + (f", ... ({len(names)} in all)" if len(names) > n else "")


def _strip_chr(name: str) -> str:
    return name[3:] if name[:3].lower() == "chr" else name


def _contig_hint(vcf_contigs: Sequence[str], genome_contigs: Sequence[str]) -> str:
    """A hint when the two namings differ only by a ``chr`` prefix (``chr1`` vs ``1``)."""
    genome_bare = {_strip_chr(c) for c in genome_contigs}
    if not any(_strip_chr(c) in genome_bare for c in vcf_contigs):
        return ""
    vcf_prefixed = any(c != _strip_chr(c) for c in vcf_contigs)
    genome_prefixed = any(c != _strip_chr(c) for c in genome_contigs)
    if vcf_prefixed == genome_prefixed:
        return " (they differ in the case of a 'chr' prefix: rename the VCF's contigs)"
    has, lacks = ("the VCF", "the FASTA") if vcf_prefixed else ("the FASTA", "the VCF")
    return (f" -- the names differ only by a 'chr' prefix, which {has} uses and {lacks} does not: "
            "rename the VCF's contigs to the FASTA's (e.g. bcftools annotate --rename-chrs)")


def check_vcf_against_genome(vcf: PathLike, genome: Genome,
                             max_ref_mismatch: float = DEFAULT_MAX_REF_MISMATCH,
                             regions: dict[str, list[tuple[int, int]]] | None = None) -> None:
    """Read the whole VCF once (only its ``regions`` through the index, when given) so that a bad
    file fails before any scoring, and check that it refers to this genome. InputErrors naming
    the VCF:

    * records exist but none of their contigs is in the FASTA (both namings are listed, with a
      hint when they differ by a ``chr`` prefix);
    * more than ``max_ref_mismatch`` (a share, default 0.05) of the records whose REF is
      compared (those with an allele that could be applied) have a REF that differs from the
      genome -- the mark of a VCF called on another genome or assembly version. One mismatching
      record among others is never enough on its own (in a small VCF one record is already
      several percent), but a VCF whose every compared record mismatches always is.

    Below that share, a warning gives the number of mismatching records and the first few (their
    alleles get status ``ref_mismatch``); records on contigs absent from the FASTA get status
    ``unknown_contig``, with a warning naming those contigs.
    """
    if not 0.0 <= max_ref_mismatch <= 1.0:
        raise ValueError(f"max_ref_mismatch must be a share in [0, 1], got {max_ref_mismatch}")
    per_contig: dict[str, int] = {}
    compared = 0
    mismatched: list[VcfRecord] = []
    n_mismatched = 0
    records = read_vcf(vcf) if regions is None else read_vcf_regions(vcf, regions)
    for record in records:
        per_contig[record.chrom] = per_contig.get(record.chrom, 0) + 1
        if record.chrom not in genome.lengths or \
                not any(allele_problem(record.ref, alt) is None for alt in record.alts):
            continue
        compared += 1
        if not _ref_matches(genome, record):
            n_mismatched += 1
            if len(mismatched) < _SHOW:
                mismatched.append(record)
    vcf_contigs = list(per_contig)
    if regions is not None:  # the index knows every contig with records, read or not
        counted = dict.fromkeys(indexed_contigs(vcf), 0)
        per_contig = {**counted, **per_contig}
        vcf_contigs = list(counted) or vcf_contigs
    absent = [c for c in vcf_contigs if c not in genome.lengths]
    if vcf_contigs and len(absent) == len(vcf_contigs):
        genome_contigs = list(genome.lengths)
        raise InputError(vcf, f"none of the VCF's contigs ({_names(vcf_contigs)}) is in the "
                              f"FASTA {genome.path} ({_names(genome_contigs)})"
                              f"{_contig_hint(vcf_contigs, genome_contigs)}")
    if absent and regions is not None:
        log.warning("%s: the records on %d contig(s) absent from the FASTA %s are not read (the "
                    "index is queried over the gene windows only): %s", vcf, len(absent),
                    genome.path, _names(absent))
    elif absent:
        log.warning("%s: %d record(s) on %d contig(s) absent from the FASTA %s, reported as "
                    "unknown_contig: %s", vcf, sum(per_contig[c] for c in absent), len(absent),
                    genome.path, _names(absent))
    if not n_mismatched:
        return
    examples = "; ".join(
        f"{r.where} REF {r.ref[:20]} but the FASTA has "
        f"{_genome_ref(genome, r)[:20] or 'nothing (past the contig end)'}" for r in mismatched)
    share = n_mismatched / compared
    if (n_mismatched > max(max_ref_mismatch * compared, 1)) or n_mismatched == compared:
        raise InputError(vcf, f"REF differs from the FASTA {genome.path} in {n_mismatched} of "
                              f"{compared} record(s) ({share:.0%}, more than the "
                              f"{max_ref_mismatch:.0%} allowed): is it the genome (and assembly "
                              f"version) the VCF was called on? First: {examples}")
    log.warning("%s: REF differs from the FASTA in %d of %d record(s) (%.1f%%), reported as "
                "ref_mismatch: %s", vcf, n_mismatched, compared, 100 * share, examples)


def _genome_ref(genome: Genome, record: VcfRecord) -> str:
    start = record.pos - 1
    end = min(start + len(record.ref), genome.lengths[record.chrom])
    return genome.fetch(record.chrom, start, end) if end > start else ""


def window_regions(genes: Sequence[Gene], layout: WindowLayout = DEFAULT_LAYOUT
                   ) -> dict[str, list[tuple[int, int]]]:
    """Per contig, the merged genomic spans that the genes' windows read (one base wider on each
    side, for insertions at their edges): the parts of a VCF that can change a window."""
    index = GeneIndex(genes, layout)
    spans: dict[str, list[tuple[int, int]]] = {}
    for gene in genes:
        lo, hi = index.span(gene)
        spans.setdefault(gene.seqid, []).append((lo - 1, hi + 1))
    merged: dict[str, list[tuple[int, int]]] = {}
    for contig, intervals in spans.items():
        out: list[tuple[int, int]] = []
        for start, end in sorted(intervals):
            if out and start <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], end))
            else:
                out.append((start, end))
        merged[contig] = out
    return merged


def score_vcf(model: TwoTower, vcf: PathLike, fasta: PathLike, genes: dict[str, Gene],
              layout: WindowLayout = DEFAULT_LAYOUT, batch_size: int = CPU_BATCH_SIZE, sliced: bool = True,
              max_ref_mismatch: float = DEFAULT_MAX_REF_MISMATCH, filters: str = "pass",
              use_index: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The variant table and the gene table of every allele of ``vcf`` that touches a window
    (``sliced=False``: every ALT window by a full tower pass, see the module docstring).

    The VCF is first checked against the genome (:func:`check_vcf_against_genome`): an
    InputError when none of its contigs is in the FASTA, or when REF differs from the genome in
    more than ``max_ref_mismatch`` (a share, default 0.05) of the records; fewer mismatches are
    a warning and rows of status ``ref_mismatch``.
    """
    genome = Genome(fasta)
    try:
        regions = None
        if use_index and is_gzip(vcf) and is_bgzf(vcf) and tabix_index(vcf) is not None:
            # an indexed VCF (a whole genome's calls, say): read only what the windows cover
            regions = window_regions([g for g in genes.values() if g.seqid in genome.lengths],
                                     layout)
            log.info("%s: indexed, reading the %d window regions only", vcf,
                     sum(len(v) for v in regions.values()))
        check_vcf_against_genome(vcf, genome, max_ref_mismatch, regions)
        scorer = VariantScorer(model, genome, list(genes.values()), layout, batch_size, sliced,
                               filters)
        records = read_vcf(vcf) if regions is None else read_vcf_regions(vcf, regions)
        for record in progress(records, desc="variants", unit="record", log=log, every=1000):
            scorer.add(record)
        variants = scorer.table()
    finally:
        genome.close()
    for key, count in sorted(scorer.counts.items()):
        log.info("alleles %s: %d", key, count)
    not_used = variants[~variants["status"].isin(["ok", "no_change"])]
    if len(not_used):
        log.warning("%d allele row(s) not scored: %s", len(not_used), ", ".join(
            f"{status} {n}" for status, n in not_used["status"].value_counts().sort_index()
            .items()))
    return variants, gene_table(variants, genes)


def run(args: argparse.Namespace) -> int:
    device = command_device(args)
    model = load_plantt(args.model, device)
    genes = read_genes(Path(args.annotation))
    layout = WindowLayout(args.upstream, args.gene_part, args.downstream, args.mask)
    batch_size = args.batch_size or default_batch_size(device)
    variants, per_gene = score_vcf(model, args.vcf, args.fasta, genes, layout, batch_size,
                                   max_ref_mismatch=args.max_ref_mismatch, filters=args.filter,
                                   use_index=not args.no_index)
    write_tsv(variants, args.out, float_format="%.6g")
    if args.gene_table:
        write_tsv(per_gene, args.gene_table, float_format="%.6g")
    log.info("%d allele row(s) (%d scored) over %d gene(s) written to %s", len(variants),
             int((variants["status"] == "ok").sum()), len(per_gene), args.out)
    return 0
