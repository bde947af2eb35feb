"""Cohen's d labels: hand-computed values, replicate counts that differ, transforms, bad input."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plantt import cli
from plantt.labels import LABEL_COLUMNS, cohens_d, pooled_sd, replicate_stats

PAIR_COLUMNS = ["orthogroup", "label", "gene_a", "species_a", "gene_b", "species_b"]


def expression_table(path: Path, species: str, assay: str,
                     genes: dict[str, tuple[list[float], list[float]]]) -> None:
    """Write a table with a cpm and a tpm row per gene: {gene: (cpm reps, tpm reps)}."""
    k = max(len(reps) for pair in genes.values() for reps in pair)
    rows = []
    for gene, (cpm, tpm) in genes.items():
        for unit, reps in (("cpm", cpm), ("tpm", tpm)):
            arr = np.array(reps, dtype=float)
            row = {"gene_id": gene, "species": species, "assay": assay, "unit": unit,
                   "n": len(reps), "mean": arr.mean(),
                   "sd": arr.std(ddof=1) if len(arr) > 1 else np.nan}
            row.update({f"rep_{i + 1}": (reps[i] if i < len(reps) else np.nan)
                        for i in range(k)})
            rows.append(row)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    # medicago: 6 replicates, vicia: 3 replicates (like 3'-RNA-seq vs PRO-seq counts in the paper)
    expression_table(tmp_path / "medicago.rna.tsv", "medicago", "rna", {
        "m1": ([10, 12, 14, 16, 18, 20], [1, 1, 1, 1, 1, 2]),
        "m2": ([5, 5, 5, 5, 5, 5], [1, 2, 3, 4, 5, 6]),
        "m3": ([1, 3, 7, 1, 3, 7], [0, 0, 0, 0, 0, 0]),
    })
    expression_table(tmp_path / "vicia.rna.tsv", "vicia", "rna", {
        "v1": ([4, 6, 8], [2, 2, 3]),
        "v2": ([5, 5, 5], [7, 8, 9]),
        "v3": ([0, 1, 3], [0, 0, 0]),
    })
    pd.DataFrame([
        ("OG1", "{M,V}", "m1", "medicago", "v1", "vicia"),
        ("OG2", "{M,V}", "m2", "medicago", "v2", "vicia"),  # both constant in cpm: s_pooled = 0
        ("OG3", "{M,V}", "m3", "medicago", "v3", "vicia"),
        ("OG4", "{M,V}", "m_missing", "medicago", "v1", "vicia"),
    ], columns=PAIR_COLUMNS).to_csv(tmp_path / "pairs.tsv", sep="\t", index=False)
    return tmp_path


def run_labels(monkeypatch: pytest.MonkeyPatch, d: Path, *extra: str) -> int:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["plantt.labels"])
    return cli.main(["labels", "--pairs", str(d / "pairs.tsv"), "--expression",
                     str(d / "medicago.rna.tsv"), str(d / "vicia.rna.tsv"), "--assay", "rna",
                     "--out", str(d / "labels.tsv"), *extra])


def test_cohens_d_by_hand_unequal_replicates() -> None:
    # a = 10..20 step 2 (n=6): mean 15, var 70/5 = 14; b = 4,6,8 (n=3): mean 6, var 8/2 = 4
    # s_pooled = sqrt((5*14 + 2*4) / 7) = sqrt(78/7) = 3.33809...; d = 9 / 3.33809 = 2.69615...
    d = cohens_d(15.0, math.sqrt(14), 6, 6.0, 2.0, 3)
    assert d == pytest.approx(9 / math.sqrt(78 / 7))
    assert d == pytest.approx(2.69615, abs=1e-5)
    # Swapping the genes flips the sign and nothing else.
    assert cohens_d(6.0, 2.0, 3, 15.0, math.sqrt(14), 6) == pytest.approx(-d)


def test_cohens_d_equal_replicates_and_vectorised() -> None:
    d = cohens_d(np.array([2.0, 3.0, 5.0]), np.array([1.0, 2.0, 0.0]), np.array([3, 4, 3]),
                 np.array([3.0, 1.0, 5.0]), np.array([1.0, 1.0, 0.0]), np.array([3, 2, 3]))
    # 1) s_pooled = 1 -> d = -1; 2) s_pooled = sqrt((3*4 + 1*1) / 4) = sqrt(13/4) -> 2 / 1.8028
    assert d[0] == pytest.approx(-1.0)
    assert d[1] == pytest.approx(2 / math.sqrt(13 / 4))
    assert math.isnan(d[2])  # zero pooled SD: no effect size
    assert math.isnan(pooled_sd(1.0, 1, 2.0, 1).item())  # n_a + n_b - 2 = 0: undefined


def test_replicate_stats_ignore_missing_replicates_and_use_ddof_1() -> None:
    stats = replicate_stats(np.array([[1.0, 2.0, 3.0, np.nan], [2.0, 4.0, 6.0, 8.0]]))
    assert stats["n"].tolist() == [3, 4]
    assert stats["mean"].tolist() == pytest.approx([2.0, 5.0])
    assert stats["sd"].tolist() == pytest.approx([1.0, math.sqrt(20 / 3)])
    logged = replicate_stats(np.array([[1.0, 3.0, 7.0]]), "log2", pseudocount=1)
    assert logged["mean"].item() == pytest.approx(2.0) and logged["sd"].item() == pytest.approx(1)


def test_cli_labels_pairs(inputs: Path, monkeypatch: pytest.MonkeyPatch,
                          caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="plantt"):
        assert run_labels(monkeypatch, inputs) == 0
    out = pd.read_csv(inputs / "labels.tsv", sep="\t")
    assert list(out.columns) == PAIR_COLUMNS + LABEL_COLUMNS
    assert out["orthogroup"].tolist() == ["OG1", "OG3"]
    og1 = out.iloc[0]
    assert (og1["n_a"], og1["n_b"]) == (6, 3)
    assert og1["d"] == pytest.approx(9 / math.sqrt(78 / 7))
    assert og1["sd_a"] == pytest.approx(math.sqrt(14)) and og1["sd_b"] == pytest.approx(2.0)
    assert (og1["assay"], og1["unit"], og1["transform"]) == ("rna", "cpm", "none")
    text = caplog.text
    assert "m_missing" in text  # the missing gene is named
    assert "1 lack expression" in text and "1 have a zero pooled SD" in text


def test_cli_log2_transform_per_replicate(inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_labels(monkeypatch, inputs, "--log-transform", "log2") == 0
    out = pd.read_csv(inputs / "labels.tsv", sep="\t").set_index("orthogroup")
    # m3: log2([1,3,7,1,3,7] + 1) = [1,2,3,1,2,3] -> mean 2, var (1+0+1+1+0+1)/5 = 0.8
    # v3: log2([0,1,3] + 1) = [0,1,2] -> mean 1, var 1
    s_pooled = math.sqrt((5 * 0.8 + 2 * 1.0) / 7)
    assert out.loc["OG3", "d"] == pytest.approx(1 / s_pooled)
    assert out.loc["OG3", "transform"] == "log2"


def test_cli_unit_choice(inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_labels(monkeypatch, inputs, "--unit", "tpm") == 0
    out = pd.read_csv(inputs / "labels.tsv", sep="\t").set_index("orthogroup")
    # tpm: OG2 now varies (m2 = 1..6, v2 = 7,8,9), OG3 is all zero -> dropped
    assert sorted(out.index) == ["OG1", "OG2"]
    sd_m2 = np.std([1, 2, 3, 4, 5, 6], ddof=1)
    expected = (3.5 - 8) / math.sqrt((5 * sd_m2**2 + 2 * 1.0) / 7)
    assert out.loc["OG2", "d"] == pytest.approx(expected)


def test_declared_n_must_match_replicates(inputs: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
    table = pd.read_csv(inputs / "vicia.rna.tsv", sep="\t")
    table.loc[2, "n"] = 4  # v2, cpm row (file line 4)
    table.to_csv(inputs / "vicia.rna.tsv", sep="\t", index=False)
    assert run_labels(monkeypatch, inputs) == 1
    err = capsys.readouterr().err
    assert "vicia.rna.tsv, line 4, record 'v2'" in err


def test_duplicate_gene_is_an_error(inputs: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture) -> None:
    table = pd.read_csv(inputs / "vicia.rna.tsv", sep="\t")
    pd.concat([table, table.iloc[[0]]]).to_csv(inputs / "vicia.rna.tsv", sep="\t", index=False)
    assert run_labels(monkeypatch, inputs) == 1
    err = capsys.readouterr().err
    assert "vicia.rna.tsv, line 8" in err and "vicia/v1" in err and "twice" in err


def test_missing_expression_columns(inputs: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture) -> None:
    table = pd.read_csv(inputs / "vicia.rna.tsv", sep="\t").drop(columns=["unit"])
    table.to_csv(inputs / "vicia.rna.tsv", sep="\t", index=False)
    assert run_labels(monkeypatch, inputs) == 1
    err = capsys.readouterr().err
    assert "vicia.rna.tsv, line 1" in err and "unit" in err
