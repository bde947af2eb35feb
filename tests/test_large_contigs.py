"""Plant-sized chromosomes.

Past BAI's limit (2^29 bp): BAMs whose reads lie beyond 536,870,912 go through the workflow's own
rules (samtools_index, count_reads, coverage_bigwig, the PRO-seq bigWigs, their merge, metagenes
and pause indices) and give the counts and signal planted there. The BAMs are written with pysam
from a generated header (one 600-Mb chromosome); no FASTA of that size is made, as none of these
steps reads the genome. The real Snakemake runs the rules on a small workdir where the BAMs stand
in for STAR's (``--allowed-rules`` leaves out STAR and cutadapt).

Past a BAM's limit (2^31 - 1 bp): the genome is refused before STAR, by its ``.fai``. And STAR's
index takes its settings from the genome's ``.fai`` (rules genome_fai and star_index).
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
from plantt.genome import (
    BAM_MAX_LENGTH,
    check_bam_lengths,
    check_existing_index,
    fasta_format_problem,
    index_genome,
    read_fai,
)
from plantt.io import InputError
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


# ---- chromosomes a BAM cannot hold, the genome's index, STAR's settings ----------------------


def test_chromosome_longer_than_a_bam_can_hold_is_refused_naming_file_chromosome_and_limit(
        tmp_path: Path) -> None:
    fasta = tmp_path / "faba.fa"
    fai = tmp_path / "faba.fa.fai"
    fai.write_text(f"chr1\t{BAM_MAX_LENGTH}\t6\t60\t61\n"
                   f"chr2\t{BAM_MAX_LENGTH + 1}\t2183108351\t60\t61\n")
    lengths = read_fai(fai)
    assert lengths == {"chr1": 2_147_483_647, "chr2": 2_147_483_648}
    check_bam_lengths({"chr1": BAM_MAX_LENGTH}, fasta)  # the limit itself is fine
    with pytest.raises(InputError) as err:
        check_bam_lengths(lengths, fasta)
    message = str(err.value)
    for part in (str(fasta), "'chr2'", "2,147,483,648 bp", "2,147,483,647", "does not split",
                 "gene-free point"):
        assert part in message, message
    assert "'chr1'" not in message
    # the .fai beside the FASTA is read when the workflow starts, if it is not older than the FASTA
    fasta.write_text(">chr1\nACGT\n")
    check_existing_index(fasta)  # older index: another version of the FASTA, not read
    fai.touch()
    with pytest.raises(InputError, match="chr2"):
        check_existing_index(fasta)
    check_existing_index(tmp_path / "no_such.fa")


def test_workflow_refuses_the_genome_before_any_job(tmp_path: Path) -> None:
    """A species whose genome's .fai lists a chromosome of 3 Gb stops the workflow when it starts
    (a dry run), naming the FASTA, the chromosome, its length and the limit."""
    copy_config(tmp_path)
    fasta = tmp_path / "faba.fa"
    fasta.write_text(">chr1\nACGT\n>chr2\nACGT\n")
    (tmp_path / "faba.fa.fai").write_text("chr1\t1000\t6\t4\t5\nchr2\t3000000000\t16\t60\t61\n")
    (tmp_path / "faba.gff3").write_text("##gff-version 3\nchr1\tt\tgene\t1\t4\t.\t+\t.\tID=g\n")
    with gzip.open(tmp_path / "r.fq.gz", "wt") as handle:
        handle.write("@r\nACGT\n+\nIIII\n")
    (tmp_path / "species.tsv").write_text(
        f"species\tcode\tgenome\tannotation\nfaba\tF\t{fasta}\t{tmp_path / 'faba.gff3'}\n")
    (tmp_path / "samples.tsv").write_text("sample\tspecies\tassay\treplicate\tfq1\tfq2\n"
                                          f"s1\tfaba\trnaseq3p\t1\t{tmp_path / 'r.fq.gz'}\t\n")
    with pytest.raises(AssertionError) as err:
        run_snakemake(tmp_path, "-n", "results/star/s1/s1.bam", "--config", "demo=False",
                      f"species_sheet={tmp_path / 'species.tsv'}",
                      f"sample_sheet={tmp_path / 'samples.tsv'}", timeout=300)
    assert (f"Invalid genome: {fasta}, record 'chr2': chromosome 'chr2' is 3,000,000,000 bp long, "
            "longer than a BAM can hold (2,147,483,647 bp") in str(err.value)


def test_read_fai_and_index_genome_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.fai"
    bad.write_text("chr1\t100\t6\t60\t61\nchr2\tlong\t200\t60\t61\n")
    with pytest.raises(InputError, match=r"bad.fai, line 2: expected a FASTA index line"):
        read_fai(bad)
    bad.write_text("chr1\t100\t6\t60\t61\nchr1\t100\t200\t60\t61\n")
    with pytest.raises(InputError, match=r"line 2: sequence 'chr1' is listed twice"):
        read_fai(bad)
    bad.write_text("")
    with pytest.raises(InputError, match="no sequences"):
        read_fai(bad)
    fasta = tmp_path / "g.fa"
    fasta.write_text(">a desc\nACGTACGT\nACG\n>b\nAC\n")
    assert index_genome(fasta, tmp_path / "out" / "g.fai") == {"a": 11, "b": 2}
    assert read_fai(tmp_path / "out" / "g.fai") == {"a": 11, "b": 2}
    ragged = tmp_path / "ragged.fa"
    ragged.write_text(">a\nACGTACGT\nACG\nACGTACGT\n")
    with pytest.raises(InputError, match=r"ragged.fa, line 4: samtools faidx cannot index it: "
                                         r".*line 3 is shorter"):
        index_genome(ragged, tmp_path / "out" / "ragged.fai")
    assert not (tmp_path / "out" / "ragged.fai").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["g.fai"]  # no temporary left
    headless = tmp_path / "headless.fa"
    headless.write_text("ACGT\n>a\nAC\n")
    assert fasta_format_problem(headless)[0] == 1
    with pytest.raises(InputError, match="no such genome FASTA"):
        index_genome(tmp_path / "missing.fa", tmp_path / "out" / "missing.fai")


def test_star_index_rule_takes_its_settings_from_the_genome(tmp_path: Path) -> None:
    """Rules genome_fai and star_index on 20 scaffolds of 1 kb: --genomeChrBinNbits 9 (log2 of
    1000), not STAR's 18, which would pad each scaffold to 262 kb."""
    copy_config(tmp_path)
    rng = np.random.default_rng(0)
    fasta = tmp_path / "scaffolds.fa"
    with open(fasta, "w") as handle:
        for k in range(20):
            seq = "".join(rng.choice(list("ACGT"), 1000))
            handle.write(f">s{k}\n" + "\n".join(seq[i:i + 60] for i in range(0, 1000, 60)) + "\n")
    (tmp_path / "scaffolds.gff3").write_text(
        "##gff-version 3\n"
        "s0\tt\tgene\t101\t900\t.\t+\t.\tID=g1\n"
        "s0\tt\tmRNA\t101\t900\t.\t+\t.\tID=g1.1;Parent=g1\n"
        "s0\tt\texon\t101\t900\t.\t+\t.\tParent=g1.1\n")
    with gzip.open(tmp_path / "r.fq.gz", "wt") as handle:
        handle.write("@r\nACGT\n+\nIIII\n")
    (tmp_path / "species.tsv").write_text("species\tcode\tgenome\tannotation\n"
                                          f"sc\tS\t{fasta}\t{tmp_path / 'scaffolds.gff3'}\n")
    (tmp_path / "samples.tsv").write_text("sample\tspecies\tassay\treplicate\tfq1\tfq2\n"
                                          f"s1\tsc\trnaseq3p\t1\t{tmp_path / 'r.fq.gz'}\t\n")
    run_snakemake(tmp_path, "results/star/index/sc", "--config", "demo=False",
                  f"species_sheet={tmp_path / 'species.tsv'}",
                  f"sample_sheet={tmp_path / 'samples.tsv'}", timeout=600)
    assert read_fai(tmp_path / "results/genome/sc.fai") == {f"s{k}": 1000 for k in range(20)}
    log = (tmp_path / "results/star/index/sc/Log.out").read_text()
    command = next(line for line in log.splitlines() if "--runMode genomeGenerate" in line)
    assert "--genomeSAindexNbases 6 --genomeChrBinNbits 9 --genomeSAsparseD 1" in command, command
