"""The k-mer ridge baseline's grid on the folds of a preprocessed workdir: what it chooses, its
validation and test Spearman, and how long a fit takes.

    python benchmarks/kmer_grid.py --workdir /path/to/workdir --folds 0 1 2 3 4
    python benchmarks/kmer_grid.py --workdir . --ks 6 7 8 --block-lengths 750 --alphas 10 100 1000

Per assay and fold it fits :func:`plantt.kmer.fit_kmer_pairs` on the fold's training pairs with
the grid given (default: :class:`plantt.kmer.KmerSettings`' defaults), k, block length and alpha
chosen on the validation pairs, and prints the choice, the chosen model's validation and test
Spearman and the fit's wall time (on the threads BLAS is allowed: ``--threads``, 1 by default, as
the workflow's ``train_kmer`` job). ``--tables DIR`` writes each fit's selection table. Nothing is
written to the workdir. Choose settings on the validation column only: the test column is there to
report, not to choose.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from plantt.dataset import EncodedWindows, pair_arrays, read_splits
from plantt.kmer import KmerSettings, fit_kmer_pairs
from plantt.metrics import spearman
from plantt.train import PairSet


def _pairs(arrays) -> PairSet:
    return PairSet(arrays.idx_a, arrays.idx_b, arrays.target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("."))
    parser.add_argument("--assays", nargs="+", default=["rnaseq3p", "proseq"])
    parser.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--ks", nargs="+", type=int)
    parser.add_argument("--block-lengths", nargs="+", type=int)
    parser.add_argument("--alphas", nargs="+", type=float)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tables", type=Path, help="write each fit's selection table here")
    parser.add_argument("--verbose", action="store_true", help="log every grid point")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    values = {key: value for key, value in (("ks", args.ks), ("block_lengths", args.block_lengths),
                                            ("alphas", args.alphas)) if value}
    settings = KmerSettings(**values)
    print(settings)
    windows = EncodedWindows.load(args.workdir / "results/windows/encoded.npy",
                                  args.workdir / "results/windows/encoded.genes.tsv")
    codes = np.asarray(windows.codes)
    rows = []
    for assay in args.assays:
        splits = read_splits(args.workdir / f"results/splits/{assay}.tsv")
        for fold in args.folds:
            train, val, test = (_pairs(pair_arrays(splits, windows, fold, name))
                                for name in ("train", "validation", "test"))
            started = time.perf_counter()
            with threadpool_limits(limits=args.threads):
                model, table = fit_kmer_pairs(codes, train, val, settings)
            seconds = time.perf_counter() - started
            chosen = table[table["chosen"]].iloc[0]
            rho = spearman(test.target, model.predict_pairs(codes, test.idx_a, test.idx_b))
            row = {"assay": assay, "fold": fold, "k": model.k, "block_length": model.block_length,
                   "alpha": model.alpha, "val_spearman": float(chosen["val_spearman"]),
                   "test_spearman": rho, "fit_seconds": seconds,
                   "nonzero_coef": int(model.weights.index.size)}
            rows.append(row)
            print("\t".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()),
                  flush=True)
            if args.tables:
                args.tables.mkdir(parents=True, exist_ok=True)
                table.to_csv(args.tables / f"{assay}.fold_{fold}.tsv", sep="\t", index=False)
    result = pd.DataFrame(rows)
    print(result.to_string(index=False))
    summary = result.groupby("assay")[["val_spearman", "test_spearman", "fit_seconds"]].agg(
        ["mean", "std"])
    print(summary.round(4).to_string())


if __name__ == "__main__":
    main()
