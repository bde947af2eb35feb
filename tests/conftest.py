"""Shared fixtures and paths for the test suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "workflow" / "schemas"
SHARED = REPO.parent / "shared"


@pytest.fixture
def repo() -> Path:
    return REPO


def run_snakemake(workdir: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in ``workdir`` (which holds a ``config/`` folder)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--cores", "2", "--show-failed-logs", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n"
                             f"{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def demo_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded demo, run once per test session with the default config: real cutadapt, STAR,
    samtools and every later stage.

    Set PLANTT_DEMO_WORKDIR to reuse (and bring up to date) an existing run directory instead, e.g.
    the repository itself after ``snakemake --cores 2``: handy while developing.
    """
    reuse = os.environ.get("PLANTT_DEMO_WORKDIR")
    if reuse:
        workdir = Path(reuse).resolve()
    else:
        workdir = tmp_path_factory.mktemp("demo")
        shutil.copytree(REPO / "config", workdir / "config")
    run_snakemake(workdir)
    return workdir
