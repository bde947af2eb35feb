"""What a job asks a cluster for: memory (MB) and time (minutes) from the sizes of its inputs.

The workflow's ``resources:`` callables (``workflow/rules/common.smk``) call these, so that a SLURM
job of a 4.5-Gb pea genome asks for what STAR needs and a job of the demo for little.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

MB = 1_000_000  # sbatch --mem is in megabytes (Snakemake's mem_mb)
# Our BAM readers go through about 400,000 alignments a second on one core (benchmarks/README.md,
# "Real genomes"); a BAM alignment takes about 30 bytes on disk.
ALIGNMENTS_PER_SECOND = 400_000
BAM_BYTES_PER_ALIGNMENT = 30


def star_sa_index_bases(genome_length: int) -> int:
    """--genomeSAindexNbases: min(14, log2(genome length) / 2 - 1), the STAR manual's advice."""
    return max(4, min(14, int(math.log2(max(genome_length, 2)) / 2 - 1)))


# The read length the STAR index assumes (--genomeChrBinNbits): bins never shorter than a read.
STAR_READ_LENGTH = 150
# Without sparsity the suffix array is 8 bytes per base: past 4 Gb of genome (32 GB of suffix
# array) it is made sparse enough to stay within that (--genomeSAsparseD).
STAR_SUFFIX_ARRAY_MAX_BYTES = 32 * 10**9


def star_chr_bin_nbits(genome_length: int, n_references: int,
                       read_length: int = STAR_READ_LENGTH) -> int:
    """--genomeChrBinNbits: min(18, log2(max(genome length / number of references, read
    length))), the STAR manual's advice. STAR pads every sequence to a multiple of 2^bits bases, so
    a draft assembly of many short scaffolds needs fewer bits; chromosomes of any length keep 18."""
    if n_references < 1:
        raise ValueError(f"a genome needs at least one sequence, got {n_references}")
    return min(18, int(math.log2(max(genome_length / n_references, read_length, 2))))


def star_sa_sparsity(genome_length: int, index_extra: str = "") -> int:
    """--genomeSAsparseD: the value ``index_extra`` (star.index_extra) gives, else 1 (STAR's
    default) up to 4 Gb of genome, then the smallest that keeps the suffix array (8 bytes per base
    / sparsity) within 32 GB: 2 for pea (4.5 Gb), 4 for faba bean (13 Gb). Mapping is slower by
    about the same factor (STAR manual)."""
    given = re.search(r"--genomeSAsparseD[ =]+(\S+)", index_extra)
    if given:
        if not given.group(1).isdigit() or int(given.group(1)) < 1:
            raise ValueError(f"star.index_extra: --genomeSAsparseD must be an integer >= 1, got "
                             f"{given.group(1)!r}")
        return int(given.group(1))
    return max(1, math.ceil(8 * genome_length / STAR_SUFFIX_ARRAY_MAX_BYTES))


def star_genome_options(lengths: Mapping[str, int], index_extra: str = "") -> str:
    """The options of ``STAR --runMode genomeGenerate`` that follow from the genome's sequence
    lengths (its ``.fai``): --genomeSAindexNbases, --genomeChrBinNbits and --genomeSAsparseD, each
    left out where ``index_extra`` (star.index_extra) gives it (STAR refuses a repeated option)."""
    total = sum(lengths.values())
    options = {"--genomeSAindexNbases": star_sa_index_bases(total),
               "--genomeChrBinNbits": star_chr_bin_nbits(total, len(lengths)),
               "--genomeSAsparseD": star_sa_sparsity(total, index_extra)}
    return " ".join(f"{flag} {value}" for flag, value in options.items()
                    if not re.search(rf"{flag}(?=[ =]|$)", index_extra))


