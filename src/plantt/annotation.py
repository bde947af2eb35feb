"""Read gene models from GFF3 or GTF into one simple structure.

Coordinates are stored 0-based, half-open (``start`` inclusive, ``end`` exclusive), like pysam and
pyfaidx slices; GFF/GTF columns 4 and 5 are 1-based and inclusive, so ``start = col4 - 1`` and
``end = col5``. A gene's TSS is its 5'-most base in transcript orientation (``start`` on the plus
strand, ``end - 1`` on the minus strand) and its TTS the 3'-most (``end - 1`` or ``start``).

GFF3: ``gene`` features define genes; ``mRNA``/``transcript`` features name their gene with
``Parent``; ``exon`` and ``CDS`` name their transcript with ``Parent`` (several comma-separated parents
allowed; an exon whose Parent is a gene makes, with the gene's other such exons, a transcript named
after the gene). Features whose Parent is a feature of another type (``tRNA``, ``ncRNA_gene`` ...) are
not read. GTF: genes and transcripts are taken from the ``gene_id`` and ``transcript_id`` attributes of
``exon``/``CDS`` lines, and a gene's span, when no ``gene`` line exists, is the span of its exons.

What is refused (:class:`~plantt.io.InputError` naming the file, the line and the record), because
any reading of it would be a guess: a gene whose features lie on two contigs or two strands (GFF3: a
feature on another contig or strand than one of its Parents, or two lines of one ID that disagree;
GTF: two lines with one ``gene_id`` that disagree; features with strand ``.`` or ``?`` agree with
either strand), a GFF3 ``Parent`` that is the ID of no feature in the file (the error counts them and
names the first five), a GTF ``transcript_id`` under two different ``gene_id`` values, and a second
GTF ``gene`` line for one gene. Trans-spliced genes (exons on both strands, as some organelle genes)
are therefore refused too: leave them out of the annotation.

Why our own reader, not gffutils or pyranges: on a generated GFF3 of 8,000 genes (24,000 lines,
``benchmarks/scale.py``'s annotation) this reader takes 0.40 s and gffutils, only to build its
database (in memory, no inference) 3.1 s, 8x slower, before any transcript lengths; neither library
refuses the cases above with a line number (gffutils merges or renames duplicated IDs by a strategy,
pyranges reads columns and leaves the Parent graph to the caller). Measured 2026-12-02 on the 2-core
CI machine kind.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from plantt.io import InputError, PathLike, iter_lines

TRANSCRIPT_TYPES = {"mRNA", "transcript"}
GTF_TYPES = {"gene", "transcript", "exon", "CDS"}


@dataclass
class Transcript:
    transcript_id: str
    exons: list[tuple[int, int]] = field(default_factory=list)
    cds: list[tuple[int, int]] = field(default_factory=list)

    @property
    def exonic_length(self) -> int:
        return sum(end - start for start, end in _merge(self.exons))


@dataclass
class Gene:
    gene_id: str
    seqid: str
    start: int  # 0-based inclusive
    end: int  # 0-based exclusive
    strand: str  # "+" or "-"
    transcripts: dict[str, Transcript] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def tss(self) -> int:
        """0-based position of the first transcribed base."""
        return self.start if self.strand == "+" else self.end - 1

    @property
    def tts(self) -> int:
        """0-based position of the last transcribed base."""
        return self.end - 1 if self.strand == "+" else self.start

    @property
    def transcript_length(self) -> int:
        """Exonic length of the longest transcript; the gene span when no exons are annotated."""
        lengths = [t.exonic_length for t in self.transcripts.values() if t.exons]
        return max(lengths) if lengths else self.length


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _parse_attributes(text: str, gtf: bool, path: PathLike, line_no: int) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for part in text.strip().strip(";").split(";"):
        part = part.strip()
        if not part:
            continue
        if gtf:
            key, _, value = part.partition(" ")
            value = value.strip().strip('"')
        else:
            key, sep, value = part.partition("=")
            if not sep:
                raise InputError(path, f"attribute {part!r} is not of the form key=value "
                                       "(is this a GTF file named .gff?)", line=line_no)
            value = unquote(value)
        attrs[key.strip()] = value
    return attrs


def is_gtf(path: PathLike) -> bool:
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(".gtf")


_DIGITS = re.compile(r"[0-9]+")
# Strands that do not contradict a parent's: GFF3 allows "." (unstranded) and "?" (unknown).
_UNSTRANDED = {".", "?"}


def _where(seqid: str, strand: str) -> str:
    return f"{seqid!r} strand {strand}"


def _parse_line(path: PathLike, line_no: int, line: str) -> tuple[str, str, int, int, str, str]:
    """(seqid, type, 0-based start, end, strand, attribute text) of one feature line."""
    cols = line.rstrip("\n\r").split("\t")
    if len(cols) != 9:
        raise InputError(path, f"expected 9 tab-separated columns, found {len(cols)}",
                         line=line_no)
    seqid, _source, ftype, start_s, end_s, _score, strand, _phase, attr_text = cols
    # int() alone would also take " 12", "+12" and "1_2"; coordinates are plain digits.
    if not (_DIGITS.fullmatch(start_s) and _DIGITS.fullmatch(end_s)):
        raise InputError(path, f"start and end must be integers, got {start_s!r} and "
                               f"{end_s!r}", line=line_no)
    start, end = int(start_s) - 1, int(end_s)
    if start < 0 or end <= start:
        raise InputError(path, f"invalid coordinates {start_s}-{end_s} (expected "
                               "1 <= start <= end)", line=line_no)
    if not seqid:
        raise InputError(path, "empty sequence name in column 1", line=line_no)
    return seqid, ftype, start, end, strand, attr_text


def _feature_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """Numbered feature lines (no comments or blank lines), up to a ``##FASTA`` section."""
    with contextlib.closing(iter_lines(path)) as lines:
        for line_no, line in lines:
            if line.startswith("##FASTA"):
                return
            if line.strip() and not line.startswith("#"):
                yield line_no, line


