"""Reading and validating tables of sequences (``plantt fit``): formats, errors naming the row,
and the length policy."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from plantt.cli import main
from plantt.encoding import decode
from plantt.io import InputError
from plantt.tables import (
    LengthPolicy,
    encode_fixed,
    read_pairs_table,
    read_sequences_any,
    read_single_table,
    read_table,
)

GOOD = "ACGTACGTAC"


def write(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def single_tsv(rows: list[str], header: str = "id\tsequence\texpression") -> str:
    return "\n".join([header, *rows]) + "\n"


# ----------------------------------------------------------------------------------------------
# Bad tables: every error names the file and the line
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("rows", "header", "pattern"), [
    ([f"a\t{GOOD}"], "id\tsequence", r"line 1: missing column\(s\) expression"),
    ([f"a\t{GOOD}\t1", "b\tACGTXCGT\t2"], None,
     r"line 3: character 'X' at position 5 of 'sequence' is not A, C, G, T or N"),
    ([f"a\t{GOOD}\t1", "b\tAC-GT\t2"], None, r"line 3: character '-' at position 3"),
    (["a\t  \t1"], None, r"line 2: empty sequence in column 'sequence'"),
    ([f"a\t{GOOD}\t1", f"b\t{GOOD}\t2", f"c\t{GOOD}\thigh"], None,
     r"line 4: expression 'high' is not a number"),
    ([f"a\t{GOOD}\t"], None, r"line 2: expression '' is not a number"),
    ([f"a\t{GOOD}\tnan"], None, r"line 2: expression 'nan' is not a finite number"),
    ([f"a\t{GOOD}\t1", f"b\t{GOOD}\t2", f"a\t{GOOD}\t3"], None,
     r"line 4, record 'a': duplicate id 'a' \(first on line 2\)"),
    ([f"a\t{GOOD}\t1", f"b\t{GOOD}"], None, r"line 3: 2 fields, but the header has 3"),
    ([], None, r"no rows"),
    ([f"a\t{GOOD}\t1\t"], "id\tsequence\texpression\tgroup", r"line 2: empty group"),
])
def test_bad_single_tables_name_the_line(tmp_path, rows, header, pattern):
    path = write(tmp_path / "bad.tsv", single_tsv(rows, header or "id\tsequence\texpression"))
    with pytest.raises(InputError, match=pattern) as info:
        read_single_table(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("rows", "pattern"), [
    ([f"{GOOD},{GOOD}"], r"line 1: missing column\(s\) target"),
])
def test_pairs_table_missing_column(tmp_path, rows, pattern):
    path = write(tmp_path / "bad.csv", "\n".join(["sequence_a,sequence_b", *rows]) + "\n")
    with pytest.raises(InputError, match=pattern):
        read_pairs_table(path)


@pytest.mark.parametrize(("row", "pattern"), [
    (f"p1,{GOOD},ACGU,1.0", r"line 3: character 'U' at position 4 of 'sequence_b'"),
    (f"p1,,{GOOD},1.0", r"line 3: empty sequence in column 'sequence_a'"),
    (f"p1,{GOOD},{GOOD},1.0.0", r"line 3: target '1.0.0' is not a number"),
    (f"p0,{GOOD},{GOOD},1.0", r"line 3, record 'p0': duplicate id 'p0' \(first on line 2\)"),
])
def test_bad_pairs_tables_name_the_line(tmp_path, row, pattern):
    text = "id,sequence_a,sequence_b,target\n" + f"p0,{GOOD},{GOOD},0.5\n" + row + "\n"
    path = write(tmp_path / "pairs.csv.gz", text)
    with pytest.raises(InputError, match=pattern) as info:
        read_table(path, "pairs")
    assert "pairs.csv.gz" in str(info.value)


def test_blank_lines_keep_line_numbers_right(tmp_path):
    path = write(tmp_path / "t.tsv", f"sequence\texpression\n{GOOD}\t1\n\n{GOOD}\tbad\n")
    with pytest.raises(InputError, match="line 4: expression 'bad'"):
        read_single_table(path)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="unknown table format '.xlsx'"):
        read_single_table(write(tmp_path / "t.xlsx", "x"))
    with pytest.raises(InputError, match="file not found"):
        read_single_table(tmp_path / "absent.tsv")
    with pytest.raises(InputError, match="needs a values table"):
        read_single_table(write(tmp_path / "s.fa", f">a\n{GOOD}\n"))


def test_cli_reports_a_bad_table_in_one_line(tmp_path, capsys):
    path = write(tmp_path / "bad.tsv", single_tsv([f"a\t{GOOD}\t1", "b\tACGTZ\t2"]))
    code = main(["fit", "--table", str(path), "--task", "single", "--out-dir", str(tmp_path / "out")])
    assert code == 1
    error = capsys.readouterr().err
    assert f"{path}, line 3: character 'Z'" in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------
# Good tables in every format
# ----------------------------------------------------------------------------------------------
def test_single_table_formats_agree(tmp_path):
    rows = [("s1", "acgtNNacgt", 1.5, "g1"), ("s2", "TTTT", -2.0, "g1"), ("s3", "GGGCC", 0.0, "g2")]
    tsv = write(tmp_path / "t.tsv", "id\tgroup\tsequence\texpression\tnote\n" +
                "".join(f"{i}\t{g}\t{s}\t{v}\tx\n" for i, s, v, g in rows))
    csv_gz = write(tmp_path / "t.csv.gz", "id,group,sequence,expression\n" +
                   "".join(f'"{i}",{g},{s},{v}\n' for i, s, v, g in rows))
    fasta = write(tmp_path / "t.fasta.gz", "".join(f">{i} desc\n{s}\n" for i, s, _, _ in rows) +
                  ">unused\nACGT\n")
    values = write(tmp_path / "v.tsv", "id\texpression\tgroup\n" +
                   "".join(f"{i}\t{v}\t{g}\n" for i, _, v, g in reversed(rows)))
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffsequence,expression\r\nACGT,1\r\n".encode())
    assert read_single_table(bom).sequences == ["ACGT"]
    a, b = read_single_table(tsv), read_single_table(csv_gz)
    c = read_single_table(fasta, values)
    assert a.ids == b.ids == ["s1", "s2", "s3"] and c.ids == ["s3", "s2", "s1"]
    assert a.sequences == b.sequences == c.sequences[::-1] == ["ACGTNNACGT", "TTTT", "GGGCC"]
    np.testing.assert_allclose(a.expression, [1.5, -2.0, 0.0])
    np.testing.assert_allclose(c.expression, [0.0, -2.0, 1.5])
    assert a.groups == ["g1", "g1", "g2"] and a.lines == [2, 3, 4] and c.lines == [2, 3, 4]


def test_fasta_with_values_errors(tmp_path):
    fasta = write(tmp_path / "s.fa", f">a\n{GOOD}\n>b\nACGTQ\n")
    values = write(tmp_path / "v.tsv", "id\texpression\na\t1\n")
    with pytest.raises(InputError, match=r"s\.fa, line 3: character 'Q'"):
        read_single_table(fasta, values)
    fasta = write(tmp_path / "s.fa", f">a\n{GOOD}\n>a\n{GOOD}\n")
    with pytest.raises(InputError, match=r"s\.fa, line 3, record 'a': duplicate FASTA record name"):
        read_single_table(fasta, values)
    fasta = write(tmp_path / "s.fa", f">a\n{GOOD}\n")
    values = write(tmp_path / "v.tsv", "id\texpression\na\t1\nzz\t2\n")
    with pytest.raises(InputError, match=r"v\.tsv, line 3, record 'zz': id 'zz' is not a record"):
        read_single_table(fasta, values)
    pairs = write(tmp_path / "p.tsv", "id_a\tid_b\ttarget\na\tmissing\t1\n")
    with pytest.raises(InputError, match=r"p\.tsv, line 2, record 'missing': id_b"):
        read_pairs_table(fasta, pairs)


def test_pairs_from_fasta_and_values(tmp_path):
    fasta = write(tmp_path / "s.fa", ">a\nAAAA\n>b\nCCCC\n>c\nGGGG\n")
    values = write(tmp_path / "v.csv", "id_a,id_b,target,group\na,b,1,x\nc,a,-2,y\n")
    table = read_pairs_table(fasta, values)
    assert table.sequence_a == ["AAAA", "GGGG"] and table.sequence_b == ["CCCC", "AAAA"]
    assert table.ids == ["row2", "row3"] and table.groups == ["x", "y"]
    np.testing.assert_allclose(table.target, [1.0, -2.0])


def test_read_sequences_any(tmp_path):
    ids, seqs, lines = read_sequences_any(write(tmp_path / "s.csv", "id,sequence\nq,acg\nr,TT\n"))
    assert ids == ["q", "r"] and seqs == ["ACG", "TT"] and lines == [2, 3]
    ids, seqs, lines = read_sequences_any(write(tmp_path / "s.fna", ">x\nAC\nGT\n>y\nN\n"))
    assert ids == ["x", "y"] and seqs == ["ACGT", "N"] and lines == [1, 4]


# ----------------------------------------------------------------------------------------------
# Lengths
# ----------------------------------------------------------------------------------------------
def test_length_policy_pads_and_trims_at_the_stated_end():
    right = LengthPolicy(6)
    left = LengthPolicy(6, pad_end="left", too_long="trim", trim_end="left")
    trim_right = LengthPolicy(6, too_long="trim")
    assert right.fit("ACG") == "ACGNNN" and left.fit("ACG") == "NNNACG"
    assert left.fit("AACCGGTT") == "CCGGTT" and trim_right.fit("AACCGGTT") == "AACCGG"
    assert right.fit("ACGTAC") == "ACGTAC"
    with pytest.raises(InputError, match=r"t\.tsv, line 7, record 'r': sequence has 8 bases, more "
                                         r"than the length of 6"):
        right.fit("AACCGGTT", "t.tsv", 7, "r")
    codes = encode_fixed(["AC", "ACGTACGT"], LengthPolicy(None, too_long="error"))
    assert codes.shape == (2, 8) and decode(codes[0]) == "ACNNNNNN"
    assert LengthPolicy().resolved([3, 9, 4]).length == 9
    with pytest.raises(ValueError, match="pad_end"):
        LengthPolicy(5, pad_end="both")
    with pytest.raises(ValueError, match="unknown length setting"):
        LengthPolicy.from_dict({"lenght": 5})
    info = {"seq_len": 6, "input": {"pad_end": "left", "too_long": "trim", "trim_end": "right"}}
    assert LengthPolicy.from_model_info(info) == LengthPolicy(6, "left", "trim", "right")
    assert LengthPolicy.from_model_info({"seq_len": 6}) is None
