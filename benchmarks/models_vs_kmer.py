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
over folds. On a simulated demo (``resources/demo/truth.tsv`` present) it also scores the true
grammar difference of each test pair, the ceiling no model can pass but by chance. Nothing is
written to the workdir (models go to a temporary folder).

``--recipe config/config.yaml`` trains with a workflow config's PlanTT settings instead, merged
by :func:`plantt.recipes.train_settings` exactly as the workflow's training rules merge them: the
config's ``train.recipe`` (``small_data`` in the shipped config), or the one ``--recipe-name``
names (``paper``: the paper's). Single-gene levels join the fitted readout as in the workflow
where the recipe asks for them. ``--epochs`` and ``--train`` then change that recipe only if
given. The device is the recipe's (CUDA where visible, see :func:`plantt.train.resolve_device`).

``--pwm`` also fits the known-motif baseline (:mod:`plantt.pwm`, JASPAR 2024 CORE plants at its
defaults); ``--kmer-ks`` with ``--kmer-block-lengths`` a k-mer grid over block lengths too (each
block length's fit chooses k and alpha on the validation pairs, the best of them is kept).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from plantt.cv import grammar_values
from plantt.dataset import EncodedWindows, gene_levels, pair_arrays, read_splits
from plantt.kmer import KmerSettings, fit_kmer_pairs
from plantt.metrics import prediction_metrics
from plantt.models import load_model
from plantt.recipes import train_settings
from plantt.train import PairSet, TrainSettings, predict_pairs, train_fold


def _pairs(arrays) -> PairSet:
    return PairSet(arrays.idx_a, arrays.idx_b, arrays.target)


def _scores(target: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    metrics = prediction_metrics(target, prediction, "plantt")
    return {"spearman": float(metrics["spearman"]), "auroc": float(metrics["auroc"])}


def _sd(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if values.size > 1 else 0.0


def grammar_scores(truth: pd.DataFrame, windows: EncodedWindows, assay: str, test) -> dict[str, float]:
    """The ceiling: the true grammar difference of each test pair scored as a prediction."""
    grammar = grammar_values(truth, assay)
    gene_ids = windows.genes["gene_id"].to_numpy()
    difference = (grammar.reindex(gene_ids[test.idx_a]).to_numpy()
                  - grammar.reindex(gene_ids[test.idx_b]).to_numpy())
    return _scores(test.target, difference)


def load_workdir(workdir: Path) -> tuple[EncodedWindows, np.ndarray, pd.DataFrame | None]:
    """A preprocessed workdir's encoded windows, their codes, and the simulator's truth table
    (None where the workdir is not a simulated demo)."""
    windows = EncodedWindows.load(workdir / "results/windows/encoded.npy",
                                  workdir / "results/windows/encoded.genes.tsv")
    truth_tsv = workdir / "resources/demo/truth.tsv"
    truth = (pd.read_csv(truth_tsv, sep="\t", dtype={"gene_id": str}) if truth_tsv.is_file()
             else None)
    return windows, np.asarray(windows.codes), truth


def recipe_settings(config_file: Path, recipe: str | None = None) -> dict[str, object]:
    """PlanTT's training settings from a workflow config, merged as the training rules merge them
    (:func:`plantt.recipes.train_settings`); ``recipe`` overrides the config's ``train.recipe``."""
    train = (yaml.safe_load(config_file.read_text()) or {}).get("train") or {}
    return train_settings(train, "plantt", recipe)


def best_kmer_over_blocks(codes: np.ndarray, train: PairSet, val: PairSet, ks: tuple[int, ...],
                          alphas: tuple[float, ...], block_lengths: tuple[int, ...]):
    """The k-mer ridge of the best validation Spearman over block lengths (each fit choosing k and
    alpha on the validation pairs), and its choice."""
    best = None
    for block_length in block_lengths:
        model, selection = fit_kmer_pairs(codes, train, val, KmerSettings(
            ks=ks, alphas=alphas, block_length=block_length))
        chosen = selection[selection["chosen"]].iloc[0]
        if best is None or float(chosen["val_spearman"]) > best[1]:
            best = (model, float(chosen["val_spearman"]),
                    {"block_length": block_length, "k": int(chosen["k"]),
                     "alpha": float(chosen["alpha"])})
    assert best is not None
    return best[0], best[2]


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
    parser.add_argument("--kmer-block-lengths", nargs="+", type=int, metavar="BP",
                        help="with --kmer-ks: also choose the block length among these")
    parser.add_argument("--no-kmer", action="store_true",
                        help="skip the k-mer ridges (when only other models are compared)")
    parser.add_argument("--pwm", action="store_true",
                        help="also fit the known-motif (JASPAR plants) ridge baseline")
    parser.add_argument("--recipe", type=Path, metavar="CONFIG",
                        help="train PlanTT with this workflow config's settings (see above)")
    parser.add_argument("--recipe-name", metavar="NAME",
                        help="with --recipe: this recipe instead of the config's train.recipe")
    parser.add_argument("--epochs", type=int, help="epochs (default: the recipe's, else 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--verbose", action="store_true",
                        help="log the fits and every epoch (plantt's INFO messages) to stderr")
    args = parser.parse_args()
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.recipe_name and not args.recipe:
        parser.error("--recipe-name needs --recipe CONFIG")
    if args.recipe and not args.recipe.is_file():
        parser.error(f"--recipe {args.recipe}: no such file")
    torch.set_num_threads(args.threads)
    # "kmer": the workflow's own baseline (the config's train.kmer with --recipe, else defaults)
    kmer_defaults = KmerSettings()
    if args.recipe:
        kmer_config = ((yaml.safe_load(args.recipe.read_text()) or {}).get("train") or {}).get(
            "kmer")
        kmer_defaults = KmerSettings.from_dict(kmer_config)
    if args.recipe:
        try:
            recipe = recipe_settings(args.recipe, args.recipe_name)
        except ValueError as err:
            parser.error(f"--recipe {args.recipe}: {err}")
        if args.plantt:
            recipe["preset"] = args.plantt
        args.plantt = str(recipe.get("preset", "paper"))
    else:
        recipe = {"max_epochs": 3, "patience": 3}
        recipe["preset"] = args.plantt
    if args.epochs is not None:
        recipe["max_epochs"] = recipe["patience"] = args.epochs
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none visible"
    print(f"host: {platform.processor() or platform.machine()}, torch {torch.__version__},"
          f" {args.threads} threads, GPU: {gpu}")
    windows, codes, truth = load_workdir(args.workdir)
    rows: list[dict[str, object]] = []
    for assay in args.assays:
        splits = read_splits(args.workdir / f"results/splits/{assay}.tsv")
        for fold in args.folds:
            train, val, test = (pair_arrays(splits, windows, fold, name)
                                for name in ("train", "validation", "test"))
            if truth is not None:
                rows.append({"assay": assay, "fold": fold, "model": "grammar", "seconds": 0.0,
                             **grammar_scores(truth, windows, assay, test)})
                print(json.dumps(rows[-1]), flush=True)
            grids = ([] if args.no_kmer else
                     [("kmer k=6", KmerSettings(ks=(6,))), ("kmer", kmer_defaults)])
            if args.kmer_ks and not args.kmer_block_lengths:
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
            if args.kmer_ks and args.kmer_block_lengths:
                start = time.perf_counter()
                model, choice = best_kmer_over_blocks(
                    codes, _pairs(train), _pairs(val), tuple(args.kmer_ks),
                    tuple(args.kmer_alphas), tuple(args.kmer_block_lengths))
                prediction = model.predict_pairs(codes, test.idx_a, test.idx_b)
                rows.append({"assay": assay, "fold": fold, "model": "kmer tuned",
                             "seconds": time.perf_counter() - start, "choice": choice,
                             **_scores(test.target, prediction)})
                print(json.dumps(rows[-1]), flush=True)
            if args.pwm:
                from plantt.pwm import PwmSettings, fit_pwm_pairs

                start = time.perf_counter()
                model, selection = fit_pwm_pairs(codes, _pairs(train), _pairs(val), PwmSettings())
                prediction = model.predict_pairs(codes, test.idx_a, test.idx_b)
                chosen = selection[selection["chosen"]].iloc[0]
                rows.append({"assay": assay, "fold": fold, "model": "pwm",
                             "seconds": time.perf_counter() - start,
                             "choice": {"block_length": int(chosen["block_length"]),
                                        "alpha": float(chosen["alpha"])},
                             **_scores(test.target, prediction)})
                print(json.dumps(rows[-1]), flush=True)
            if args.plantt:
                values = {**recipe, "num_threads": args.threads, **json.loads(args.train)}
                if json.loads(args.overrides):
                    values["model_overrides"] = json.loads(args.overrides)
                settings = TrainSettings.from_dict(values)
                with tempfile.TemporaryDirectory() as tmp:
                    start = time.perf_counter()
                    levels = (gene_levels(splits, windows, fold) if settings.single_gene_weights
                              else None)
                    train_fold(codes, _pairs(train), _pairs(val), settings, tmp,
                               progress=False, plots=False, levels=levels)
                    prediction = predict_pairs(load_model(tmp), codes, test.idx_a, test.idx_b)
                    provenance = json.loads((Path(tmp) / "model.json").read_text())["provenance"]
                rows.append({"assay": assay, "fold": fold, "model": f"plantt {args.plantt}",
                             "seconds": time.perf_counter() - start,
                             "device": provenance["device"],
                             "epochs_run": provenance["epochs_run"],
                             "best_epoch": provenance["best_epoch"],
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
