"""Bad input for ``plantt predict``, ``plantt fit`` and ``plantt encode``: a clear InputError
naming the file and the line or record, or a correct result; never a traceback, never a silently
wrong answer.

The property tests compare every reader with a small reference reader written here from the
documented rules: generated valid inputs must give exactly the generated records, and mutated ones
(truncated, binary noise, gzip with or without a ``.gz`` name, truncated gzip, columns dropped,
added or swapped, text where numbers go) either the reference's records or an InputError.
"""

from __future__ import annotations

import gzip
import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantt import cli
from plantt.dataset import read_fasta_codes, write_encoded_windows
from plantt.encoding import encode
from plantt.fit import FitSettings, check_learnable, encode_table, run_fit
from plantt.io import InputError
from plantt.predict import pairs_from_fasta, pairs_from_tsv, read_fasta, sequences_from_file
from plantt.tables import (
    LengthPolicy,
    PairTable,
    SequenceTable,
    check_dna,
    read_fasta_records,
    read_pairs_table,
    read_single_table,
)

PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
SEQ = "ACGTACGTAC"  # 10 bases: the length the predict tests ask for


def write(path: Path, text: str | bytes, gz: bool = False) -> Path:
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# ----------------------------------------------------------------------------------------------
# plantt predict: every bad sequence is an InputError naming the file and the record or line
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "pattern"), [
    (f">a\n{SEQ}\n>b\n\n>c\n{SEQ}\n",
     r"s\.fa, line 3, record 'b': FASTA record without a sequence"),
    (f">a\n{SEQ}\n>b\n", r"s\.fa, line 3, record 'b': FASTA record without a sequence"),
    (">greeting\nHELLO WORLD\n",
     r"s\.fa, line 1, record 'greeting': sequence is not DNA: 7 of its 11 characters are ' ', "
     r"'E', 'L', 'O' \(first at position 2\)"),
    (">gfp\nMSKGEELFTGVVPILVELDGDVNG\n", r"line 1, record 'gfp': sequence is not DNA: .*'E', 'F'"),
    # a protein written only in letters that are also IUPAC codes
    (">p\nMKVHRDWSMK\n", r"record 'p': sequence is mostly not A, C, G, T or N: 10 of its 10 "
                         r"characters are IUPAC ambiguity codes \('D', 'H', 'K', 'M', 'R', 'S'"),
    (">r\nACGUACGUAC\n", r"record 'r': sequence is not DNA: 2 of its 10 characters are 'U'"),
    (f">a\n{SEQ}\n>b\n{SEQ}\n>a\n{SEQ}\n",
     r"line 5, record 'a': duplicate FASTA record name 'a' \(first on line 1\)"),
    (f">\n{SEQ}\n", r"line 1: FASTA header without a name"),
    (f"{SEQ}\n", r"line 1: sequence before the first '>' header"),
    ("", r"s\.fa: no FASTA records found"),
])
def test_predict_sequences_fasta_errors(tmp_path, text, pattern):
    path = write(tmp_path / "s.fa", text)
    with pytest.raises(InputError, match=pattern):
        sequences_from_file(path, 10)


@pytest.mark.parametrize(("text", "pattern"), [
    (f"id\tsequence\na\t{SEQ}\nb\t\n", r"s\.tsv, line 3: empty sequence in column 'sequence'"),
    (f"id\tsequence\na\t{SEQ}\n\nb\tHELLO WORLD\n",  # the blank line is counted
     r"s\.tsv, line 4: sequence in column 'sequence' is not DNA"),
    (f"id\tsequence\na\t{SEQ}\na\t{SEQ}\n", r"line 3, record 'a': duplicate id 'a' \(first on line 2\)"),
    (f"id\tsequence\na\t{SEQ}\t7\n", r"line 2: 3 fields, but the header has 2"),
    (f"id\tsequence\tnote\na\t{SEQ}\n", r"line 2: 2 fields, but the header has 3"),
    ("id\tsequence\n", r"no rows"),
    (f"id\tseq\na\t{SEQ}\n", r"line 1: missing column\(s\) sequence"),
])
def test_predict_sequences_table_errors(tmp_path, text, pattern):
    path = write(tmp_path / "s.tsv", text)
    with pytest.raises(InputError, match=pattern) as info:
        sequences_from_file(path, 10)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("text", "pattern"), [
    (f"sequence_a\tsequence_b\n{SEQ}\t{SEQ}\n{SEQ}\t\n",
     r"p\.tsv, line 3: empty sequence in column 'sequence_b'"),
    (f"sequence_a\tsequence_b\n{SEQ}\t{SEQ}\n{SEQ}\n", r"p\.tsv, line 3: 1 fields, but the header has 2"),
    (f"sequence_a\tsequence_b\tid\n{SEQ}\t{SEQ}\tx\textra\n", r"line 2: 4 fields, but the header has 3"),
    (f"sequence_a\tsequence_b\n{SEQ}\tMKVHRDWSMK\n", r"line 2: sequence in column 'sequence_b' is mostly"),
])
def test_predict_pairs_table_errors(tmp_path, text, pattern):
    path = write(tmp_path / "p.tsv", text)
    with pytest.raises(InputError, match=pattern):
        pairs_from_tsv(path, 10)


