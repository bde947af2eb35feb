"""Tables of your own sequences for ``plantt fit``: reading, validation and fixed-length encoding.

Two kinds of table (:func:`read_table`):

* ``single``: one sequence per row: ``sequence``, ``expression``, optional ``group`` (sequences of
  one group always fall in the same cross-validation fold, e.g. the variants of one promoter) and
  optional ``id`` (default: ``row<line number>``).
* ``pairs``: two sequences per row and their measured difference: ``sequence_a``, ``sequence_b``,
  ``target`` (e.g. log expression of a minus that of b), optional ``group`` and ``id``.

Any other column is ignored. Formats, told apart by the file name: ``.tsv``, ``.tab`` or ``.txt``
(tab-separated) and ``.csv`` (comma-separated, standard quoting), each optionally gzipped
(``.gz``); or a FASTA file (``.fa``, ``.fasta``, ``.fna``, ``.fas``, optionally ``.gz``) of the
sequences plus a values table: for ``single`` with columns ``id`` (a FASTA record name),
``expression`` and optional ``group``; for ``pairs`` with ``id_a``, ``id_b``, ``target`` and
optional ``group``, ``id``. FASTA records that no row uses are ignored (and counted in the log).

Every problem is an :class:`plantt.io.InputError` naming the file and the line (1 = the header):
a missing column, a row with the wrong number of fields, an empty sequence, a character other than
A, C, G, T, N (either case), a value that is not a finite number, an empty group, a duplicate id
(with the line of its first use), an id of the values table missing from the FASTA, a FASTA record
without a sequence (a header followed by another header), binary data, a truncated gzip file
(gzip is recognised by its content, whatever the name). :func:`check_dna` is the more lenient
check of sequences to predict (``plantt predict``): IUPAC ambiguity codes are read as N there.

Lengths (:class:`LengthPolicy`): models take one fixed length. ``length`` is that length (``None``:
the longest sequence of the training table). A shorter sequence is padded with N at ``pad_end``
(``right``: after its last base, the 3' end; ``left``: before its first, the 5' end; Camformer padded
at the end). A longer one is an error (``too_long: error``, the default, naming its line), or is
trimmed (``too_long: trim``) by removing bases from ``trim_end``. The policy is stored in every
model trained by ``plantt fit`` (``"input"`` in model.json), and ``plantt predict``, ``ism`` and
``edit`` apply it to new sequences. N is encoded as 0.25 in each channel (the package's soft
one-hot), so padding looks like unknown bases, and in-silico mutagenesis skips it.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plantt.encoding import encode
from plantt.io import InputError, PathLike, get_logger, iter_lines

log = get_logger("tables")

TASKS = ("single", "pairs")
ENDS = ("right", "left")
TOO_LONG = ("error", "trim")
TABLE_SUFFIXES = {".tsv": "\t", ".tab": "\t", ".txt": "\t", ".csv": ","}
FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas")
SINGLE_COLUMNS = ("sequence", "expression")
PAIR_COLUMNS = ("sequence_a", "sequence_b", "target")

_NOT_ACGTN = re.compile(r"[^ACGTNacgtn]")

# Sequences to predict (check_dna): A, C, G, T, N in either case are bases; the IUPAC ambiguity
# codes are read as N (plantt.encoding), as genome FASTAs use them; anything else is not DNA.
IUPAC_AMBIGUITY = "RYSWKMBDHV"
_DNA_CLASS = np.full(256, 2, dtype=np.uint8)  # 0: base or N, 1: ambiguity code, 2: not DNA
for _char in "ACGTN":
    _DNA_CLASS[[ord(_char), ord(_char.lower())]] = 0
for _char in IUPAC_AMBIGUITY:
    _DNA_CLASS[[ord(_char), ord(_char.lower())]] = 1


# ----------------------------------------------------------------------------------------------
# Lengths
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LengthPolicy:
    """How sequences are brought to one fixed length (see the module docstring)."""

    length: int | None = None
    pad_end: str = "right"
    too_long: str = "error"
    trim_end: str = "right"

    def __post_init__(self) -> None:
        if self.length is not None and (not isinstance(self.length, int) or self.length < 1):
            raise ValueError(f"length must be a positive number of bases (or null), "
                             f"got {self.length!r}")
        for name, allowed in (("pad_end", ENDS), ("too_long", TOO_LONG), ("trim_end", ENDS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> LengthPolicy:
        values = dict(values or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown length setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(names))}")
        return cls(**values)

    @classmethod
    def from_model_info(cls, info: dict[str, Any]) -> LengthPolicy | None:
        """The policy a model was trained with (``"input"`` in model.json); ``None`` for models
        that take exactly ``seq_len`` bases."""
        spec = info.get("input")
        if not spec:
            return None
        return cls.from_dict({**spec, "length": int(info["seq_len"])})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved(self, lengths: Sequence[int] | np.ndarray) -> LengthPolicy:
        """This policy with ``length`` set (the longest of ``lengths`` when it is ``None``)."""
        if self.length is not None:
            return self
        if len(lengths) == 0:
            raise ValueError("no sequences to take the length from")
        return dataclasses.replace(self, length=int(np.max(lengths)))

    def fit(self, seq: str, path: PathLike | None = None, line: int | None = None,
            record: str | None = None) -> str:
        """``seq`` padded or trimmed to ``length`` (an InputError when too long and not trimmed)."""
        if self.length is None:
            raise ValueError("resolve the length first (LengthPolicy.resolved)")
        n = len(seq)
        if n == self.length:
            return seq
        if n < self.length:
            pad = "N" * (self.length - n)
            return seq + pad if self.pad_end == "right" else pad + seq
        if self.too_long == "error":
            raise InputError(path, f"sequence has {n} bases, more than the length of {self.length} "
                                   "(set too_long: trim to trim it, or a larger length)",
                             line=line, record=record)
        return seq[:self.length] if self.trim_end == "right" else seq[n - self.length:]

    def describe(self) -> str:
        trim = f"trimmed at the {self.trim_end} end" if self.too_long == "trim" else "an error"
        return (f"{self.length} bases; shorter sequences padded with N at the {self.pad_end} end, "
                f"longer ones {trim}")


def encode_fixed(sequences: Sequence[str], policy: LengthPolicy, path: PathLike | None = None,
                 lines: Sequence[int] | None = None, names: Sequence[str] | None = None
                 ) -> np.ndarray:
    """``(n, length)`` uint8 codes of ``sequences`` brought to the policy's length."""
    if policy.length is None:
        policy = policy.resolved([len(s) for s in sequences])
    assert policy.length is not None
    codes = np.empty((len(sequences), policy.length), dtype=np.uint8)
    for i, seq in enumerate(sequences):
        fitted = policy.fit(seq, path, lines[i] if lines is not None else None,
                            names[i] if names is not None else None)
        codes[i] = encode(fitted)
    return codes


