"""Bad TSV inputs of the workflow (Orthogroups.tsv, species/sample sheets, labels, splits): a clear
InputError naming the file and line, or a correct result; never a traceback or a silent wrong answer.

Regression tests for the cases of the issue, then property tests (hypothesis) that generate valid
tables, mutate them (truncation, dropped/added/swapped columns, text in numbers, binary noise, gzip
with or without a ``.gz`` name, truncated gzip) and check that every reader returns the right result
or raises InputError.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SCHEMAS
from plantt import cli
from plantt.dataset import read_splits
from plantt.io import InputError
from plantt.labels import cohens_d, read_expression
from plantt.orthologs import read_orthogroups_long, read_species_entries
from plantt.sheets import SheetError, load_sample_sheet, load_species_sheet
from plantt.splits import flip_pairs, make_splits, read_labels

PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

LABEL_HEADER = ["orthogroup", "label", "gene_a", "species_a", "gene_b", "species_b", "mean_a",
                "sd_a", "n_a", "mean_b", "sd_b", "n_b", "d"]


def run_cli(monkeypatch: pytest.MonkeyPatch, module: str, argv: list[str]) -> int:
    monkeypatch.setattr(cli, "COMMAND_MODULES", [module])
    return cli.main(argv)


def labels_text(ds: list[str]) -> str:
    """A labels table with one orthogroup of one pair per d (written as given)."""
    rows = ["\t".join(LABEL_HEADER)]
    for i, d in enumerate(ds):
        rows.append("\t".join([f"OG{i:04d}", "{M,V}", f"m{i}", "medicago", f"v{i}", "vicia",
                               "10.0", "1.0", "6", "12.0", "2.0", "3", d]))
    return "\n".join(rows) + "\n"


def run_splits(monkeypatch: pytest.MonkeyPatch, d: Path) -> int:
    return run_cli(monkeypatch, "plantt.splits",
                   ["splits", "--labels", str(d / "labels.tsv"), "--out", str(d / "splits.tsv")])


# --- case 1 and 2: d in the labels table of `plantt splits` -------------------------------------

@pytest.mark.parametrize("bad", ["inf", "-inf", "Infinity", "1e400"])
def test_splits_rejects_infinite_d(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture, bad: str) -> None:
    (tmp_path / "labels.tsv").write_text(labels_text(["0.5", "-1.0", bad, "2.0"]))
    assert run_splits(monkeypatch, tmp_path) == 1
    err = capsys.readouterr().err
    assert "labels.tsv, line 4, record 'medicago/m2 vs vicia/v2': d is" in err
    assert "(infinite), expected a finite number" in err
    assert not (tmp_path / "splits.tsv").exists()


@pytest.mark.parametrize(("bad", "problem"), [
    ("high", "d 'high' is not a number"),
    ("1.5x", "d '1.5x' is not a number"),
    ("NaN", "d is 'NaN' (not a number)"),
    ("", "d is missing"),
])
def test_splits_rejects_text_or_missing_d(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture, bad: str,
                                          problem: str) -> None:
    (tmp_path / "labels.tsv").write_text(labels_text(["0.5", bad, "2.0"]))
    assert run_splits(monkeypatch, tmp_path) == 1
    err = capsys.readouterr().err
    assert "labels.tsv, line 3, record 'medicago/m1 vs vicia/v1': " + problem in err


def test_make_splits_rejects_infinite_d_in_memory() -> None:
    table = pd.read_csv(pd.io.common.StringIO(labels_text(["0.5", "1.0"])), sep="\t")
    table.loc[1, "d"] = np.inf
    with pytest.raises(InputError, match=r"record 'medicago/m1 vs vicia/v1': d is 'inf'"):
        make_splits(table, folds=2)


def test_read_labels_line_numbers_skip_blank_lines(tmp_path: Path) -> None:
    text = labels_text(["0.5", "1.0", "x"]).replace("\nOG0001", "\n\nOG0001")
    (tmp_path / "labels.tsv").write_text(text)
    with pytest.raises(InputError, match=r"labels\.tsv, line 5, record 'medicago/m2 vs"):
        read_labels(tmp_path / "labels.tsv")


def test_text_in_a_stat_column_is_an_error(tmp_path: Path) -> None:
    """mean/sd/n are swapped on a flip: text there would crash the flip, so it is an error."""
    (tmp_path / "labels.tsv").write_text(labels_text(["0.5", "1.0"]).replace("\t12.0\t2.0\t3\t1.0",
                                                                            "\tx\t2.0\t3\t1.0"))
    with pytest.raises(InputError, match=r"labels\.tsv, line 3, record 'medicago/m1 vs vicia/v1': "
                                         r"mean_b 'x' is not a number"):
        read_labels(tmp_path / "labels.tsv")


def test_gene_called_na_is_an_id_not_missing(tmp_path: Path) -> None:
    (tmp_path / "labels.tsv").write_text(labels_text(["0.5"]).replace("\tm0\t", "\tNA\t"))
    assert read_labels(tmp_path / "labels.tsv")["gene_a"].tolist() == ["NA"]


def test_cohens_d_overflow_is_no_label() -> None:
    """Infinite d cannot come out of labels: a zero pooled SD is NaN, so is an overflow."""
    d = cohens_d([1e308, 1.0, 3.0], [1e-300, 0.0, 1.0], [3, 3, 3], [-1e308, 1.0, 1.0],
                 [1e-300, 0.0, 1.0], [3, 3, 3])
    assert np.isnan(d[0]) and np.isnan(d[1]) and d[2] == pytest.approx(2.0)


EXPRESSION_HEADER = "gene_id\tspecies\tassay\tunit\tn\tmean\tsd\trep_1\trep_2\n"


@pytest.mark.parametrize(("cell", "problem"), [
    ("inf", "column rep_2: 'inf' is infinite"),
    ("lots", "column rep_2: 'lots' is not a number"),
])
def test_expression_replicate_must_be_a_finite_number(tmp_path: Path, cell: str,
                                                      problem: str) -> None:
    (tmp_path / "expr.tsv").write_text(
        EXPRESSION_HEADER + "g1\tmedicago\tleaf\tcpm\t2\t1\t1\t1.0\t2.0\n"
        f"g2\tmedicago\tleaf\tcpm\t2\t1\t1\t1.0\t{cell}\n")
    with pytest.raises(InputError, match=rf"expr\.tsv, line 3, record 'g2': {problem}"):
        read_expression([tmp_path / "expr.tsv"], "leaf", "cpm", "none", 1.0)


def test_expression_empty_or_nan_replicate_is_absent(tmp_path: Path) -> None:
    (tmp_path / "expr.tsv").write_text(
        EXPRESSION_HEADER + "g1\tmedicago\tleaf\tcpm\t1\t1\t1\t1.0\t\n"
        "g2\tmedicago\tleaf\tcpm\t1\t1\t1\tnan\t4.0\n")
    stats = read_expression([tmp_path / "expr.tsv"], "leaf", "cpm", "none", 1.0)
    assert stats["n"].tolist() == [1, 1] and stats["mean"].tolist() == [1.0, 4.0]


# --- case 3: ragged rows in every TSV of orthologs, splits, labels -----------------------------

SPECIES_SHEET = ("species\tcode\tgenome\tannotation\tproteome\n"
                 "medicago\tM\tm.fa\tm.gff3\tmedicago_pep\nvicia\tV\tv.fa\tv.gff3\t\n")
ORTHOGROUPS = ("Orthogroup\tmedicago_pep\tvicia\n"
               "OG1\tm1.1\tv1.1\nOG2\tm2.1, m2.2\tv2.1\nOG3\t\tv3.1\n")
MAPPING = {"medicago_pep": "medicago", "vicia": "vicia"}


def write_orthologs_inputs(d: Path) -> None:
    (d / "species.tsv").write_text(SPECIES_SHEET.replace("m.gff3", str(d / "m.gff3"))
                                   .replace("v.gff3", str(d / "v.gff3")))
    for sp, genes in (("m", ["m1", "m2"]), ("v", ["v1", "v2", "v3"])):
        (d / f"{sp}.gff3").write_text("##gff-version 3\n" + "".join(
            f"chr1\tt\tgene\t{1 + 10_000 * i}\t{5000 + 10_000 * i}\t.\t+\t.\tID={g}\n"
            for i, g in enumerate(genes)))
    (d / "Orthogroups.tsv").write_text(ORTHOGROUPS)


def run_orthologs(monkeypatch: pytest.MonkeyPatch, d: Path) -> int:
    return run_cli(monkeypatch, "plantt.orthologs",
                   ["orthologs", "--orthogroups", str(d / "Orthogroups.tsv"), "--species-sheet",
                    str(d / "species.tsv"), "--out", str(d / "pairs.tsv")])


def test_orthologs_cli_valid_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_orthologs_inputs(tmp_path)
    assert run_orthologs(monkeypatch, tmp_path) == 0
    pairs = pd.read_csv(tmp_path / "pairs.tsv", sep="\t")
    assert pairs[["orthogroup", "gene_a", "gene_b"]].values.tolist() == [
        ["OG1", "m1", "v1"], ["OG2", "m2", "v2"]]


@pytest.mark.parametrize(("name", "edit", "expected"), [
    ("Orthogroups.tsv", lambda t: t.replace("OG2\tm2.1, m2.2\tv2.1", "OG2\tm2.1\tv2.1\tx"),
     r"Orthogroups\.tsv, line 3: 4 fields, expected 3"),
    ("Orthogroups.tsv", lambda t: t.replace("OG3\t\tv3.1", "OG3\tm3.1"),
     r"Orthogroups\.tsv, line 4: 2 fields, expected 3"),
    ("species.tsv", lambda t: t.replace("vicia\tV\tv.fa", "vicia\tV\textra\tv.fa"),
     r"species\.tsv, line 3: 6 fields, expected 5"),
])
def test_orthologs_ragged_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture, name: str,
                               edit: Callable[[str], str], expected: str) -> None:
    write_orthologs_inputs(tmp_path)
    (tmp_path / name).write_text(edit((tmp_path / name).read_text()))
    assert run_orthologs(monkeypatch, tmp_path) == 1
    assert re.search(expected, capsys.readouterr().err)


@pytest.mark.parametrize(("d", "line"), [("1.0", 3), ("0.5", 2)])
def test_splits_ragged_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture, d: str, line: int) -> None:
    """Also on the first data row, where pandas would silently take column 1 as the index."""
    text = labels_text(["0.5", "1.0", "2.0"]).replace(f"\t{d}\n", f"\t{d}\textra\n")
    (tmp_path / "labels.tsv").write_text(text)
    assert run_splits(monkeypatch, tmp_path) == 1
    assert f"labels.tsv, line {line}: 14 fields, expected 13" in capsys.readouterr().err


def test_labels_ragged_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "pairs.tsv").write_text(
        "orthogroup\tlabel\tgene_a\tspecies_a\tgene_b\tspecies_b\n"
        "OG1\t{M,V}\tg1\tmedicago\tg2\tvicia\n")
    (tmp_path / "expr.tsv").write_text(
        EXPRESSION_HEADER + "g1\tmedicago\tleaf\tcpm\t2\t1\t1\t1.0\t2.0\n"
        "g2\tvicia\tleaf\tcpm\t2\t1\t1\t1.0\t3.0\t9.0\n")
    argv = ["labels", "--pairs", str(tmp_path / "pairs.tsv"), "--expression",
            str(tmp_path / "expr.tsv"), "--assay", "leaf", "--out", str(tmp_path / "l.tsv")]
    assert run_cli(monkeypatch, "plantt.labels", argv) == 1
    assert "expr.tsv, line 3: 10 fields, expected 9" in capsys.readouterr().err
    (tmp_path / "pairs.tsv").write_text(
        "orthogroup\tlabel\tgene_a\tspecies_a\tgene_b\tspecies_b\n"
        "OG1\t{M,V}\tg1\tmedicago\tg2\tvicia\tvicia\n")
    assert run_cli(monkeypatch, "plantt.labels", argv) == 1
    assert "pairs.tsv, line 2: 7 fields, expected 6" in capsys.readouterr().err


SPLITS_HEADER = "orthogroup\tlabel\tgene_a\tspecies_a\tgene_b\tspecies_b\td\tfold\tset\tflipped\n"


@pytest.mark.parametrize(("row", "expected"), [
    ("OG2\t{M,V}\tm2\tmedicago\tv2\tvicia\t0.5\t0\ttest\tFalse\tx", "11 fields, expected 10"),
    ("OG2\t{M,V}\tm2\tmedicago\tv2\tvicia\tinf\t0\ttest\tFalse", "d is 'inf' (infinite)"),
    ("OG2\t{M,V}\tm2\tmedicago\tv2\tvicia\tbig\t0\ttest\tFalse", "d 'big' is not a number"),
    ("OG2\t{M,V}\tm2\tmedicago\tv2\tvicia\t0.5\tone\ttest\tFalse",
     "fold 'one' is not a non-negative integer"),
    ("OG2\t{M,V}\tm2\tmedicago\tv2\tvicia\t0.5\t1.5\ttest\tFalse",
     "fold '1.5' is not a non-negative integer"),
    ("OG2\t{M,V}\tm2\tmedicago\tv2\tvicia\t0.5\t0\tTest\tFalse",
     "set 'Test' is not one of train, validation, test"),
    ("OG2\t{M,V}\tm2\tmedicago\t\tvicia\t0.5\t0\ttest\tFalse", "gene_b is empty"),
    ("OG2\t{M,V}\tm2\tmedicago\tv2\tvicia\t0.5", "set is empty"),  # truncated row
])
def test_read_splits_bad_rows(tmp_path: Path, row: str, expected: str) -> None:
    (tmp_path / "splits.tsv").write_text(
        SPLITS_HEADER + "OG1\t{M,V}\tm1\tmedicago\tv1\tvicia\t-0.5\t0\ttrain\tTrue\n\n"
        + row + "\n")
    with pytest.raises(InputError, match=r"splits\.tsv, line 4") as info:
        read_splits(tmp_path / "splits.tsv")
    assert expected in str(info.value)


def test_read_splits_valid(tmp_path: Path) -> None:
    (tmp_path / "splits.tsv").write_text(
        SPLITS_HEADER + "OG1\t{M,V}\tNA\tmedicago\tv1\tvicia\t-0.5\t0\ttrain\tTrue\n"
        "OG1\t{M,V}\tNA\tmedicago\tv1\tvicia\t0.5\t1\ttest\tFalse\n")
    splits = read_splits(tmp_path / "splits.tsv")
    assert splits["gene_a"].tolist() == ["NA", "NA"]
    assert splits["fold"].tolist() == [0, 1] and splits["fold"].dtype == np.int64
    assert splits["d"].tolist() == [-0.5, 0.5]


# --- case 4: one FASTQ file for two samples or both mates -------------------------------------

SAMPLES_HEADER = "sample\tspecies\tassay\treplicate\tfq1\tfq2\n"


@pytest.fixture
def sheet_dir(tmp_path: Path) -> Path:
    for name in ["a.fa", "a.gff3", "r1.fq.gz", "r2.fq.gz", "r3.fq.gz"]:
        (tmp_path / name).write_text("x\n")
    (tmp_path / "species.tsv").write_text("species\tcode\tgenome\tannotation\n"
                                          "alpha\tA\ta.fa\ta.gff3\n")
    return tmp_path


def load_samples(d: Path, rows: str) -> pd.DataFrame:
    (d / "samples.tsv").write_text(SAMPLES_HEADER + rows)
    return load_sample_sheet(d / "samples.tsv", SCHEMAS / "samples.schema.yaml",
                             species=["alpha"], base=d)


def test_same_fastq_for_two_samples(sheet_dir: Path) -> None:
    rows = ("s1\talpha\trnaseq3p\t1\tr1.fq.gz\t\n"
            "s2\talpha\trnaseq3p\t2\t./r1.fq.gz\t\n")  # same file, written differently
    with pytest.raises(SheetError, match=r"samples\.tsv, line 3, record 's2': column 'fq1': "
                                         r"file '\./r1\.fq\.gz' \(.*r1\.fq\.gz\) is also column "
                                         r"'fq1' of sample 's1' \(line 2\)"):
        load_samples(sheet_dir, rows)


def test_same_fastq_through_a_symlink(sheet_dir: Path) -> None:
    os.symlink(sheet_dir / "r2.fq.gz", sheet_dir / "link.fq.gz")
    rows = ("s1\talpha\tproseq\t1\tr1.fq.gz\tr2.fq.gz\n"
            "s2\talpha\tproseq\t2\tr3.fq.gz\tlink.fq.gz\n")
    with pytest.raises(SheetError, match=r"line 3, record 's2': column 'fq2'.*is also column "
                                         r"'fq2' of sample 's1'"):
        load_samples(sheet_dir, rows)


def test_same_fastq_for_both_mates(sheet_dir: Path) -> None:
    with pytest.raises(SheetError, match=r"line 2, record 's1': columns 'fq1' and 'fq2' name the "
                                         r"same file 'r1\.fq\.gz'"):
        load_samples(sheet_dir, "s1\talpha\tproseq\t1\tr1.fq.gz\tr1.fq.gz\n")


def test_sheet_lenient_readings(sheet_dir: Path) -> None:
    """Blank lines are ignored (line numbers stay right) and missing trailing cells are empty."""
    df = load_samples(sheet_dir, "s1\talpha\trnaseq3p\t1\tr1.fq.gz\n\n"
                                 "s2\talpha\trnaseq3p\t2\tr2.fq.gz\t\n")
    assert list(df.index) == ["s1", "s2"] and df["fq2"].tolist() == ["", ""]
    with pytest.raises(SheetError, match=r"line 4, record 's2'.*'nope\.fq' does not exist"):
        load_samples(sheet_dir, "s1\talpha\trnaseq3p\t1\tr1.fq.gz\n\n"
                                "s2\talpha\trnaseq3p\t2\tnope.fq\t\n")


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "sample sheet: file is empty"),
    (SAMPLES_HEADER.encode(), "the sample sheet has a header but no rows"),
    (b"sample\tspecies\tassay\treplicate\tfq1\tfq1\ns1\talpha\trnaseq3p\t1\tr1.fq.gz\tr2.fq.gz\n",
     "column(s) 'fq1' appear twice"),
    (b"sample\tspecies\tassay\tfq1\ns1\talpha\trnaseq3p\tr1.fq.gz\n",
     "missing column(s) replicate"),
    (SAMPLES_HEADER.encode() + b"s1\talpha\trnaseq3p\t1\tr1.fq.gz\t\tx\n",
     "line 2: sample sheet: 7 fields, expected 6"),
    (SAMPLES_HEADER.encode() + b"s1\talpha\trnaseq3p\t\xff\xfe\tr1.fq.gz\t\n", "not a text file"),
    (SAMPLES_HEADER.encode() + b"s1\talpha\trnaseq3p\t\xd9\xa1\tr1.fq.gz\t\n",
     "column 'replicate'"),
])
def test_bad_sample_sheet_files(sheet_dir: Path, content: bytes, expected: str) -> None:
    (sheet_dir / "samples.tsv").write_bytes(content)
    with pytest.raises(SheetError, match=r"samples\.tsv") as info:
        load_sample_sheet(sheet_dir / "samples.tsv", SCHEMAS / "samples.schema.yaml",
                          species=["alpha"], base=sheet_dir)
    assert expected in str(info.value)


# --- case 5: Orthogroups.tsv ---------------------------------------------------------------------

def orthogroups_file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "Orthogroups.tsv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "expected"), [
    ("Orthogroup\tmedicago_pep\tvicia\nOG1\tm1.1\tv1.1\nOG2\tm2.1, m1.1\tv2.1\n",
     r"line 3, record 'm1\.1': protein id of species medicago is in orthogroup OG2 and in OG1 "
     r"\(line 2\)"),
    ("Orthogroup\tmedicago_pep\tvicia\nOG1\tm1.1\tv1.1\nOG1\tm2.1\tv2.1\n",
     r"line 3, record 'OG1': orthogroup id appears twice \(first on line 2\)"),
    ("Orthogroup\tmedicago_pep\tvicia\nOG1\tm1.1\tv1.1\n\t\tv2.1\n", r"line 3: empty orthogroup"),
    ("Orthogroup\tmedicago_pep\tlens\nOG1\tm1.1\tv1.1\n", r"line 1: column\(s\) 'lens' match no"),
    ("Orthogroup\tvicia\tvicia\nOG1\tm1.1\tv1.1\n", r"line 1: column 'vicia' appears twice"),
    ("Orthogroups\tmedicago_pep\tvicia\n", r"line 1: first column must be 'Orthogroup'"),
    ("", r"file is empty"),
    (b"Orthogroup\tvicia\nOG1\t\x89PNG\xff\n", r"not a text file"),
    (gzip.compress(ORTHOGROUPS.encode())[:-12], r"gzip data truncated or corrupt"),
])
def test_bad_orthogroups(tmp_path: Path, text: str | bytes, expected: str) -> None:
    with pytest.raises(InputError, match=r"Orthogroups\.tsv.*" + expected):
        read_orthogroups_long(orthogroups_file(tmp_path, text), MAPPING)


def test_orthogroups_lenient_readings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Gzip content under a plain name, a blank line, an id listed twice in one cell, a '"' in an
    id, a sheet species without a column (warned about)."""
    text = ('Orthogroup\tmedicago_pep\n\nOG1\tm1.1, m1.1\n'
            'OG2\t"m2.1\nOG3\t\n')
    path = orthogroups_file(tmp_path, gzip.compress(text.encode()))
    with caplog.at_level(logging.WARNING, logger="plantt"):
        long, n = read_orthogroups_long(path, MAPPING)
    assert n == 3
    assert long.values.tolist() == [["OG1", "medicago", "m1.1"], ["OG2", "medicago", '"m2.1']]
    assert "no column 'vicia'" in caplog.text


