"""Replicate concordance, sample correlation and PCA (plantt.qc) on made-up expression with known
structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plantt.io import InputError
from plantt.qc import (
    plot_replicate_scatter,
    plot_sample_qc,
    replicate_concordance,
    replicate_matrix,
    sample_correlation,
    sample_matrix,
    sample_pca,
)


def _replicates(rng: np.random.Generator, genes: int, reps: int, noise: float) -> pd.DataFrame:
    level = rng.normal(5, 2, genes)
    values = {f"rep_{k + 1}": np.maximum(2 ** (level + rng.normal(0, noise, genes)) - 1, 0)
              for k in range(reps)}
    return pd.DataFrame(values, index=[f"g{i}" for i in range(genes)])


def _expression_table(path: Path, values: pd.DataFrame, species: str, assay: str) -> Path:
    frames = []
    for unit, scale in (("cpm", 1.0), ("tpm", 2.0)):
        frame = pd.DataFrame({"gene_id": values.index, "species": species, "assay": assay,
                              "unit": unit, "n": values.shape[1],
                              "mean": values.mean(axis=1), "sd": values.std(axis=1)})
        frames.append(pd.concat([frame.reset_index(drop=True),
                                 (values * scale).reset_index(drop=True)], axis=1))
    pd.concat(frames).to_csv(path, sep="\t", index=False)
    return path


def test_concordance_of_every_pair_and_a_bad_replicate_stands_out() -> None:
    rng = np.random.default_rng(0)
    values = _replicates(rng, 2000, 4, noise=0.2)
    values["rep_4"] = rng.permutation(values["rep_4"].to_numpy())  # a swapped library
    table = replicate_concordance(values, "sp", "rnaseq3p")
    assert len(table) == 6  # 4 choose 2
    with_bad = table[table["replicate_y"] == "rep_4"]
    good = table[table["replicate_y"] != "rep_4"]
    assert (good["pearson_r2"] > 0.9).all()
    assert (with_bad["pearson_r2"] < 0.1).all()
    assert np.allclose(table["pearson_r2"], table["pearson_r"] ** 2)


def test_genes_silent_in_both_replicates_are_left_out() -> None:
    values = pd.DataFrame({"rep_1": [0.0, 0, 0, 5, 10, 20, 40], "rep_2": [0.0, 0, 0, 6, 9, 21, 39]})
    row = replicate_concordance(values, "sp", "proseq").iloc[0]
    assert row["genes"] == 4
    silent_included = np.corrcoef(np.log2(values["rep_1"] + 1), np.log2(values["rep_2"] + 1))[0, 1]
    assert row["pearson_r"] != pytest.approx(silent_included)


def test_pca_and_correlation_separate_assays(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rna = _replicates(rng, 1500, 3, noise=0.3)
    pro = _replicates(rng, 1500, 3, noise=0.3)  # another expression programme, same genes
    tables = {"rnaseq3p": _expression_table(tmp_path / "r.tsv", rna, "sp", "rnaseq3p"),
              "proseq": _expression_table(tmp_path / "p.tsv", pro, "sp", "proseq")}
    assert replicate_matrix(tables["proseq"], "tpm").iloc[0, 0] == pytest.approx(2 * pro.iloc[0, 0])
    values = sample_matrix(tables)
    assert list(values.columns) == [f"{a}_rep_{k}" for a in ("rnaseq3p", "proseq") for k in (1, 2, 3)]
    corr = sample_correlation(values)
    within = corr.loc["rnaseq3p_rep_1", "rnaseq3p_rep_2"]
    across = corr.loc["rnaseq3p_rep_1", "proseq_rep_1"]
    assert within > 0.9 > across
    pca, explained = sample_pca(values, top_genes=500)
    assert explained[0] > 0.5
    side = np.sign(pca["PC1"])
    assert len(set(side[:3])) == 1 and len(set(side[3:])) == 1 and side.iloc[0] != side.iloc[3]
    plot_sample_qc(corr, pca, explained, tmp_path / "h.png", tmp_path / "p.png", "sp")
    plot_replicate_scatter(rna, replicate_concordance(rna, "sp", "rnaseq3p"), tmp_path / "s.png",
                           "sp rnaseq3p")
    assert all((tmp_path / name).stat().st_size > 5000 for name in ("h.png", "p.png", "s.png"))


def test_a_table_without_replicate_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.tsv"
    path.write_text("gene_id\tunit\tmean\ng1\tcpm\t3\n")
    with pytest.raises(InputError, match="no cpm rows with rep_<n> columns"):
        replicate_matrix(path)