# ----------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------
@dataclass
class SequenceTable:
    """A ``single`` table: one sequence and its expression per row."""

    path: str
    ids: list[str]
    sequences: list[str]
    expression: np.ndarray
    groups: list[str] | None
    lines: list[int]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class PairTable:
    """A ``pairs`` table: two sequences and their measured difference per row."""

    path: str
    ids: list[str]
    sequence_a: list[str]
    sequence_b: list[str]
    target: np.ndarray
    groups: list[str] | None
    lines: list[int]

    def __len__(self) -> int:
        return len(self.ids)


def _stem_suffix(path: PathLike) -> str:
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).suffix


def is_fasta(path: PathLike) -> bool:
    return _stem_suffix(path) in FASTA_SUFFIXES


def table_separator(path: PathLike) -> str:
    """The field separator of a table, from its name (``.tsv``/``.tab``/``.txt`` or ``.csv``)."""
    suffix = _stem_suffix(path)
    if suffix not in TABLE_SUFFIXES:
        raise InputError(path, f"unknown table format {suffix or '(no extension)'!r}: name it "
                               ".tsv, .tab, .txt or .csv (optionally .gz), or give a FASTA file "
                               "(.fa, .fasta, .fna, .fas) with a values table")
    return TABLE_SUFFIXES[suffix]


def _text_lines(path: PathLike) -> Iterator[str]:
    """The lines of a text file (plain or gzip by content); undecodable or truncated data is an
    InputError with the line (:func:`plantt.io.iter_lines`)."""
    for _, line in iter_lines(path):
        yield line


