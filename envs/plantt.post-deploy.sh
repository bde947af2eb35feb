#!/usr/bin/env bash
# Run by Snakemake once, after it creates this --use-conda environment. When the workflow is a
# module fetched from a git host, workflow/rules/common.smk sets PLANTT_PACKAGE to pip's name for
# the plantt package of that repository and revision, and the rules' scripts need it installed here
# (its dependencies are in the environment file). Run from a clone, the jobs import the clone's
# src/ and nothing is installed. Every envs/*.post-deploy.sh is this same script.
set -euo pipefail
if [ -n "${PLANTT_PACKAGE:-}" ]; then
    python -m pip install --no-deps "$PLANTT_PACKAGE"
fi
