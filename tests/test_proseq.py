"""PRO-seq signal tracks (real STAR alignments), pause-index arithmetic, assay comparisons, and the
demo's metagenes and pausing checked against the simulator's truth."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import run_snakemake
from plantt.annotation import Gene, read_genes
from plantt.encoding import reverse_complement
from plantt.io import InputError
from plantt.proseq import (
    PauseSettings,
    PolymeraseCounts,
    best_window,
    merge_bigwigs,
    metagene_genes,
    ortholog_conservation,
    pause_indices,
    pause_indices_from_bams,
    pause_summary,
    read_bigwig,
    read_profile_data,
    sense_profile,
    write_bigwig,
    write_gene_beds,
    write_polymerase_bigwigs,
)

needs_star = pytest.mark.skipif(shutil.which("STAR") is None or shutil.which("samtools") is None,
                                reason="STAR and samtools are needed")

CONTIG = "chr1"
# gene_m: minus strand 4001-7000 (1-based, inclusive); gene_p: plus strand 12001-14000.
GFF = """##gff-version 3
chr1\tt\tgene\t4001\t7000\t.\t-\t.\tID=gene_m
chr1\tt\tmRNA\t4001\t7000\t.\t-\t.\tID=gene_m.1;Parent=gene_m
chr1\tt\texon\t4001\t7000\t.\t-\t.\tParent=gene_m.1
chr1\tt\tgene\t12001\t14000\t.\t+\t.\tID=gene_p
chr1\tt\tmRNA\t12001\t14000\t.\t+\t.\tID=gene_p.1;Parent=gene_p
chr1\tt\texon\t12001\t14000\t.\t+\t.\tParent=gene_p.1
"""


# ---- polymerase bigWigs from real alignments -------------------------------------------------


def _write_fastq(path: Path, reads: list[str]) -> None:
    with gzip.open(path, "wt") as handle:
        for i, seq in enumerate(reads):
            handle.write(f"@r{i}\n{seq}\n+\n{'I' * len(seq)}\n")


def _star_pairs(tmp: Path, genome: Path, fq1: Path, fq2: Path) -> Path:
    index = tmp / "index"
    index.mkdir()
    subprocess.run(["STAR", "--runMode", "genomeGenerate", "--genomeDir", str(index),
                    "--genomeFastaFiles", str(genome), "--genomeSAindexNbases", "5",
                    "--outFileNamePrefix", str(tmp / "idx_"), "--runThreadN", "1"],
                   check=True, capture_output=True)
    prefix = tmp / "pro."
    subprocess.run(["STAR", "--genomeDir", str(index), "--readFilesIn", str(fq1), str(fq2),
                    "--readFilesCommand", "gunzip", "-c", "--outSAMtype", "BAM",
                    "SortedByCoordinate", "--outFileNamePrefix", str(prefix), "--runThreadN", "1",
                    "--alignEndsType", "Extend5pOfRead1"], check=True, capture_output=True)
    bam = Path(f"{prefix}Aligned.sortedByCoord.out.bam")
    subprocess.run(["samtools", "index", str(bam)], check=True)
    return bam


def _nascent_pair(seq: str, pos: int, length: int, plus: bool) -> tuple[str, str]:
    """Read 1 and read 2 of a nascent RNA of ``length`` nt whose 3' end (the polymerase) is the
    0-based position ``pos`` on the given strand."""
    rna = seq[pos - length + 1:pos + 1] if plus else reverse_complement(seq[pos:pos + length])
    return reverse_complement(rna)[:75], rna[:75]


@pytest.fixture(scope="module")
def aligned(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 20 kb genome, the two genes above, and PRO-seq pairs mapped with STAR."""
    pytest.importorskip("pyBigWig")
    if shutil.which("STAR") is None or shutil.which("samtools") is None:
        pytest.skip("STAR and samtools are needed")
    tmp = tmp_path_factory.mktemp("proseq")
    rng = np.random.default_rng(5)
    seq = "".join(rng.choice(list("ACGT"), size=20_000))
    genome = tmp / "genome.fa"
    genome.write_text(f">{CONTIG}\n" + "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60))
                      + "\n")
    gff = tmp / "genes.gff3"
    gff.write_text(GFF)
    # gene_m (minus): TSS = 0-based 6999; polymerases at TSS - 40 (x12) and in its body (x20).
    # gene_p (plus): TSS = 0-based 12000; polymerases at TSS + 70 (x7).
    polymerases = ([(6999 - 40, False)] * 12
                   + [(int(p), False) for p in rng.integers(4300, 6500, size=20)]
                   + [(12070, True)] * 7)
    r1, r2 = [], []
    for pos, plus in polymerases:
        a, b = _nascent_pair(seq, pos, int(rng.integers(90, 200)), plus)
        r1.append(a)
        r2.append(b)
    fq1, fq2 = tmp / "p_R1.fastq.gz", tmp / "p_R2.fastq.gz"
    _write_fastq(fq1, r1)
    _write_fastq(fq2, r2)
    bam = _star_pairs(tmp, genome, fq1, fq2)
    plus_bw, minus_bw = tmp / "s.plus.bw", tmp / "s.minus.bw"
    total = write_polymerase_bigwigs(bam, plus_bw, minus_bw)
    return {"tmp": tmp, "bam": bam, "gff": gff, "plus": plus_bw, "minus": minus_bw,
            "total": total, "polymerases": polymerases}