def read_genes(path: PathLike, seqids: set[str] | None = None) -> dict[str, Gene]:
    """Read all genes of a GFF3 (or GTF, chosen by the ``.gtf`` suffix) into ``{gene_id: Gene}``.

    Plain or gzip files (gzip recognised by content). Malformed lines, non-text data and truncated
    gzip raise :class:`InputError` naming the file and line; so do features of one gene on
    different contigs or strands (GTF: any two lines with the same ``gene_id``; GFF3: a feature and
    any of its ``Parent`` features, or two lines sharing an ``ID``) and, in GFF3, a ``Parent``
    that is not the ``ID`` of any feature in the file; and a file without genes. ``seqids``
    optionally restricts the result to genes on those sequences (which may leave none).
    """
    gtf = is_gtf(path)
    genes = _read_gtf(path) if gtf else _read_gff3(path)
    if not genes:
        # An empty annotation (or one of another format) would give empty results downstream.
        expected = "exon or CDS lines with a gene_id" if gtf else "'gene' feature lines"
        raise InputError(path, f"no genes found; expected {expected}"
                               + ("" if gtf else " (a GTF file must be named .gtf or .gtf.gz)"))
    if seqids is not None:
        genes = {gid: g for gid, g in genes.items() if g.seqid in seqids}
    return genes


