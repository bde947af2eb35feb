"""The genome's sequences and their lengths (its FASTA index), checked before anything maps to it.

A BAM stores positions as signed 32-bit integers, so no chromosome longer than 2^31 - 1 bp
(2,147,483,647) can hold alignments: rule ``genome_fai`` indexes each genome FASTA and refuses such
a chromosome before STAR builds its index (and the workflow, when it starts, already refuses one
that a ``.fai`` beside the FASTA lists). The workflow does not split chromosomes: split one at a
gene-free point yourself (FASTA and annotation together) and map to the parts. Chromosomes
between 2^29 bp and that limit are fine: the BAMs get CSI indexes (a BAI holds no position past
2^29 = 536,870,912).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from plantt.io import InputError, PathLike, atomic_path

BAM_MAX_LENGTH = 2**31 - 1  # 2,147,483,647: the longest reference sequence a BAM can hold
BAI_MAX_POSITION = 2**29  # 536,870,912: positions past it need a CSI index


def read_fai(path: PathLike) -> dict[str, int]:
    """``{sequence name: length}`` of a FASTA index (``.fai``: name, length, offset, bases per
    line, bytes per line; tab-separated), in file order. A malformed or empty index raises
    :class:`InputError` naming the file and the line."""
    lengths: dict[str, int] = {}
    with open(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2 or not fields[1].isdigit():
                raise InputError(path, "expected a FASTA index line: name, length, offset, bases "
                                       f"per line, bytes per line (tab-separated), got {line!r}",
                                 line=line_no)
            if fields[0] in lengths:
                raise InputError(path, f"sequence {fields[0]!r} is listed twice", line=line_no)
            lengths[fields[0]] = int(fields[1])
    if not lengths:
        raise InputError(path, "no sequences (an empty FASTA index)")
    return lengths


def check_bam_lengths(lengths: Mapping[str, int], fasta: PathLike) -> None:
    """Refuse a genome with a chromosome longer than a BAM can hold (:data:`BAM_MAX_LENGTH`),
    naming the FASTA, the chromosome, its length and the limit."""
    for name, length in lengths.items():
        if length > BAM_MAX_LENGTH:
            raise InputError(
                fasta,
                f"chromosome {name!r} is {length:,} bp long, longer than a BAM can hold "
                f"({BAM_MAX_LENGTH:,} bp = 2^31 - 1): STAR could index it but no alignment past "
                f"that position can be written. The workflow does not split chromosomes: split "
                f"this one at a gene-free point into parts of at most {BAM_MAX_LENGTH:,} bp, in "
                f"the FASTA and the annotation together (annotation coordinates shifted to each "
                f"part), and give those files in the species sheet (config/README.md, \"Long "
                f"chromosomes\")", record=name)


def check_existing_index(fasta: PathLike) -> None:
    """Check the lengths in the ``.fai`` beside a genome FASTA (plain or bgzip), if there is one at
    least as new as the FASTA (an older one may describe another version of it): the workflow calls
    this when it starts, so that a chromosome too long for a BAM stops the run before any job."""
    fai = Path(f"{fasta}.fai")
    try:
        if fai.stat().st_mtime < Path(fasta).stat().st_mtime:
            return
    except FileNotFoundError:
        return
    check_bam_lengths(read_fai(fai), fasta)


def index_genome(fasta: PathLike, fai: PathLike) -> dict[str, int]:
    """Write the FASTA index of a plain genome FASTA to ``fai`` (``samtools faidx``, through a
    temporary file) and return its lengths; a chromosome longer than a BAM can hold
    (:func:`check_bam_lengths`) or a file samtools cannot index raises :class:`InputError`, and
    then no ``fai`` is written."""
    import pysam

    if not Path(fasta).is_file():
        raise InputError(fasta, "no such genome FASTA")
    with atomic_path(fai, suffix=".fai") as tmp:
        try:
            pysam.faidx(str(fasta), "--fai-idx", str(tmp))
        except pysam.SamtoolsError:
            line, problem = fasta_format_problem(fasta)
            raise InputError(fasta, f"samtools faidx cannot index it: {problem}",
                             line=line) from None
        lengths = read_fai(tmp)
        check_bam_lengths(lengths, fasta)
    return lengths


def fasta_format_problem(fasta: PathLike) -> tuple[int | None, str]:
    """Why ``samtools faidx`` refuses a plain FASTA: the first line that breaks its rules, and what
    was expected (read only after it failed)."""
    expected = ("expected '>name' headers, each followed by sequence lines of one length (the "
                "last line of a record may be shorter)")
    width: int | None = None
    short_at: int | None = None  # a shorter line seen: the record must end there
    with open(fasta, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            line = raw.rstrip(b"\r\n")
            if line.startswith(b">"):
                width, short_at = None, None
                continue
            if line_no == 1:
                return 1, f"{expected}; the file does not start with '>'"
            if not line:
                continue
            if short_at is not None:
                return line_no, (f"{expected}; line {short_at} is shorter than the lines before "
                                 "it but is not the record's last")
            if width is None:
                width = len(line)
            elif len(line) > width:
                return line_no, f"{expected}; this line is longer than the lines before it"
            elif len(line) < width:
                short_at = line_no
    return None, f"{expected} (samtools faidx names the offending line)"
