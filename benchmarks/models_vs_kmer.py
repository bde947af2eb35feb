"""PlanTT towers against the k-mer ridge baseline on the same folds of a preprocessed workdir.

The question a reviewer asks first: does the CNN beat a k-mer regression? Run the workflow up to
the folds (``snakemake --cores 2 preprocess_all``, about 6 minutes for the demo), then::

    python benchmarks/models_vs_kmer.py --workdir . --assays rnaseq3p proseq --folds 0 1 2 3 4
    python benchmarks/models_vs_kmer.py --workdir . --folds 0 --plantt small --epochs 3
    python benchmarks/models_vs_kmer.py --workdir . --folds 0 --plantt small \\
        --overrides '{"stem_channels": 32, "readout_bins": 30}' --train '{"max_lr": 5e-3}'

Per assay and fold it fits the k-mer ridge (:mod:`plantt.kmer`) at k = 6 alone and at the
configured grid (k = 6, 7, 8), and, with ``--plantt PRESET``, trains a PlanTT model of that preset
(``--overrides``: tower settings, ``--train``: training settings) on the same training and
validation pairs. It prints the test Spearman and AUROC of each and their time, then the mean and SD
over folds. Nothing is written to the workdir (models go to a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from plantt.dataset import EncodedWindows, pair_arrays, read_splits
from plantt.kmer import KmerSettings, fit_kmer_pairs
from plantt.metrics import prediction_metrics
from plantt.models import load_model
from plantt.train import PairSet, TrainSettings, predict_pairs, train_fold


def _pairs(arrays) -> PairSet:
    return PairSet(arrays.idx_a, arrays.idx_b, arrays.target)


def _scores(target: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    metrics = prediction_metrics(target, prediction, "plantt")
    return {"spearman": float(metrics["spearman"]), "auroc": float(metrics["auroc"])}


def _sd(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if values.size > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("."),
                        help="a workdir with results/windows and results/splits")
    parser.add_argument("--assays", nargs="+", default=["rnaseq3p", "proseq"])
    parser.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--plantt", metavar="PRESET", help="also train PlanTT with this preset")
    parser.add_argument("--overrides", default="{}", help="JSON: tower settings of the preset")
    parser.add_argument("--train", default="{}", help="JSON: training settings")
    parser.add_argument("--kmer-ks", nargs="+", type=int, metavar="K",
                        help="also fit the k-mer ridge on this grid of k (with --kmer-alphas)")
    parser.add_argument("--kmer-alphas", nargs="+", type=float, metavar="ALPHA",
                        default=[10.0, 100.0, 1000.0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"device: cpu ({platform.processor() or platform.machine()}), torch {torch.__version__},"
          f" {args.threads} threads")
    windows = EncodedWindows.load(args.workdir / "results/windows/encoded.npy",
                                  args.workdir / "results/windows/encoded.genes.tsv")
    codes = np.asarray(windows.codes)
    rows: list[dict[str, object]] = []
    for assay in args.assays:
        splits = read_splits(args.workdir / f"results/splits/{assay}.tsv")
        for fold in args.folds:
            train, val, test = (pair_arrays(splits, windows, fold, name)
                                for name in ("train", "validation", "test"))
            grids = [("kmer k=6", KmerSettings(ks=(6,))), ("kmer k=6,7,8", KmerSettings())]
            if args.kmer_ks:
                grids.append((f"kmer k={','.join(map(str, args.kmer_ks))} alpha="
                              f"{','.join(f'{a:g}' for a in args.kmer_alphas)}",
                              KmerSettings(ks=tuple(args.kmer_ks),
                                           alphas=tuple(args.kmer_alphas))))
            for name, settings in grids:
                start = time.perf_counter()
                model, _ = fit_kmer_pairs(codes, _pairs(train), _pairs(val), settings)
                prediction = model.predict_pairs(codes, test.idx_a, test.idx_b)
                rows.append({"assay": assay, "fold": fold, "model": name,
                             "seconds": time.perf_counter() - start,
                             **_scores(test.target, prediction)})
                print(json.dumps(rows[-1]), flush=True)
            if args.plantt:
                settings = TrainSettings.from_dict({
                    "preset": args.plantt, "model_overrides": json.loads(args.overrides),
                    "max_epochs": args.epochs, "patience": args.epochs,
                    "num_threads": args.threads, **json.loads(args.train)})
                with tempfile.TemporaryDirectory() as tmp:
                    start = time.perf_counter()
                    train_fold(codes, _pairs(train), _pairs(val), settings, tmp,
                               progress=False, plots=False)
                    prediction = predict_pairs(load_model(tmp), codes, test.idx_a, test.idx_b)
                rows.append({"assay": assay, "fold": fold, "model": f"plantt {args.plantt}",
                             "seconds": time.perf_counter() - start,
                             **_scores(test.target, prediction)})
                print(json.dumps(rows[-1]), flush=True)
    print("summary (mean ± SD over folds):")
    for assay in args.assays:
        for model in dict.fromkeys(str(r["model"]) for r in rows):
            part = [r for r in rows if r["assay"] == assay and r["model"] == model]
            if not part:
                continue
            rho = np.array([r["spearman"] for r in part], dtype=float)
            auc = np.array([r["auroc"] for r in part], dtype=float)
            secs = np.array([r["seconds"] for r in part], dtype=float)
            print(f"  {assay:9s} {model:14s} Spearman {rho.mean():.3f} ± {_sd(rho):.3f}, "
                  f"AUROC {auc.mean():.3f} ± {_sd(auc):.3f}, {secs.mean():.1f} s per fold "
                  f"({len(part)} folds)")


if __name__ == "__main__":
    main()
