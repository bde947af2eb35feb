"""Walking a genome in pieces of bounded size, so that memory is set by a chunk, not by the genome.

Plant chromosomes reach 1-2 Gb, so a dense per-base array of one whole contig (8 bytes per base and
strand) is already too much; every genome-wide step of ours (read counting, PRO-seq tracks and their
merge, pause indices) works on one chunk of at most ``chunk_size`` bases at a time and gives the same
result whatever the chunk size (``tests/test_chunks.py`` checks it with chunk boundaries inside genes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from plantt.annotation import Gene

# 10 Mb: two strands of int64 counts over a chunk are 160 MB at most, and a real genome has a few
# hundred chunks, so per-chunk overheads (one BAM index query per chunk) stay negligible.
DEFAULT_CHUNK_SIZE = 10_000_000


def check_chunk_size(chunk_size: int | None) -> int | None:
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive number of bases or None (whole contigs), "
                         f"got {chunk_size!r}")
    return chunk_size


def genome_chunks(contig_lengths: Mapping[str, int], chunk_size: int | None = DEFAULT_CHUNK_SIZE
                  ) -> Iterator[tuple[str, int, int]]:
    """``(contig, start, end)`` half-open 0-based chunks covering every contig in order; ``None``
    gives one chunk per contig."""
    check_chunk_size(chunk_size)
    for contig, length in contig_lengths.items():
        step = chunk_size or max(int(length), 1)
        for start in range(0, int(length), step):
            yield contig, start, min(start + step, int(length))


@dataclass
class GeneBlock:
    """Genes of one contig read together: the span ``[start, end)`` covers every one of them."""

    contig: str
    start: int
    end: int
    genes: list[Gene] = field(default_factory=list)


def gene_blocks(genes: Iterable[Gene], chunk_size: int | None = DEFAULT_CHUNK_SIZE
                ) -> Iterator[GeneBlock]:
    """Genes grouped, per contig and in position order, into blocks that span at most ``chunk_size``
    bases; a gene longer than that is a block of its own (its span is then the memory bound: plant
    genes are well under a megabase). ``None``: one block per contig. Every gene is in exactly one
    block, and the block's span covers the whole gene."""
    check_chunk_size(chunk_size)
    by_contig: dict[str, list[Gene]] = {}
    for gene in genes:
        by_contig.setdefault(gene.seqid, []).append(gene)
    for contig, group in by_contig.items():
        group.sort(key=lambda g: (g.start, g.end, g.gene_id))
        block: GeneBlock | None = None
        for gene in group:
            if block is not None and (chunk_size is None
                                      or max(block.end, gene.end) - block.start <= chunk_size):
                block.genes.append(gene)
                block.end = max(block.end, gene.end)
                continue
            if block is not None:
                yield block
            block = GeneBlock(contig, gene.start, gene.end, [gene])
        if block is not None:
            yield block


def add_chunk_size_argument(parser) -> None:
    """``--chunk-size`` for the commands that walk a genome."""
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                        help="bases read into memory at a time (peak memory grows with it; "
                             f"results do not depend on it; default {DEFAULT_CHUNK_SIZE})")
