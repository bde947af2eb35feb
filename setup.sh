#!/usr/bin/env bash
# One-time set-up on Debian/Ubuntu: STAR and samtools from apt, then PyTorch (CPU) and the plantt
# package with the workflow's Python tools (Snakemake, cutadapt, deepTools 3.5, MultiQC) and
# Snakemake's SLURM executor (profiles/slurm) and the motif tools (TF-MoDISco, TOMTOM, logos) from
# PyPI.
# Re-running it is harmless. Set TORCH_SPEC to choose another PyTorch build (e.g. a CUDA one).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v STAR >/dev/null || ! command -v samtools >/dev/null; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # rna-star is Debian's STAR (2.7.10b on Debian 12, the version the PlanTT paper used).
    $sudo apt-get install -y -qq --no-install-recommends rna-star samtools
fi

python3 -m pip install --quiet --upgrade pip
# Install PyTorch first so that the package's own requirement (torch>=2.1) is already met and pip
# does not pull a different (multi-GB CUDA) build.
if ! python3 -c "import torch" 2>/dev/null; then
    python3 -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
fi
python3 -m pip install --quiet -e ".[workflow,cluster,motifs,dev]"
# TF-MoDISco and TOMTOM are numba code, compiled on first use and cached beside their sources:
# compile them now (about 2 minutes on 2 cores, seconds when already cached) instead of in the
# first workflow run's motif jobs, which would each compile them again side by side.
python3 -m plantt.warmup
echo "plantt-workflow is set up: run 'snakemake --cores 2' for the demo, 'python -m pytest' for the tests."
