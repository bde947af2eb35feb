"""Cross-validation from the workflow's files: train one fold, predict its test pairs, evaluate.

``plantt train`` reads the encoded windows (``encoded.npy`` + genes table) and the splits table of
one assay, trains one model on one fold (:func:`plantt.train.train_fold`: checkpointed, resumable),
then predicts that fold's test pairs with the best weights. ``plantt evaluate`` gathers the
predictions of every fold and model into per-fold metrics, a mean ± SD summary and figures.

Model names: ``plantt`` and ``washburn`` are the two models of the paper's Table 1; a name
``plantt_from_<assay>`` is PlanTT initialised from the best weights of the same fold trained on
another assay (sequential training, Table 2); ``plantt_shuffled`` is a control trained on targets
permuted within each set, which shows what the model learns from no signal at all; ``kmer`` is a
ridge regression on k-mer counts per block of the window (:mod:`plantt.kmer`), the
baseline a CNN has to beat. ``plantt train --architecture kmer`` fits it (:func:`kmer_cv_fold`).
``pwm`` is a ridge regression on the occupancy of every known plant TF matrix (JASPAR) per block
(:mod:`plantt.pwm`): ``plantt train --architecture pwm`` fits it (:func:`pwm_cv_fold`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from plantt.dataset import EncodedWindows, PairArrays, gene_levels, pair_arrays, read_splits
from plantt.io import InputError, PathLike, get_logger, write_tsv
from plantt.kmer import KmerSettings, fit_kmer_pairs
from plantt.metrics import prediction_metrics, summarize_folds
from plantt.models import load_model
from plantt.pwm import PwmSettings, fit_pwm_pairs, load_matrix_scan
from plantt.train import (
    CHECKPOINT,
    TrainSettings,
    predict_pairs,
    seeding_scan_settings,
    train_fold,
)

log = get_logger("cv")

SELECTION = "selection.tsv"  # a ridge baseline's validation scores per grid point and alpha
RIDGE_BASELINES = ("kmer", "pwm")  # fitted by kmer_cv_fold and pwm_cv_fold, not with PyTorch
PREDICTION_COLUMNS = ["assay", "model", "fold", "orthogroup", "label", "species_a", "gene_a",
                      "species_b", "gene_b", "target", "prediction"]


@dataclass(frozen=True)
class ModelVariant:
    """What a model name in the workflow means."""

    name: str
    kind: str  # "plantt", "washburn" (PyTorch models, plantt.train), "kmer" or "pwm" (ridges)
    pretrained_on: str | None = None
    shuffled: bool = False

    @classmethod
    def parse(cls, name: str) -> ModelVariant:
        if name in ("plantt", "washburn", *RIDGE_BASELINES):
            return cls(name, name)
        if name == "plantt_shuffled":
            return cls(name, "plantt", shuffled=True)
        if name.startswith("plantt_from_") and len(name) > len("plantt_from_"):
            return cls(name, "plantt", pretrained_on=name.removeprefix("plantt_from_"))
        raise ValueError(f"unknown model {name!r}: expected plantt, washburn, plantt_shuffled, "
                         "kmer, pwm or plantt_from_<assay>")

    @property
    def metric_kind(self) -> str:
        """How :func:`plantt.metrics.prediction_metrics` scores its predictions: the Washburn
        classifier's probabilities by their sign only, every other model's predicted differences
        (PlanTT's and the ridge baselines') as regression and sign."""
        return "washburn" if self.kind == "washburn" else "plantt"


def shuffled_targets(pairs: PairArrays, seed: int) -> PairArrays:
    """The same pairs with their targets permuted (the no-signal control)."""
    rng = np.random.default_rng(seed)
    return PairArrays(pairs.idx_a, pairs.idx_b, rng.permutation(pairs.target), pairs.orthogroup)


def _load_fold(codes_npy: PathLike, genes_tsv: PathLike, splits_tsv: PathLike, fold: int
               ) -> tuple[EncodedWindows, pd.DataFrame, PairArrays, PairArrays]:
    """The windows, the splits table and the training and validation pairs of ``fold``."""
    windows = EncodedWindows.load(codes_npy, genes_tsv, mmap=True)
    splits = read_splits(splits_tsv)
    if fold not in set(splits["fold"]):
        raise InputError(splits_tsv, f"fold {fold} not found (folds: "
                                     f"{', '.join(map(str, sorted(set(splits['fold']))))})")
    return (windows, splits, pair_arrays(splits, windows, fold, "train"),
            pair_arrays(splits, windows, fold, "validation"))


def _prediction_table(splits: pd.DataFrame, windows: EncodedWindows, fold: int, assay: str,
                      model: str, predict: Callable[[PairArrays], np.ndarray]) -> pd.DataFrame:
    """The test pairs of ``fold`` with their targets and ``predict``'s predictions, in the
    columns every model's predictions.tsv shares (PREDICTION_COLUMNS)."""
    test_rows = splits[(splits["fold"] == fold) & (splits["set"] == "test")]
    test = pair_arrays(splits, windows, fold, "test")
    return pd.DataFrame({
        "assay": assay, "model": model, "fold": fold,
        "orthogroup": test_rows["orthogroup"].to_numpy(),
        "label": test_rows["label"].to_numpy() if "label" in test_rows else "",
        "species_a": test_rows["species_a"].to_numpy(), "gene_a": test_rows["gene_a"].to_numpy(),
        "species_b": test_rows["species_b"].to_numpy(), "gene_b": test_rows["gene_b"].to_numpy(),
        "target": test.target, "prediction": predict(test),
    }, columns=PREDICTION_COLUMNS)