def iter_rows(path: PathLike, sep: str | None = None
              ) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header and an iterator of ``(line number, row)`` of a TSV/CSV table (gzip or not, by
    content). ``sep``: the field separator (default: from the name, :func:`table_separator`).

    Blank lines are skipped; a row with another number of fields than the header is an error,
    and so is binary data or a truncated gzip file (all InputErrors with the line).
    """
    if sep is None:
        sep = table_separator(path)
    lines = _text_lines(path)
    reader = csv.reader(lines, delimiter=sep)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(path, "file is empty, expected a header line") from None
    except csv.Error as err:
        raise InputError(path, f"cannot read the header ({err})", line=1) from None
    header = [h.strip() for h in header]
    if header:
        header[0] = header[0].lstrip("\ufeff")  # a byte-order mark, as spreadsheets write
    if not any(header):
        raise InputError(path, "the header line is blank, expected column names", line=1)
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        lines.close()
        raise InputError(path, f"duplicate column(s) {', '.join(duplicated)}", line=1)

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        line = reader.line_num + 1
        try:
            for fields in reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    line = reader.line_num + 1
                    continue
                if len(fields) != len(header):
                    raise InputError(path, f"{len(fields)} fields, but the header has "
                                           f"{len(header)} ({'tab' if sep == chr(9) else sep!r}"
                                           "-separated)", line=line)
                yield line, dict(zip(header, fields, strict=True))
                line = reader.line_num + 1
        except csv.Error as err:
            raise InputError(path, f"cannot read the table ({err})", line=line) from None
        finally:
            lines.close()

    return header, rows()


def _require(path: PathLike, header: list[str], required: Sequence[str]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}; found "
                               f"{', '.join(header) or 'none'}", line=1)


def check_sequence(seq: str, path: PathLike, line: int, column: str) -> str:
    """``seq`` stripped and upper-cased; an empty one or a non-ACGTN character is an error."""
    seq = seq.strip()
    if not seq:
        raise InputError(path, f"empty sequence in column {column!r}", line=line)
    bad = _NOT_ACGTN.search(seq)
    if bad is not None:
        raise InputError(path, f"character {bad.group()!r} at position {bad.start() + 1} of "
                               f"{column!r} is not A, C, G, T or N", line=line)
    return seq.upper()


def _shown(chars: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(c) for c in chars[:limit])
    return shown + (f" and {len(chars) - limit} more" if len(chars) > limit else "")


def check_dna(seq: str, path: PathLike | None, line: int | None = None,
              record: str | None = None, column: str | None = None) -> str:
    """``seq`` stripped and upper-cased, if it reads as DNA; otherwise an InputError.

    A, C, G, T and N (either case) are bases; the IUPAC ambiguity codes (R, Y, S, W, K, M, B, D,
    H, V) are accepted and read as N, as in genome FASTAs. Errors: an empty sequence; any other
    character (text such as ``HELLO WORLD``, ``U``, ``-``, ``*``, spaces inside the sequence),
    named with the characters found; and a sequence of which more than half are ambiguity codes
    (a protein sequence can be written in those letters: it is not DNA either).
    """
    what = f"sequence in column {column!r}" if column else "sequence"
    seq = seq.strip()
    if not seq:
        raise InputError(path, f"empty {what}, expected bases (A, C, G, T, N)", line=line,
                         record=record)
    classes = _DNA_CLASS[np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)]
    bad = np.flatnonzero(classes == 2)
    if bad.size:
        found = sorted({seq[i] for i in bad.tolist()})
        raise InputError(path, f"{what} is not DNA: {bad.size} of its {len(seq)} characters are "
                               f"{_shown(found)} (first at position {int(bad[0]) + 1}); expected "
                               "A, C, G, T or N (IUPAC ambiguity codes are read as N)",
                         line=line, record=record)
    ambiguous = int(np.count_nonzero(classes == 1))
    if 2 * ambiguous > len(seq):
        found = sorted({c for c in seq.upper() if c in IUPAC_AMBIGUITY})
        raise InputError(path, f"{what} is mostly not A, C, G, T or N: {ambiguous} of its "
                               f"{len(seq)} characters are IUPAC ambiguity codes ({_shown(found)});"
                               " is it a DNA sequence (a protein sequence can look like this)?",
                         line=line, record=record)
    return seq.upper()


def parse_value(text: str, path: PathLike, line: int, column: str) -> float:
    """A finite number; anything else (empty, text, NaN, infinity) is an error."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(path, f"{column} {text.strip()!r} is not a number", line=line) from None
    if not math.isfinite(value):
        raise InputError(path, f"{column} {text.strip()!r} is not a finite number",
                         line=line) from None
    return value


def _group(row: dict[str, str], path: PathLike, line: int) -> str:
    value = row["group"].strip()
    if not value:
        raise InputError(path, "empty group (leave the column out to make every sequence its own "
                               "group)", line=line)
    return value


class _IdChecker:
    def __init__(self, path: PathLike, what: str = "id"):
        self.path = path
        self.what = what
        self.seen: dict[str, int] = {}

    def add(self, value: str, line: int) -> str:
        value = value.strip()
        if not value:
            raise InputError(self.path, f"empty {self.what}", line=line)
        first = self.seen.get(value)
        if first is not None:
            raise InputError(self.path, f"duplicate {self.what} {value!r} (first on line {first})",
                             line=line, record=value)
        self.seen[value] = line
        return value


