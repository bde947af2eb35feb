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
    """The embedded demo up to training (target ``preprocess_all``), run once per test session with
    the default config: real cutadapt, STAR, samtools and every stage before training.

    Set PLANTT_DEMO_WORKDIR to reuse (and bring up to date) an existing run directory instead, e.g.
    the repository itself after ``snakemake --cores 2``: handy while developing.
    """
    reuse = os.environ.get("PLANTT_DEMO_WORKDIR")
    if reuse:
        workdir = Path(reuse).resolve()
    else:
        workdir = tmp_path_factory.mktemp("demo")
        shutil.copytree(REPO / "config", workdir / "config")
    run_snakemake(workdir, "preprocess_all")
    return workdir


# What the suite trains on the demo, to keep CI short: the rnaseq3p assay only, PlanTT and the
# shuffled-label control (every fold), two epochs of the demo's small preset. The full demo (both
# assays, every model, the demo's epochs) runs with `snakemake --cores 2`.
DEMO_TRAIN_ASSAY = "rnaseq3p"
DEMO_TRAIN_CONFIG = ('train={"models": ["plantt", "plantt_shuffled"], '
                     '"demo_settings": {"max_epochs": 2}}')


def demo_trained_targets() -> list[str]:
    base = f"results/interpret/{DEMO_TRAIN_ASSAY}"
    return [f"results/metrics/{DEMO_TRAIN_ASSAY}/metrics_summary.tsv",
            f"{base}/attribution_profile.tsv", f"{base}/ism/ism.tsv"]


@pytest.fixture(scope="session")
def demo_trained(demo_workdir: Path) -> Path:
    """The demo workdir after training and evaluating DEMO_TRAIN_ASSAY's models on every fold
    through the workflow's own rules (train_fold, evaluate), and interpreting them."""
    # two trainings side by side, one thread each: faster than one at a time on 2 cores
    # (targets first: --set-threads and --config take every value up to the next option)
    run_snakemake(demo_workdir, *demo_trained_targets(), "--set-threads", "train_fold=1",
                  "--config", DEMO_TRAIN_CONFIG, timeout=3600)
    return demo_workdir


def random_plantt_model(settings, seq_len: int, seed: int = 0):
    """A PlanTT model with random weights and random batch-norm scales, shifts and running statistics
    (the residual branches would otherwise start as zeros), in eval mode."""
    import torch
    from torch import nn

    from plantt.models import PlanTTCNNTower, TwoTower

    torch.manual_seed(seed)
    model = TwoTower(PlanTTCNNTower(settings, seq_len))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.2)
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen)
                                          * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen)
                                         + 0.5)
    return model.eval()
