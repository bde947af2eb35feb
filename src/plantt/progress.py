"""Progress of the long loops (genes of ``ism``, ``edit`` and ``attribute``, budget steps, batches):
a tqdm bar where stderr is a terminal, otherwise (a Snakemake log, a pipe, a cluster job) one log
line per step, so that a log shows where a long job is. ``plantt -q`` turns both off.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def progress(items: Iterable[T], total: int | None = None, desc: str = "",
             unit: str = "step", log: logging.Logger | None = None, every: int = 1
             ) -> Iterator[T]:
    """Yield ``items``, showing progress as the module docstring says (log lines: after every
    ``every``-th step and after the last one of a known total)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if _quiet:
        yield from items
        return
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(items, total=total, desc=desc, unit=unit, leave=False, file=sys.stderr)
        return
    logger = log or logging.getLogger("plantt.progress")
    started = time.perf_counter()
    done = 0
    for item in items:
        yield item
        done += 1
        if done % every and done != total:
            continue
        elapsed = time.perf_counter() - started
        of = f"/{total}" if total else ""
        left = ""
        if total and done < total:
            left = f", about {elapsed / done * (total - done):.0f} s left"
        logger.info("%s: %d%s %s(s) done in %.0f s%s", desc or "progress", done, of, unit,
                    elapsed, left)