@dataclass
class FastaRecord:
    name: str
    sequence: str
    line: int  # of the header


def read_fasta_records(path: PathLike, allow_empty: bool = False) -> list[FastaRecord]:
    """The records of a FASTA (plain or gzip, by content) in file order, with each header's line:
    the package's one reader of sequence FASTAs (genomes, read by position, go through
    :func:`plantt.windows.open_genome`).

    The name is the header's first word. Errors (InputErrors with the line): text before the
    first ``>``, a header without a name, a record without sequence lines (a header followed by
    the next header or the end of the file), no records at all (unless ``allow_empty``), binary
    data, truncated gzip. Characters are not checked here (:func:`check_dna`,
    :func:`check_sequence` do).
    """
    records: list[FastaRecord] = []
    name: str | None = None
    header_line = 0
    chunks: list[str] = []

    def close_record() -> None:
        if name is None:
            return
        if not chunks:
            raise InputError(path, "FASTA record without a sequence (the header is followed by "
                                   "another header or the end of the file)", line=header_line,
                             record=name)
        records.append(FastaRecord(name, "".join(chunks), header_line))

    for line_no, line in iter_lines(path):
        line = line.strip()
        if not line:
            continue
        if line.startswith(">"):
            close_record()
            name = line[1:].split(maxsplit=1)[0] if line[1:].strip() else ""
            if not name:
                raise InputError(path, "FASTA header without a name", line=line_no)
            header_line, chunks = line_no, []
        elif name is None:
            raise InputError(path, "sequence before the first '>' header; expected FASTA",
                             line=line_no)
        else:
            chunks.append(line)
    close_record()
    if not records and not allow_empty:
        raise InputError(path, "no FASTA records found")
    return records


def read_dna_fasta(path: PathLike, duplicates: str = "error") -> list[FastaRecord]:
    """:func:`read_fasta_records` with every sequence checked as DNA (:func:`check_dna`;
    upper-cased) and names checked: ``duplicates="error"``: a name used twice is an error;
    ``"same"``: allowed when both records have the same sequence (the same sequence listed twice,
    e.g. to pair it with two others by order), an error otherwise."""
    if duplicates not in ("error", "same"):
        raise ValueError(f"duplicates must be 'error' or 'same', got {duplicates!r}")
    seen: dict[str, FastaRecord] = {}
    out = []
    for record in read_fasta_records(path):
        checked = FastaRecord(record.name, check_dna(record.sequence, path, record.line,
                                                     record.name), record.line)
        first = seen.get(record.name)
        if first is not None and (duplicates == "error" or first.sequence != checked.sequence):
            other = "" if duplicates == "error" else " with another sequence"
            raise InputError(path, f"duplicate FASTA record name {record.name!r}{other} (first "
                                   f"on line {first.line}): names must tell records apart",
                             line=record.line, record=record.name)
        seen.setdefault(record.name, checked)
        out.append(checked)
    return out


def _fasta_sequences(path: PathLike) -> dict[str, tuple[str, int]]:
    """FASTA record name -> (checked sequence, header line); duplicate names are an error."""
    ids = _IdChecker(path, "FASTA record name")
    out: dict[str, tuple[str, int]] = {}
    for record in read_fasta_records(path):
        ids.add(record.name, record.line)
        out[record.name] = (check_sequence(record.sequence, path, record.line, "sequence"),
                            record.line)
    return out


def _lookup(fasta: dict[str, tuple[str, int]], name: str, fasta_path: PathLike, path: PathLike,
            line: int, column: str) -> str:
    name = name.strip()
    if name not in fasta:
        raise InputError(path, f"{column} {name!r} is not a record of {fasta_path}", line=line,
                         record=name)
    return fasta[name][0]


def _log_unused(fasta: dict[str, tuple[str, int]], used: set[str], fasta_path: PathLike) -> None:
    unused = len(set(fasta) - used)
    if unused:
        log.info("%d record(s) of %s are not in the values table and are ignored", unused,
                 fasta_path)


def _open_table(path: PathLike, values: PathLike | None, values_columns: list[str],
                values_help: str, table_columns: list[str]
                ) -> tuple[dict[str, tuple[str, int]] | None, PathLike, list[str],
                           Iterator[tuple[int, dict[str, str]]]]:
    """(FASTA sequences or ``None``, the table read, its header, its rows) of a table ``path``, or
    of a FASTA ``path`` with its ``values`` table; the required columns checked."""
    fasta: dict[str, tuple[str, int]] | None = None
    source = path
    if is_fasta(path):
        if values is None:
            raise InputError(path, f"a FASTA file needs a values table ({values_help})")
        fasta, source = _fasta_sequences(path), values
    elif values is not None:
        raise InputError(values, "a values table goes with a FASTA file of sequences only")
    header, rows = iter_rows(source)
    _require(source, header, values_columns if fasta is not None else table_columns)
    return fasta, source, header, rows


