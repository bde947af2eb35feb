"""The embedded demo, end to end with the real tools, checked against the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from conftest import run_snakemake
from plantt.labels import cohens_d

pytestmark = pytest.mark.workflow

SPECIES = ["medicago", "vicia", "pisum", "lathyrus"]


def _truth(workdir: Path) -> pd.DataFrame:
    return pd.read_csv(workdir / "resources/demo/truth.tsv", sep="\t")


@pytest.mark.parametrize(("assay", "truth_column"),
                         [("rnaseq3p", "abundance"), ("proseq", "transcription")])
def test_expression_follows_the_simulated_truth(demo_workdir: Path, assay: str,
                                                truth_column: str) -> None:
    """Spearman(true rate, mean CPM) >= 0.9 over genes with >= 50 reads, per species."""
    truth = _truth(demo_workdir)
    for species in SPECIES:
        counts = pd.read_csv(demo_workdir / f"results/expression/{species}.{assay}.counts.tsv",
                             sep="\t").set_index("gene_id")
        table = pd.read_csv(demo_workdir / f"results/expression/{species}.{assay}.tsv", sep="\t")
        cpm = table[table["unit"] == "cpm"].set_index("gene_id")
        reps = [c for c in counts.columns if c.startswith("rep_")]
        covered = counts.index[counts[reps].sum(axis=1) >= 50]
        assert len(covered) > 200, f"{species}/{assay}: only {len(covered)} genes with >= 50 reads"
        true_rate = truth[truth["species"] == species].set_index("gene_id")[truth_column]
        rho = spearmanr(true_rate.reindex(covered), cpm.loc[covered, "mean"]).statistic
        assert rho >= 0.9, f"{species}/{assay}: Spearman {rho:.3f}"


def test_expression_table_is_consistent(demo_workdir: Path) -> None:
    counts = pd.read_csv(demo_workdir / "results/expression/vicia.rnaseq3p.counts.tsv", sep="\t")
    table = pd.read_csv(demo_workdir / "results/expression/vicia.rnaseq3p.tsv", sep="\t")
    reps = [c for c in counts.columns if c.startswith("rep_")]
    assert len(reps) == 6
    for unit in ("cpm", "tpm"):
        part = table[table["unit"] == unit].set_index("gene_id")
        assert np.allclose(part[reps].sum(axis=0), 1e6)
        assert np.allclose(part["mean"], part[reps].mean(axis=1))
        assert np.allclose(part["sd"], part[reps].std(axis=1, ddof=1))
        assert (part["n"] == 6).all()
    cpm = table[table["unit"] == "cpm"].set_index("gene_id")
    raw = counts.set_index("gene_id")[reps]
    assert np.allclose(cpm[reps], raw / raw.sum(axis=0) * 1e6)


def test_pairs_labels_and_splits(demo_workdir: Path) -> None:
    pairs = pd.read_csv(demo_workdir / "results/orthologs/pairs.tsv", sep="\t")
    truth = _truth(demo_workdir)
    # OrthoFinder protein ids ("...g00012.1") were mapped back to annotation gene ids.
    known = set(truth["gene_id"])
    assert set(pairs["gene_a"]) <= known and set(pairs["gene_b"]) <= known
    assert len(pairs) > 2000
    labels = pd.read_csv(demo_workdir / "results/labels/rnaseq3p.tsv", sep="\t")
    row = labels.iloc[7]
    tables = {sp: pd.read_csv(demo_workdir / f"results/expression/{sp}.rnaseq3p.tsv", sep="\t")
              for sp in {row["species_a"], row["species_b"]}}

    def stats(species: str, gene: str) -> tuple[float, float, int]:
        t = tables[species]
        r = t[(t["unit"] == "cpm") & (t["gene_id"] == gene)].iloc[0]
        return r["mean"], r["sd"], r["n"]

    ma, sa, na = stats(row["species_a"], row["gene_a"])
    mb, sb, nb = stats(row["species_b"], row["gene_b"])
    assert row["d"] == pytest.approx(float(cohens_d(ma, sa, na, mb, sb, nb)), rel=1e-6)
    # Cohen's d of the demo's orthologs tracks the simulated abundance difference.
    true_abundance = truth.set_index(["species", "gene_id"])["abundance"]
    side_a = list(zip(labels.species_a, labels.gene_a, strict=True))
    side_b = list(zip(labels.species_b, labels.gene_b, strict=True))
    log_ratio = (np.log2(true_abundance.loc[side_a].to_numpy())
                 - np.log2(true_abundance.loc[side_b].to_numpy()))
    assert spearmanr(log_ratio, labels["d"]).statistic > 0.8
    splits = pd.read_csv(demo_workdir / "results/splits/rnaseq3p.tsv", sep="\t")
    for _, fold in splits.groupby("fold"):
        sets = fold.groupby("orthogroup")["set"].nunique()
        assert (sets == 1).all()  # no orthogroup in two sets of a fold
    assert splits.groupby("orthogroup").apply(lambda g: (g["set"] == "test").sum()).min() >= 1


def test_encoded_windows_match_the_window_fasta(demo_workdir: Path) -> None:
    codes = np.load(demo_workdir / "results/windows/encoded.npy", mmap_mode="r")
    genes = pd.read_csv(demo_workdir / "results/windows/encoded.genes.tsv", sep="\t")
    assert codes.shape == (len(genes), 3000)
    record = genes.iloc[len(genes) // 2]
    fasta = (demo_workdir / f"results/windows/{record['species']}.fa").read_text().split(">")
    seqs = {block.split("\n", 1)[0]: block.split("\n", 1)[1].replace("\n", "")
            for block in fasta if block}
    window = seqs[record["gene_id"]]
    assert "".join("ACGTN"[c] for c in codes[genes.index[len(genes) // 2]]) == window
    assert window[1000:1003] == "NNN" and window[1997:2000] == "NNN"


def test_report_builds(demo_workdir: Path) -> None:
    # the report of the stages before training (test_workflow_training builds one with models)
    run_snakemake(demo_workdir, "--report", str(demo_workdir / "report.html"), "preprocess_all")
    assert (demo_workdir / "report.html").stat().st_size > 10_000
    html = (demo_workdir / "report.html").read_text(errors="replace")
    # the QC figures: replicate concordance per species and assay (the paper's Supplementary
    # Figures 2-6), sample correlation heatmap and PCA per species
    sheet = pd.read_csv(demo_workdir / "resources/demo/samples.tsv", sep="\t")
    replicates = sheet.groupby(["species", "assay"]).size()
    concordance = pd.read_csv(demo_workdir / "results/qc/replicate_concordance.tsv", sep="\t")
    for (species, assay), n in replicates.items():
        assert f"{species}.{assay}.png" in html
        mine = concordance[(concordance["species"] == species) & (concordance["assay"] == assay)]
        assert len(mine) == n * (n - 1) // 2
        # simulated replicates share each gene's level: clearly concordant, never identical
        assert mine["pearson_r2"].between(0.4, 0.99).all(), mine
    assert "Replicate concordance" in html
    for species in sheet["species"].unique():
        assert f"{species}.correlation.png" in html and f"{species}.pca.png" in html
        corr = pd.read_csv(demo_workdir / f"results/qc/samples/{species}.correlation.tsv",
                           sep="\t", index_col="sample")
        assays = [name.rsplit("_rep_", 1)[0] for name in corr.index]
        same = np.equal.outer(assays, assays) & ~np.eye(len(assays), dtype=bool)
        if (~same & ~np.eye(len(assays), dtype=bool)).any():  # both assays: they separate
            assert corr.to_numpy()[same].min() > corr.to_numpy()[~same & ~np.eye(len(assays),
                                                                            dtype=bool)].max()


def test_multiqc_is_the_one_qc_page(demo_workdir: Path) -> None:
    """MultiQC's data directory holds every section, one entry per sample (one per pair of
    replicates for the concordance), with the values of the workflow's own tables; the report
    shows them in the order of workflow/report/multiqc_config.yaml."""
    qc = demo_workdir / "results/qc"
    data = qc / "multiqc_report_data"
    sheet = pd.read_csv(demo_workdir / "resources/demo/samples.tsv", sep="\t")
    samples = set(sheet["sample"])
    sources = pd.read_csv(data / "multiqc_sources.txt", sep="\t")
    for module in ("Trimming (cutadapt)", "Mapping (STAR)", "Alignments (samtools stats)"):
        assert set(sources.loc[sources["Module"] == module, "Sample Name"]) == samples, module

    summary = pd.read_csv(qc / "counting_summary.tsv", sep="\t", index_col="sample")
    bars = pd.read_csv(data / "multiqc_plantt_read_assignment_plot.txt", sep="\t",
                       index_col="Sample")
    assert set(bars.index) == samples and len(bars) == len(samples)
    for column in ("assigned", "ambiguous", "antisense", "low_mapq", "not_read1"):
        assert (bars[column] == summary.loc[bars.index, column]).all(), column
    assert (bars["intergenic"] == summary.loc[bars.index, "no_feature"]
            - summary.loc[bars.index, "antisense"]).all()

    # samtools stats reads the same BAMs as the counting: primary + non-primary alignments are
    # every alignment the counting saw (the bar's parts)
    stats = pd.read_csv(data / "multiqc_samtools_stats.txt", sep="\t", index_col="Sample")
    assert set(stats.index) == samples
    alignments = stats["raw_total_sequences"] + stats["non-primary_alignments"]
    assert (alignments == bars.loc[stats.index].sum(axis=1)).all()

    concordance = pd.read_csv(qc / "replicate_concordance.tsv", sep="\t")
    table = pd.read_csv(data / "multiqc_plantt_replicate_concordance_table.txt", sep="\t",
                        index_col="Sample")
    assert len(table) == len(concordance)
    name = sheet.set_index(["species", "assay", "replicate"])["sample"]
    for row in concordance.itertuples():
        x = name[(row.species, row.assay, int(row.replicate_x.removeprefix("rep_")))]
        y = name[(row.species, row.assay, int(row.replicate_y.removeprefix("rep_")))]
        assert table.loc[f"{x} vs {y}", "pearson_r2"] == pytest.approx(row.pearson_r2)

    html = (qc / "multiqc_report.html").read_text(errors="replace")
    titles = ['id="cutadapt">Trimming (cutadapt)', 'id="star">Mapping (STAR)',
              'id="samtools">Alignments (samtools stats)',
              'id="plantt_read_assignment">Read assignment',
              'id="plantt_replicate_concordance">Replicate concordance']
    positions = [html.find(title) for title in titles]
    assert -1 not in positions and positions == sorted(positions), positions


def test_rnaseq3p_strand_tracks_hold_the_counted_read_ends(demo_workdir: Path) -> None:
    """The 3'-RNA-seq bigWigs: CPM of read 5' ends on the read's strand, so that summing a gene's
    counting region on its own strand gives its read count times one scale for the sample."""
    from plantt.annotation import read_genes
    from plantt.quantify import CountSettings, counting_regions
    from plantt.tracks import read_bigwig

    sheet = pd.read_csv(demo_workdir / "resources/demo/samples.tsv", sep="\t")
    row = sheet[sheet["assay"] == "rnaseq3p"].iloc[0]
    # (the tracks are in the default target `all`, not in preprocess_all: one sample's is made here)
    run_snakemake(demo_workdir, f"results/coverage/{row['sample']}.plus.bw")
    _, plus = read_bigwig(demo_workdir / f"results/coverage/{row['sample']}.plus.bw")
    _, minus = read_bigwig(demo_workdir / f"results/coverage/{row['sample']}.minus.bw")
    assert sum(v.sum() for v in plus.values()) + sum(v.sum() for v in minus.values()) == \
        pytest.approx(1e6, rel=1e-6)
    counts = pd.read_csv(demo_workdir / f"results/counts/{row['sample']}.tsv", sep="\t")
    genes = read_genes(demo_workdir / f"resources/demo/annotation/{row['species']}.gff3")
    regions = counting_regions(genes, CountSettings("rnaseq3p")).set_index("gene_id")
    counted = counts.set_index("gene_id")["count"]
    counted = counted[counted > 0]
    sums = pd.Series({g: (plus if regions.loc[g, "strand"] == "+" else minus)[
        regions.loc[g, "seqid"]][regions.loc[g, "start"]:regions.loc[g, "end"]].sum()
        for g in counted.index})
    ratio = sums / counted
    assert len(ratio) > 500
    assert (np.abs(ratio / ratio.median() - 1) < 1e-6).mean() > 0.95
    # and the other strand holds little of it (QuantSeq FWD reads are sense)
    anti = pd.Series({g: (minus if regions.loc[g, "strand"] == "+" else plus)[
        regions.loc[g, "seqid"]][regions.loc[g, "start"]:regions.loc[g, "end"]].sum()
        for g in counted.index})
    assert anti.sum() < 0.1 * sums.sum()