def test_species_entries_errors(tmp_path: Path) -> None:
    (tmp_path / "s.tsv").write_text("species\tcode\n\nalpha\tA\nbeta\tA\n")
    with pytest.raises(InputError, match=r"s\.tsv, line 4, record 'beta': duplicate code 'A' "
                                         r"\(first on line 3\)"):
        read_species_entries(tmp_path / "s.tsv")
    (tmp_path / "s.tsv").write_text("species\tcode\n")
    with pytest.raises(InputError, match="no rows"):
        read_species_entries(tmp_path / "s.tsv")


# --- property tests --------------------------------------------------------------------------------

MUTATIONS = ["none", "truncate", "drop_column", "add_field", "swap_columns", "text_in_cell",
             "noise", "gzip", "gzip_named", "gzip_truncated", "blank_line"]
NOISE = st.lists(st.sampled_from(["\t", ",", " ", "\n", "x", "1", "\x00", "é", "\ufeff"]),
                 min_size=1, max_size=4).map("".join)
BINARY = st.sampled_from([b"\xff", b"\x80\x81", b"\x1f\x8b", b"\xc3"])


def mutate(text: str, data: st.DataObject) -> tuple[bytes, str, str]:
    """(content, file name suffix, mutation) for a drawn mutation of a TSV text."""
    kind = data.draw(st.sampled_from(MUTATIONS))
    lines = text.split("\n")[:-1]
    rows = [line.split("\t") for line in lines]
    width = len(rows[0])
    suffix = ".tsv"
    if kind == "truncate":
        raw = text.encode()
        return raw[:data.draw(st.integers(0, len(raw)))], suffix, kind
    if kind in ("drop_column", "swap_columns", "add_field", "text_in_cell"):
        j = data.draw(st.integers(0, width - 1))
        k = data.draw(st.integers(0, width - 1))
        r = data.draw(st.integers(0, len(rows) - 1))
        for i, row in enumerate(rows):
            if kind == "drop_column":
                del row[j]
            elif kind == "swap_columns":
                row[j], row[k] = row[k], row[j]
            elif kind == "add_field" and i == r:
                row.append(data.draw(st.sampled_from(["", "x", "1.0"])))
            elif kind == "text_in_cell" and i == r:
                row[j] = data.draw(st.sampled_from(["abc", "", "inf", "-1", " ", "1.5", "NA"]))
        text = "".join("\t".join(row) + "\n" for row in rows)
        return text.encode(), suffix, kind
    if kind == "blank_line":
        r = data.draw(st.integers(1, len(lines)))
        return "\n".join(lines[:r] + [""] + lines[r:]).encode() + b"\n", suffix, kind
    if kind == "noise":
        raw = text.encode()
        at = data.draw(st.integers(0, len(raw)))
        junk = data.draw(st.one_of(NOISE.map(str.encode), BINARY))
        return raw[:at] + junk + raw[at:], suffix, kind
    if kind.startswith("gzip"):
        raw = gzip.compress(text.encode())
        if kind == "gzip_truncated":
            raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
        return raw, ".tsv.gz" if kind != "gzip" else suffix, kind
    return text.encode(), suffix, kind


