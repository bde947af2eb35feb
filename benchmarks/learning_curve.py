"""The learning curve: test Spearman of each recipe and baseline against the number of training
orthogroups, with the ceiling beside them.

The question users ask first is how much data they need, and which recipe suits their size. On a
preprocessed workdir (``snakemake --cores 2 preprocess_all``; a simulated one also gives the
ceiling, the true grammar's own score), for every assay and fold the training orthogroups are put
in one seeded random order and the first N of them kept, for each N of ``--sizes`` (so a larger
set holds every smaller one); the validation and test pairs of the fold stay as they are. Each
model is fitted on those training pairs, choosing what it chooses on the validation pairs, and
scored on the test pairs::

    python benchmarks/learning_curve.py --workdir WORKDIR --assays rnaseq3p proseq \\
        --folds 0 1 2 --sizes 100 200 400 800 1600 --models small_data kmer pwm \\
        --out lc.tsv --figure lc.png

Models: ``small_data`` and ``paper`` are PlanTT trained with that recipe of ``--config``
(:func:`plantt.recipes.train_settings`, exactly as the workflow's training rules merge them; the
``paper`` recipe's 50 epochs can be capped with ``--paper-epochs`` on a CPU), ``kmer`` and
``pwm`` the two ridge baselines with the config's ``train.kmer`` and ``train.pwm`` grids. A size
larger than the fold's training orthogroups is skipped. The table has one row per assay, fold,
size and model (``orthogroups``, ``pairs``, ``val_spearman``, ``test_spearman``, ``seconds``;
model ``grammar`` is the ceiling); the figure shows the mean ± SD over folds per assay. The logic
is the package's (:mod:`plantt.learning_curve`), which the workflow's rule ``learning_curve`` also
runs when the config asks (``learning_curve.enabled``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models_vs_kmer import load_workdir  # noqa: E402

from plantt.dataset import read_splits  # noqa: E402
from plantt.io import write_tsv  # noqa: E402
from plantt.learning_curve import CURVE_MODELS, learning_curve, plot_learning_curve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--assays", nargs="+", default=["rnaseq3p"])
    parser.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--sizes", nargs="+", type=int, default=[125, 250, 500, 1000, 2000])
    parser.add_argument("--models", nargs="+", choices=CURVE_MODELS, default=["small_data", "kmer"])
    parser.add_argument("--kmer", default="{}",
                        help="JSON: changes to the config's train.kmer grid (e.g. a smaller one "
                             "where pairs are many: its dual solve grows with their cube)")
    parser.add_argument("--recipe-train", default="{}",
                        help="JSON: changes to the small_data recipe's settings")
    parser.add_argument("--paper-epochs", type=int, help="cap the paper recipe's epochs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the orthogroups' order")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="the table (TSV)")
    parser.add_argument("--figure", type=Path, help="the figure (PNG)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    train_config = (yaml.safe_load(args.config.read_text()) or {}).get("train") or {}
    windows, _, truth = load_workdir(args.workdir)
    done: list[pd.DataFrame] = []

    def write(table: pd.DataFrame) -> None:
        whole = pd.concat([*done, table], ignore_index=True)
        print(json.dumps(table.iloc[-1].to_dict(), default=float), flush=True)
        write_tsv(whole, args.out, float_format="%.4f")

    for assay in args.assays:
        splits = read_splits(args.workdir / f"results/splits/{assay}.tsv")
        done.append(learning_curve(windows, splits, assay, args.folds, args.sizes, args.models,
                                   train_config, truth, args.seed, args.threads,
                                   json.loads(args.kmer), json.loads(args.recipe_train),
                                   args.paper_epochs, on_row=write))
    table = pd.concat(done, ignore_index=True)
    write_tsv(table, args.out, float_format="%.4f")
    if args.figure:
        plot_learning_curve(table, args.figure)


if __name__ == "__main__":
    main()