@needs_star
def test_minus_strand_gene_signal_is_on_the_minus_track(aligned: dict) -> None:
    import pyBigWig

    genes = read_genes(aligned["gff"])
    gene_m, gene_p = genes["gene_m"], genes["gene_p"]
    n_minus = sum(not plus for _, plus in aligned["polymerases"])
    n_plus = sum(plus for _, plus in aligned["polymerases"])
    assert aligned["total"] == n_minus + n_plus  # every pair counted once (read 1)
    cpm = 1e6 / aligned["total"]
    minus, plus = pyBigWig.open(str(aligned["minus"])), pyBigWig.open(str(aligned["plus"]))
    try:
        assert minus.isBigWig() and plus.isBigWig()
        assert minus.chroms() == {CONTIG: 20_000}
        on_minus = np.nan_to_num(minus.values(CONTIG, gene_m.start, gene_m.end, numpy=True))
        on_plus = np.nan_to_num(plus.values(CONTIG, gene_m.start, gene_m.end, numpy=True))
        # all of gene_m's polymerases are on the minus track, none on the plus track
        assert on_minus.sum() == pytest.approx(n_minus * cpm)
        assert on_plus.sum() == 0
        # the pause-like pile-up sits exactly at its position, 40 bp downstream of the TSS
        assert minus.values(CONTIG, 6959, 6960)[0] == pytest.approx(12 * cpm)
        # and gene_p's signal is on the plus track only
        assert plus.values(CONTIG, 12070, 12071)[0] == pytest.approx(7 * cpm)
        assert np.nan_to_num(minus.values(CONTIG, gene_p.start, gene_p.end, numpy=True)).sum() == 0
        assert all(v >= 0 for *_, v in minus.intervals(CONTIG))  # minus values are positive
    finally:
        minus.close()
        plus.close()


@needs_star
def test_merged_bigwig_is_the_replicate_mean_and_pausing_reads_the_bam(aligned: dict) -> None:
    tmp = aligned["tmp"]
    lengths, values = read_bigwig(aligned["minus"])
    doubled = tmp / "double.minus.bw"
    write_bigwig(doubled, lengths, {c: 3 * v for c, v in values.items()})
    merged = tmp / "merged.minus.bw"
    merge_bigwigs([aligned["minus"], doubled], merged)
    _, mean = read_bigwig(merged)
    assert np.allclose(mean[CONTIG], 2 * values[CONTIG])

    table = pause_indices_from_bams(read_genes(aligned["gff"]), [aligned["bam"], aligned["bam"]],
                                    PauseSettings(min_reads=1)).set_index("gene_id")
    assert table.loc["gene_m", "pause_window_reads"] == 2 * 12
    assert table.loc["gene_m", "pause_window_start"] <= 40 < table.loc["gene_m",
                                                                     "pause_window_start"] + 50
    assert table.loc["gene_p", "pause_window_reads"] == 2 * 7


def test_write_bigwig_rejects_nothing_and_reads_back_zeros(tmp_path: Path) -> None:
    pytest.importorskip("pyBigWig")
    target = tmp_path / "t.bw"
    write_bigwig(target, {"a": 50, "b": 20}, {"a": np.r_[np.zeros(10), 2.5, np.zeros(39)]})
    lengths, values = read_bigwig(target)
    assert lengths == {"a": 50, "b": 20}
    assert values["a"][10] == 2.5 and values["a"].sum() == 2.5
    assert values["b"].sum() == 0
    assert not list(tmp_path.glob(".t.bw*"))  # no temporary file left behind
    with pytest.raises(InputError, match="not found"):
        read_bigwig(tmp_path / "missing.bw")


