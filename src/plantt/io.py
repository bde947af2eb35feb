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
import re
import socket
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
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


# A temporary's name says which process writes it: ``.{name}.p{pid}-{host}.`` + mkstemp's 8
# random characters + the suffix. (Not a lock on the file: libraries such as HDF5 take their own
# flock on the file they write, and fail if another is held.)
_MKSTEMP_RANDOM = "[a-z0-9_]{8}"
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"
_OTHER_HOST_STALE_AFTER_S = 24 * 3600


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.p{os.getpid()}-{_HOST}."


def _temporary_name(target: Path, suffix: str) -> re.Pattern[str]:
    """Names of this package's temporaries of ``target``: tagged with their writer, or untagged
    (written by plantt versions before the tag)."""
    return re.compile(re.escape(f".{target.name}.") + r"(?:p(?P<pid>\d+)-(?P<host>[A-Za-z0-9-]+)\.)?"
                      + _MKSTEMP_RANDOM + re.escape(suffix))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _is_stale(match: re.Match[str], path: Path) -> bool:
    pid, host = match.group("pid"), match.group("host")
    if pid is None:
        return True  # untagged: written by an older version, which is not running now
    if host == _HOST:
        return not _process_alive(int(pid))
    # Another machine's (a shared cluster file system): its process cannot be asked about.
    try:
        return time.time() - path.stat().st_mtime > _OTHER_HOST_STALE_AFTER_S
    except OSError:
        return False


def remove_stale_temporaries(target: PathLike, suffix: str = ".tmp") -> list[Path]:
    """Delete the temporaries that interrupted :func:`atomic_path` writes of ``target`` left.

    A SIGKILL (or power loss) skips ``atomic_path``'s own cleanup, so its temporary stays beside
    the target. The temporary's name carries its writer's process id and host: one whose process
    on this host is gone is removed; one whose process is alive (another write of the same target
    under way) is kept; one of another host only once older than a day. Untagged temporaries
    (plantt before this naming) are removed. Returns the paths removed.
    """
    target = Path(target)
    pattern = _temporary_name(target, suffix)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:  # best effort: an unreadable directory is not a failed write
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or not _is_stale(match, Path(entry.path)):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:  # best effort: the write itself has succeeded
            pass
    for path in removed:
        get_logger("io").info("removed %s, left by an interrupted write of %s", path.name, target)
    return removed


@contextlib.contextmanager
def atomic_path(target: PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    The temporary is ``.{target.name}.p{pid}-{host}.XXXXXXXX{suffix or '.tmp'}``. After a
    successful rename the temporaries of earlier writes of the same target that were killed
    before they could clean up are removed (:func:`remove_stale_temporaries`), so a successful
    rerun leaves none behind.
    """
    target = Path(target)
    suffix = suffix or ".tmp"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates files readable by the owner only; give the result the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
        remove_stale_temporaries(target, suffix)
    finally:
        if tmp_path.exists():  # failed: not renamed
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
    # (pandas is imported where tables are read or written: `plantt --help` should not wait for it)
    kwargs.setdefault("index", False)
    kwargs.setdefault("sep", "\t")
    with atomic_open(target) as handle:
        df.to_csv(handle, **kwargs)


GZIP_MAGIC = b"\x1f\x8b"

# What reading a file can raise that is the file's fault, not the program's: every reader turns
# these into an InputError naming the file (and the line, where it is known).
_NOT_TEXT = "not a text file (binary data, or compressed other than with gzip or bgzip)"


def _truncated(err: BaseException) -> str:
    return f"gzip data truncated or corrupt ({err or type(err).__name__})"


def is_gzip(path: PathLike) -> bool:
    """Whether the file's content is gzip (or bgzip) data, whatever its name."""
    try:
        with open(path, "rb") as handle:
            return handle.read(2) == GZIP_MAGIC
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, expected a file") from None
    except PermissionError:
        raise InputError(path, "not readable (permission denied)") from None


def open_text(path: PathLike) -> IO[str]:
    """Open a text file for reading, gunzipping gzip (and bgzip) content whatever the name.

    Decoding and decompression errors surface while reading; :func:`iter_lines` and
    :func:`read_tsv` turn them into InputErrors with the line.
    """
    if is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _first_undecodable_line(path: PathLike) -> int | None:
    """The number of the first line of ``path`` that is not UTF-8 (for an error message)."""
    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rb") as handle:
            for lineno, raw in enumerate(handle, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return lineno
    except (OSError, EOFError, zlib.error):
        pass
    return None


def iter_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """The lines of a text file (plain or gzip), numbered from 1; a file that is not UTF-8 text,
    or truncated or corrupt gzip, is an InputError naming the line where reading failed."""
    lineno = 0
    try:
        with open_text(path) as handle:
            for lineno, line in enumerate(handle, 1):
                yield lineno, line
    except UnicodeDecodeError:
        # A text reader decodes ahead in blocks: find the line itself.
        raise InputError(path, _NOT_TEXT, line=_first_undecodable_line(path) or lineno + 1
                         ) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise InputError(path, _truncated(err), line=lineno + 1) from None


_PARSER_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def read_tsv(path: PathLike, required: list[str] | None = None, **kwargs: Any) -> pd.DataFrame:
    """Read a TSV (plain or gzip, by content) and check that the ``required`` columns are present.

    Every way a table can be malformed is an InputError: missing or empty file, rows with more
    fields than the header (with the line), binary or truncated data, values of the wrong type
    for a ``dtype`` asked for.
    """
    import pandas as pd

    kwargs.setdefault("sep", "\t")
    try:
        with open_text(path) as handle:
            df = pd.read_csv(handle, **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(path, "file is empty, expected a header line") from None
    except pd.errors.ParserError as err:
        found = _PARSER_FIELDS.search(str(err))
        if found:
            expected, line, saw = (int(x) for x in found.groups())
            raise InputError(path, f"{saw} fields, expected {expected} as in the header "
                                   "(tab-separated)", line=line) from None
        raise InputError(path, f"not a tab-separated table ({str(err).strip()})") from None
    except UnicodeDecodeError:
        raise InputError(path, _NOT_TEXT, line=_first_undecodable_line(path)) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise InputError(path, _truncated(err)) from None
    except (TypeError, ValueError) as err:
        # a dtype the values do not fit (e.g. text in a column read as float)
        raise InputError(path, f"unexpected value: {err}") from None
    if "index_col" not in kwargs and not isinstance(df.index, pd.RangeIndex):
        # pandas takes the first column for an index, shifting every column by one, when the first
        # data row has one field more than the header
        raise InputError(path, f"{len(df.columns) + 1} fields, expected {len(df.columns)} as in "
                               "the header (tab-separated)", line=2)
    if required:
        missing = [c for c in required if c not in df.columns]
        if missing:
            raise InputError(path, f"missing column(s) {', '.join(missing)}; "
                                   f"found {', '.join(map(str, df.columns))}", line=1)
    return df


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