def check_no_test_leak(source_splits: PathLike, target_splits: PathLike, fold: int) -> None:
    """Refuse to start fold ``fold`` from a model of another assay's fold ``fold`` whose training
    or validation orthogroups include this fold's test orthogroups (sequential training, the
    paper's Table 2): the test metrics would measure memory, not prediction. The message names
    the orthogroups."""
    source, target = read_splits(source_splits), read_splits(target_splits)
    seen = set(source.loc[(source["fold"] == fold) & source["set"].isin(["train", "validation"]),
                          "orthogroup"])
    test = set(target.loc[(target["fold"] == fold) & (target["set"] == "test"), "orthogroup"])
    leaked = sorted(seen & test)
    if leaked:
        raise InputError(source_splits, f"fold {fold} of the pre-training assay trained or "
                                        f"validated on {len(leaked)} orthogroup(s) that are test "
                                        f"orthogroups of fold {fold} in {target_splits}: "
                                        f"{', '.join(map(str, leaked[:10]))}"
                                        f"{' ...' if len(leaked) > 10 else ''}; compute the "
                                        "assays' folds together (plantt splits --shared-with)",
                         record=str(leaked[0]))


def train_cv_fold(codes_npy: PathLike, genes_tsv: PathLike, splits_tsv: PathLike, fold: int,
                  assay: str, model: str, outdir: PathLike, settings: TrainSettings,
                  init_weights: PathLike | None = None, init_splits: PathLike | None = None,
                  matrix_scan: PathLike | None = None) -> pd.DataFrame:
    """Train ``model`` on ``fold`` and return its test-set predictions (PyTorch models; the
    ridge baselines by :func:`kmer_cv_fold` and :func:`pwm_cv_fold`). ``init_splits``: the splits the
    ``init_weights`` model was trained on, checked for a test leak (:func:`check_no_test_leak`).
    ``matrix_scan``: the windows' scan for ``seed_stem_matrices`` made once
    (:func:`plantt.pwm.write_matrix_scan` with :func:`plantt.train.seeding_scan_settings`)."""
    variant = ModelVariant.parse(model)
    if variant.kind in RIDGE_BASELINES:
        raise ValueError(f"the {variant.kind} baseline is not trained with PyTorch: use "
                         f"{variant.kind}_cv_fold")
    if init_weights is not None and init_splits is not None:
        check_no_test_leak(init_splits, splits_tsv, fold)
    elif init_weights is not None:
        log.warning("%s fold %d starts from %s without its splits: whether that model saw this "
                    "fold's test orthogroups is not checked", model, fold, init_weights)
    windows, splits, train, val = _load_fold(codes_npy, genes_tsv, splits_tsv, fold)
    levels = gene_levels(splits, windows, fold) if settings.single_gene_weights else None
    if variant.shuffled:
        train = shuffled_targets(train, settings.seed + 1)
        val = shuffled_targets(val, settings.seed + 2)
        levels = levels.shuffled(settings.seed + 3) if levels is not None else None
    if variant.pretrained_on and init_weights is None:
        raise ValueError(f"{model} needs the weights of the model trained on "
                         f"{variant.pretrained_on}")
    scanned = None
    if matrix_scan is not None and settings.seed_stem_matrices and init_weights is None:
        scanned = load_matrix_scan(matrix_scan, seeding_scan_settings(settings), windows.codes)
    outdir = Path(outdir)
    result = train_fold(np.asarray(windows.codes), train, val, settings, outdir,
                        model_kind=variant.kind, init_weights=init_weights,
                        layout="plantt_3000", provenance={"assay": assay, "model": model,
                                                          "fold": fold,
                                                          "splits": str(splits_tsv)},
                        levels=levels, matrix_scan=scanned)
    log.info("%s %s fold %d: best %s %.4f at epoch %d (%s, %s)", assay, model, fold,
             result.metric_name, result.best_metric, result.best_epoch, result.stop_reason,
             result.device)
    best = load_model(outdir)
    codes = np.asarray(windows.codes)
    table = _prediction_table(splits, windows, fold, assay, model, lambda test: predict_pairs(
        best, codes, test.idx_a, test.idx_b, batch_size=settings.eval_batch_size))
    # A finished fold needs no checkpoint; removing it makes a forced rerun train afresh, while a
    # killed run (which never gets here) resumes from its last epoch.
    (outdir / CHECKPOINT).unlink(missing_ok=True)
    return table