# ---- pause index arithmetic ------------------------------------------------------------------


def _counts_with(length: int, plus: dict[int, int], minus: dict[int, int]) -> PolymeraseCounts:
    tracks = {}
    for strand, placed in (("+", plus), ("-", minus)):
        track = np.zeros(length, dtype=np.int64)
        for pos, n in placed.items():
            track[pos] += n
        tracks[("c", strand)] = track
    return PolymeraseCounts({"c": length}, tracks)


def test_pause_index_on_a_hand_made_case() -> None:
    # gene P: plus strand, 0-based [100, 1100): TSS 100, TTS 1099. Gene M: the mirror image on the
    # minus strand, [3000, 4000): TSS 3999, TTS 3000.
    genes = {"P": Gene("P", "c", 100, 1100, "+"), "M": Gene("M", "c", 3000, 4000, "-"),
             "low": Gene("low", "c", 5000, 6000, "+"), "short": Gene("short", "c", 7000, 7400, "+")}
    plus = {100 + 60: 10, 100 + 200: 5}  # 10 reads at +60, 5 at +200 (never in one 50-bp window)
    minus = {3999 - 60: 10, 3999 - 200: 5}
    body_offsets = np.arange(500, 1000, 20)  # 25 positions of the body [TSS+500, TTS]
    for k in body_offsets:
        plus[100 + int(k)] = plus.get(100 + int(k), 0) + 1
        minus[3999 - int(k)] = minus.get(3999 - int(k), 0) + 1
    plus.update({5000 + 30: 4, 5000 + 600: 3})  # too few body reads
    plus.update({7000 + 30: 9})  # shorter than body_start: no gene body
    counts = _counts_with(8000, plus, minus)
    table = pause_indices(genes, counts, PauseSettings()).set_index("gene_id")

    for gene in ("P", "M"):
        row = table.loc[gene]
        assert row["pause_region_reads"] == 15
        assert row["pause_window_reads"] == 10
        assert row["pause_window_start"] == 11  # the first window containing +60: [11, 61)
        assert row["pause_density"] == pytest.approx(10 / 50)
        assert row["body_length"] == 500 and row["body_reads"] == 25
        assert row["body_density"] == pytest.approx(25 / 500)
        assert row["pause_index"] == pytest.approx((10 / 50) / (25 / 500))  # = 4
        assert bool(row["covered"])
    assert not bool(table.loc["low", "covered"])
    assert table.loc["low", "pause_index"] == pytest.approx((4 / 50) / (3 / 500))
    assert table.loc["short", "body_length"] == 0 and not bool(table.loc["short", "covered"])
    assert np.isnan(table.loc["short", "pause_index"])
    assert list(table.index) == list(genes)  # marked, not dropped

    summary = pause_summary({"sp": table.reset_index()}).iloc[0]
    assert summary["genes"] == 4 and summary["covered_genes"] == 2
    assert summary["median_pause_index"] == pytest.approx(4.0)

    # body_end_before_tts and window settings are honoured
    other = pause_indices({"P": genes["P"]}, counts,
                          PauseSettings(window=10, body_end_before_tts=100)).iloc[0]
    assert other["pause_density"] == pytest.approx(10 / 10)
    assert other["body_length"] == 400
    assert other["body_reads"] == int((body_offsets < 900).sum())


def test_sense_profile_and_best_window() -> None:
    track = np.arange(20)
    plus, minus = Gene("p", "c", 5, 15, "+"), Gene("m", "c", 5, 15, "-")
    assert list(sense_profile(track, plus, 0, 3)) == [5, 6, 7]
    assert list(sense_profile(track, minus, 0, 3)) == [14, 13, 12]
    assert list(sense_profile(track, minus, 8, 50)) == [6, 5]  # clipped at the TTS
    assert sense_profile(track, plus, 12, 20).size == 0
    assert best_window(np.array([0, 3, 0, 0, 3, 0]), 2) == (0, 3)  # first of ties
    assert best_window(np.array([1, 0, 2, 2, 0]), 2) == (2, 4)
    assert best_window(np.array([1, 2]), 5) == (0, 3)
    with pytest.raises(ValueError):
        PauseSettings(window=400, region=300)