def decoded(content: bytes) -> str | None:
    """The text a reader should see, or None where the content is not (complete) UTF-8 text."""
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except (EOFError, OSError):
            return None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


def write_temp(directory: str | Path, content: bytes, suffix: str) -> Path:
    for old in Path(directory).glob("input*"):
        old.unlink()
    path = Path(directory) / f"input{suffix}"
    path.write_bytes(content)
    return path


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory per test module: the property tests overwrite their input file in it."""
    return tmp_path_factory.mktemp("tsv_inputs")


# Orthogroups.tsv: a reference parser written from the rules of plantt.orthologs' docstring.

def reference_orthogroups(text: str | None, mapping: dict[str, str]) -> list[list[str]] | None:
    """The expected long table, or None where the rules say InputError."""
    if text is None or "\r" in text:
        return None if text is None else reference_orthogroups(text.replace("\r\n", "\n")
                                                              .replace("\r", "\n"), mapping)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        return None
    header = lines[0].split("\t")
    header[0] = header[0].lstrip("\ufeff")
    if header[0] != "Orthogroup" or len(set(header)) != len(header):
        return None
    if any(c not in mapping for c in header[1:]):
        return None
    out: list[list[str]] = []
    seen_og: set[str] = set()
    owner: dict[tuple[str, str], str] = {}
    for line in lines[1:]:
        fields = line.split("\t")
        if len(fields) > len(header) or (len(fields) < len(header) and line.strip()):
            return None
        if not line.strip():
            continue
        og = fields[0].strip()
        if not og or og in seen_og:
            return None
        seen_og.add(og)
        for column, cell in zip(header[1:], fields[1:], strict=True):
            for pid in (p.strip() for p in cell.split(",")):
                key = (mapping[column], pid)
                if not pid or owner.get(key) == og:
                    continue
                if key in owner:
                    return None
                owner[key] = og
                out.append([og, mapping[column], pid])
    return out


def orthogroups_text(groups: list[list[list[int]]]) -> str:
    lines = ["Orthogroup\tsp_a\tsp_b\tsp_c"]
    for i, cells in enumerate(groups):
        lines.append("\t".join([f"OG{i:07d}"] + [", ".join(f"p{k}.1" for k in cell)
                                                for cell in cells]))
    return "\n".join(lines) + "\n"


def unique_groups(draw: st.DrawFn) -> list[list[list[int]]]:
    ids = iter(draw(st.permutations(range(60))))
    n = draw(st.integers(0, 6))
    return [[[next(ids) for _ in range(draw(st.integers(0, 2)))] for _ in range(3)]
            for _ in range(n)]


ORTHO_MAPPING = {"sp_a": "alpha", "sp_b": "beta", "sp_c": "gamma", "sp_d": "delta"}


@PROPERTY
@given(data=st.data())
def test_property_orthogroups(work_dir: Path, data: st.DataObject) -> None:
    text = orthogroups_text(data.draw(st.composite(unique_groups)()))
    content, suffix, kind = mutate(text, data)
    expected = reference_orthogroups(decoded(content), ORTHO_MAPPING)
    if kind in ("none", "gzip", "gzip_named", "blank_line"):
        assert expected is not None  # these mutations leave a valid table
    path = write_temp(work_dir, content, suffix)
    if expected is None:
        with pytest.raises(InputError, match="input"):
            read_orthogroups_long(path, ORTHO_MAPPING)
    else:
        long, _ = read_orthogroups_long(path, ORTHO_MAPPING)
        assert list(long.columns) == ["orthogroup", "species", "protein_id"]
        assert long.values.tolist() == expected


def species_sheet_text(rows: list[tuple[str, str]]) -> str:
    return "species\tcode\tgenome\tannotation\tproteome\n" + "".join(
        f"{sp}\t{code}\t{sp}.fa\t{sp}.gff3\t{sp}_pep\n" for sp, code in rows)


SPECIES_ROWS = st.lists(st.tuples(st.sampled_from(["alpha", "beta", "gamma", "delta"]),
                                  st.sampled_from("ABCD")),
                        min_size=1, max_size=4, unique_by=(lambda r: r[0], lambda r: r[1]))


@PROPERTY
@given(rows=SPECIES_ROWS, data=st.data())
def test_property_species_sheets(work_dir: Path, rows: list[tuple[str, str]],
                                 data: st.DataObject) -> None:
    """Both species sheet readers: the orthologs step's and the workflow's (schema-checked)."""
    content, suffix, kind = mutate(species_sheet_text(rows), data)
    tmp = work_dir
    for name in (f"{sp}{ext}" for sp in ("alpha", "beta", "gamma", "delta")
                 for ext in (".fa", ".gff3")):
        (tmp / name).touch()
    path = write_temp(tmp, content, suffix)
    results = []
    for reader in (lambda: read_species_entries(path),
                   lambda: load_species_sheet(path, SCHEMAS / "species.schema.yaml", base=tmp)):
        try:
            results.append(reader())
        except InputError as err:
            assert str(err).startswith(str(path))
            assert kind not in ("none", "gzip", "gzip_named", "swap_columns", "blank_line")
            results.append(None)
    entries, sheet = results
    if entries is not None:
        species = [e.species for e in entries]
        assert len(set(species)) == len(species)
        assert len({e.code for e in entries}) == len(entries)
        if kind in ("none", "gzip", "gzip_named", "swap_columns", "blank_line"):
            assert [(e.species, e.code, e.proteome) for e in entries] == [
                (sp, code, f"{sp}_pep") for sp, code in rows]
    if sheet is not None:
        assert sheet.index.is_unique and sheet["code"].str.fullmatch("[A-Z]").all()
        assert all((tmp / f).exists() for f in sheet["genome"])
        if kind in ("none", "gzip", "gzip_named", "swap_columns", "blank_line"):
            assert list(sheet.index) == [sp for sp, _ in rows]
            assert sheet["code"].tolist() == [code for _, code in rows]


SAMPLE_ROWS = st.lists(st.tuples(st.sampled_from(["rnaseq3p", "proseq"]), st.integers(1, 3)),
                       min_size=1, max_size=4, unique=True)


@PROPERTY
@given(rows=SAMPLE_ROWS, data=st.data())
def test_property_sample_sheet(work_dir: Path, rows: list[tuple[str, int]],
                               data: st.DataObject) -> None:
    lines = [SAMPLES_HEADER.rstrip("\n")]
    for i, (assay, rep) in enumerate(rows):
        fq2 = f"s{i}_2.fq.gz" if assay == "proseq" else ""
        lines.append(f"s{i}\talpha\t{assay}\t{rep}\ts{i}_1.fq.gz\t{fq2}")
    content, suffix, kind = mutate("\n".join(lines) + "\n", data)
    tmp = work_dir
    for name in (f"s{i}_{mate}.fq.gz" for i in range(4) for mate in (1, 2)):
        (tmp / name).touch()
    path = write_temp(tmp, content, suffix)
    try:
        df = load_sample_sheet(path, SCHEMAS / "samples.schema.yaml", species=["alpha"],
                               base=tmp)
    except InputError as err:
        assert isinstance(err, SheetError) and str(err).startswith(str(path))
        assert kind not in ("none", "gzip", "gzip_named", "swap_columns", "blank_line")
        return
    if kind in ("none", "gzip", "gzip_named", "swap_columns", "blank_line"):
        assert list(df.index) == [f"s{i}" for i in range(len(rows))]
        assert list(zip(df["assay"], df["replicate"], strict=True)) == rows
    # whatever was read obeys every rule of the sheet
    assert df.index.is_unique and set(df["species"]) == {"alpha"}
    assert set(df["assay"]) <= {"rnaseq3p", "proseq"} and (df["replicate"] >= 1).all()
    assert not df.duplicated(["species", "assay", "replicate"]).any()
    files = [f for f in list(df["fq1"]) + list(df["fq2"]) if f]
    assert len({str((tmp / f).resolve()) for f in files}) == len(files)
    assert ((df["assay"] == "proseq") == (df["fq2"] != "")).all()


D_VALUES = st.floats(-5, 5, allow_nan=False).map(lambda x: f"{x:.3f}")


@PROPERTY
@given(ds=st.lists(D_VALUES, min_size=1, max_size=8), data=st.data())
def test_property_labels_table(work_dir: Path, ds: list[str], data: st.DataObject) -> None:
    content, suffix, kind = mutate(labels_text(ds), data)
    path = write_temp(work_dir, content, suffix)
    try:
        labels = read_labels(path)
    except InputError as err:
        assert str(err).startswith(str(path))
        assert kind not in ("none", "gzip", "gzip_named", "swap_columns", "blank_line")
        return
    if kind in ("none", "gzip", "gzip_named", "swap_columns", "blank_line"):
        assert labels["d"].tolist() == [float(d) for d in ds]
        assert labels["gene_a"].tolist() == [f"m{i}" for i in range(len(ds))]
    assert np.isfinite(labels["d"].to_numpy(dtype=float)).all()
    for column in ("orthogroup", "label", "gene_a", "species_a", "gene_b", "species_b"):
        assert labels[column].map(lambda v: isinstance(v, str) and v.strip() != "").all()
    # usable downstream: flipping every pair (what balancing does) works on whatever was read
    flipped = flip_pairs(labels, np.ones(len(labels), dtype=bool))
    assert flipped["d"].tolist() == [-d for d in labels["d"]]
    assert flipped["gene_b"].tolist() == labels["gene_a"].tolist()


@PROPERTY
@given(ds=st.lists(D_VALUES, min_size=1, max_size=6), data=st.data())
def test_property_read_splits(work_dir: Path, ds: list[str], data: st.DataObject) -> None:
    rows = [labels_text(ds).split("\n")[0] + "\tfold\tset\tflipped"]
    sets = data.draw(st.lists(st.sampled_from(["train", "validation", "test"]),
                              min_size=len(ds), max_size=len(ds)))
    for i, (line, name) in enumerate(zip(labels_text(ds).split("\n")[1:-1], sets, strict=True)):
        rows.append(f"{line}\t{i % 3}\t{name}\t{i % 2 == 0}")
    content, suffix, kind = mutate("\n".join(rows) + "\n", data)
    path = write_temp(work_dir, content, suffix)
    try:
        splits = read_splits(path)
    except InputError as err:
        assert str(err).startswith(str(path))
        assert kind not in ("none", "gzip", "gzip_named", "swap_columns", "blank_line")
        return
    if kind in ("none", "gzip", "gzip_named", "swap_columns", "blank_line"):
        assert splits["d"].tolist() == [float(d) for d in ds]
        assert splits["fold"].tolist() == [i % 3 for i in range(len(ds))]
        assert splits["set"].tolist() == sets
        assert splits["gene_a"].tolist() == [f"m{i}" for i in range(len(ds))]
    assert np.isfinite(splits["d"].to_numpy()).all() and splits["fold"].dtype == np.int64
    assert (splits["fold"] >= 0).all() and splits["set"].isin(["train", "validation",
                                                                 "test"]).all()