def kmer_cv_fold(codes_npy: PathLike, genes_tsv: PathLike, splits_tsv: PathLike, fold: int,
                 assay: str, outdir: PathLike, settings: KmerSettings) -> pd.DataFrame:
    """Fit the k-mer baseline on ``fold``'s training pairs, choose k, the block length and alpha
    on its validation pairs, write the model (``kmer_model.npz``, ``kmer_model.json``) and
    ``selection.tsv`` (one row per k, block length and alpha) into ``outdir``, and return its
    test-set predictions."""
    windows, splits, train, val = _load_fold(codes_npy, genes_tsv, splits_tsv, fold)
    for name, pairs in (("train", train), ("validation", val)):
        if not len(pairs):
            raise InputError(splits_tsv, f"fold {fold} has no {name} pairs (the k-mer baseline "
                                         "is fitted on the training pairs and chooses k and "
                                         "alpha on the validation pairs)")
    codes = np.asarray(windows.codes)
    model, selection = fit_kmer_pairs(codes, train, val, settings)
    outdir = Path(outdir)
    model.save(outdir, provenance={"assay": assay, "model": "kmer", "fold": fold,
                                   "splits": str(splits_tsv)})
    write_tsv(selection, outdir / SELECTION)
    chosen = selection[selection["chosen"]].iloc[0]
    log.info("%s kmer fold %d: k=%d, blocks of %d, alpha=%g, validation Spearman %.4f", assay,
             fold, model.k, model.block_length, model.alpha, chosen["val_spearman"])
    return _prediction_table(splits, windows, fold, assay, "kmer",
                             lambda test: model.predict_pairs(codes, test.idx_a, test.idx_b))


