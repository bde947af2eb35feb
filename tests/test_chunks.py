"""Genome-wide steps in chunks: the chunks and gene blocks themselves, and the demo's counts, PRO-seq
bigWigs, merged bigWigs and pause indices identical whatever the chunk size (boundaries inside genes
and inside pause windows)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from plantt.annotation import Gene, read_genes
from plantt.chunks import gene_blocks, genome_chunks
from plantt.proseq import (
    PauseSettings,
    merge_bigwigs,
    pause_indices_from_bams,
    read_bigwig,
    write_polymerase_bigwigs,
)
from plantt.quantify import CountSettings, count_reads
from plantt.windows import genes_from_pairs, select_genes, write_windows


def _gene(gene_id: str, seqid: str, start: int, end: int) -> Gene:
    return Gene(gene_id, seqid, start, end, "+")


def test_genome_chunks_tile_every_contig_in_order() -> None:
    lengths = {"a": 25, "b": 10, "c": 1}
    chunks = list(genome_chunks(lengths, 10))
    assert chunks == [("a", 0, 10), ("a", 10, 20), ("a", 20, 25), ("b", 0, 10), ("c", 0, 1)]
    assert list(genome_chunks(lengths, None)) == [("a", 0, 25), ("b", 0, 10), ("c", 0, 1)]
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size"):
            list(genome_chunks(lengths, bad))


def test_gene_blocks_hold_every_gene_once_within_the_chunk() -> None:
    rng = np.random.default_rng(3)
    genes = []
    for k in range(300):
        start = int(rng.integers(0, 100_000))
        genes.append(_gene(f"g{k}", f"c{k % 3}", start, start + int(rng.integers(1, 3_000))))
    genes.append(_gene("long", "c0", 50, 20_050))  # longer than a chunk: a block of its own
    for chunk in (1, 5_000, 20_000, None):
        blocks = list(gene_blocks(genes, chunk))
        placed = [g.gene_id for b in blocks for g in b.genes]
        assert sorted(placed) == sorted(g.gene_id for g in genes)
        for block in blocks:
            assert all(g.seqid == block.contig and block.start <= g.start and g.end <= block.end
                       for g in block.genes)
            if chunk is not None and len(block.genes) > 1:
                assert block.end - block.start <= chunk
        if chunk is None:
            assert len(blocks) == 3


def _bigwig_values(path: Path) -> dict[str, np.ndarray]:
    return read_bigwig(path)[1]


@pytest.mark.workflow
def test_demo_steps_do_not_depend_on_the_chunk_size(demo_workdir: Path, tmp_path: Path) -> None:
    sheet = pd.read_csv(demo_workdir / "resources/demo/samples.tsv", sep="\t")
    proseq = sheet[sheet["assay"] == "proseq"]
    species = proseq["species"].iloc[0]
    samples = list(proseq.loc[proseq["species"] == species, "sample"])[:2]
    rnaseq = sheet.loc[(sheet["assay"] == "rnaseq3p") & (sheet["species"] == species), "sample"]
    bams = {s: demo_workdir / f"results/star/{s}/{s}.bam" for s in [*samples, rnaseq.iloc[0]]}
    annotation = demo_workdir / f"resources/demo/annotation/{species}.gff3"
    genes = read_genes(annotation)
    chunk = 20_000  # the demo's contigs are about 1.3 Mb: ~70 boundaries per contig

    # chunk boundaries (multiples of the chunk size) fall inside genes and inside the pause-search
    # regions (TSS .. TSS + 300 bp) of the genes
    def cut(lo: int, hi: int) -> bool:
        return (lo // chunk + 1) * chunk < hi

    assert sum(cut(g.start, g.end) for g in genes.values()) >= 10
    region = PauseSettings().region
    assert sum(cut(g.start, g.start + region) if g.strand == "+" else cut(g.end - region, g.end)
               for g in genes.values()) >= 3

    # read counts (both assays' conventions) and their summaries
    for sample, bam in bams.items():
        assay = sheet.loc[sheet["sample"] == sample, "assay"].iloc[0]
        settings = CountSettings(assay)
        whole, whole_summary = count_reads(bam, annotation, settings, chunk_size=None)
        chunked, chunked_summary = count_reads(bam, annotation, settings, chunk_size=chunk)
        pd.testing.assert_frame_equal(whole, chunked)
        assert whole_summary == chunked_summary
        assert whole["count"].sum() > 1000

    # per-sample CPM bigWigs and their replicate mean
    tracks = {}
    for size in (None, chunk):
        written = []
        for sample in samples:
            plus, minus = tmp_path / f"{sample}.{size}.plus.bw", tmp_path / f"{sample}.{size}.minus.bw"
            write_polymerase_bigwigs(bams[sample], plus, minus, chunk_size=size)
            written.append((plus, minus))
        merged = tmp_path / f"merged.{size}.plus.bw"
        merge_bigwigs([p for p, _ in written], merged, chunk_size=size)
        tracks[size] = [_bigwig_values(p) for pair in written for p in pair]
        tracks[size].append(_bigwig_values(merged))
    for whole, chunked in zip(tracks[None], tracks[chunk], strict=True):
        assert whole.keys() == chunked.keys()
        for contig in whole:
            np.testing.assert_array_equal(whole[contig], chunked[contig])
    assert sum(v.sum() for v in tracks[None][0].values()) > 0

    # pause indices of the pooled replicates: whole contigs, one gene per block, 20-kb blocks
    pooled = [bams[s] for s in samples]
    tables = [pause_indices_from_bams(genes, pooled, PauseSettings(), chunk_size=size)
              for size in (None, 1, chunk)]
    for other in tables[1:]:
        pd.testing.assert_frame_equal(tables[0], other)
    assert tables[0]["covered"].sum() > 100

    # windows written a few genes at a time: the same files as the workflow's (one batch)
    chosen = select_genes(genes, genes_from_pairs(demo_workdir / "results/orthologs/pairs.tsv",
                                                  species), "pairs")
    write_windows(demo_workdir / f"resources/demo/genomes/{species}.fa", chosen,
                  tmp_path / "w.fa", tmp_path / "w.tsv", batch_genes=7)
    for name, mine in (("fa", "w.fa"), ("coords.tsv", "w.tsv")):
        expected = (demo_workdir / f"results/windows/{species}.{name}").read_bytes()
        assert (tmp_path / mine).read_bytes() == expected


def test_scale_benchmark_runs_and_ends_with_its_summary_line(tmp_path: Path) -> None:
    """benchmarks/scale.py at toy sizes (its figures at real sizes are in benchmarks/README.md)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "scale.py"), "--sizes", "1", "2",
         "--gene-spacing", "20000", "--reads-per-gene", "20", "--chunk-size", "300000",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert sum(line.startswith("  ") for line in lines) == 2 * 7  # 7 steps at 2 sizes
    last = re.fullmatch(r"scale: peak RSS growth (\d+\.\d\d)x \(worst step (\w+)\), "
                        r"largest (\d+\.\d\d) GB at 2 Mb", lines[-1])
    assert last is not None, lines[-1]
    assert 0.5 < float(last.group(1)) < 3 and float(last.group(3)) < 2
    assert (tmp_path / "2Mb" / "merged.plus.bw").stat().st_size > 0
