"""Load and validate the species and sample sheets before any job runs.

Each sheet row is checked against its JSON schema (``workflow/schemas/*.schema.yaml``), then the
checks a schema cannot express: unique names, known species, read 2 present for paired-end assays,
files present, no FASTQ file named twice (compared as resolved paths, so ``a.fq`` and ``./a.fq``
or a symlink to it are the same file). Every problem raises :class:`SheetError` naming the sheet, its
row (as a 1-based line number of the TSV file, the header being line 1), the sample or species, and
what was expected.

Sheets are edited by hand, so two readings are lenient and documented: blank lines are ignored, and
a row with fewer cells than the header has its missing trailing cells empty (a single-end row may
end after ``fq1``). A row with more cells than the header, a repeated column name, binary data and
an empty sheet are errors.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from plantt.io import InputError, PathLike, iter_lines, read_tsv

PAIRED_ASSAYS = {"proseq"}
ASSAYS = ("rnaseq3p", "proseq")


class SheetError(InputError):
    """A problem in the species or sample sheet."""


def _read_sheet(path: PathLike, kind: str, required: Iterable[str] = ()) -> pd.DataFrame:
    """The sheet as strings, blank rows dropped; row index + 2 is the line in the file."""
    path = Path(path)
    if not path.exists():
        raise SheetError(path, f"{kind} sheet not found")
    try:
        lines = iter_lines(path)
        try:
            header = next(lines, (1, ""))[1]
        finally:
            lines.close()  # only the header is needed here; close the file now
        names = [name.strip() for name in header.rstrip("\r\n").split("\t")]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise SheetError(path, f"column(s) {', '.join(map(repr, repeated))} appear twice in "
                                   f"the {kind} sheet's header", line=1)
        # Blank lines are kept (then dropped) so that the line numbers of the messages are right.
        df = read_tsv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except SheetError:
        raise
    except InputError as err:
        # Same message as plantt.io gives, as the SheetError the workflow reports.
        raise SheetError(path, f"{kind} sheet: {err.problem}", line=err.line,
                         record=err.record) from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SheetError(path, f"missing column(s) {', '.join(missing)}; found "
                               f"{', '.join(df.columns)}", line=1)
    df = df.fillna("").apply(lambda col: col.str.strip())
    df = df[(df != "").any(axis=1)]
    if df.empty:
        raise SheetError(path, f"the {kind} sheet has a header but no rows")
    return df


@functools.lru_cache(maxsize=8)
def _parse_schema(path: str, mtime_ns: int) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle)


def _load_schema(schema: PathLike) -> dict:
    """The schema as a dict (shared between calls: read it, do not change it).

    Cached by path and modification time: parsing the YAML took a third of a sheet check.
    """
    path = Path(schema).resolve()
    return _parse_schema(str(path), path.stat().st_mtime_ns)


def _row_record(row: pd.Series, integer_columns: Iterable[str]) -> dict:
    record: dict = {}
    for key, value in row.items():
        if value == "":
            continue  # empty cell = absent optional column
        if key in integer_columns and re.fullmatch(r"[0-9]+", value):
            # ASCII digits only: int() also takes '١', '1_0' or '+1', which would pass here
            record[key] = int(value)
        else:
            record[key] = value
    return record


def _validate_rows(df: pd.DataFrame, schema: dict, path: PathLike, key: str,
                   integer_columns: Iterable[str] = ()) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    for i, row in df.iterrows():
        record = _row_record(row, integer_columns)
        errors = sorted(validator.iter_errors(record), key=lambda e: list(e.path))
        if errors:
            err = errors[0]
            column = err.path[0] if err.path else None
            if err.validator == "required":
                problem = err.message.replace("is a required property", "is required but empty")
            elif err.validator == "pattern" and column in ("sample", "species"):
                problem = (f"{column} {record[column]!r} has characters unsafe in file paths; "
                           "use letters, digits, '_', '.' and '-' only")
            elif err.validator == "enum":
                problem = f"column {column!r}: {record[column]!r} is not one of {err.validator_value}"
            elif err.validator == "pattern":
                desc = schema["properties"][column].get("description", err.message)
                problem = f"column {column!r}: {record[column]!r} is not valid ({desc})"
            else:
                problem = f"column {column!r}: {err.message}" if column else err.message
            raise SheetError(path, problem, line=int(i) + 2, record=row.get(key) or None)


def _sheet_file(value: str, base: Path, path: PathLike, line: int, record: str,
                column: str) -> Path:
    """The resolved path a sheet cell names (relative to ``base``)."""
    try:
        return (Path(value) if Path(value).is_absolute() else base / value).resolve()
    except (OSError, ValueError) as err:  # e.g. an embedded NUL byte, a symlink loop
        raise SheetError(path, f"column {column!r}: {value!r} is not a usable file path ({err})",
                         line=line, record=record) from None


def _check_files(df: pd.DataFrame, columns: Iterable[str], path: PathLike, key: str,
                 base: Path, generated: set[Path]) -> None:
    for i, row in df.iterrows():
        for column in columns:
            value = row.get(column, "")
            if not value:
                continue
            file = _sheet_file(value, base, path, int(i) + 2, row[key], column)
            if file in generated:
                continue
            if not file.exists():
                raise SheetError(path, f"column {column!r}: file {value!r} does not exist",
                                 line=int(i) + 2, record=row[key])


def _check_distinct_files(df: pd.DataFrame, columns: Iterable[str], path: PathLike, key: str,
                          base: Path) -> None:
    """No file named twice, by two samples or as both mates of one: a copy-paste slip that would
    otherwise count the same reads twice (or pair a file with itself) without any error."""
    seen: dict[Path, tuple[str, str, int]] = {}
    for i, row in df.iterrows():
        line = int(i) + 2
        for column in columns:
            value = row.get(column, "")
            if not value:
                continue
            file = _sheet_file(value, base, path, line, row[key], column)
            if file in seen:
                other, other_column, other_line = seen[file]
                if other == row[key]:
                    problem = (f"columns {other_column!r} and {column!r} name the same file "
                               f"{value!r} ({file}); read 1 and read 2 must be different files")
                else:
                    problem = (f"column {column!r}: file {value!r} ({file}) is also column "
                               f"{other_column!r} of sample {other!r} (line {other_line}); each "
                               "FASTQ file belongs to one sample")
                raise SheetError(path, problem, line=line, record=row[key])
            seen[file] = (row[key], column, line)


def _check_unique(df: pd.DataFrame, key: str, path: PathLike, kind: str) -> None:
    seen: dict[str, int] = {}
    for i, value in df[key].items():
        if value in seen:
            raise SheetError(path, f"duplicate {kind} {value!r} (first on line {seen[value]})",
                             line=int(i) + 2, record=value)
        seen[value] = int(i) + 2


def load_species_sheet(path: PathLike, schema: PathLike, base: PathLike = ".",
                       generated: Iterable[PathLike] = ()) -> pd.DataFrame:
    """Read and validate the species sheet; returns it indexed by species id.

    ``generated`` lists files that an earlier rule will create (the demo), exempt from the existence
    check. Relative paths are taken relative to ``base`` (the workflow's working directory).
    """
    schema_dict = _load_schema(schema)
    df = _read_sheet(path, "species", schema_dict.get("required", []))
    _validate_rows(df, schema_dict, path, "species")
    _check_unique(df, "species", path, "species")
    _check_unique(df, "code", path, "one-letter code")
    if "proteome" not in df.columns:
        df["proteome"] = ""
    df["proteome"] = df["proteome"].where(df["proteome"] != "", df["species"])
    gen = {Path(p).resolve() for p in generated}
    _check_files(df, ["genome", "annotation"], path, "species", Path(base), gen)
    return df.set_index("species", drop=False)


def load_sample_sheet(path: PathLike, schema: PathLike, species: Iterable[str], base: PathLike = ".",
                      generated: Iterable[PathLike] = ()) -> pd.DataFrame:
    """Read and validate the sample sheet against the known ``species``; indexed by sample."""
    schema_dict = _load_schema(schema)
    df = _read_sheet(path, "sample", schema_dict.get("required", []))
    if "fq2" not in df.columns:
        df["fq2"] = ""
    _validate_rows(df, schema_dict, path, "sample", integer_columns=["replicate"])
    _check_unique(df, "sample", path, "sample")
    known = list(species)
    for i, row in df.iterrows():
        line = int(i) + 2
        if row["species"] not in known:
            raise SheetError(path, f"unknown species {row['species']!r}; the species sheet has "
                                   f"{', '.join(known)}", line=line, record=row["sample"])
        if row["assay"] in PAIRED_ASSAYS and not row["fq2"]:
            raise SheetError(path, f"assay {row['assay']!r} is paired-end: column 'fq2' (read 2) "
                                   "is required", line=line, record=row["sample"])
        if row["assay"] not in PAIRED_ASSAYS and row["fq2"]:
            raise SheetError(path, f"assay {row['assay']!r} is single-end: leave 'fq2' empty",
                             line=line, record=row["sample"])
    df["replicate"] = df["replicate"].astype(int)
    dup = df.duplicated(["species", "assay", "replicate"], keep="first")
    if dup.any():
        i = int(dup.idxmax())
        row = df.loc[i]
        raise SheetError(path, f"replicate {row['replicate']} of {row['species']}/{row['assay']} "
                               "appears twice", line=i + 2, record=row["sample"])
    _check_distinct_files(df, ["fq1", "fq2"], path, "sample", Path(base))
    gen = {Path(p).resolve() for p in generated}
    _check_files(df, ["fq1", "fq2"], path, "sample", Path(base), gen)
    return df.set_index("sample", drop=False)
