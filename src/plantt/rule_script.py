"""What every script rule of the workflow (``workflow/scripts/*.py``) does first.

A script rule runs in a fresh Python process with the ``plantt`` package of its environment: the
clone's ``src/`` when the workflow runs from a clone (``workflow/rules/common.smk`` puts it on the
jobs' ``PYTHONPATH``), the installed package when the workflow is a module fetched from a git
host (README.md, "Using the workflow as a module"). Nothing here depends on where the script file
itself lives, because Snakemake runs a remote module's scripts from its source cache, where no
sibling file is importable.
"""

from __future__ import annotations

import os
import posixpath
import sys
from collections.abc import Sequence
from pathlib import Path

from plantt.allocator import retain_freed_memory

#: Environment variable naming pip's source of the package for envs/*.post-deploy.sh.
PACKAGE_SOURCE_VARIABLE = "PLANTT_PACKAGE"


def export_package_path(src: Path) -> None:
    """Put ``src`` (a clone's package folder) first on the ``PYTHONPATH`` that the workflow's jobs
    inherit, so that their scripts import the package of the same checkout as the rules."""
    src_text = Path(src).as_posix()
    rest = [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if path and path != src_text]
    os.environ["PYTHONPATH"] = os.pathsep.join([src_text, *rest])


def package_source(basedir: object) -> str | None:
    """pip's name for the package of the git repository and revision that Snakemake fetched the
    workflow from, given the folder of ``workflow/rules`` as a Snakemake source file (a module
    given by ``github(...)`` or ``gitlab(...)``: attributes ``host``, ``repo``, ``ref``; by
    ``gitfile(...)``: ``repo_path``, ``ref``); None for anything else (a local folder)."""
    ref = getattr(basedir, "ref", None)
    if not ref:
        return None
    # the package's pyproject.toml is two folders above workflow/rules in the repository
    folder = str(getattr(basedir, "path", "") or "").strip("/")
    root = posixpath.dirname(posixpath.dirname(folder))
    subdirectory = f"#subdirectory={root}" if root else ""
    if getattr(basedir, "repo_path", None):
        return f"git+file://{Path(basedir.repo_path).resolve().as_posix()}@{ref}{subdirectory}"
    if getattr(basedir, "repo", None) and getattr(basedir, "host", None):
        return f"git+https://{basedir.host}/{basedir.repo}@{ref}{subdirectory}"
    return None


def export_package_source(basedir: object) -> None:
    """Tell envs/*.post-deploy.sh where pip gets the package (:func:`package_source`), unless the
    user has set it or the workflow was not fetched from git."""
    spec = package_source(basedir)
    if spec:
        os.environ.setdefault(PACKAGE_SOURCE_VARIABLE, spec)


def start_rule_script() -> None:
    """Keep freed memory in the process (:mod:`plantt.allocator`): training on the CPU otherwise
    spends half its time page-faulting its activations back in."""
    retain_freed_memory()


def run_plantt(argv: Sequence[object], log_path: str) -> None:
    """Run ``plantt ARGV...`` in this process, its messages going to ``log_path``; a non-zero exit
    fails the job with the log named."""
    from plantt.cli import main

    start_rule_script()
    with open(log_path, "w") as log:
        sys.stderr = log
        try:
            code = main([str(a) for a in argv])
        finally:
            sys.stderr = sys.__stderr__
    if code:
        raise SystemExit(f"plantt {argv[0]} failed with exit code {code}: see {log_path}")
