"""Replicate concordance, sample correlation and PCA (plantt.qc) on made-up expression with known
structure."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from plantt.io import InputError
from plantt.qc import (
    READ_ASSIGNMENT_CATEGORIES,
    plot_replicate_scatter,
    plot_sample_qc,
    read_assignment_multiqc,
    replicate_concordance,
    replicate_concordance_multiqc,
    replicate_matrix,
    sample_correlation,
    sample_matrix,
    sample_pca,
    write_multiqc_content,
)

REPO = Path(__file__).resolve().parents[1]


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


# ---- MultiQC custom content -------------------------------------------------------------------

SUMMARY_HEADER = ("sample\tassay\tassigned\tambiguous\tno_feature\tantisense\tlow_mapq\tunmapped\t"
                  "secondary_or_supplementary\tnot_read1\n")


def _summary(path: Path, *rows: str) -> Path:
    path.write_text(SUMMARY_HEADER + "".join(f"{row}\n" for row in rows))
    return path


def test_read_assignment_bars_split_every_alignment_once(tmp_path: Path) -> None:
    summary = _summary(tmp_path / "counting_summary.tsv",
                       "sp_rnaseq3p_1\trnaseq3p\t900\t5\t60\t20\t7\t0\t8\t0",
                       "sp_proseq_1\tproseq\t400\t0\t100\t30\t3\t2\t4\t500")
    content = read_assignment_multiqc(summary)
    assert content["plot_type"] == "bargraph" and content["id"] == "plantt_read_assignment"
    assert list(content["categories"]) == [key for key, _, _ in READ_ASSIGNMENT_CATEGORIES]
    rna, pro = content["data"]["sp_rnaseq3p_1"], content["data"]["sp_proseq_1"]
    assert rna["assigned"] == 900 and rna["antisense"] == 20 and rna["intergenic"] == 40
    # the bar's parts add up to every alignment of the BAM (antisense is a part of no_feature)
    assert sum(rna.values()) == 900 + 5 + 60 + 7 + 0 + 8 + 0
    assert pro["not_read1"] == 500 and sum(pro.values()) == 400 + 100 + 3 + 2 + 4 + 500
    assert all(isinstance(v, int) for v in rna.values())
    target = tmp_path / "read_assignment_mqc.yaml"
    write_multiqc_content(content, target)
    assert yaml.safe_load(target.read_text()) == content
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.parametrize(("row", "line", "problem"), [
    ("b\trnaseq3p\t-3\t0\t0\t0\t0\t0\t0\t0", 3, "assigned is -3"),
    ("b\trnaseq3p\t3\t0\tmany\t0\t0\t0\t0\t0", 3, "no_feature is 'many'"),
    ("b\trnaseq3p\t3\t0\t1.5\t0\t0\t0\t0\t0", 3, "no_feature is 1.5"),
    ("b\trnaseq3p\t3\t0\t\t0\t0\t0\t0\t0", 3, "no_feature is nan"),
    ("a\trnaseq3p\t3\t0\t0\t0\t0\t0\t0\t0", 3, "sample 'a' appears twice"),
    ("b\trnaseq3p\t3\t0\t2\t5\t0\t0\t0\t0", 3, "antisense (5) exceeds no_feature (2)"),
])
def test_a_bad_counting_summary_is_refused_with_its_line(tmp_path: Path, row: str, line: int,
                                                        problem: str) -> None:
    summary = _summary(tmp_path / "counting_summary.tsv",
                       "a\trnaseq3p\t1\t0\t0\t0\t0\t0\t0\t0", row)
    with pytest.raises(InputError, match=rf"counting_summary.tsv, line {line}: .*") as err:
        read_assignment_multiqc(summary)
    assert problem in str(err.value)


def test_a_counting_summary_without_its_columns_or_rows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "summary.tsv"
    path.write_text("sample\tassigned\na\t3\n")
    with pytest.raises(InputError, match=r"summary.tsv, line 1: missing column\(s\) ambiguous"):
        read_assignment_multiqc(path)
    with pytest.raises(InputError, match=r"summary.tsv: no samples"):
        read_assignment_multiqc(_summary(path))


CONCORDANCE_HEADER = "species\tassay\treplicate_x\treplicate_y\tgenes\tpearson_r\tpearson_r2\n"


def test_concordance_table_names_the_pairs_by_sample(tmp_path: Path) -> None:
    path = tmp_path / "replicate_concordance.tsv"
    path.write_text(CONCORDANCE_HEADER + "sp\trnaseq3p\trep_1\trep_2\t1200\t0.9\t0.81\n"
                    "sp\trnaseq3p\trep_1\trep_3\t2\t\t\n")
    names = {("sp", "rnaseq3p", f"rep_{n}"): f"sp_3p_{n}" for n in (1, 2, 3)}
    content = replicate_concordance_multiqc(path, names)
    assert content["plot_type"] == "table" and content["id"] == "plantt_replicate_concordance"
    assert list(content["data"]) == ["sp_3p_1 vs sp_3p_2", "sp_3p_1 vs sp_3p_3"]
    first = content["data"]["sp_3p_1 vs sp_3p_2"]
    assert first == {"species": "sp", "assay": "rnaseq3p", "sample_x": "sp_3p_1",
                     "sample_y": "sp_3p_2", "genes": 1200, "pearson_r": 0.9, "pearson_r2": 0.81}
    # too few genes for a correlation: empty cells, not NaN (which YAML and MultiQC mangle)
    assert "pearson_r2" not in content["data"]["sp_3p_1 vs sp_3p_3"]
    assert set(first) <= set(content["headers"])
    # without the sample sheet, rows are named by species, assay and replicate
    assert "sp rnaseq3p rep_1 vs sp rnaseq3p rep_2" in replicate_concordance_multiqc(path)["data"]


@pytest.mark.parametrize(("row", "problem"), [
    ("sp\trnaseq3p\trep_1\trep_9\t10\t0.5\t0.25", "rep_9 of sp rnaseq3p is not in the sample sheet"),
    ("sp\trnaseq3p\trep_1\trep_2\t10\t0.5\t1.25", "pearson_r2 is 1.25"),
    ("sp\trnaseq3p\trep_1\trep_2\t10\thigh\t0.25", "pearson_r is 'high'"),
    ("sp\trnaseq3p\trep_1\trep_2\tmany\t0.5\t0.25", "genes is 'many'"),
    ("sp\trnaseq3p\trep_1\trep_2\t\t0.5\t0.25", "genes is nan"),
    ("sp\trnaseq3p\trep_2\trep_3\t10\t0.5\t0.25", "the pair s2 vs s3 appears twice"),
])
def test_a_bad_concordance_table_is_refused_with_its_line(tmp_path: Path, row: str,
                                                         problem: str) -> None:
    path = tmp_path / "replicate_concordance.tsv"
    path.write_text(CONCORDANCE_HEADER + "sp\trnaseq3p\trep_2\trep_3\t10\t0.5\t0.25\n"
                    + row + "\n")
    names = {("sp", "rnaseq3p", f"rep_{n}"): f"s{n}" for n in (1, 2, 3)}
    with pytest.raises(InputError, match=r"replicate_concordance.tsv, line 3: ") as err:
        replicate_concordance_multiqc(path, names)
    assert problem in str(err.value)


@pytest.mark.skipif(shutil.which("multiqc") is None, reason="MultiQC is not installed")
def test_multiqc_reads_the_custom_content_with_the_workflows_config(tmp_path: Path) -> None:
    """MultiQC itself, with workflow/report/multiqc_config.yaml, over the two files: both
    sections, named, in order, with the tables' values in its data directory."""
    summary = _summary(tmp_path / "counting_summary.tsv",
                       "sp_rnaseq3p_1\trnaseq3p\t900\t5\t60\t20\t7\t0\t8\t0",
                       "sp_rnaseq3p_2\trnaseq3p\t800\t4\t50\t10\t6\t0\t9\t0")
    concordance = tmp_path / "replicate_concordance.tsv"
    concordance.write_text(CONCORDANCE_HEADER + "sp\trnaseq3p\trep_1\trep_2\t1200\t0.9\t0.81\n")
    names = {("sp", "rnaseq3p", "rep_1"): "sp_rnaseq3p_1", ("sp", "rnaseq3p", "rep_2"): "sp_rnaseq3p_2"}
    content = tmp_path / "content"
    write_multiqc_content(read_assignment_multiqc(summary), content / "read_assignment_mqc.yaml")
    write_multiqc_content(replicate_concordance_multiqc(concordance, names),
                          content / "replicate_concordance_mqc.yaml")
    subprocess.run(["multiqc", "--force", "--config", str(REPO / "workflow/report/multiqc_config.yaml"),
                    "-o", str(tmp_path / "out"), "-n", "multiqc_report.html", str(content)],
                   check=True, capture_output=True, timeout=300)
    data = tmp_path / "out" / "multiqc_report_data"
    bars = pd.read_csv(data / "multiqc_plantt_read_assignment_plot.txt", sep="\t", index_col=0)
    assert bars.loc["sp_rnaseq3p_1", "assigned"] == 900
    assert bars.loc["sp_rnaseq3p_2", "intergenic"] == 40
    table = pd.read_csv(data / "multiqc_plantt_replicate_concordance_table.txt", sep="\t",
                        index_col=0)
    assert table.loc["sp_rnaseq3p_1 vs sp_rnaseq3p_2", "pearson_r2"] == pytest.approx(0.81)
    html = (tmp_path / "out" / "multiqc_report.html").read_text()
    assert (html.index('id="plantt_read_assignment">Read assignment')
            < html.index('id="plantt_replicate_concordance">Replicate concordance'))
