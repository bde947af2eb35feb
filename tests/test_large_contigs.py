"""Plant-sized chromosomes.

Past BAI's limit (2^29 bp): BAMs whose reads lie beyond 536,870,912 go through the workflow's own
rules (samtools_index, count_reads, coverage_bigwig, the PRO-seq bigWigs, their merge, metagenes
and pause indices) and give the counts and signal planted there. The BAMs are written with pysam
from a generated header (one 600-Mb chromosome); no FASTA of that size is made, as none of these
steps reads the genome. The real Snakemake runs the rules on a small workdir where the BAMs stand
in for STAR's (``--allowed-rules`` leaves out STAR and cutadapt).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
import yaml

from conftest import copy_config, run_snakemake
from plantt.proseq import read_profile_data

BAI_LIMIT = 2**29  # 536,870,912: the largest position a BAI index holds
CONTIG = "chr1"
CONTIG_LENGTH = 600_000_000
READ_LENGTH = 40
# (gene id, strand, 1-based start, end): two genes past the BAI limit, one before it
GENES = [("gene_before", "+", 1_000_001, 1_004_000),
         ("gene_far_plus", "+", 560_000_001, 560_004_000),
         ("gene_far_minus", "-", 580_000_001, 580_004_000)]
# reads per gene: 3'-RNA-seq reads near the 3' end, PRO-seq read-1 ends in the pause window and body
RNASEQ_READS = {"gene_before": 30, "gene_far_plus": 50, "gene_far_minus": 70}
PAUSE_READS, BODY_READS = 40, 60

RULES = ["samtools_index", "count_reads", "coverage_bigwig", "proseq_bigwig",
         "proseq_merge_bigwig", "proseq_gene_beds", "proseq_matrix", "proseq_metagene_plots",
         "proseq_pausing"]


def _write_gff3(path: Path) -> None:
    lines = ["##gff-version 3", f"##sequence-region {CONTIG} 1 {CONTIG_LENGTH}"]
    for gene, strand, start, end in GENES:
        lines += [f"{CONTIG}\tt\tgene\t{start}\t{end}\t.\t{strand}\t.\tID={gene}",
                  f"{CONTIG}\tt\tmRNA\t{start}\t{end}\t.\t{strand}\t.\tID={gene}.1;Parent={gene}",
                  f"{CONTIG}\tt\texon\t{start}\t{end}\t.\t{strand}\t.\tParent={gene}.1"]
    path.write_text("\n".join(lines) + "\n")


def _write_bam(path: Path, reads: list[tuple[int, bool, int]]) -> None:
    """A coordinate-sorted BAM of ``(leftmost 0-based position, reverse, flag bits)`` reads."""
    header = {"HD": {"VN": "1.6", "SO": "coordinate"},
              "SQ": [{"SN": CONTIG, "LN": CONTIG_LENGTH}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    with pysam.AlignmentFile(str(path), "wb", header=header) as bam:
        for i, (start, reverse, flag) in enumerate(sorted(reads)):
            read = pysam.AlignedSegment(bam.header)
            read.query_name = f"r{i}"
            read.query_sequence = "ACGT" * (READ_LENGTH // 4)
            read.query_qualities = pysam.qualitystring_to_array("I" * READ_LENGTH)
            read.flag = flag | (0x10 if reverse else 0)
            read.reference_id, read.reference_start = 0, start
            read.mapping_quality = 255
            read.cigartuples = [(0, READ_LENGTH)]
            bam.write(read)


def _rnaseq_reads() -> list[tuple[int, bool, int]]:
    """Sense reads whose 5' ends lie 100-300 bp inside each gene's 3' end."""
    reads = []
    for gene, strand, start, end in GENES:
        for k in range(RNASEQ_READS[gene]):
            if strand == "+":
                reads.append((end - 300 + 4 * k % 200, False, 0))
            else:  # reverse: the 5' end is the last aligned base
                five_prime = start - 1 + 100 + 4 * k % 200
                reads.append((five_prime - READ_LENGTH + 1, True, 0))
    return reads


def _proseq_reads() -> list[tuple[int, bool, int]]:
    """Read 1 antisense to the gene, its 5' end (the polymerase) 30-70 bp after the TSS (pause) or
    in the gene body; read 2 (ignored by the counting) on the other strand."""
    reads = []
    for _, strand, start, end in GENES:
        tss = start - 1 if strand == "+" else end - 1
        sign = 1 if strand == "+" else -1
        ends = [tss + sign * (30 + k % 40) for k in range(PAUSE_READS)]
        ends += [tss + sign * (1000 + 40 * k) for k in range(BODY_READS)]
        for pol in ends:
            if strand == "+":  # read 1 on the minus strand: its 5' end is its last base
                reads.append((pol - READ_LENGTH + 1, True, 0x1 | 0x2 | 0x40))
                reads.append((pol - 150, False, 0x1 | 0x2 | 0x80))
            else:
                reads.append((pol, False, 0x1 | 0x2 | 0x40))
                reads.append((pol + 150, True, 0x1 | 0x2 | 0x80))
    return reads


