#!/usr/bin/env bash
# One-time set-up on Debian/Ubuntu:
#   bash setup.sh          the runtime: STAR and samtools from apt, then PyTorch (CPU) and the
#                          plantt package with the workflow's Python tools (Snakemake, cutadapt,
#                          deepTools 3.5, MultiQC), Snakemake's SLURM executor (profiles/slurm) and
#                          the motif tools (TF-MoDISco, TOMTOM) from PyPI
#   bash setup.sh --dev    the same and the test tools (pytest, hypothesis, ruff, snakefmt,
#                          tangermeme)
# Where it installs: into the virtual environment or conda environment that is active, if one is;
# otherwise into a project environment, .venv, that it creates (a stock Debian 12 or Ubuntu 24.04
# Python is "externally managed": pip refuses to install into it). Either way `. .venv/bin/activate`
# afterwards puts the tools on PATH.
# Re-running it is harmless. Set TORCH_SPEC to choose another PyTorch build (e.g. a CUDA one).
set -euo pipefail
cd "$(dirname "$0")"

extras="workflow,cluster,motifs"
for arg in "$@"; do
    case "$arg" in
        --dev) extras="$extras,dev" ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg' (expected --dev or nothing)" >&2; exit 2 ;;
    esac
done

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "$@"
}

if ! command -v STAR >/dev/null || ! command -v samtools >/dev/null; then
    # rna-star is Debian's STAR (2.7.10b on Debian 12, the version the PlanTT paper used).
    apt_install rna-star samtools
fi

# The environment to install into: the active one, else the project's own .venv.
project_env="$PWD/.venv"
if [ -n "${VIRTUAL_ENV:-}" ] && [ "$(cd "$VIRTUAL_ENV" && pwd -P)" != "$(pwd -P)/.venv" ]; then
    active="$VIRTUAL_ENV"
elif [ -n "${CONDA_PREFIX:-}" ] && [ -z "${VIRTUAL_ENV:-}" ]; then
    active="$CONDA_PREFIX"
else
    active=""
fi

if [ -n "$active" ]; then
    python="$active/bin/python"
    echo "setup.sh: installing into the active environment $active"
    if [ -f "$project_env/pyvenv.cfg" ]; then
        echo "setup.sh: note: .venv is a separate environment; '. .venv/bin/activate' would" \
            "switch to it, not to $active" >&2
    else
        # `. .venv/bin/activate` then works as for the project environment: it puts the active
        # environment's tools first on PATH.
        mkdir -p "$project_env/bin"
        printf '# written by setup.sh: the tools of %s first on PATH\nexport PATH="%s/bin:$PATH"\nhash -r 2>/dev/null || true\n' \
            "$active" "$active" > "$project_env/bin/activate.tmp"
        mv "$project_env/bin/activate.tmp" "$project_env/bin/activate"
    fi
else
    if [ ! -f "$project_env/pyvenv.cfg" ]; then
        command -v python3 >/dev/null || apt_install python3
        rm -rf "$project_env"
        if ! python3 -m venv "$project_env" 2>/dev/null; then
            # Debian and Ubuntu ship venv's pip bootstrap (ensurepip) separately.
            rm -rf "$project_env"
            minor=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
            apt_install python3-venv "python$minor-venv"
            python3 -m venv "$project_env"
        fi
    fi
    python="$project_env/bin/python"
    echo "setup.sh: installing into the project environment .venv ($($python --version))"
fi

"$python" -m pip install --quiet --upgrade pip
# Install PyTorch first so that the package's own requirement (torch>=2.1) is already met and pip
# does not pull a different (multi-GB CUDA) build.
if ! "$python" -c "import torch" 2>/dev/null; then
    "$python" -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
fi
"$python" -m pip install --quiet -e ".[$extras]"
# TF-MoDISco and TOMTOM are numba code, compiled on first use and cached beside their sources:
# compile them now (about 2 minutes on 2 cores, seconds when already cached) instead of in the
# first workflow run's motif jobs, which would each compile them again side by side.
"$python" -m plantt.warmup
echo "plantt-workflow is set up. In this shell and every new one: '. .venv/bin/activate'; then"
echo "'snakemake --cores 2' runs the demo$([ "$extras" != "${extras%,dev}" ] && echo " and 'python -m pytest' the tests")."