def _read_gtf(path: PathLike) -> dict[str, Gene]:
    # gene_id -> [seqid, start, end, strand, has a gene line, line of its first feature]
    spans: dict[str, list] = {}
    transcript_gene: dict[str, tuple[str, int]] = {}  # transcript_id -> (gene_id, line)
    parts: list[tuple[str, str, int, int]] = []  # (type, transcript_id, start, end)
    for line_no, line in _feature_lines(path):
        seqid, ftype, start, end, strand, attr_text = _parse_line(path, line_no, line)
        attrs = _parse_attributes(attr_text, True, path, line_no)
        gene_id = attrs.get("gene_id")
        read = ftype in GTF_TYPES
        if not read and not gene_id:
            continue
        if not gene_id:
            raise InputError(path, f"{ftype} line without a gene_id attribute", line=line_no)
        if read and strand not in ("+", "-"):
            raise InputError(path, f"strand must be + or -, got {strand!r}", line=line_no,
                             record=gene_id)
        span = spans.get(gene_id)
        if span is None:
            if not read:
                continue  # e.g. a start_codon line of a gene that has no exon line
            span = spans[gene_id] = [seqid, start, end, strand, False, line_no]
        elif seqid != span[0] or (strand != span[3] and strand not in _UNSTRANDED):
            raise InputError(
                path, f"{ftype} of gene {gene_id!r} is on {_where(seqid, strand)}, but the gene's "
                      f"first feature (line {span[5]}) is on {_where(span[0], span[3])}; expected "
                      "every feature of a gene on one contig and strand", line=line_no,
                record=gene_id)
        if not read:
            continue
        if ftype == "gene":
            if span[4]:
                raise InputError(path, "second gene line for this gene_id", line=line_no,
                                 record=gene_id)
            span[1:5] = [start, end, strand, True]
        elif not span[4]:
            span[1], span[2] = min(span[1], start), max(span[2], end)
        tid = attrs.get("transcript_id")
        if ftype in {"exon", "CDS"} and not tid:
            raise InputError(path, f"{ftype} line without a transcript_id attribute",
                             line=line_no, record=gene_id)
        if tid and ftype != "gene":
            owner, first = transcript_gene.setdefault(tid, (gene_id, line_no))
            if owner != gene_id:
                raise InputError(path, f"transcript {tid!r} is given gene_id {gene_id!r} here "
                                       f"but {owner!r} on line {first}; expected one gene per "
                                       "transcript", line=line_no, record=tid)
            if ftype != "transcript":
                parts.append((ftype, tid, start, end))
    genes = {gene_id: Gene(gene_id, seqid, start, end, strand)
             for gene_id, (seqid, start, end, strand, _, _) in spans.items()}
    for ftype, tid, start, end in parts:
        gene = genes[transcript_gene[tid][0]]
        transcript = gene.transcripts.setdefault(tid, Transcript(tid))
        (transcript.exons if ftype == "exon" else transcript.cds).append((start, end))
    return genes


