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
