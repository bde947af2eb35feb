"""Load and validate the species and sample sheets before any job runs.

Each sheet row is checked against its JSON schema (``workflow/schemas/*.schema.yaml``), then the
checks a schema cannot express: unique names, known species, read 2 present for paired-end assays,
files present. Every problem raises :class:`SheetError` naming the sheet, its row (as a 1-based line
number of the TSV file, the header being line 1), the sample or species, and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from plantt.io import InputError, PathLike

PAIRED_ASSAYS = {"proseq"}
ASSAYS = ("rnaseq3p", "proseq")


class SheetError(InputError):
    """A problem in the species or sample sheet."""


def _read_sheet(path: PathLike, kind: str) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise SheetError(path, f"{kind} sheet not found")
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=None)
    except pd.errors.EmptyDataError:
        raise SheetError(path, f"{kind} sheet is empty, expected a header line") from None
    except pd.errors.ParserError as err:
        raise SheetError(path, f"cannot parse the {kind} sheet as TSV: {err}") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df.apply(lambda col: col.str.strip())


def _load_schema(schema: PathLike) -> dict:
    with open(schema) as handle:
        return yaml.safe_load(handle)


def _row_record(row: pd.Series, integer_columns: Iterable[str]) -> dict:
    record: dict = {}
    for key, value in row.items():
        if value == "":
            continue  # empty cell = absent optional column
        if key in integer_columns:
            try:
                record[key] = int(value)
            except ValueError:
                record[key] = value  # the schema reports the type error
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


def _check_files(df: pd.DataFrame, columns: Iterable[str], path: PathLike, key: str,
                 base: Path, generated: set[Path]) -> None:
    for i, row in df.iterrows():
        for column in columns:
            value = row.get(column, "")
            if not value:
                continue
            file = Path(value) if Path(value).is_absolute() else base / value
            if file.resolve() in generated:
                continue
            if not file.exists():
                raise SheetError(path, f"column {column!r}: file {value!r} does not exist",
                                 line=int(i) + 2, record=row[key])


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
    df = _read_sheet(path, "species")
    _validate_rows(df, _load_schema(schema), path, "species")
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
    df = _read_sheet(path, "sample")
    if "fq2" not in df.columns:
        df["fq2"] = ""
    _validate_rows(df, _load_schema(schema), path, "sample", integer_columns=["replicate"])
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
    gen = {Path(p).resolve() for p in generated}
    _check_files(df, ["fq1", "fq2"], path, "sample", Path(base), gen)
    return df.set_index("sample", drop=False)
