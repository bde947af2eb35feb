"""Counting conventions checked with real STAR alignments, and CPM/TPM arithmetic."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plantt.annotation import read_genes
from plantt.encoding import reverse_complement
from plantt.quantify import CountSettings, count_reads, counting_regions, expression_table

pytestmark = pytest.mark.skipif(shutil.which("STAR") is None, reason="STAR is not installed")

CONTIG = "chr1"
# gene_p: plus strand 5001-8000; gene_m: minus strand 7001-11000 (1-based, inclusive): they overlap
# over 7001-8000, antisense to each other.
GFF = """##gff-version 3
chr1\tt\tgene\t5001\t8000\t.\t+\t.\tID=gene_p
chr1\tt\tmRNA\t5001\t8000\t.\t+\t.\tID=gene_p.1;Parent=gene_p
chr1\tt\texon\t5001\t8000\t.\t+\t.\tParent=gene_p.1
chr1\tt\tgene\t7001\t11000\t.\t-\t.\tID=gene_m
chr1\tt\tmRNA\t7001\t11000\t.\t-\t.\tID=gene_m.1;Parent=gene_m
chr1\tt\texon\t7001\t11000\t.\t-\t.\tParent=gene_m.1
"""


def _write_fastq(path: Path, reads: list[str]) -> None:
    with gzip.open(path, "wt") as handle:
        for i, seq in enumerate(reads):
            handle.write(f"@r{i}\n{seq}\n+\n{'I' * len(seq)}\n")


def _star(tmp: Path, genome: Path, fastqs: list[Path], prefix: str, extra: list[str]) -> Path:
    index = tmp / "index"
    if not index.exists():
        index.mkdir()
        subprocess.run(["STAR", "--runMode", "genomeGenerate", "--genomeDir", str(index),
                        "--genomeFastaFiles", str(genome), "--genomeSAindexNbases", "5",
                        "--outFileNamePrefix", str(tmp / "idx_"), "--runThreadN", "1"],
                       check=True, capture_output=True)
    out = tmp / prefix
    subprocess.run(["STAR", "--genomeDir", str(index), "--readFilesIn", *map(str, fastqs),
                    "--readFilesCommand", "gunzip", "-c", "--outSAMtype", "BAM",
                    "SortedByCoordinate", "--outFileNamePrefix", str(out), "--runThreadN", "1",
                    *extra], check=True, capture_output=True)
    bam = Path(f"{out}Aligned.sortedByCoord.out.bam")
    subprocess.run(["samtools", "index", str(bam)], check=True)
    return bam


@pytest.fixture(scope="module")
def locus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    tmp = tmp_path_factory.mktemp("locus")
    rng = np.random.default_rng(11)
    seq = "".join(rng.choice(list("ACGT"), size=20_000))
    genome = tmp / "genome.fa"
    genome.write_text(f">{CONTIG}\n" + "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60))
                      + "\n")
    gff = tmp / "genes.gff3"
    gff.write_text(GFF)
    return genome, seq, gff


def test_rnaseq3p_reads_go_to_the_gene_on_their_strand(locus, tmp_path: Path) -> None:
    genome, seq, gff = locus
    rng = np.random.default_rng(1)
    reads = []
    # 23 sense reads of gene_p and 37 of gene_m, all inside the overlap (0-based 7000..7999).
    for start in rng.integers(7000, 7925, size=23):
        reads.append(seq[start:start + 75])
    for start in rng.integers(7000, 7925, size=37):
        reads.append(reverse_complement(seq[start:start + 75]))
    # 5 reads past gene_p's annotated end (3' UTR): counted only thanks to the extension.
    for start in rng.integers(8000, 8400, size=5):
        reads.append(seq[start:start + 75])
    fq = tmp_path / "r.fastq.gz"
    _write_fastq(fq, reads)
    bam = _star(tmp_path, genome, [fq], "rna.", [])
    table, summary = count_reads(bam, gff, CountSettings("rnaseq3p", extension=500))
    counts = table.set_index("gene_id")["count"]
    assert counts["gene_p"] == 23 + 5
    assert counts["gene_m"] == 37
    assert summary["assigned"] == 65
    no_ext, _ = count_reads(bam, gff, CountSettings("rnaseq3p", extension=0))
    assert no_ext.set_index("gene_id")["count"]["gene_p"] == 23


def test_proseq_polymerase_is_read1_five_prime_end_on_the_opposite_strand(locus, tmp_path) -> None:
    genome, seq, gff = locus
    rng = np.random.default_rng(2)
    r1, r2 = [], []
    expected = {"gene_p": 0, "gene_m": 0}
    # Nascent RNAs of gene_m (minus strand) ending inside the overlap, and of gene_p (plus strand).
    for gene, n in (("gene_m", 31), ("gene_p", 17)):
        for _ in range(n):
            pos = int(rng.integers(7100, 7900))  # the RNA 3' end, 0-based
            length = int(rng.integers(90, 200))
            if gene == "gene_p":  # RNA = plus strand seq[pos-length+1 .. pos]
                rna = seq[pos - length + 1:pos + 1]
            else:  # RNA = reverse complement of seq[pos .. pos+length-1]
                rna = reverse_complement(seq[pos:pos + length])
            r1.append(reverse_complement(rna)[:75])  # read 1 starts at the RNA 3' end
            r2.append(rna[:75])
            expected[gene] += 1
    fq1, fq2 = tmp_path / "p_R1.fastq.gz", tmp_path / "p_R2.fastq.gz"
    _write_fastq(fq1, r1)
    _write_fastq(fq2, r2)
    bam = _star(tmp_path, genome, [fq1, fq2], "pro.", ["--alignEndsType", "Extend5pOfRead1"])
    table, summary = count_reads(bam, gff, CountSettings("proseq"))
    counts = table.set_index("gene_id")["count"]
    assert counts["gene_m"] == expected["gene_m"]
    assert counts["gene_p"] == expected["gene_p"]
    assert summary["not_read1"] == 48  # read 2 is never counted


def test_extension_stops_at_next_gene_on_same_strand(tmp_path: Path) -> None:
    gff = tmp_path / "g.gff3"
    gff.write_text("##gff-version 3\n"
                   "c\tt\tgene\t101\t1000\t.\t+\t.\tID=a\n"
                   "c\tt\tgene\t1201\t2000\t.\t+\t.\tID=b\n"
                   "c\tt\tgene\t3001\t4000\t.\t-\t.\tID=c\n"
                   "c\tt\tgene\t4101\t5000\t.\t-\t.\tID=d\n")
    regions = counting_regions(read_genes(gff), CountSettings("rnaseq3p", extension=500),
                               {"c": 5200}).set_index("gene_id")
    assert regions.loc["a", "end"] == 1200  # stops before b
    assert regions.loc["b", "end"] == 2500
    assert regions.loc["c", "start"] == 2500  # minus strand: extends to the left
    assert regions.loc["d", "start"] == 4000  # stops at c's end
    pro = counting_regions(read_genes(gff), CountSettings("proseq", tss_offset=300))
    pro = pro.set_index("gene_id")
    assert (pro.loc["a", "start"], pro.loc["a", "end"]) == (400, 1000)
    assert (pro.loc["d", "start"], pro.loc["d", "end"]) == (4100, 4700)


def test_cpm_tpm_mean_sd() -> None:
    counts = pd.DataFrame({"rep_1": [10, 30, 60], "rep_2": [20, 20, 160]},
                          index=["g1", "g2", "g3"])
    lengths = pd.Series({"g1": 1000, "g2": 2000, "g3": 500})
    table = expression_table(counts, lengths, "sp", "rnaseq3p").set_index(["unit", "gene_id"])
    cpm = table.loc["cpm"]
    assert cpm.loc["g1", "rep_1"] == pytest.approx(10 / 100 * 1e6)
    assert cpm.loc["g3", "rep_2"] == pytest.approx(160 / 200 * 1e6)
    g1 = [10 / 100 * 1e6, 20 / 200 * 1e6]
    assert cpm.loc["g1", "mean"] == pytest.approx(np.mean(g1))
    assert cpm.loc["g1", "sd"] == pytest.approx(np.std(g1, ddof=1))
    assert (cpm["n"] == 2).all()
    rate = np.array([10 / 1000, 30 / 2000, 60 / 500])
    tpm = table.loc["tpm"]
    assert tpm.loc["g2", "rep_1"] == pytest.approx(rate[1] / rate.sum() * 1e6)
    assert tpm["rep_1"].sum() == pytest.approx(1e6)