def pwm_cv_fold(codes_npy: PathLike, genes_tsv: PathLike, splits_tsv: PathLike, fold: int,
                assay: str, outdir: PathLike, settings: PwmSettings, threads: int | None = None,
                matrix_scan: PathLike | None = None) -> pd.DataFrame:
    """Fit the known-motif baseline on ``fold``'s training pairs, choose the block length and
    alpha on its validation pairs, write the model (``pwm_model.npz``, ``pwm_model.json``) and
    ``selection.tsv`` (one row per block length and alpha) into ``outdir``, and return its
    test-set predictions. ``threads``: scanning threads (:func:`plantt.pwm.matrix_scan`);
    ``matrix_scan``: every window's scan made once with ``settings``
    (:func:`plantt.pwm.write_matrix_scan`), read instead of scanning the fold's windows."""
    windows, splits, train, val = _load_fold(codes_npy, genes_tsv, splits_tsv, fold)
    for name, pairs in (("train", train), ("validation", val)):
        if not len(pairs):
            raise InputError(splits_tsv, f"fold {fold} has no {name} pairs (the pwm baseline is "
                                         "fitted on the training pairs and chooses the block "
                                         "length and alpha on the validation pairs)")
    codes = np.asarray(windows.codes)
    scanned = (load_matrix_scan(matrix_scan, settings, windows.codes) if matrix_scan is not None
               else None)
    model, selection = fit_pwm_pairs(codes, train, val, settings, threads=threads,
                                     scanned=scanned)
    outdir = Path(outdir)
    model.save(outdir, provenance={"assay": assay, "model": "pwm", "fold": fold,
                                   "splits": str(splits_tsv)})
    write_tsv(selection, outdir / SELECTION)
    chosen = selection[selection["chosen"]].iloc[0]
    log.info("%s pwm fold %d: %d matrices, blocks of %d, alpha=%g, validation Spearman %.4f; "
             "strongest: %s", assay, fold, len(model.matrices), model.block_length, model.alpha,
             chosen["val_spearman"], ", ".join(f"{t.matrix.id} {t.matrix.name} ({t.sign:+d})"
                                               for t in model.top_matrices(5)))
    return _prediction_table(splits, windows, fold, assay, "pwm",
                             lambda test: model.predict_pairs(codes, test.idx_a, test.idx_b))