# ---- gene selection and comparisons ----------------------------------------------------------


def test_gene_beds_group_sense_and_antisense(tmp_path: Path) -> None:
    gff = tmp_path / "g.gff3"
    gff.write_text(GFF + "chr1\tt\tgene\t15001\t15500\t.\t+\t.\tID=tiny\n")
    out = {k: tmp_path / f"{k}.bed" for k in ("plus_genes", "minus_genes", "plus_signal",
                                               "minus_signal")}
    assert write_gene_beds(gff, out, min_length=1000) == {"+": 1, "-": 1}
    assert out["plus_genes"].read_text() == "chr1\t12000\t14000\tgene_p\t0\t+\n"
    assert out["minus_signal"].read_text().splitlines() == [
        "chr1\t4000\t7000\tgene_m\t0\t-", "#sense", "chr1\t12000\t14000\tgene_p\t0\t+",
        "#antisense"]
    with pytest.raises(InputError, match="plus-strand"):
        write_gene_beds(gff, out, min_length=2500)
    genes = {f"g{k}": Gene(f"g{k}", "c", 100 * k, 100 * k + 50 + k, "+") for k in range(40)}
    subset = metagene_genes(genes, min_length=60, max_genes=10, seed=3)
    assert len(subset) == 10 and all(g.length >= 60 for g in subset)
    assert subset == metagene_genes(genes, min_length=60, max_genes=10, seed=3)
    assert [g.start for g in subset] == sorted(g.start for g in subset)


def test_ortholog_conservation_orients_pairs_and_uses_logs() -> None:
    rng = np.random.default_rng(0)
    level = 10 ** rng.uniform(0, 4, size=50)
    genes_a = [f"a{k}" for k in range(50)]
    genes_b = [f"b{k}" for k in range(50)]
    expression = {
        ("A", "proseq"): pd.Series(level, index=genes_a),
        ("B", "proseq"): pd.Series(level * 3, index=genes_b),  # same order, log-linear
        ("A", "rnaseq3p"): pd.Series(level, index=genes_a),
        ("B", "rnaseq3p"): pd.Series(rng.permutation(level), index=genes_b),  # unrelated
    }
    # half the pairs are written B-first: they must be turned around
    pairs = pd.DataFrame({"gene_a": genes_a[:25] + genes_b[25:], "species_a": ["A"] * 25 + ["B"] * 25,
                          "gene_b": genes_b[:25] + genes_a[25:], "species_b": ["B"] * 25 + ["A"] * 25})
    table = ortholog_conservation(pairs, expression, ["A", "B"], pseudocount=0).set_index("assay")
    assert set(table["species_a"]) == {"A"} and (table["pairs"] == 50).all()
    assert table.loc["proseq", "r2"] == pytest.approx(1.0)
    assert table.loc["rnaseq3p", "r2"] < 0.3


def test_read_profile_data(tmp_path: Path) -> None:
    path = tmp_path / "p.tab"
    path.write_text("bin labels\t\t-0.5Kb\ttick\n"
                    "bins\t\t1\t2\t3\n"
                    "TSS\tsense\t0.1\t0.9\t0.2\n"
                    "TSS\tantisense\t0.0\t0.0\t0.3\n")
    data = read_profile_data(path)
    assert len(data) == 6
    sense = data[(data["sample"] == "TSS") & (data["group"] == "sense")]
    assert int(sense.loc[sense["value"].idxmax(), "bin"]) == 1


# ---- the demo, end to end --------------------------------------------------------------------


def _config(workdir: Path) -> dict:
    return yaml.safe_load((workdir / "config/config.yaml").read_text())


def _pausing_species(workdir: Path) -> tuple[list[str], list[str]]:
    """Species simulated with and without promoter-proximal pausing (truth ``pause_strength``)."""
    truth = pd.read_csv(workdir / "resources/demo/truth.tsv", sep="\t")
    strength = truth.groupby("species", sort=False)["pause_strength"].max()
    return list(strength.index[strength > 0]), list(strength.index[strength == 0])


def _demo_species(workdir: Path) -> list[str]:
    return list(pd.read_csv(workdir / "resources/demo/species.tsv", sep="\t")["species"])