def read_single_table(path: PathLike, values: PathLike | None = None) -> SequenceTable:
    """A ``single`` table (TSV/CSV), or a FASTA ``path`` with a ``values`` table."""
    fasta, source, header, rows = _open_table(path, values, ["id", "expression"],
                                              "id, expression[, group]", list(SINGLE_COLUMNS))
    has_group, has_id = "group" in header, "id" in header
    ids = _IdChecker(source)
    out_ids, seqs, expression, groups, lines = [], [], [], [], []
    for line, row in rows:
        ident = ids.add(row["id"], line) if has_id else f"row{line}"
        if fasta is not None:
            seqs.append(_lookup(fasta, ident, path, source, line, "id"))
        else:
            seqs.append(check_sequence(row["sequence"], source, line, "sequence"))
        expression.append(parse_value(row["expression"], source, line, "expression"))
        if has_group:
            groups.append(_group(row, source, line))
        out_ids.append(ident)
        lines.append(line)
    if not out_ids:
        raise InputError(source, "no rows (the table has a header only)")
    if fasta is not None:
        _log_unused(fasta, set(out_ids), path)
    return SequenceTable(str(source), out_ids, seqs, np.asarray(expression, dtype=np.float64),
                         groups if has_group else None, lines)


def read_pairs_table(path: PathLike, values: PathLike | None = None) -> PairTable:
    """A ``pairs`` table (TSV/CSV), or a FASTA ``path`` with a ``values`` table."""
    fasta, source, header, rows = _open_table(path, values, ["id_a", "id_b", "target"],
                                              "id_a, id_b, target[, group, id]",
                                              list(PAIR_COLUMNS))
    has_group, has_id = "group" in header, "id" in header
    ids = _IdChecker(source)
    out_ids, seq_a, seq_b, target, groups, lines = [], [], [], [], [], []
    used: set[str] = set()
    for line, row in rows:
        ident = ids.add(row["id"], line) if has_id else f"row{line}"
        if fasta is not None:
            seq_a.append(_lookup(fasta, row["id_a"], path, source, line, "id_a"))
            seq_b.append(_lookup(fasta, row["id_b"], path, source, line, "id_b"))
            used.update((row["id_a"].strip(), row["id_b"].strip()))
        else:
            seq_a.append(check_sequence(row["sequence_a"], source, line, "sequence_a"))
            seq_b.append(check_sequence(row["sequence_b"], source, line, "sequence_b"))
        target.append(parse_value(row["target"], source, line, "target"))
        if has_group:
            groups.append(_group(row, source, line))
        out_ids.append(ident)
        lines.append(line)
    if not out_ids:
        raise InputError(source, "no rows (the table has a header only)")
    if fasta is not None:
        _log_unused(fasta, used, path)
    return PairTable(str(source), out_ids, seq_a, seq_b, np.asarray(target, dtype=np.float64),
                     groups if has_group else None, lines)


def read_table(path: PathLike, task: str, values: PathLike | None = None
               ) -> SequenceTable | PairTable:
    """A ``single`` or ``pairs`` table (see the module docstring)."""
    if task == "single":
        return read_single_table(path, values)
    if task == "pairs":
        return read_pairs_table(path, values)
    raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")


def read_sequences_any(path: PathLike) -> tuple[list[str], list[str], list[int]]:
    """``(ids, sequences, lines)`` of a FASTA file, or of a table with a ``sequence`` column
    (ids from an ``id`` column, else ``row<line>``); sequences are checked as in a table."""
    if is_fasta(path):
        records = read_fasta_records(path)
        ids = _IdChecker(path, "FASTA record name")
        for r in records:
            ids.add(r.name, r.line)
        return ([r.name for r in records],
                [check_sequence(r.sequence, path, r.line, "sequence") for r in records],
                [r.line for r in records])
    header, rows = iter_rows(path)
    _require(path, header, ["sequence"])
    checker = _IdChecker(path)
    out_ids, seqs, lines = [], [], []
    for line, row in rows:
        out_ids.append(checker.add(row["id"], line) if "id" in header else f"row{line}")
        seqs.append(check_sequence(row["sequence"], path, line, "sequence"))
        lines.append(line)
    if not out_ids:
        raise InputError(path, "no rows (the table has a header only)")
    return out_ids, seqs, lines