def fold_metrics(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row of metrics per (assay, model, fold) from a predictions table."""
    rows = []
    for (assay, model, fold), part in predictions.groupby(["assay", "model", "fold"], sort=True):
        # the simulated grammar (the demo's ceiling) is scored as a regression model
        kind = "plantt" if model == GRAMMAR_MODEL else ModelVariant.parse(model).metric_kind
        rows.append({"assay": assay, "model": model, "fold": fold,
                     **prediction_metrics(part["target"], part["prediction"], kind)})
    return pd.DataFrame(rows)


#: What each assay measures in the simulator's truth table (docs/grammar.md, "The expression
#: model"): the grammar's log2 contributions whose sum is a gene's true cis value for the assay.
GRAMMAR_COLUMNS = {"rnaseq3p": ["transcription_log2_grammar", "stability_log2_grammar"],
                   "proseq": ["transcription_log2_grammar"]}

#: The model name of the simulated grammar scored as a prediction (the ceiling).
GRAMMAR_MODEL = "grammar"


def grammar_values(truth: pd.DataFrame, assay: str, source: PathLike | None = None) -> pd.Series:
    """Each gene's true grammar value for ``assay`` (log2) from the simulator's truth table,
    indexed by gene id."""
    if assay not in GRAMMAR_COLUMNS:
        raise InputError(source, f"no grammar columns known for assay {assay!r} (expected one of "
                                 f"{', '.join(GRAMMAR_COLUMNS)})")
    missing = [c for c in ["gene_id", *GRAMMAR_COLUMNS[assay]] if c not in truth.columns]
    if missing:
        raise InputError(source, f"not a simulator truth table: missing {', '.join(missing)}")
    return truth.set_index("gene_id")[GRAMMAR_COLUMNS[assay]].sum(axis=1)


def grammar_predictions(predictions: pd.DataFrame, truth: pd.DataFrame,
                        source: PathLike | None = None) -> pd.DataFrame:
    """The ceiling as a model: every test pair of ``predictions`` (each pair once per fold),
    predicted by the true grammar difference of its two genes (model ``grammar``). No model can
    beat it but by chance: the rest of a pair's difference is noise the window does not hold."""
    pairs = predictions.drop_duplicates(["assay", "fold", "gene_a", "gene_b"]).copy()
    pairs["model"] = GRAMMAR_MODEL
    parts = []
    for assay, part in pairs.groupby("assay", sort=False):
        grammar = grammar_values(truth, str(assay), source)
        a, b = grammar.reindex(part["gene_a"]), grammar.reindex(part["gene_b"])
        absent = sorted(set(part["gene_a"][a.isna().to_numpy()])
                        | set(part["gene_b"][b.isna().to_numpy()]))
        if absent:
            raise InputError(source, f"no truth for gene(s) {', '.join(absent[:5])}"
                                     f"{' ...' if len(absent) > 5 else ''} of the test pairs")
        part = part.copy()
        part["prediction"] = a.to_numpy() - b.to_numpy()
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pairs


def evaluate(prediction_files: list[PathLike], truth_file: PathLike | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """All predictions, per-fold metrics and the mean ± SD summary across folds. With the
    simulator's truth table (the demo), the ceiling joins them as model ``grammar``
    (:func:`grammar_predictions`)."""
    frames = []
    for path in prediction_files:
        frame = pd.read_csv(path, sep="\t", dtype={"gene_a": str, "gene_b": str,
                                                   "orthogroup": str})
        missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
        if missing:
            raise InputError(path, f"not a predictions table: missing {', '.join(missing)}")
        frames.append(frame)
    predictions = pd.concat(frames, ignore_index=True)
    if truth_file is not None:
        truth = pd.read_csv(truth_file, sep="\t", dtype={"gene_id": str})
        predictions = pd.concat([predictions, grammar_predictions(predictions, truth, truth_file)],
                                ignore_index=True)
    per_fold = fold_metrics(predictions)
    summary = summarize_folds(per_fold, by=("assay", "model"))
    return predictions, per_fold, summary


LOWER_IS_BETTER = {"mse"}
SEQUENTIAL_COLUMNS = ["assay", "metric", "alone", "pretrained", "alone_mean", "alone_sd",
                      "pretrained_mean", "pretrained_sd", "difference_mean", "difference_sd",
                      "folds_better", "n_folds", "t", "p_value"]


def sequential_training_table(per_fold: pd.DataFrame, assay: str, pretrained: str,
                              alone: str = "plantt") -> pd.DataFrame:
    """The paper's Table 2 for one assay: every metric of ``alone`` (trained on this assay only)
    and of ``pretrained`` (started from the other assay's fold model), mean ± SD over folds, and
    the paired comparison across folds: the mean and SD of the per-fold difference
    (pretrained - alone), in how many folds the pre-trained model was better (lower for the
    error ``mse``, higher for every other metric), and a paired t-test (two-sided; with five folds
    a guide, not a verdict)."""
    from scipy.stats import ttest_rel

    part = per_fold[per_fold["assay"] == assay]
    wide = {name: part[part["model"] == name].set_index("fold") for name in (alone, pretrained)}
    for name, table in wide.items():
        if table.empty:
            raise InputError(None, f"no per-fold metrics of model {name} for assay {assay}")
    folds = wide[alone].index.intersection(wide[pretrained].index).sort_values()
    skip = {"assay", "model", "fold", "n"}
    metrics = [c for c in part.columns if c not in skip and pd.api.types.is_numeric_dtype(part[c])]
    rows = []
    for metric in metrics:
        a = wide[alone].loc[folds, metric].to_numpy(dtype=float)
        b = wide[pretrained].loc[folds, metric].to_numpy(dtype=float)
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
        if not a.size:
            continue
        diff = b - a
        tested = a.size > 1 and np.ptp(diff) > 0
        test = ttest_rel(b, a) if tested else None
        rows.append({
            "assay": assay, "metric": metric, "alone": alone, "pretrained": pretrained,
            "alone_mean": a.mean(), "alone_sd": a.std(ddof=1) if a.size > 1 else np.nan,
            "pretrained_mean": b.mean(), "pretrained_sd": b.std(ddof=1) if b.size > 1 else np.nan,
            "difference_mean": diff.mean(),
            "difference_sd": diff.std(ddof=1) if diff.size > 1 else np.nan,
            "folds_better": int((diff < 0).sum() if metric in LOWER_IS_BETTER else (diff > 0).sum()),
            "n_folds": int(a.size),
            "t": float(test.statistic) if test is not None else np.nan,
            "p_value": float(test.pvalue) if test is not None else np.nan,
        })
    return pd.DataFrame(rows, columns=SEQUENTIAL_COLUMNS)


def load_train_settings(config: dict[str, Any] | None, overrides: dict[str, Any] | None = None
                        ) -> TrainSettings:
    values = dict(config or {})
    values.update(overrides or {})
    try:
        return TrainSettings.from_dict(values)
    except (TypeError, ValueError) as err:
        raise InputError(None, f"training settings: {err}") from None


def load_kmer_settings(config: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None
                       ) -> KmerSettings:
    """``config`` updated by ``overrides``; a block length given there (``block_lengths`` or the
    one-value ``block_length``) replaces the config's, whichever key that used."""
    values = dict(config or {})
    overrides = dict(overrides or {})
    if {"block_lengths", "block_length"} & set(overrides):
        values.pop("block_lengths", None)
        values.pop("block_length", None)
    values.update(overrides)
    try:
        return KmerSettings.from_dict(values)
    except (TypeError, ValueError) as err:
        raise InputError(None, f"k-mer settings: {err}") from None


def load_pwm_settings(config: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None
                      ) -> PwmSettings:
    values = dict(config or {})
    values.update(overrides or {})
    try:
        return PwmSettings.from_dict(values)
    except (TypeError, ValueError) as err:
        raise InputError(None, f"pwm settings: {err}") from None


def run_train(args: argparse.Namespace) -> int:
    config: dict[str, Any] = {}
    if args.config:
        with open(args.config) as handle:
            config = yaml.safe_load(handle) or {}
        if not isinstance(config, dict):
            raise InputError(args.config, "expected a mapping of training settings")
    try:
        overrides = json.loads(args.set) if args.set else {}
    except json.JSONDecodeError as err:
        raise InputError(None, f"--set is not JSON: {err}") from None
    if not isinstance(overrides, dict):
        raise InputError(None, "--set expects a JSON object of settings")
    kind = ModelVariant.parse(args.model).kind
    if kind in RIDGE_BASELINES and args.init_weights:
        raise InputError(args.init_weights, f"--init-weights: the {kind} baseline starts from no "
                                            "weights")
    if kind == "kmer":
        table = kmer_cv_fold(args.windows, args.genes, args.splits, args.fold, args.assay,
                             args.out, load_kmer_settings(config, overrides))
    elif kind == "pwm":
        table = pwm_cv_fold(args.windows, args.genes, args.splits, args.fold, args.assay,
                            args.out, load_pwm_settings(config, overrides),
                            matrix_scan=args.matrix_scan)
    else:
        settings = load_train_settings(config, overrides)
        table = train_cv_fold(args.windows, args.genes, args.splits, args.fold, args.assay,
                              args.model, args.out, settings, args.init_weights, args.init_splits,
                              args.matrix_scan)
    write_tsv(table, Path(args.out) / "predictions.tsv")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    predictions, per_fold, summary = evaluate(args.predictions, args.truth)
    out = Path(args.out)
    write_tsv(predictions, out / "predictions.tsv")
    write_tsv(per_fold, out / "metrics_per_fold.tsv")
    write_tsv(summary, out / "metrics_summary.tsv")
    return 0