@pytest.mark.workflow
def test_demo_metagene_pause_peak_at_the_simulated_offset(demo_workdir: Path) -> None:
    settings = _config(demo_workdir)["proseq"]["metagene"]
    n_up = settings["upstream"] // settings["bin_size"]
    truth = pd.read_csv(demo_workdir / "resources/demo/truth.tsv", sep="\t")
    grammar = yaml.safe_load((demo_workdir / "resources/demo/grammar.yaml").read_text())
    antisense_offset = grammar["proseq"]["antisense_offset"]
    pausing, not_pausing = _pausing_species(demo_workdir)
    assert pausing and not_pausing == ["pisum"]
    for species in pausing + not_pausing:
        data = read_profile_data(demo_workdir / f"results/proseq/metagene/{species}.profile.tsv")
        assert set(data["sample"]) == {"TSS", "TTS", "gene body"}
        assert set(data["group"]) == {"sense", "antisense"}
        tss = data[data["sample"] == "TSS"]
        sense = tss[tss["group"] == "sense"].set_index("bin")["value"]
        antisense = tss[tss["group"] == "antisense"].set_index("bin")["value"]
        # the divergent antisense peak lies upstream, where the simulator put it
        anti_peak = (int(antisense.idxmax()) - n_up + 0.5) * settings["bin_size"]
        assert abs(anti_peak + antisense_offset) <= 20, (species, anti_peak)
        downstream = sense[sense.index >= n_up]
        peak_bin = int(downstream.idxmax())
        body_level = downstream.iloc[-20:].mean()
        if species in pausing:
            offset = truth.loc[truth["species"] == species, "pause_offset"].mean()
            peak = (peak_bin - n_up + 0.5) * settings["bin_size"]  # bin centre, bp after the TSS
            assert abs(peak - offset) <= 10, (species, peak, offset)
            assert downstream.max() > 5 * body_level
        else:
            assert downstream.max() < 2 * body_level  # no pause peak without pausing


@pytest.mark.workflow
def test_demo_pause_index_higher_with_pausing(demo_workdir: Path) -> None:
    summary = pd.read_csv(demo_workdir / "results/proseq/pausing/summary.tsv",
                          sep="\t").set_index("species")
    pausing, not_pausing = _pausing_species(demo_workdir)
    for species in pausing:
        for other in not_pausing:
            assert summary.loc[species, "median_pause_index"] > \
                2 * summary.loc[other, "median_pause_index"], (species, other)
    for species in pausing + not_pausing:
        table = pd.read_csv(demo_workdir / f"results/proseq/pausing/{species}.tsv", sep="\t")
        assert len(table) == summary.loc[species, "genes"]
        assert table["covered"].sum() == summary.loc[species, "covered_genes"] > 100


@pytest.mark.workflow
def test_demo_bigwigs_and_report_figures(demo_workdir: Path, tmp_path: Path) -> None:
    pyBigWig = pytest.importorskip("pyBigWig")
    species = _demo_species(demo_workdir)
    assert len(species) == 4
    results = demo_workdir / "results/proseq"
    figures = [f"metagene/{sp}.{figure}.png" for sp in species for figure in ("profile", "heatmap")]
    figures += ["pausing/pause_index.png", "comparison/assays.png", "comparison/orthologs.png"]
    for name in figures:
        assert (results / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    # the report of the PRO-seq targets holds every figure, with its caption
    report = tmp_path / "proseq_report.html"
    run_snakemake(demo_workdir, "--report", str(report),
                  *[f"results/proseq/{name}" for name in figures])
    html = report.read_text()
    for name in figures:
        assert Path(name).name in html, name
    assert "reads per bp per gene" in html  # the metagene caption
    # each replicate's two tracks sum to one million (CPM of all counted read-1 positions)
    total = 0.0
    for strand in ("plus", "minus"):
        bw = pyBigWig.open(str(results / f"bigwig/{species[0]}_proseq_1.{strand}.bw"))
        total += sum(v for chrom in bw.chroms() for *_, v in (bw.intervals(chrom) or ()))
        bw.close()
    assert total == pytest.approx(1e6, rel=1e-6)
    assays = pd.read_csv(results / "comparison/assays.tsv", sep="\t")
    assert set(assays["species"]) == set(species)
    assert assays["r2"].between(0.2, 0.95).all()  # related, but not the same measurement
    orthologs = pd.read_csv(results / "comparison/orthologs.tsv", sep="\t")
    assert len(orthologs) == 6 * 2 and set(orthologs["assay"]) == {"proseq", "rnaseq3p"}
