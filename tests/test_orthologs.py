"""Single-copy ortholog pairs from orthogroups: filters, labels, pair order, bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from plantt import cli
from plantt.orthologs import candidate_gene_ids, format_label

# species -> {gene id: length}; pisum's annotation uses Ensembl-style "gene:" ids.
GENES = {
    "medicago": {"m1": 2000, "m2": 1500, "m3a": 3000, "m3b": 3000, "m4": 500, "m6": 1000,
                 "m8": 1200, "m9": 1200, "m10": 1500},
    "vicia": {"v1": 4000, "v2": 1000, "v3": 2000, "v4": 1200, "v5": 1300, "v7": 1400,
              "v8": 1500, "v9": 1500, "v10": 999},
    "pisum": {"gene:p1": 1800, "gene:p3": 2500, "gene:p6": 1100, "gene:p8": 1600},
}
CODES = {"medicago": "M", "vicia": "V", "pisum": "P"}
ORTHOGROUPS = [
    # Orthogroup, medicago_pep, vicia_pep, pisum_pep
    ("OG0000001", "m1.1", "v1.1", "p1.1"),  # all three kept
    ("OG0000002", "m2.1, m2.2", "v2.1", ""),  # two isoforms of one gene = one copy
    ("OG0000003", "m3a.1, m3b.1", "v3.1", "p3.1"),  # medicago multi-copy
    ("OG0000004", "m4.1", "v4.1", ""),  # m4 too short -> one species left, no pair
    ("OG0000005", "", "v5.1", ""),  # one species only
    ("OG0000006", "m6.1", "", "p6.1"),  # exactly 1000 bp is long enough
    ("OG0000007", "mystery.1", "v7.1", ""),  # medicago id not in the annotation
    ("OG0000008", "m8.1", "v8.1", "p8.1"),  # p8 sits in two orthogroups ...
    ("OG0000009", "m9.1", "v9.1", "p8.2"),  # ... so it is dropped from both
    ("OG0000010", "m10.1", "v10.1", ""),  # v10 is 999 bp
]


def write_inputs(d: Path, orthogroups=ORTHOGROUPS, columns=None) -> None:
    rows = ["species\tcode\tgenome\tannotation\tproteome"]
    for species, genes in GENES.items():
        gff = d / f"{species}.gff3"
        lines = ["##gff-version 3"]
        for i, (gene, length) in enumerate(genes.items()):
            start = 1 + 10_000 * i
            lines.append(f"chr1\tt\tgene\t{start}\t{start + length - 1}\t.\t+\t.\tID={gene}")
        gff.write_text("\n".join(lines) + "\n")
        proteome = "" if species == "pisum" else f"{species}_pep"  # pisum: default = species id
        rows.append(f"{species}\t{CODES[species]}\t{species}.fa\t{gff}\t{proteome}")
    (d / "species.tsv").write_text("\n".join(rows) + "\n")
    columns = columns or ["Orthogroup", "medicago_pep", "vicia_pep", "pisum"]
    text = "\t".join(columns) + "\n" + "".join("\t".join(r) + "\n" for r in orthogroups)
    (d / "Orthogroups.tsv").write_text(text)


def run_orthologs(monkeypatch: pytest.MonkeyPatch, d: Path, *extra: str) -> int:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["plantt.orthologs"])
    return cli.main(["orthologs", "--orthogroups", str(d / "Orthogroups.tsv"), "--species-sheet",
                     str(d / "species.tsv"), "--out", str(d / "pairs.tsv"), "--summary",
                     str(d / "summary.tsv"), *extra])


def test_pairs_from_single_copy_long_genes(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    write_inputs(tmp_path)
    assert run_orthologs(monkeypatch, tmp_path, "--max-unmapped-fraction", "0.2") == 0
    pairs = pd.read_csv(tmp_path / "pairs.tsv", sep="\t")
    assert list(pairs.columns) == ["orthogroup", "label", "gene_a", "species_a", "gene_b",
                                   "species_b"]
    got = [tuple(r) for r in pairs.itertuples(index=False)]
    assert got == [
        ("OG0000001", "{M,P,V}", "m1", "medicago", "v1", "vicia"),
        ("OG0000001", "{M,P,V}", "m1", "medicago", "gene:p1", "pisum"),
        ("OG0000001", "{M,P,V}", "v1", "vicia", "gene:p1", "pisum"),
        ("OG0000002", "{M,V}", "m2", "medicago", "v2", "vicia"),
        ("OG0000003", "{P,V}", "v3", "vicia", "gene:p3", "pisum"),
        ("OG0000006", "{M,P}", "m6", "medicago", "gene:p6", "pisum"),
        ("OG0000008", "{M,V}", "m8", "medicago", "v8", "vicia"),
        ("OG0000009", "{M,V}", "m9", "medicago", "v9", "vicia"),
    ]


def test_summary_counts_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_inputs(tmp_path)
    assert run_orthologs(monkeypatch, tmp_path, "--max-unmapped-fraction", "0.2") == 0
    summary = pd.read_csv(tmp_path / "summary.tsv", sep="\t")
    count = summary.set_index(["step", "species", "label"])["count"]
    assert count[("orthogroups_read", "all", "all")] == 10
    assert count[("multi_copy", "medicago", "all")] == 1
    assert count[("too_short", "medicago", "all")] == 1
    assert count[("too_short", "vicia", "all")] == 1
    assert count[("unmapped", "medicago", "all")] == 1
    assert count[("unmapped_protein_ids", "medicago", "all")] == 1
    assert count[("protein_ids", "medicago", "all")] == 11
    assert count[("gene_in_several_orthogroups", "pisum", "all")] == 2
    assert count[("kept", "pisum", "all")] == 3
    assert count[("orthogroups_used", "all", "all")] == 6
    assert count[("orthogroups_fewer_than_2_species", "all", "all")] == 4
    assert count[("pairs", "all", "{M,P,V}")] == 3
    assert count[("pairs", "all", "{M,V}")] == 3
    assert count[("pairs", "all", "all")] == 8


def test_min_gene_length_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_inputs(tmp_path)
    assert run_orthologs(monkeypatch, tmp_path, "--max-unmapped-fraction", "0.2",
                         "--min-gene-length", "500") == 0
    pairs = pd.read_csv(tmp_path / "pairs.tsv", sep="\t")
    assert {"OG0000004", "OG0000010"} <= set(pairs["orthogroup"])


def test_unmapped_fraction_over_threshold_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        caplog: pytest.LogCaptureFixture) -> None:
    write_inputs(tmp_path)
    with caplog.at_level(logging.WARNING, logger="plantt"):
        assert run_orthologs(monkeypatch, tmp_path) == 1  # 1 of 11 > 5 %
    err = capsys.readouterr().err
    assert "Orthogroups.tsv" in err and "medicago: 1/11 unmapped" in err and "mystery.1" in err
    assert "mystery.1" in caplog.text  # also shown in the log
    assert not (tmp_path / "pairs.tsv").exists()


def test_species_column_not_in_sheet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture) -> None:
    write_inputs(tmp_path, columns=["Orthogroup", "medicago_pep", "vicia_pep", "lens_pep"])
    assert run_orthologs(monkeypatch, tmp_path) == 1
    err = capsys.readouterr().err
    assert "Orthogroups.tsv, line 1" in err and "'lens_pep'" in err


def test_sheet_species_absent_from_table_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    rows = [(og, m, v) for og, m, v, _ in ORTHOGROUPS if og != "OG0000007"]
    write_inputs(tmp_path, orthogroups=rows, columns=["Orthogroup", "medicago_pep", "vicia_pep"])
    with caplog.at_level(logging.WARNING, logger="plantt"):
        assert run_orthologs(monkeypatch, tmp_path) == 0
    assert "pisum" in caplog.text and "no column 'pisum'" in caplog.text
    pairs = pd.read_csv(tmp_path / "pairs.tsv", sep="\t")
    assert set(pairs["label"]) == {"{M,V}"}
    assert "OG0000001" in set(pairs["orthogroup"])


def test_malformed_annotation_line_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    write_inputs(tmp_path)
    with open(tmp_path / "vicia.gff3", "a") as handle:
        handle.write("chr1\tt\tgene\tten\t200\t.\t+\t.\tID=bad\n")
    n_lines = len((tmp_path / "vicia.gff3").read_text().splitlines())
    assert run_orthologs(monkeypatch, tmp_path, "--max-unmapped-fraction", "0.2") == 1
    err = capsys.readouterr().err
    assert f"vicia.gff3, line {n_lines}" in err and "integers" in err


def test_id_regex_extracts_gene_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [("OG1", "pep|m1|x", "pep|v1|y", "pep|p1|z"), ("OG2", "pep|m2|x", "pep|v2|q", "")]
    write_inputs(tmp_path, orthogroups=rows)
    assert run_orthologs(monkeypatch, tmp_path, "--id-regex", r"^pep\|([^|]+)\|") == 0
    pairs = pd.read_csv(tmp_path / "pairs.tsv", sep="\t")
    assert pairs["gene_b"].tolist() == ["v1", "gene:p1", "gene:p1", "v2"]


def test_candidate_ids_and_labels() -> None:
    ids = pd.Series(["Mtr_g00012.1", "Mtr_g00012.12", "abc", "x.1.2"])
    assert candidate_gene_ids(ids).tolist() == ["Mtr_g00012", "Mtr_g00012", "abc", "x.1"]
    assert candidate_gene_ids(ids, suffix_regex="").tolist() == ids.tolist()
    extracted = candidate_gene_ids(ids, id_regex=r"^(Mtr_g\d+)")
    assert extracted.tolist()[:2] == ["Mtr_g00012", "Mtr_g00012"] and extracted.isna()[2]
    assert format_label(["V", "M", "P"]) == "{M,P,V}"
