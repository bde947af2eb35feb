"""Small I/O helpers shared by every stage: errors that name their input, atomic writes, logging.

Every file the package writes goes through :func:`atomic_path` (or the helpers built on it): the data is
written to a temporary name beside the target and renamed only once complete, so a crash never leaves a
half-written file that Snakemake or a later stage could mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

PathLike = str | os.PathLike


class InputError(ValueError):
    """Bad user input. The message names the file, the line or record, and what was expected."""

    def __init__(self, path: PathLike | None, problem: str, line: int | None = None,
                 record: str | None = None):
        where = str(path) if path is not None else "<input>"
        if line is not None:
            where += f", line {line}"
        if record is not None:
            where += f", record {record!r}"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.record = record
        self.problem = problem


@contextlib.contextmanager
def atomic_path(target: PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates files readable by the owner only; give the result the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(target: PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Open ``target`` for writing through a temporary file; gzip when the name ends in ``.gz``."""
    target = Path(target)
    with atomic_path(target, suffix=".gz" if target.name.endswith(".gz") else ".tmp") as tmp:
        if target.name.endswith(".gz"):
            gz_mode = mode if "b" in mode else mode.replace("w", "wt")
            # compresslevel 1: outputs are intermediate files, speed matters more than size.
            with gzip.open(tmp, gz_mode, compresslevel=1) as handle:
                yield handle
        else:
            with open(tmp, mode) as handle:
                yield handle


def write_tsv(df: pd.DataFrame, target: PathLike, **kwargs: Any) -> None:
    """Write a table as TSV (one header line, no index) atomically."""
    kwargs.setdefault("index", False)
    kwargs.setdefault("sep", "\t")
    with atomic_open(target) as handle:
        df.to_csv(handle, **kwargs)


def read_tsv(path: PathLike, required: list[str] | None = None, **kwargs: Any) -> pd.DataFrame:
    """Read a TSV and check that the ``required`` columns are present."""
    kwargs.setdefault("sep", "\t")
    try:
        df = pd.read_csv(path, **kwargs)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except pd.errors.EmptyDataError:
        raise InputError(path, "file is empty, expected a header line") from None
    if required:
        missing = [c for c in required if c not in df.columns]
        if missing:
            raise InputError(path, f"missing column(s) {', '.join(missing)}; "
                                   f"found {', '.join(map(str, df.columns))}", line=1)
    return df


def open_text(path: PathLike) -> IO[str]:
    """Open a text file for reading, transparently gunzipping ``.gz`` files."""
    path = Path(path)
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt")
    return open(path)


def setup_logging(log_file: PathLike | None = None, level: int = logging.INFO) -> logging.Logger:
    """Log to stderr, or to ``log_file`` (as Snakemake script rules do with ``snakemake.log[0]``)."""
    logger = logging.getLogger("plantt")
    logger.setLevel(level)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler: logging.Handler
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, mode="w")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    return logger


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"plantt.{name}")