def star_index_bytes(genome_length: int, sa_sparsity: int = 1) -> float:
    """The index in memory: genome (1 byte per base), suffix array (8 bytes per base divided by
    --genomeSAsparseD) and its pre-index (8 x 4^genomeSAindexNbases bytes)."""
    if sa_sparsity < 1:
        raise ValueError(f"--genomeSAsparseD must be >= 1, got {sa_sparsity}")
    sa_index = 8 * 4 ** star_sa_index_bases(genome_length)
    return genome_length * (1 + 8 / sa_sparsity) + sa_index


def star_index_mem_mb(genome_length: int, sa_sparsity: int = 1, attempt: int = 1) -> int:
    """genomeGenerate: the index plus the sequence being read, 10% headroom and 2 GB for the rest;
    about 10 bytes per base without sparsity (3 Gb: ~35 GB), as the STAR manual says."""
    need = star_index_bytes(genome_length, sa_sparsity) + genome_length
    return max(4000, int(need / MB * 1.1) + 2000) * attempt


def star_align_mem_mb(genome_length: int, sa_sparsity: int = 1, attempt: int = 1) -> int:
    """Mapping loads the whole index, and sorting the BAM takes as much again
    (--limitBAMsortRAM defaults to the index size)."""
    return max(4000, int(2 * star_index_bytes(genome_length, sa_sparsity) / MB) + 2000) * attempt


def chunked_mem_mb(chunk_size: int, attempt: int = 1) -> int:
    """Our genome-wide steps hold one chunk at a time: at most about 40 bytes per chunk base
    (benchmarks/scale.py: 0.3 GB with 10-Mb chunks), plus 1 GB for Python and its modules."""
    return int(1000 + 40 * chunk_size / MB) * attempt


def windows_mem_mb(fasta_bytes: int, attempt: int = 1) -> int:
    """Encoding the windows FASTAs (one byte per base) holds the text, the joined sequence and the
    uint8 codes: about 4 bytes per input byte, plus 1 GB; at least 2000."""
    return max(2000, int(1000 + 4 * fasta_bytes / MB)) * attempt


def files_bytes(paths: Iterable[str | Path]) -> int:
    """Total size of the files that exist (missing ones count 0: a dry run before they are made)."""
    total = 0
    for path in paths:
        p = Path(path)
        if p.is_file():
            total += p.stat().st_size
    return total


def bam_runtime(bam_bytes: int, passes: int = 1, attempt: int = 1) -> int:
    """Minutes for our BAM readers, twice the measured rate, at least 10."""
    seconds = bam_bytes / BAM_BYTES_PER_ALIGNMENT / ALIGNMENTS_PER_SECOND * passes
    return int(10 + 2 * seconds / 60) * attempt


def star_align_runtime(fastq_bytes: int, attempt: int = 1) -> int:
    """Minutes for STAR mapping: 30 plus an hour per 1 GB of gzipped FASTQ (about 40 million
    reads), slow for STAR on a few threads, so that a job is not killed at its limit."""
    return int(30 + 60 * fastq_bytes / 1e9) * attempt


def trim_runtime(fastq_bytes: int, attempt: int = 1) -> int:
    """Minutes for cutadapt: 20 plus 30 per GB of gzipped FASTQ."""
    return int(20 + 30 * fastq_bytes / 1e9) * attempt


def genome_length(fasta: str | Path, compressed: str | Path | None = None) -> int:
    """Bases of a genome: from the ``.fai`` beside it, else from the file size (80 bases per
    81-byte line); from a compressed original (about 3.5 bases per byte) when the plain FASTA is not
    there yet; 0 when neither exists."""
    plain = Path(fasta)
    fai = Path(f"{plain}.fai")
    if fai.is_file():
        with open(fai) as handle:
            return sum(int(line.split("\t")[1]) for line in handle if line.strip())
    if plain.is_file():
        return int(plain.stat().st_size * 80 / 81)
    if compressed is not None and Path(compressed).is_file():
        return int(Path(compressed).stat().st_size * 3.5)
    return 0