def test_predict_pairs_fasta_names_may_repeat_only_with_the_same_sequence(tmp_path):
    a = write(tmp_path / "a.fa", f">g1\n{SEQ}\n>g1\n{SEQ}\n")
    b = write(tmp_path / "b.fa", f">h1\n{SEQ}\n>h2\nTTTTTTTTTT\n")
    ids, codes_a, codes_b = pairs_from_fasta(a, b, 10)
    assert ids["id_a"].tolist() == ["g1", "g1"] and ids["id_b"].tolist() == ["h1", "h2"]
    assert codes_b[1].tolist() == [3] * 10
    write(tmp_path / "a.fa", f">g1\n{SEQ}\n>g1\nTTTTTTTTTT\n")
    with pytest.raises(InputError, match=r"a\.fa, line 3, record 'g1': duplicate FASTA record name "
                                         r"'g1' with another sequence \(first on line 1\)"):
        pairs_from_fasta(a, b, 10)
    write(tmp_path / "b.fa", f">h1\n{SEQ}\n>h2\n")
    with pytest.raises(InputError, match=r"b\.fa, line 3, record 'h2': FASTA record without"):
        pairs_from_fasta(tmp_path / "b.fa", b, 10)


def test_iupac_codes_and_lower_case_are_read_as_documented(tmp_path):
    path = write(tmp_path / "s.fa", ">a desc\nacgtRY\nacgt\n")
    carried, codes = sequences_from_file(path, 10)
    assert carried["id"].tolist() == ["a"]
    assert codes.tolist() == [[0, 1, 2, 3, 4, 4, 0, 1, 2, 3]]
    assert check_dna(" acgtn ", "x") == "ACGTN"


# ----------------------------------------------------------------------------------------------
# Gzip: recognised by content, whatever the name; truncated gzip is an InputError
# ----------------------------------------------------------------------------------------------
def test_gzip_without_gz_name_is_read_by_predict_fit_and_encode(tmp_path):
    fasta = f">a\n{SEQ}\n>b\nTTTTTTTTTT\n"
    plain = sequences_from_file(write(tmp_path / "p.fa", fasta), 10)
    hidden = sequences_from_file(write(tmp_path / "h.fa", fasta, gz=True), 10)
    assert plain[0].equals(hidden[0]) and np.array_equal(plain[1], hidden[1])
    table = f"id\tsequence\texpression\na\t{SEQ}\t1.5\nb\tTTTT\t-2\n"
    plain_t = read_single_table(write(tmp_path / "p.tsv", table))
    hidden_t = read_single_table(write(tmp_path / "h.tsv", table, gz=True))
    assert hidden_t.ids == plain_t.ids == ["a", "b"]
    assert hidden_t.sequences == [SEQ, "TTTT"] and hidden_t.expression.tolist() == [1.5, -2.0]
    ids, codes = read_fasta_codes(write(tmp_path / "w.fa", fasta, gz=True))
    assert ids == ["a", "b"] and np.array_equal(codes, plain[1])