@pytest.fixture(scope="module")
def giant_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rules run on one species with a 600-Mb chromosome, a 3'-RNA-seq and a PRO-seq sample."""
    work = tmp_path_factory.mktemp("giant")
    copy_config(work)
    data = work / "data"
    data.mkdir()
    # the sheets need these files to exist; none of the rules run here reads them
    (data / "giant.fa").write_text(f">{CONTIG} stand-in: no rule of this test reads the genome\n"
                                   "ACGT\n")
    _write_gff3(data / "giant.gff3")
    for name in ("r1.fq.gz", "p1_R1.fq.gz", "p1_R2.fq.gz"):
        with gzip.open(data / name, "wt") as handle:
            handle.write("@r\nACGT\n+\nIIII\n")
    (data / "species.tsv").write_text(
        "species\tcode\tgenome\tannotation\n"
        f"giant\tG\t{data / 'giant.fa'}\t{data / 'giant.gff3'}\n")
    (data / "samples.tsv").write_text(
        "sample\tspecies\tassay\treplicate\tfq1\tfq2\n"
        f"r1\tgiant\trnaseq3p\t1\t{data / 'r1.fq.gz'}\t\n"
        f"p1\tgiant\tproseq\t1\t{data / 'p1_R1.fq.gz'}\t{data / 'p1_R2.fq.gz'}\n")
    settings = {"demo": False, "species_sheet": str(data / "species.tsv"),
                "sample_sheet": str(data / "samples.tsv")}
    (data / "giant.yaml").write_text(yaml.safe_dump(settings))
    # STAR's BAMs, as star_align leaves them (unindexed)
    _write_bam(work / "results/star/r1/r1.bam", _rnaseq_reads())
    _write_bam(work / "results/star/p1/p1.bam", _proseq_reads())
    targets = ["results/counts/r1.tsv", "results/counts/p1.tsv",
               "results/coverage/r1.plus.bw", "results/proseq/bigwig/p1.plus.bw",
               "results/proseq/pausing/giant.tsv", "results/proseq/metagene/giant.profile.tsv"]
    run_snakemake(work, *targets, "--configfile", str(data / "giant.yaml"),
                  "--allowed-rules", *RULES, timeout=900)
    return work


def test_bam_index_is_csi_and_finds_reads_past_the_bai_limit(giant_run: Path) -> None:
    bam_path = giant_run / "results/star/p1/p1.bam"
    assert Path(f"{bam_path}.csi").is_file()
    assert not Path(f"{bam_path}.bai").exists()
    with pysam.AlignmentFile(str(bam_path), "rb") as bam:
        assert bam.lengths == (CONTIG_LENGTH,)
        far = sum(1 for _ in bam.fetch(CONTIG, 559_990_000, 560_010_000))
    assert far == 2 * (PAUSE_READS + BODY_READS)


def test_counts_of_genes_past_the_bai_limit(giant_run: Path) -> None:
    rnaseq = pd.read_csv(giant_run / "results/counts/r1.tsv", sep="\t").set_index("gene_id")
    assert rnaseq["count"].to_dict() == RNASEQ_READS
    proseq = pd.read_csv(giant_run / "results/counts/p1.tsv", sep="\t").set_index("gene_id")
    assert (proseq["count"] == PAUSE_READS + BODY_READS).all(), proseq


def test_bigwigs_hold_the_signal_past_the_bai_limit(giant_run: Path) -> None:
    import pyBigWig

    for track, first, last in [("coverage/r1.plus", 560_003_700, 560_003_900),
                               ("proseq/bigwig/p1.plus", 560_000_030, 560_000_070),
                               ("proseq/bigwig/giant.merged.plus", 560_000_030, 560_000_070),
                               ("proseq/bigwig/giant.merged.minus", 580_003_930, 580_003_970)]:
        bw = pyBigWig.open(str(giant_run / f"results/{track}.bw"))
        try:
            assert bw.chroms() == {CONTIG: CONTIG_LENGTH}
            values = np.nan_to_num(np.asarray(bw.values(CONTIG, first, last + 1)))
        finally:
            bw.close()
        assert values.sum() > 0, track
        assert first > BAI_LIMIT


def test_pause_indices_and_metagene_of_genes_past_the_bai_limit(giant_run: Path) -> None:
    table = pd.read_csv(giant_run / "results/proseq/pausing/giant.tsv", sep="\t")
    table = table.set_index("gene_id")
    assert table["covered"].all(), table
    # the pause window holds every pause read of each gene, the body every body read
    assert (table["pause_window_reads"] == PAUSE_READS).all(), table
    assert (table["body_reads"] == BODY_READS).all(), table
    assert (table["pause_index"] > 1).all(), table
    # TSS metagene (10-bp bins from 500 bp upstream): the pause reads, 1 per bp from 30 to 69 bp
    # after the TSS of each gene, fill bins 53-56 with 1e6 / 300 counted positions CPM per bp in
    # the mean of the three genes; a gene whose signal went missing would lower it by a third.
    profile = read_profile_data(giant_run / "results/proseq/metagene/giant.profile.tsv")
    tss = profile[(profile["sample"] == "TSS") & (profile["group"] == "sense")]
    peak = tss.loc[tss["value"] > 0, "bin"].tolist()
    assert peak == [53, 54, 55, 56], tss
    cpm_per_read = 1e6 / (len(GENES) * (PAUSE_READS + BODY_READS))
    assert np.allclose(tss.loc[tss["bin"].isin(peak), "value"], cpm_per_read, rtol=1e-5)
    assert (giant_run / "results/proseq/metagene/giant.profile.png").stat().st_size > 0

