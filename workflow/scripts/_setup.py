"""Imported first by every script rule (Snakemake puts this folder on sys.path).

Makes the repository's ``plantt`` package importable even where it was not pip-installed (for example
inside a ``--use-conda`` environment that only holds the dependencies), and runs a ``plantt``
subcommand with its log going to the rule's log file. Also keeps freed memory in the process
(plantt.allocator): training on the CPU otherwise spends half its time page-faulting.
"""

import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir():  # first: this checkout's package, not another clone's that is installed
    sys.path[:] = [str(_SRC)] + [p for p in sys.path if p != str(_SRC)]

from plantt.allocator import retain_freed_memory  # noqa: E402

retain_freed_memory()


def run_plantt(argv: list, log_path: str) -> None:
    """Run ``plantt ARGV...`` in this process, logging to ``log_path``; fail the job on error."""
    from plantt.cli import main

    with open(log_path, "w") as log:
        sys.stderr = log
        code = main([str(a) for a in argv])
        sys.stderr = sys.__stderr__
    if code:
        raise SystemExit(f"plantt {argv[0]} failed with exit code {code}: see {log_path}")