def _read_gff3(path: PathLike) -> dict[str, Gene]:
    genes: dict[str, Gene] = {}
    # ID -> (type, seqid, strand, line) of its first line: every Parent is checked against it.
    features: dict[str, tuple[str, str, str, int]] = {}
    # (type, ID or "", parents, seqid, strand, start, end, line) of every feature with a Parent
    children: list[tuple[str, str, list[str], str, str, int, int, int]] = []
    for line_no, line in _feature_lines(path):
        seqid, ftype, start, end, strand, attr_text = _parse_line(path, line_no, line)
        attrs = _parse_attributes(attr_text, False, path, line_no)
        fid, parent = attrs.get("ID", ""), attrs.get("Parent", "")
        if ftype == "gene":
            if not fid:
                raise InputError(path, "gene line without an ID attribute", line=line_no)
            if strand not in ("+", "-"):
                raise InputError(path, f"strand must be + or -, got {strand!r}",
                                 line=line_no, record=fid)
            if fid in genes:
                raise InputError(path, "duplicate gene ID", line=line_no, record=fid)
            genes[fid] = Gene(fid, seqid, start, end, strand)
        elif ftype in TRANSCRIPT_TYPES and (not fid or not parent):
            raise InputError(path, f"{ftype} line needs ID and Parent attributes",
                             line=line_no)
        elif ftype in {"exon", "CDS"} and not parent:
            raise InputError(path, f"{ftype} line without a Parent attribute", line=line_no)
        if fid:
            # Lines sharing an ID are the parts of one discontinuous feature (e.g. a CDS).
            first = features.setdefault(fid, (ftype, seqid, strand, line_no))
            if first[1] != seqid or (first[2] != strand and strand not in _UNSTRANDED
                                     and first[2] not in _UNSTRANDED):
                raise InputError(path, f"{ftype} {fid!r} is on {_where(seqid, strand)} but its "
                                       f"line {first[3]} is on {_where(first[1], first[2])}; "
                                       "expected the lines of one feature on one contig and "
                                       "strand", line=line_no, record=fid)
        if parent:
            parents = [p for p in parent.split(",") if p]
            children.append((ftype, fid, parents, seqid, strand, start, end, line_no))
    _check_parents(path, features, children)
    transcript_gene: dict[str, str] = {}
    for ftype, fid, parents, *_ in children:
        if ftype in TRANSCRIPT_TYPES and parents[0] in genes:
            transcript_gene[fid] = parents[0]
    for ftype, _fid, parents, _seqid, _strand, start, end, _line in children:
        if ftype not in {"exon", "CDS"}:
            continue
        for tid in parents:
            # An exon whose Parent is the gene itself: the gene's exons form one transcript.
            gene_id = transcript_gene.get(tid, tid if tid in genes else None)
            if gene_id is None:
                continue  # exon of a transcript type that is not read (tRNA, ncRNA, ...)
            transcript = genes[gene_id].transcripts.setdefault(tid, Transcript(tid))
            (transcript.exons if ftype == "exon" else transcript.cds).append((start, end))
    return genes


def _check_parents(path: PathLike, features: dict[str, tuple[str, str, str, int]],
                   children: list[tuple[str, str, list[str], str, str, int, int, int]]) -> None:
    """Every Parent must be a feature of the file, on the child's contig and strand."""
    missing: list[tuple[str, str, str, int]] = []  # (type, ID, missing parent, line)
    for ftype, fid, parents, seqid, strand, _start, _end, line_no in children:
        for p in parents:
            found = features.get(p)
            if found is None:
                missing.append((ftype, fid, p, line_no))
                continue
            ptype, pseqid, pstrand, pline = found
            if pseqid != seqid or (pstrand != strand and strand not in _UNSTRANDED
                                   and pstrand not in _UNSTRANDED):
                name = f"{ftype} {fid!r}" if fid else f"{ftype} with Parent={p}"
                raise InputError(path, f"{name} is on {_where(seqid, strand)} but its parent "
                                       f"{ptype} {p!r} (line {pline}) is on "
                                       f"{_where(pseqid, pstrand)}; expected every feature of a "
                                       "gene on the gene's contig and strand", line=line_no,
                                 record=fid or p)
    if missing:
        ftype, fid, p, line_no = missing[0]
        examples = ", ".join(f"{t} {i or '(no ID)'} -> {q!r} (line {n})"
                             for t, i, q, n in missing[:5])
        raise InputError(path, f"{len(missing)} feature(s) name a Parent that is not the ID of "
                               f"any feature in the file: {examples}"
                               + (" ..." if len(missing) > 5 else "")
                               + "; expected every Parent to be defined in the file (was it "
                                 "truncated, or filtered without the parent lines?)",
                         line=line_no, record=fid or p)


def genes_by_seqid(genes: dict[str, Gene]) -> dict[str, list[Gene]]:
    """Group genes by sequence, each list sorted by start."""
    grouped: dict[str, list[Gene]] = {}
    for gene in genes.values():
        grouped.setdefault(gene.seqid, []).append(gene)
    for gene_list in grouped.values():
        gene_list.sort(key=lambda g: (g.start, g.end))
    return grouped
