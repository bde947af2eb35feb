"""Read gene models from GFF3 or GTF into one simple structure.

Coordinates are stored 0-based, half-open (``start`` inclusive, ``end`` exclusive), like pysam and
pyfaidx slices; GFF/GTF columns 4 and 5 are 1-based and inclusive, so ``start = col4 - 1`` and
``end = col5``. A gene's TSS is its 5'-most base in transcript orientation (``start`` on the plus
strand, ``end - 1`` on the minus strand) and its TTS the 3'-most (``end - 1`` or ``start``).

GFF3: ``gene`` features define genes; ``mRNA``/``transcript`` features name their gene with
``Parent``; ``exon`` and ``CDS`` name their transcript with ``Parent`` (several comma-separated parents
allowed). GTF: genes and transcripts are taken from the ``gene_id`` and ``transcript_id`` attributes of
``exon``/``CDS`` lines, and a gene's span, when no ``gene`` line exists, is the span of its exons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from plantt.io import InputError, PathLike, open_text

TRANSCRIPT_TYPES = {"mRNA", "transcript"}


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


def read_genes(path: PathLike, seqids: set[str] | None = None) -> dict[str, Gene]:
    """Read all genes of a GFF3 (or GTF, chosen by the ``.gtf`` suffix) into ``{gene_id: Gene}``.

    Malformed lines raise :class:`InputError` naming the file and line. ``seqids`` optionally
    restricts the result to genes on those sequences.
    """
    gtf = is_gtf(path)
    genes: dict[str, Gene] = {}
    transcript_gene: dict[str, str] = {}
    pending_parts: list[tuple[str, str, int, int, int]] = []  # (type, parent, start, end, line)
    gtf_spans: dict[str, list] = {}
    try:
        handle = open_text(path)
    except FileNotFoundError:
        raise InputError(path, "annotation file not found") from None
    with handle:
        for line_no, line in enumerate(handle, start=1):
            if line.startswith("##FASTA"):
                break
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.rstrip("\n\r").split("\t")
            if len(cols) != 9:
                raise InputError(path, f"expected 9 tab-separated columns, found {len(cols)}",
                                 line=line_no)
            seqid, _source, ftype, start_s, end_s, _score, strand, _phase, attr_text = cols
            try:
                start, end = int(start_s) - 1, int(end_s)
            except ValueError:
                raise InputError(path, f"start and end must be integers, got {start_s!r} and "
                                       f"{end_s!r}", line=line_no) from None
            if start < 0 or end <= start:
                raise InputError(path, f"invalid coordinates {start_s}-{end_s} (expected "
                                       "1 <= start <= end)", line=line_no)
            attrs = _parse_attributes(attr_text, gtf, path, line_no)
            if gtf:
                if ftype not in {"gene", "transcript", "exon", "CDS"}:
                    continue
                gene_id = attrs.get("gene_id")
                if not gene_id:
                    raise InputError(path, f"{ftype} line without a gene_id attribute",
                                     line=line_no)
                if strand not in "+-" or len(strand) != 1:
                    raise InputError(path, f"strand must be + or -, got {strand!r}", line=line_no)
                span = gtf_spans.setdefault(gene_id, [seqid, start, end, strand, False])
                if ftype == "gene":
                    span[1:5] = [start, end, strand, True]
                elif not span[4]:
                    span[1], span[2] = min(span[1], start), max(span[2], end)
                if ftype in {"exon", "CDS"}:
                    tid = attrs.get("transcript_id")
                    if not tid:
                        raise InputError(path, f"{ftype} line without a transcript_id attribute",
                                         line=line_no)
                    transcript_gene[tid] = gene_id
                    pending_parts.append((ftype, tid, start, end, line_no))
                continue
            if ftype == "gene":
                gene_id = attrs.get("ID")
                if not gene_id:
                    raise InputError(path, "gene line without an ID attribute", line=line_no)
                if strand not in ("+", "-"):
                    raise InputError(path, f"strand must be + or -, got {strand!r}",
                                     line=line_no, record=gene_id)
                if gene_id in genes:
                    raise InputError(path, "duplicate gene ID", line=line_no, record=gene_id)
                genes[gene_id] = Gene(gene_id, seqid, start, end, strand)
            elif ftype in TRANSCRIPT_TYPES:
                tid, parent = attrs.get("ID"), attrs.get("Parent")
                if not tid or not parent:
                    raise InputError(path, f"{ftype} line needs ID and Parent attributes",
                                     line=line_no)
                transcript_gene[tid] = parent.split(",")[0]
            elif ftype in {"exon", "CDS"}:
                parent = attrs.get("Parent")
                if not parent:
                    raise InputError(path, f"{ftype} line without a Parent attribute",
                                     line=line_no)
                for p in parent.split(","):
                    pending_parts.append((ftype, p, start, end, line_no))
    if gtf:
        for gene_id, (seqid, start, end, strand, _) in gtf_spans.items():
            genes[gene_id] = Gene(gene_id, seqid, start, end, strand)
    for ftype, tid, start, end, line_no in pending_parts:
        gene_id = transcript_gene.get(tid)
        if gene_id is None:
            continue  # exon of a non-coding or otherwise ignored transcript type
        gene = genes.get(gene_id)
        if gene is None:
            raise InputError(path, f"transcript {tid!r} names gene {gene_id!r}, which has no "
                                   "gene line", line=line_no)
        transcript = gene.transcripts.setdefault(tid, Transcript(tid))
        (transcript.exons if ftype == "exon" else transcript.cds).append((start, end))
    if seqids is not None:
        genes = {gid: g for gid, g in genes.items() if g.seqid in seqids}
    return genes


def genes_by_seqid(genes: dict[str, Gene]) -> dict[str, list[Gene]]:
    """Group genes by sequence, each list sorted by start."""
    grouped: dict[str, list[Gene]] = {}
    for gene in genes.values():
        grouped.setdefault(gene.seqid, []).append(gene)
    for gene_list in grouped.values():
        gene_list.sort(key=lambda g: (g.start, g.end))
    return grouped