@pytest.mark.parametrize("name", ["s.fa.gz", "s.fa"])
def test_truncated_gzip_is_an_input_error_everywhere(tmp_path, name):
    fasta = "".join(f">r{i}\n{SEQ * 30}\n" for i in range(200)).encode()
    table = ("id\tsequence\texpression\n"
             + "".join(f"r{i}\t{SEQ * 30}\t{i}\n" for i in range(200))).encode()
    fa = write(tmp_path / name, gzip.compress(fasta)[:len(gzip.compress(fasta)) // 2])
    tsv = write(tmp_path / name.replace(".fa", ".tsv"),
                gzip.compress(table)[:len(gzip.compress(table)) // 2])
    pattern = r"line \d+: gzip data truncated or corrupt"
    with pytest.raises(InputError, match=re.escape(str(fa)) + ", " + pattern):
        sequences_from_file(fa, 300)
    with pytest.raises(InputError, match=pattern):
        pairs_from_fasta(fa, fa, 300)
    with pytest.raises(InputError, match=re.escape(str(tsv)) + ", " + pattern):
        read_single_table(tsv)
    with pytest.raises(InputError, match=pattern):
        write_encoded_windows({"sp": fa}, tmp_path / "c.npy", tmp_path / "g.tsv")
    assert not (tmp_path / "c.npy").exists()


# ----------------------------------------------------------------------------------------------
# plantt fit: nothing to learn
# ----------------------------------------------------------------------------------------------
FAST_FIT = FitSettings(folds=2, seeds=[0], train={"max_epochs": 1}, plots=False)


def test_fit_refuses_a_table_of_identical_targets(tmp_path):
    rows = "".join(f"s{i}\t{SEQ[:i % 5 + 5]}GG\t1.5\n" for i in range(12))
    table = write(tmp_path / "t.tsv", "id\tsequence\texpression\n" + rows)
    with pytest.raises(InputError, match=r"t\.tsv: every expression is 1\.5 \(12 rows\): there is "
                                         "nothing to learn"):
        run_fit(table, "single", tmp_path / "out", FAST_FIT)
    pairs = write(tmp_path / "p.csv", "sequence_a,sequence_b,target\n" + "".join(
        f"{SEQ[:i % 5 + 5]},GGGG{'T' * i},0\n" for i in range(12)))
    with pytest.raises(InputError, match=r"p\.csv: every target is 0 \(12 rows\)"):
        run_fit(pairs, "pairs", tmp_path / "out", FAST_FIT)
    assert not (tmp_path / "out" / "fold_0").exists()  # stopped before any training


def test_fit_warns_about_identical_pairs_with_a_target(tmp_path, caplog):
    text = ("id,sequence_a,sequence_b,target\n"
            f"p1,{SEQ},{SEQ},0.5\n"  # the same sequence, a non-zero target: named
            f"p2,{SEQ},{SEQ},0\n"  # the same sequence, no difference: fine
            f"p3,{SEQ}AA,{SEQ}TT,1\n"  # the same once trimmed to 10 bases: named
            f"p4,{SEQ},TTTTTTTTTT,-1\n")
    table = read_pairs_table(write(tmp_path / "p.csv", text))
    data = encode_table(table, LengthPolicy(10, too_long="trim"))
    with caplog.at_level(logging.WARNING, logger="plantt.fit"):
        check_learnable(table, data)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1
    assert "2 pair(s) have the same sequence" in warned[0]
    assert "'p1' (line 2), 'p3' (line 4)" in warned[0] and "p2" not in warned[0]
    same = read_pairs_table(write(tmp_path / "s.csv", "sequence_a,sequence_b,target\n"
                                  f"{SEQ},{SEQ},1\nAAAA,AAAA,2\n"))
    with pytest.raises(InputError, match=r"s\.csv: in every pair sequence_a and sequence_b are "
                                         "the same"):
        check_learnable(same, encode_table(same, LengthPolicy()))


def test_fit_reads_ragged_rows_as_an_error_with_the_line(tmp_path):
    path = write(tmp_path / "t.tsv", f"id\tsequence\texpression\na\t{SEQ}\t1\n\nb\t{SEQ}\t2\t\n")
    with pytest.raises(InputError, match=r"t\.tsv, line 4: 4 fields, but the header has 3"):
        read_single_table(path)


# ----------------------------------------------------------------------------------------------
# Through the command line: exit status 1, the message, no traceback
# ----------------------------------------------------------------------------------------------
def test_cli_encode_truncated_gzip_exits_with_the_message(tmp_path, capsys):
    fasta = "".join(f">r{i}\n{SEQ * 30}\n" for i in range(200)).encode()
    bad = write(tmp_path / "w.fa", gzip.compress(fasta)[:len(gzip.compress(fasta)) // 2])
    code = cli.main(["encode", "--windows", f"sp={bad}", "--out-npy", str(tmp_path / "c.npy"),
                     "--out-genes", str(tmp_path / "g.tsv")])
    err = capsys.readouterr().err
    assert code == 1
    assert re.search(rf"plantt encode: error: {re.escape(str(bad))}, line \d+: gzip data "
                     "truncated or corrupt", err)
    assert "Traceback" not in err
    assert not (tmp_path / "c.npy").exists()


def test_cli_predict_bad_sequence_exits_with_the_message(tmp_path, capsys):
    from plantt.models import build_model, save_model

    model_dir = save_model(tmp_path / "model", build_model("plantt", "small", 120))
    bad = write(tmp_path / "s.fa", f">ok\n{SEQ}\n>hello\nHELLO WORLD\n")
    code = cli.main(["predict", "--model", str(model_dir), "--sequences", str(bad), "--out",
                     str(tmp_path / "out.tsv")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"plantt predict: error: {bad}, line 3, record 'hello': sequence is not DNA" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out.tsv").exists()


# ----------------------------------------------------------------------------------------------
# Property tests: FASTA readers
# ----------------------------------------------------------------------------------------------
NAMES = st.text(alphabet="abcdefghijXYZ0123456789_.|-", min_size=1, max_size=8)
BASES = "ACGTNacgtn"
_NEWLINES = re.compile(r"\r\n|\r|\n")  # what Python's text files take as line ends
_AMBIGUOUS = set("RYSWKMBDHVryswkmbdhv")


@st.composite
def fasta_files(draw: st.DrawFn, equal_length: bool = False) -> tuple[bytes, list[tuple[str, str]]]:
    """A valid FASTA (names unique) as bytes, and its records."""
    length = draw(st.integers(1, 40))
    seqs = st.text(alphabet=BASES, min_size=length, max_size=length) if equal_length else \
        st.text(alphabet=BASES, min_size=1, max_size=40)
    records = draw(st.lists(st.tuples(NAMES, seqs), min_size=1, max_size=5,
                            unique_by=lambda r: r[0]))
    width = draw(st.integers(1, 50))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    parts = []
    for name, seq in records:
        desc = draw(st.sampled_from(["", " some description", "\tx=1"]))
        blank = draw(st.sampled_from(["", newline]))
        lines = [seq[i:i + width] for i in range(0, len(seq), width)]
        parts.append(f">{name}{desc}{newline}" + "".join(x + newline for x in lines) + blank)
    text = "".join(parts)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")  # no newline at the end
    return text.encode(), records


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> tuple[bytes, bool]:
    """``data`` mutated, and whether the file name should end in ``.gz``."""
    kind = draw(st.sampled_from(["none", "truncate", "noise", "letters", "delete", "gzip",
                                 "gzip_named", "gzip_truncated"]))
    if kind == "truncate":
        return data[:draw(st.integers(0, len(data)))], False
    if kind == "noise":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=6)) + data[at:], False
    if kind == "letters":  # ambiguity codes, protein letters, RNA, gaps, spaces
        at = draw(st.integers(0, len(data)))
        alphabet = draw(st.sampled_from(["RYSWKMBDHVryswkmbdhv", "RYSWKMBDHVEFILPQU*- "]))
        text = draw(st.text(alphabet=alphabet, min_size=1, max_size=40))
        return data[:at] + text.encode() + data[at:], False
    if kind == "delete":
        at = draw(st.integers(0, len(data)))
        return data[:at] + data[at + draw(st.integers(1, 8)):], False
    if kind in ("gzip", "gzip_named"):
        return gzip.compress(data), kind == "gzip_named"
    if kind == "gzip_truncated":
        packed = gzip.compress(data)
        return packed[:draw(st.integers(0, len(packed) - 1))], draw(st.booleans())
    return data, False


def decoded(data: bytes) -> str | None:
    """The text of a file's bytes as the readers should see it; None: must be an InputError."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, ValueError):
            return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class Bad(Exception):
    """The reference reader's verdict: this input must be an InputError."""


def reference_fasta(text: str) -> list[tuple[str, str, int]]:
    """(name, sequence, header line) by the documented rules, structure only."""
    records: list[tuple[str, str, int]] = []
    current: list | None = None
    for number, raw in enumerate(_NEWLINES.split(text), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(">"):
            if current is not None:
                records.append((current[0], "".join(current[1]), current[2]))
            words = line[1:].split()
            if not words:
                raise Bad("header without a name")
            current = [words[0], [], number]
        elif current is None:
            raise Bad("text before the first header")
        else:
            current[1].append(line)
    if current is not None:
        records.append((current[0], "".join(current[1]), current[2]))
    if any(not seq for _, seq, _ in records):
        raise Bad("a record without a sequence")
    return records


def reference_dna(seq: str) -> str:
    if any(c not in BASES and c not in _AMBIGUOUS for c in seq):
        raise Bad("not DNA")
    if 2 * sum(c in _AMBIGUOUS for c in seq) > len(seq):
        raise Bad("mostly ambiguity codes")
    return seq.upper()


def unique_names(records: list[tuple[str, str, int]]) -> None:
    names = [r[0] for r in records]
    if len(set(names)) != len(names):
        raise Bad("duplicate name")


def expect(data: bytes, reference, read):
    """Run ``read``; it must give what ``reference(text)`` gives, or an InputError where the
    reference finds the input bad (anything else fails the test)."""
    text = decoded(data)
    try:
        if text is None:
            raise Bad("not text")
        expected = reference(text)
    except Bad:
        with pytest.raises(InputError):
            read()
        return None
    assert read() == expected
    return expected


def _records(text: str) -> list[tuple[str, str, int]]:
    records = reference_fasta(text)
    if not records:
        raise Bad("no records")
    return records


@PROPERTY
@given(st.data())
def test_property_fasta_records(tmp_path_factory, data):
    original, records = data.draw(fasta_files())
    path = tmp_path_factory.getbasetemp() / "records.fa"
    write(path, original)
    assert [(r.name, r.sequence) for r in read_fasta_records(path)] == records
    content, gz = data.draw(mutated(original))
    path = write(path.with_name("records.fa.gz" if gz else "records.fa"), content)
    expect(content, _records,
           lambda: [(r.name, r.sequence, r.line) for r in read_fasta_records(path)])


def _predict_records(text: str) -> list[tuple[str, str]]:
    records = _records(text)
    unique_names(records)
    return [(name, reference_dna(seq)) for name, seq, _ in records]


@PROPERTY
@given(st.data())
def test_property_predict_fasta(tmp_path_factory, data):
    original, records = data.draw(fasta_files())
    path = write(tmp_path_factory.getbasetemp() / "predict.fa", original)
    assert read_fasta(path) == [(name, seq.upper()) for name, seq in records]
    content, gz = data.draw(mutated(original))
    path = write(path.with_name("predict.fa.gz" if gz else "predict.fa"), content)
    expected = expect(content, _predict_records, lambda: read_fasta(path))
    if expected is not None:  # and the codes predict encodes are those of the sequences
        length = max(len(s) for _, s in expected)
        _, codes = sequences_from_file(path, LengthPolicy(length))
        assert [c.tolist() for c in codes] == [
            encode(s + "N" * (length - len(s))).tolist() for _, s in expected]


def _window_codes(text: str) -> tuple[list[str], list[list[int]]]:
    records = reference_fasta(text)
    unique_names(records)
    seqs = [reference_dna(seq) for _, seq, _ in records]
    if len({len(s) for s in seqs}) > 1:
        raise Bad("windows of different lengths")
    return [r[0] for r in records], [encode(s).tolist() for s in seqs]


@PROPERTY
@given(st.data())
def test_property_encode_fasta(tmp_path_factory, data):
    original, records = data.draw(fasta_files(equal_length=True))
    path = write(tmp_path_factory.getbasetemp() / "windows.fa", original)
    ids, codes = read_fasta_codes(path)
    assert ids == [r[0] for r in records]
    assert codes.tolist() == [encode(seq).tolist() for _, seq in records]
    content, gz = data.draw(mutated(original))
    path = write(path.with_name("windows.fa.gz" if gz else "windows.fa"), content)

    def read() -> tuple[list[str], list[list[int]]]:
        ids, codes = read_fasta_codes(path)
        assert codes.dtype == np.uint8 and codes.shape[0] == len(ids)
        return ids, codes.tolist()

    expect(content, _window_codes, read)


# ----------------------------------------------------------------------------------------------
# Property tests: the tables of plantt fit
# ----------------------------------------------------------------------------------------------
# Cell text that cannot end a field or a line, or open a quoted field, so the reference reader
# can split on the separator.
CELL = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                                      blacklist_characters='"\t,\x85'), max_size=8)
NUMBER_TEXT = st.one_of(CELL, st.sampled_from(["nan", "inf", "-inf", "1e400", "", " 2.5 ",
                                               "1,5", "0x10", "1.0.0", "-0"]))
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Bad("not a number") from None
    if not math.isfinite(value):
        raise Bad("not finite")
    return value


def _acgtn(text: str) -> str:
    seq = text.strip()
    if not seq or any(c not in BASES for c in seq):
        raise Bad("not a sequence")
    return seq.upper()


def reference_table(text: str, sep: str, task: str) -> tuple:
    """What a quote-free table holds by the documented rules (plantt.tables)."""
    lines = _NEWLINES.split(text)
    header = [h.strip() for h in lines[0].split(sep)] if text else []
    if header:
        header[0] = header[0].lstrip("\ufeff")
    if not any(header) or len(set(header)) != len(header):
        raise Bad("no header, or a duplicate column")
    values = ("sequence", "expression") if task == "single" else \
        ("sequence_a", "sequence_b", "target")
    if any(c not in header for c in values):
        raise Bad("missing column")
    ids, seqs, targets, groups, numbers = [], [], [], [], []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split(sep)
        if len(fields) == 1 and not fields[0].strip():
            continue  # a blank line
        if len(fields) != len(header):
            raise Bad("ragged row")
        row = dict(zip(header, fields, strict=True))
        ident = row["id"].strip() if "id" in row else f"row{number}"
        if not ident or ident in ids:
            raise Bad("empty or duplicate id")
        seqs.append(tuple(_acgtn(row[c]) for c in values[:-1]))
        targets.append(_float(row[values[-1]]))
        if "group" in row:
            if not row["group"].strip():
                raise Bad("empty group")
            groups.append(row["group"].strip())
        ids.append(ident)
        numbers.append(number)
    if not ids:
        raise Bad("no rows")
    return ids, seqs, targets, groups if "group" in header else None, numbers


def as_tuple(table: SequenceTable | PairTable) -> tuple:
    if isinstance(table, SequenceTable):
        seqs = [(s,) for s in table.sequences]
    else:
        seqs = list(zip(table.sequence_a, table.sequence_b, strict=True))
    return table.ids, seqs, table.target.tolist() if isinstance(table, PairTable) else \
        table.expression.tolist(), table.groups, table.lines


@st.composite
def table_files(draw: st.DrawFn, task: str) -> tuple[list[str], list[list[str]], str]:
    """Header, rows (cells as text) and separator of a valid table, possibly with id and group."""
    values = ["sequence", "expression"] if task == "single" else \
        ["sequence_a", "sequence_b", "target"]
    optional = draw(st.sets(st.sampled_from(["id", "group"])))
    header = draw(st.permutations([*values, *sorted(optional)]))
    n = draw(st.integers(1, 5))
    ids = draw(st.lists(NAMES, min_size=n, max_size=n, unique=True))
    rows = []
    for i in range(n):
        cells = {"id": ids[i], "group": draw(st.sampled_from(["g1", "g2", " g3 "])),
                 "expression": repr(draw(FINITE)), "target": repr(draw(FINITE))}
        for column in ("sequence", "sequence_a", "sequence_b"):
            cells[column] = draw(st.text(alphabet=BASES, min_size=1, max_size=30))
        rows.append([cells[c] for c in header])
    return header, rows, draw(st.sampled_from(["\t", ","]))


@st.composite
def table_mutations(draw: st.DrawFn, header: list[str], rows: list[list[str]]
                    ) -> tuple[list[str], list[list[str]]]:
    """Columns dropped, added, swapped (header and cells, or header only), text in a number."""
    header, rows = list(header), [list(r) for r in rows]
    kind = draw(st.sampled_from(["none", "drop", "add", "swap", "swap_header", "text"]))
    j = draw(st.integers(0, len(header) - 1))
    if kind == "drop":
        header.pop(j)
        for row in rows:
            row.pop(j)
    elif kind == "add":
        header.insert(j, draw(st.sampled_from(["extra", "note", "id", "sequence"])))
        for row in rows:
            row.insert(j, draw(CELL))
    elif kind in ("swap", "swap_header"):
        k = draw(st.integers(0, len(header) - 1))
        header[j], header[k] = header[k], header[j]
        if kind == "swap":
            for row in rows:
                row[j], row[k] = row[k], row[j]
    elif kind == "text":
        row = draw(st.sampled_from(rows))
        row[j] = draw(NUMBER_TEXT)
    return header, rows


def serialise(header: list[str], rows: list[list[str]], sep: str) -> str:
    return "".join(sep.join(cells) + "\n" for cells in [header, *rows])


def _check_table(tmp_path_factory, data, task: str) -> None:
    """A valid table read right, then one mutation of it (drawn) judged."""
    read = read_single_table if task == "single" else read_pairs_table
    header, rows, sep = data.draw(table_files(task))
    suffix = ".tsv" if sep == "\t" else ".csv"
    base = tmp_path_factory.getbasetemp()
    text = serialise(header, rows, sep)
    expected = reference_table(text, sep, task)  # valid by construction
    assert as_tuple(read(write(base / f"table{suffix}", text))) == expected
    raw = text.encode()
    kind = data.draw(st.sampled_from(["gzip", "columns", "truncate", "gzip_truncated", "noise"]))
    if kind == "gzip":  # by content, with or without a .gz name
        name = f"table{suffix}.gz" if data.draw(st.booleans()) else f"hidden{suffix}"
        assert as_tuple(read(write(base / name, text, gz=True))) == expected
    elif kind == "columns":  # columns and cells mutated: the reference reader decides
        m_text = serialise(*data.draw(table_mutations(header, rows)), sep)
        path = write(base / f"columns{suffix}", m_text)
        expect(m_text.encode(), lambda t: reference_table(t, sep, task),
               lambda: as_tuple(read(path)))
    elif kind == "truncate":  # at a byte, then maybe gzipped: the reference reader decides
        cut = raw[:data.draw(st.integers(0, len(raw)))]
        path = write(base / f"cut{suffix}", cut, gz=data.draw(st.booleans()))
        expect(cut, lambda t: reference_table(t, sep, task), lambda: as_tuple(read(path)))
    elif kind == "gzip_truncated":
        packed = gzip.compress(raw)
        path = write(base / f"cut{suffix}", packed[:data.draw(st.integers(2, len(packed) - 1))])
        with pytest.raises(InputError, match="gzip data truncated or corrupt"):
            read(path)
    else:  # binary noise (may hold quotes, separators, line ends): an InputError, or valid rows
        # of which those before the noise are the original ones
        at = data.draw(st.integers(0, len(raw)))
        noisy = raw[:at] + data.draw(st.binary(min_size=1, max_size=6)) + raw[at:]
        try:
            table = read(write(base / f"noise{suffix}", noisy))
        except InputError:
            return
        ids, seqs, targets, groups, lines = as_tuple(table)
        assert len(set(ids)) == len(ids) and all(math.isfinite(t) for t in targets)
        assert all(s and set(s) <= set("ACGTN") for pair in seqs for s in pair)
        assert groups is None or all(g and g == g.strip() for g in groups)
        intact = raw[:at].count(b"\n") - 1  # data rows that end before the noise
        if intact > 0:
            assert (ids[:intact], seqs[:intact], targets[:intact], lines[:intact]) == tuple(
                x[:intact] for x in (expected[0], expected[1], expected[2], expected[4]))


@PROPERTY
@given(st.data())
def test_property_single_tables(tmp_path_factory, data):
    _check_table(tmp_path_factory, data, "single")


@PROPERTY
@given(st.data())
def test_property_pairs_tables(tmp_path_factory, data):
    _check_table(tmp_path_factory, data, "pairs")
