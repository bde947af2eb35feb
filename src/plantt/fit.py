"""``plantt fit``: train and cross-validate models on a table of your own sequences.

Instead of the genome pipeline's ortholog windows, the input is a table (:mod:`plantt.tables`):

* ``--task single``: one sequence and its expression per row (an MPRA, a STARR-seq library, random
  promoters as in DREAM 2022 and Camformer, expression from another pipeline);
* ``--task pairs``: two sequences and their measured difference per row (alleles, orthologs).

A bad table stops the fit before any training with an InputError naming the file and line
(:mod:`plantt.tables`), and so does a table with nothing to learn: every target the same value.
Pairs whose two sequences are the same but whose target is not 0 are kept, with a warning naming
them (:func:`check_learnable`).

Models (``model``): ``single`` regresses expression on one sequence (a ``single`` table only);
``contrast`` is PlanTT's two-tower model ``f(a, b) = score(a) - score(b)``, trained on the pairs of a
``pairs`` table or, from a ``single`` table, on pairs of its sequences drawn within groups
(``pairing: group``) or at random (``pairing: random``), ``pairs_per_sequence`` partners per
sequence, target ``expression_a - expression_b``. Either model uses the Camformer-style tower
(``tower: camformer``, :mod:`plantt.camformer`) or the PlanTT-CNN tower (``tower: cnn``), whose
size follows the sequence length (:class:`plantt.tables.LengthPolicy`).

Cross-validation is group-aware: the groups of the ``group`` column (else every sequence of a
``single`` table is its own group, and the pairs of a ``pairs`` table are grouped by the sequences
they share: pairs linked through a common sequence form one group) are dealt to ``folds`` folds at
random (:func:`plantt.splits.assign_test_folds`); in fold ``k``, the groups of fold ``k`` are the
test set and ``validation_fraction`` of the other groups (:func:`plantt.splits.choose_validation`)
the validation set used for early stopping; the rest is trained on. So no group is ever split
between training and test. ``split_seed`` fixes the folds.

Seed ensembles: every fold trains one model per seed of ``seeds`` (the seed sets the weights'
initialisation, the batch order and dropout); the ensemble predicts the mean of its members, as
Camformer's did. With ``shuffled_control``, each fold also trains a control on targets permuted
within the training and validation sets (seed ``seeds[0]``): what the model scores without signal.
A fit whose control predicts what ``seed_<seeds[0]>`` predicts (the same test values, or the same
ranking of at least 8 test items) in any fold stops with an error naming the folds: the labels
did not reach the training, and the comparison would be meaningless.

Standardised targets (:class:`TargetScale`): the networks of a fold train on its targets minus the
training mean, divided by the training SD (a contrast model's differences: divided by their
training SD only, the model being odd). Untransformed targets far from zero (mean ~3.6, say) with
the MAE loss left every prediction below every target for many steps, where the L1 gradient does
not depend on which target goes with which sequence, and the control trained exactly like the
model. The scale is folded into the saved network's output layer, so every prediction written,
every metric and every saved model (``plantt predict``, ``ism``, ``edit``) is in the table's
units; ``history.tsv`` (losses, early stopping) is in the standardised units, and
``model.json`` records the scale under ``provenance.target_scale``.

With ``kmer_baseline`` (default), each fold also fits a k-mer ridge regression
(:mod:`plantt.kmer`) on the same training set, choosing k (and the block length, if given several)
and the penalty on the same validation set: k-mer counts of each sequence (a ``single`` model),
their difference (pairs, with no intercept: odd like the contrast model), the same drawn pairs for
a contrast model from a single table. ``kmer`` holds :class:`plantt.kmer.KmerSettings` fields;
``block_lengths`` (or the one-value ``block_length``) absent or null (the default here) counts each
sequence as one block (the genome pipeline's 100-750 suit its 3 kb windows).

Outputs in ``--out-dir DIR``:

* ``fold_<k>/seed_<s>/``, ``fold_<k>/shuffled/``: model directories (``weights.pt``, ``model.json``
  with the length policy under ``"input"``, ``history.tsv``, ``curves.png``); ``fold_<k>/`` itself
  is the fold's seed ensemble (``ensemble.json``), and ``model/`` the ensemble of every fold's
  seeds: each of these directories works with ``plantt predict``, ``plantt ism`` and ``plantt edit``.
  ``fold_<k>/kmer/``: the fold's k-mer ridge (``kmer_model.npz``, ``kmer_model.json``,
  ``selection.tsv``: the validation Spearman of every k and alpha tried).
* ``predictions.tsv``: every item (sequence for ``single``, pair for ``pairs``) once, predicted by
  the models of the fold where it was a test item: ``fold, id, group, target, prediction`` (the
  ensemble), ``prediction_seed_<s>``, ``prediction_shuffled``, ``prediction_kmer``. A contrast
  model's prediction of a sequence is its score ``sum(z)`` (the k-mer ridge's: ``coef . counts``),
  expression up to an offset (one per fold's model). A contrast model trained from a ``single``
  table also writes ``pair_predictions.tsv`` (the test pairs drawn within each fold).
* ``metrics.tsv``: one row per fold, level (``sequence`` or ``pair``) and member (``seed_<s>``,
  ``ensemble``, ``shuffled``, ``kmer``): ``n``, Spearman, Pearson, R², MSE and, for pairs, the
  sign metrics (balanced accuracy, F1, AUROC; :func:`plantt.metrics.prediction_metrics`). R² and
  MSE of a contrast model's sequence scores are left empty (the score's offset is arbitrary).
* ``metrics_summary.tsv``: per level, member and metric the mean and SD across folds, and
  ``pooled``: the metric over all folds' predictions together (empty for a contrast model's
  sequence scores, whose offset differs between folds).
* With ``eval_pairs`` (a ``pairs`` table of measured differences): ``eval_pairs_predictions.tsv``
  (each pair predicted by every fold's ensemble and members, the k-mer ridge included, and by
  ``model/``) and ``eval_pairs_metrics.tsv``.
* ``folds.tsv`` (each item's group, test fold and set in every fold) and ``fit.json`` (settings,
  input, length policy, versions).

Trainings are checkpointed (:func:`plantt.train.train_fold`) and a finished member (network or
k-mer ridge) is not trained again when the same command is rerun with the same table and settings,
so an interrupted fit resumes where it stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from scipy.stats import rankdata
from torch import nn

from plantt import __version__
from plantt.io import InputError, PathLike, atomic_open, atomic_path, get_logger, write_tsv
from plantt.kmer import MODEL_JSON as KMER_JSON
from plantt.kmer import KmerRidge, KmerSettings, fit_kmer_pairs, fit_kmer_sequences
from plantt.metrics import (
    REGRESSION_METRICS,
    SIGN_METRICS,
    prediction_metrics,
    regression_metrics,
    summarize_folds,
)
from plantt.models import (
    MODEL_JSON,
    TOWERS,
    WEIGHTS,
    get_preset,
    load_model,
    read_model_info,
    save_ensemble,
)
from plantt.splits import assign_test_folds, choose_validation
from plantt.tables import TASKS, LengthPolicy, PairTable, SequenceTable, encode_fixed, read_table
from plantt.train import (
    CHECKPOINT,
    PairSet,
    SequenceSet,
    TrainSettings,
    predict_pairs,
    predict_sequences,
    resolve_device,
    train_fold,
)

log = get_logger("fit")

MODELS = ("single", "contrast")
PAIRINGS = ("group", "random")
METRIC_COLUMNS = [*REGRESSION_METRICS, *SIGN_METRICS]
# Our defaults where the Camformer paper gives none (it tuned them with Optuna): see config/README.md.
TRAIN_DEFAULTS: dict[str, Any] = {"max_epochs": 50, "patience": 10, "batch_size": 64,
                                  "max_lr": 1e-3, "warmup_steps": 100}
# Fields of TrainSettings that plantt fit sets itself.
_OWN_FIELDS = ("seed", "preset", "tower", "model_overrides")


@dataclass
class FitSettings:
    """Everything ``plantt fit`` does besides the table and the output folder."""

    model: str | None = None  # "single" | "contrast"; None: single for a single table, else contrast
    tower: str = "camformer"
    preset: str = "paper"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    length: int | None = None
    pad_end: str = "right"
    too_long: str = "error"
    trim_end: str = "right"
    folds: int = 5
    validation_fraction: float = 0.1
    split_seed: int = 0
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    shuffled_control: bool = True
    kmer_baseline: bool = True
    kmer: dict[str, Any] = field(default_factory=dict)  # KmerSettings fields; see kmer_settings
    pairing: str = "group"
    pairs_per_sequence: int = 4
    eval_pairs: str | None = None
    plots: bool = True
    train: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.seeds, int):
            self.seeds = list(range(self.seeds))
        self.seeds = [int(s) for s in self.seeds]
        problems = []
        if self.model is not None and self.model not in MODELS:
            problems.append(f"model must be one of {', '.join(MODELS)}")
        if self.tower not in TOWERS:
            problems.append(f"tower must be one of {', '.join(TOWERS)}")
        if self.folds < 2:
            problems.append("folds must be >= 2")
        if not 0 < self.validation_fraction < 1:
            problems.append("validation_fraction must be in (0, 1) (early stopping needs it)")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            problems.append("seeds must be a non-empty list of distinct seeds (or their number)")
        if self.pairing not in PAIRINGS:
            problems.append(f"pairing must be one of {', '.join(PAIRINGS)}")
        if self.pairs_per_sequence < 1:
            problems.append("pairs_per_sequence must be >= 1")
        if self.kmer is None:
            self.kmer = {}
        if not isinstance(self.kmer, dict):
            problems.append("kmer must be a mapping of k-mer settings (ks, block_lengths, "
                            "alphas)")
        else:
            try:
                self.kmer_settings(1)  # validates the k-mer settings
            except (TypeError, ValueError) as err:
                problems.append(f"kmer: {err}")
        own = sorted(set(self.train) & set(_OWN_FIELDS))
        if own:
            problems.append(f"set {', '.join(own)} at the top level, not under train")
        if problems:
            raise ValueError("; ".join(problems))
        self.length_policy()  # validates the length settings
        get_preset("single", self.preset, self.model_overrides or None, self.tower)
        self.train_settings(self.seeds[0], "single")  # validates the training settings

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> FitSettings:
        """From a config mapping; unknown keys are an error (catches typos)."""
        values = dict(values or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown fit setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(names))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def length_policy(self) -> LengthPolicy:
        return LengthPolicy(self.length, self.pad_end, self.too_long, self.trim_end)

    def kmer_settings(self, length: int) -> KmerSettings:
        """The k-mer baseline's grid for sequences of ``length`` bases.

        ``block_length`` and ``block_lengths`` absent or null (the default here) count each
        sequence as one block: the genome pipeline's 100-750 are parts of its 3 kb windows, while
        a 110-nt MPRA promoter has no regions to tell apart, and splitting it would only spread
        each k-mer over more coefficients. A block length of at least the sequence length is the
        same one block.
        """
        values = dict(self.kmer or {})
        if values.get("block_length") is None and values.get("block_lengths") is None:
            values.pop("block_lengths", None)
            values["block_length"] = length
        return KmerSettings.from_dict(values)

    def model_for(self, task: str) -> str:
        model = self.model or ("single" if task == "single" else "contrast")
        if task == "pairs" and model == "single":
            raise ValueError("a pairs table trains a contrast model (model: contrast); a "
                             "single-sequence model needs a single table")
        return model

    def train_settings(self, seed: int, model: str) -> TrainSettings:
        values = {**TRAIN_DEFAULTS, **self.train}
        if values.get("loss") in (None, "auto"):
            values["loss"] = "mae" if model == "single" else "mse"
        values.update(seed=seed, preset=self.preset, tower=self.tower,
                      model_overrides=dict(self.model_overrides))
        return TrainSettings.from_dict(values)


@dataclass
class FitData:
    """A table encoded for training: codes, items (sequences or pairs), targets and groups."""

    task: str
    ids: list[str]
    codes: np.ndarray  # (n_sequences, length) uint8
    target: np.ndarray  # per item
    groups: np.ndarray  # per item (str)
    policy: LengthPolicy
    idx_a: np.ndarray | None = None  # pairs: rows of codes
    idx_b: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Folds:
    test_fold: np.ndarray  # per item
    validation: np.ndarray  # (n_items, folds) bool

    @property
    def n_folds(self) -> int:
        return int(self.validation.shape[1])

    def sets(self, fold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item indices of the training, validation and test sets of ``fold``."""
        test = self.test_fold == fold
        val = self.validation[:, fold]
        return np.flatnonzero(~test & ~val), np.flatnonzero(val), np.flatnonzero(test)


# ----------------------------------------------------------------------------------------------
# Data, groups and folds
# ----------------------------------------------------------------------------------------------
def encode_table(table: SequenceTable | PairTable, policy: LengthPolicy) -> FitData:
    """Codes of a table's sequences (pairs: each distinct sequence once) at the policy's length."""
    if isinstance(table, SequenceTable):
        policy = policy.resolved([len(s) for s in table.sequences])
        codes = encode_fixed(table.sequences, policy, table.path, table.lines, table.ids)
        groups = np.array(table.groups if table.groups is not None else table.ids, dtype=object)
        return FitData("single", table.ids, codes, table.expression, groups, policy)
    unique: dict[str, int] = {}
    first_line: list[int] = []
    index = np.empty((2, len(table)), dtype=np.int64)
    for column, seqs in enumerate((table.sequence_a, table.sequence_b)):
        for i, seq in enumerate(seqs):
            row = unique.get(seq)
            if row is None:
                row = unique[seq] = len(unique)
                first_line.append(table.lines[i])
            index[column, i] = row
    sequences = list(unique)
    policy = policy.resolved([len(s) for s in sequences])
    codes = encode_fixed(sequences, policy, table.path, first_line)
    if table.groups is not None:
        groups = np.array(table.groups, dtype=object)
    else:
        groups = shared_sequence_groups(index[0], index[1])
    return FitData("pairs", table.ids, codes, table.target, groups, policy, index[0], index[1])


def check_learnable(table: SequenceTable | PairTable, data: FitData) -> None:
    """Stop before any training when the table gives a model nothing to learn.

    * Every target (expression, or a pair's difference) the same value: an InputError (no model
      can be told from a constant, and every correlation metric would be undefined).
    * Pairs whose two sequences are the same once brought to the model's length (equal in the
      table, or equal after trimming) but whose target is not 0: a contrast model predicts
      ``f(a, a) = 0`` for them whatever it learns. They are kept (a replicate measurement of one
      sequence is real data: its noise belongs in the metrics) and a warning names them; when
      every pair is such a pair, it is an InputError.
    """
    target = np.asarray(data.target, dtype=np.float64)
    what = "expression" if isinstance(table, SequenceTable) else "target"
    if target.size and np.all(target == target[0]):
        raise InputError(table.path, f"every {what} is {target[0]:g} ({target.size} rows): there "
                                     "is nothing to learn; the values must differ")
    if data.idx_a is None or data.idx_b is None:
        return
    same = np.all(data.codes[data.idx_a] == data.codes[data.idx_b], axis=1)
    if not same.any():
        return
    if same.all():
        raise InputError(table.path, "in every pair sequence_a and sequence_b are the same "
                                     "sequence (at the model's length): there is nothing to "
                                     "learn")
    odd = np.flatnonzero(same & (target != 0))
    if odd.size:
        named = ", ".join(f"{table.ids[i]!r} (line {table.lines[i]})" for i in odd[:10])
        more = f" and {odd.size - 10} more" if odd.size > 10 else ""
        log.warning("%s: %d pair(s) have the same sequence as a and b (at the model's length) but "
                    "a non-zero target; a contrast model predicts 0 for them, they are kept: %s%s",
                    table.path, odd.size, named, more)


def shared_sequence_groups(idx_a: np.ndarray, idx_b: np.ndarray) -> np.ndarray:
    """A group name per pair: pairs linked through shared sequences get the same one."""
    parent = np.arange(int(max(idx_a.max(), idx_b.max())) + 1)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(idx_a.tolist(), idx_b.tolist(), strict=True):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([f"linked{root(a)}" for a in idx_a.tolist()], dtype=object)


def make_folds(groups: np.ndarray, folds: int, validation_fraction: float, seed: int,
               source: PathLike | None = None) -> Folds:
    """Groups dealt to folds at random; a validation share of the other groups per fold."""
    names, item_group = np.unique(groups.astype(str), return_inverse=True)
    if len(names) < folds:
        raise InputError(source, f"only {len(names)} group(s) for {folds} folds: give more groups "
                                 "or fewer folds (without a group column, each sequence of a single "
                                 "table is its own group, and pairs sharing a sequence are one)")
    rng = np.random.default_rng(seed)
    labels = pd.Series(np.zeros(len(names), dtype=np.int64))  # no strata
    test_fold = assign_test_folds(labels, folds, rng)
    validation = np.zeros((len(names), folds), dtype=bool)
    for fold in range(folds):
        rest = np.flatnonzero(test_fold != fold)
        chosen = choose_validation(labels.iloc[rest].reset_index(drop=True), validation_fraction,
                                   rng)
        if not chosen.any():
            raise InputError(source, f"fold {fold} has no validation group: raise "
                                     f"validation_fraction ({validation_fraction}) or give more "
                                     "groups")
        validation[rest[chosen], fold] = True
    return Folds(test_fold[item_group], validation[item_group])


def draw_pairs(items: np.ndarray, groups: np.ndarray, values: np.ndarray, mode: str,
               per_sequence: int, rng: np.random.Generator) -> PairSet:
    """Pairs of ``items`` (rows of the codes): ``per_sequence`` partners for each item, drawn
    uniformly from the other items of its group (``group``; items alone in their group get none)
    or of all ``items`` (``random``); target ``values[a] - values[b]``."""
    items = np.sort(np.asarray(items, dtype=np.int64))
    if mode == "random":
        pools = [items]
    else:
        _, inverse = np.unique(groups[items].astype(str), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.flatnonzero(np.diff(inverse[order])) + 1
        pools = np.split(items[order], bounds)
    a_parts, b_parts = [], []
    for pool in pools:
        m = pool.size
        if m < 2:
            continue
        a_pos = np.repeat(np.arange(m), per_sequence)
        b_pos = rng.integers(0, m - 1, size=a_pos.size)
        b_pos += b_pos >= a_pos  # never the item itself
        a_parts.append(pool[a_pos])
        b_parts.append(pool[b_pos])
    if not a_parts:
        return PairSet(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    a, b = np.concatenate(a_parts), np.concatenate(b_parts)
    return PairSet(a, b, (values[a] - values[b]).astype(np.float32))


# ----------------------------------------------------------------------------------------------
# Training the members of one fold
# ----------------------------------------------------------------------------------------------
@dataclass
class FoldSets:
    """What the models of one fold train, stop and are evaluated on."""

    train: PairSet | SequenceSet
    val: PairSet | SequenceSet
    test_items: np.ndarray
    test_pairs: PairSet | None = None  # a contrast model trained from a single table


def fold_sets(data: FitData, folds: Folds, fold: int, model: str, settings: FitSettings,
              shuffled: bool) -> FoldSets:
    train_items, val_items, test_items = folds.sets(fold)
    target = data.target.astype(np.float64)
    if shuffled:
        rng = np.random.default_rng([settings.split_seed, fold, 7])
        target = target.copy()
        for items in (train_items, val_items):
            target[items] = rng.permutation(target[items])
    if data.task == "pairs":
        assert data.idx_a is not None and data.idx_b is not None

        def pairs(items: np.ndarray) -> PairSet:
            return PairSet(data.idx_a[items], data.idx_b[items], target[items])

        return FoldSets(pairs(train_items), pairs(val_items), test_items)
    if model == "single":
        return FoldSets(SequenceSet(train_items, target[train_items]),
                        SequenceSet(val_items, target[val_items]), test_items)
    sets = []
    for code, items in enumerate((train_items, val_items, test_items)):
        rng = np.random.default_rng([settings.split_seed, fold, code])
        drawn = draw_pairs(items, data.groups, target, settings.pairing,
                           settings.pairs_per_sequence, rng)
        if len(drawn) == 0:
            raise InputError(None, f"fold {fold}: no {('training', 'validation', 'test')[code]} "
                                   f"pairs could be drawn within groups (pairing: group needs "
                                   "groups of two or more sequences; use pairing: random)")
        sets.append(drawn)
    return FoldSets(sets[0], sets[1], test_items, sets[2])


# ----------------------------------------------------------------------------------------------
# Target standardisation
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TargetScale:
    """How one fold's networks see their targets: ``(y - offset) / scale``.

    Why: with targets far from zero (expression of mean ~3.6, say) and an MAE loss, every
    prediction of a freshly initialised network lies below every target for many steps, and the
    L1 gradient, ``sign(prediction - target)``, is then the same whatever target goes with which
    sequence: the shuffled-label control trained exactly like the model. Standardised targets
    put the initial predictions in the middle of the targets, so the pairing matters from the
    first step. A single-sequence model's targets are centred on the training mean and divided
    by the training SD; a contrast model's differences are only divided by their training SD
    (it is odd, ``f(a, b) = -f(b, a)``: it cannot add an offset). The scale is folded back into
    the saved network's output layer (:func:`fold_output_scale`), so every saved model predicts
    in the table's units.
    """

    offset: float
    scale: float

    def standardised(self, examples: PairSet | SequenceSet) -> PairSet | SequenceSet:
        target = ((examples.target.astype(np.float64) - self.offset) / self.scale)
        if isinstance(examples, SequenceSet):
            return SequenceSet(examples.idx, target)
        return PairSet(examples.idx_a, examples.idx_b, target)

    def standardised_sets(self, sets: FoldSets) -> FoldSets:
        """The training and validation sets standardised (the test sets are never trained on)."""
        return dataclasses.replace(sets, train=self.standardised(sets.train),
                                   val=self.standardised(sets.val))

    def to_dict(self) -> dict[str, float]:
        return {"offset": self.offset, "scale": self.scale}


def target_scale(train: PairSet | SequenceSet, fold: int, source: PathLike | None
                 ) -> TargetScale:
    """The standardisation of one fold, from its (unshuffled) training targets only."""
    target = train.target.astype(np.float64)
    scale = float(np.std(target))
    if not (np.isfinite(scale) and scale > 0):
        raise InputError(source, f"fold {fold}: the training targets have no spread (SD "
                                 f"{scale:g}): there is nothing to learn")
    offset = float(np.mean(target)) if isinstance(train, SequenceSet) else 0.0
    return TargetScale(offset, scale)


def _output_layer(model: nn.Module) -> nn.Linear:
    """The tower's last linear layer: the towers end in one (``sum(z)`` of its outputs is the
    score), so scaling its weights and bias scales the score."""
    linears = [m for m in getattr(model, "tower", model).modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TypeError(f"{type(model).__name__}: no linear output layer to fold a scale into")
    return linears[-1]


def fold_output_scale(model: nn.Module, scale: TargetScale) -> None:
    """Make ``model`` predict ``scale * score + offset`` instead of ``score`` (in place).

    ``score = sum(W h + b)`` over the embedding, so ``W, b -> scale W, scale b + offset / d``
    does it exactly. Checked on random input, so a tower that no longer ends in a linear layer
    fails loudly instead of predicting in the wrong units.
    """
    layer = _output_layer(model)
    model.eval()
    probe = torch.rand(4, 4, int(model.seq_len), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model.score(probe).double()
        layer.weight.mul_(scale.scale)
        if layer.bias is None:
            if scale.offset != 0.0:
                raise TypeError("the output layer has no bias to hold the target offset")
        else:
            layer.bias.mul_(scale.scale).add_(scale.offset / layer.out_features)
        after = model.score(probe).double()
    expected = before * scale.scale + scale.offset
    tolerance = 1e-4 * (float(expected.abs().max()) + scale.scale)
    if not torch.allclose(after, expected, rtol=0.0, atol=tolerance):
        raise RuntimeError(f"{type(model).__name__}: scaling the last linear layer did not scale "
                           "the prediction (the tower's output is no longer linear in it)")


def _fold_saved_model(directory: Path, scale: TargetScale) -> None:
    """Fold ``scale`` into a model directory written by training (weights, then model.json)."""
    model = load_model(directory)
    fold_output_scale(model, scale)
    with atomic_path(directory / WEIGHTS) as tmp:
        torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, tmp)
    info = json.loads((directory / MODEL_JSON).read_text())
    info.setdefault("provenance", {})["target_scale"] = {
        **scale.to_dict(), "folded": True,
        "note": "trained on (target - offset) / scale; the weights include the inverse, so "
                "predictions are in the table's units (history.tsv is in trained units)"}
    with atomic_open(directory / MODEL_JSON) as handle:
        json.dump(info, handle, indent=2)
        handle.write("\n")


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for array in arrays:
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _examples_arrays(examples: PairSet | SequenceSet) -> tuple[np.ndarray, ...]:
    if isinstance(examples, SequenceSet):
        return examples.idx, examples.target
    return examples.idx_a, examples.idx_b, examples.target


def _member_key(data_digest: str, kind: str, settings: TrainSettings, policy: LengthPolicy,
                sets: FoldSets, scale: TargetScale) -> str:
    fields = {k: v for k, v in settings.to_dict().items()
              if k not in ("num_threads", "require_gpu", "allow_cpu_fallback", "eval_batch_size")}
    text = json.dumps([data_digest, kind, fields, policy.to_dict(), scale.to_dict()],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode() + _digest(*_examples_arrays(sets.train),
                                                 *_examples_arrays(sets.val)).encode()).hexdigest()


def _finished(directory: Path, key: str) -> bool:
    if not (directory / MODEL_JSON).is_file():
        return False
    try:
        info = read_model_info(directory)
    except InputError:
        return False
    provenance = info.get("provenance", {})
    return (provenance.get("fit_key") == key and provenance.get("target_scale", {}).get("folded")
            is True and not (directory / CHECKPOINT).exists())


def train_member(data: FitData, sets: FoldSets, kind: str, settings: TrainSettings,
                 directory: Path, data_digest: str, provenance: dict[str, Any],
                 device: str | None, plots: bool, scale: TargetScale) -> None:
    """Train (or keep, when already trained from the same data and settings) one model.

    It trains on ``scale``'s standardised targets; the saved model predicts in the table's
    units. The checkpoint goes only once the scale is folded in, so a fit killed in between
    trains (resumes) that member again instead of keeping a model in the wrong units.
    """
    standardised = scale.standardised_sets(sets)
    key = _member_key(data_digest, kind, settings, data.policy, standardised, scale)
    if _finished(directory, key):
        log.info("%s: already trained, kept", directory)
        return
    train_fold(data.codes, standardised.train, standardised.val, settings, directory,
               model_kind=kind, device=device, progress=False, layout=None,
               provenance={**provenance, "fit_key": key},
               input_spec={k: v for k, v in data.policy.to_dict().items() if k != "length"},
               plots=plots)
    _fold_saved_model(directory, scale)
    (directory / CHECKPOINT).unlink(missing_ok=True)


KMER = "kmer"  # the k-mer baseline's member name and directory
KMER_SELECTION = "selection.tsv"


def fit_kmer_member(data: FitData, sets: FoldSets, settings: KmerSettings, directory: Path,
                    data_digest: str, provenance: dict[str, Any], source: PathLike | None
                    ) -> KmerRidge:
    """Fit (or keep, when fitted from the same data and settings) one fold's k-mer ridge.

    It sees what the networks see, in the table's units: the training set it is fitted on and
    the validation set its k and alpha are chosen on (single sequences, a pairs table's pairs,
    or the pairs drawn from a single table for a contrast model). Ridge predictions are linear
    in the targets and the choice is by Spearman, so standardising would change nothing.
    """
    digest = _digest(*_examples_arrays(sets.train), *_examples_arrays(sets.val))
    key = hashlib.sha256(json.dumps([data_digest, settings.to_dict(), digest],
                                    sort_keys=True).encode()).hexdigest()
    try:
        kept = json.loads((directory / KMER_JSON).read_text())
        if kept.get("provenance", {}).get("fit_key") == key:
            log.info("%s: already fitted, kept", directory)
            return KmerRidge.load(directory)
    except (OSError, ValueError, InputError):
        pass  # absent or unreadable: fit again
    try:
        if isinstance(sets.train, SequenceSet):
            assert isinstance(sets.val, SequenceSet)
            model, selection = fit_kmer_sequences(data.codes, sets.train, sets.val, settings)
        else:
            assert isinstance(sets.val, PairSet)
            model, selection = fit_kmer_pairs(data.codes, sets.train, sets.val, settings)
    except ValueError as err:
        raise InputError(source, f"k-mer baseline of {directory}: {err}") from None
    write_tsv(selection, directory / KMER_SELECTION, float_format="%.6g")
    model.save(directory, provenance={**provenance, "fit_key": key})
    return model


# ----------------------------------------------------------------------------------------------
# Predictions and metrics
# ----------------------------------------------------------------------------------------------
def _is_kmer(directory: Path) -> bool:
    return (directory / KMER_JSON).is_file()


def _predict_member_pairs(directory: Path, codes: np.ndarray, idx_a: np.ndarray,
                          idx_b: np.ndarray, batch_size: int, device: torch.device) -> np.ndarray:
    """Pair predictions of a network, seed ensemble or k-mer ridge directory."""
    if _is_kmer(directory):
        return KmerRidge.load(directory).predict_pairs(codes, idx_a, idx_b)
    return predict_pairs(load_model(directory, device), codes, idx_a, idx_b, batch_size, device)


def _predict_items(model_dir: Path, data: FitData, items: np.ndarray, batch_size: int,
                   device: torch.device) -> np.ndarray:
    if data.task == "pairs":
        assert data.idx_a is not None and data.idx_b is not None
        return _predict_member_pairs(model_dir, data.codes, data.idx_a[items], data.idx_b[items],
                                     batch_size, device)
    if _is_kmer(model_dir):
        return KmerRidge.load(model_dir).predict_sequences(data.codes, items)
    return predict_sequences(load_model(model_dir, device), data.codes, items, batch_size, device)


def _predict_pairs(model_dir: Path, codes: np.ndarray, pairs: PairSet, batch_size: int,
                   device: torch.device) -> np.ndarray:
    return _predict_member_pairs(model_dir, codes, pairs.idx_a, pairs.idx_b, batch_size, device)


def member_names(settings: FitSettings) -> list[str]:
    """Columns and members beside the ensemble: the seeds first (``members[0]`` is the control's
    twin: same seed), then the shuffled control and the k-mer baseline when on."""
    names = [f"seed_{s}" for s in settings.seeds]
    if settings.shuffled_control:
        names.append("shuffled")
    if settings.kmer_baseline:
        names.append(KMER)
    return names


# Below this many test items an identical ranking can happen by chance (1 in n!).
_MIN_ITEMS_FOR_RANKING = 8


def control_matches(model: np.ndarray, control: np.ndarray) -> bool:
    """Whether a control's test predictions are the model's: the same values, or (given enough
    items) the same ranking. Either way the labels did not reach the training (e.g. an MAE loss
    whose predictions all stayed below the targets), and a comparison would be meaningless."""
    model, control = np.asarray(model, np.float64), np.asarray(control, np.float64)
    spread = float(np.max(np.abs(model))) if model.size else 0.0
    if np.allclose(model, control, rtol=1e-5, atol=1e-6 * max(spread, 1e-12)):
        return True
    return model.size >= _MIN_ITEMS_FOR_RANKING and bool(
        np.array_equal(rankdata(model), rankdata(control)))


def level_metrics(target: np.ndarray, prediction: np.ndarray, level: str, model: str
                  ) -> dict[str, float]:
    """Metrics of one member at one level (see the module docstring)."""
    if level == "pair":
        return prediction_metrics(target, prediction, "plantt")
    metrics = {**regression_metrics(target, prediction), **{k: math.nan for k in SIGN_METRICS}}
    if model == "contrast":
        metrics["r2"] = metrics["mse"] = math.nan
    return metrics


def metrics_table(frames: dict[str, pd.DataFrame], members: list[str], model: str
                  ) -> pd.DataFrame:
    """One row per fold, level and member, from predictions tables (one per level)."""
    rows = []
    for level, frame in frames.items():
        for fold, part in frame.groupby("fold", sort=True):
            for member in ["ensemble", *members]:
                column = "prediction" if member == "ensemble" else f"prediction_{member}"
                metrics = level_metrics(part["target"].to_numpy(), part[column].to_numpy(), level,
                                        model)
                rows.append({"fold": fold, "level": level, "member": member,
                             **{k: metrics.get(k, math.nan) for k in ["n", *METRIC_COLUMNS]}})
    return pd.DataFrame(rows, columns=["fold", "level", "member", "n", *METRIC_COLUMNS])


def summary_table(per_fold: pd.DataFrame, frames: dict[str, pd.DataFrame], model: str
                  ) -> pd.DataFrame:
    """Mean and SD across folds, and the metric of all folds' predictions pooled."""
    summary = summarize_folds(per_fold, by=("level", "member"), metrics=METRIC_COLUMNS)
    pooled = []
    for row in summary.itertuples(index=False):
        if model == "contrast" and row.level == "sequence":
            pooled.append(math.nan)  # each fold's scores have their own offset
            continue
        frame = frames[row.level]
        column = "prediction" if row.member == "ensemble" else f"prediction_{row.member}"
        metrics = level_metrics(frame["target"].to_numpy(), frame[column].to_numpy(), row.level,
                                model)
        pooled.append(metrics.get(row.metric, math.nan))
    summary["pooled"] = pooled
    return summary


def _prediction_frame(ids: list[str], groups: np.ndarray, target: np.ndarray, fold: int,
                      items: np.ndarray, predictions: dict[str, np.ndarray], members: list[str]
                      ) -> pd.DataFrame:
    seeds = [m for m in members if m.startswith("seed_")]
    frame = pd.DataFrame({
        "fold": fold, "id": np.asarray(ids, dtype=object)[items], "group": groups[items],
        "target": target[items],
        "prediction": np.mean([predictions[m] for m in seeds], axis=0),
    })
    for member in members:
        frame[f"prediction_{member}"] = predictions[member]
    return frame


# ----------------------------------------------------------------------------------------------
# The whole fit
# ----------------------------------------------------------------------------------------------
@dataclass
class FitResult:
    outdir: Path
    predictions: pd.DataFrame
    metrics: pd.DataFrame
    summary: pd.DataFrame
    eval_metrics: pd.DataFrame | None


def run_fit(table: PathLike, task: str, outdir: PathLike, settings: FitSettings | None = None,
            values: PathLike | None = None, device: str | None = None) -> FitResult:
    """Cross-validate seed ensembles on ``table`` and write everything to ``outdir``."""
    settings = settings or FitSettings()
    threads = settings.train_settings(settings.seeds[0], "single").num_threads
    with _thread_count(threads):
        return _run_fit(table, task, outdir, settings, values, device)


@contextlib.contextmanager
def _thread_count(threads: int | None) -> Iterator[None]:
    """Torch's CPU threads for the whole fit (training sets them itself; prediction too then)."""
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _run_fit(table: PathLike, task: str, outdir: PathLike, settings: FitSettings,
             values: PathLike | None, device: str | None) -> FitResult:
    if task not in TASKS:
        raise InputError(None, f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    try:
        model = settings.model_for(task)
    except ValueError as err:
        raise InputError(None, str(err)) from None
    kind = "single" if model == "single" else "plantt"
    outdir = Path(outdir)
    start = time.monotonic()
    parsed = read_table(table, task, values)
    data = encode_table(parsed, settings.length_policy())
    check_learnable(parsed, data)
    log.info("%s: %d %s, %d distinct sequences, %d groups; length %s", table, len(data),
             "sequences" if task == "single" else "pairs", data.codes.shape[0],
             len(set(data.groups.tolist())), data.policy.describe())
    folds = make_folds(data.groups, settings.folds, settings.validation_fraction,
                       settings.split_seed, parsed.path)
    data_digest = _digest(data.codes, data.target, np.asarray(data.groups.astype(str)))
    members = member_names(settings)
    predict_device = resolve_device(device, allow_cpu_fallback=True)
    train_probe = settings.train_settings(settings.seeds[0], model)
    batch = train_probe.eval_batch_size
    frames: dict[str, list[pd.DataFrame]] = {"sequence" if task == "single" else "pair": []}
    if task == "single" and model == "contrast":
        frames["pair"] = []
    uncontrolled: list[int] = []  # folds whose control predicts what the model predicts
    for fold in range(settings.folds):
        fold_dir = outdir / f"fold_{fold}"
        sets = fold_sets(data, folds, fold, model, settings, shuffled=False)
        log.info("fold %d: %d training, %d validation, %d test examples", fold, len(sets.train),
                 len(sets.val), len(sets.test_items))
        # one standardisation per fold, from the real training targets: the control's permuted
        # targets are standardised identically
        scale = target_scale(sets.train, fold, parsed.path)
        for seed in settings.seeds:
            name = f"seed_{seed}"
            train_member(data, sets, kind, settings.train_settings(seed, model), fold_dir / name,
                         data_digest, {"fit": {"task": task, "model": model, "fold": fold,
                                               "member": name, "table": str(table)}},
                         device, settings.plots, scale)
        if settings.shuffled_control:
            control = fold_sets(data, folds, fold, model, settings, shuffled=True)
            train_member(data, control, kind, settings.train_settings(settings.seeds[0], model),
                         fold_dir / "shuffled", data_digest,
                         {"fit": {"task": task, "model": model, "fold": fold,
                                  "member": "shuffled", "table": str(table)}},
                         device, settings.plots, scale)
        if settings.kmer_baseline:
            fit_kmer_member(data, sets, settings.kmer_settings(data.codes.shape[1]),
                            fold_dir / KMER, data_digest,
                            {"fit": {"task": task, "model": model, "fold": fold, "member": KMER,
                                     "table": str(table)}}, parsed.path)
        save_ensemble(fold_dir, [fold_dir / f"seed_{s}" for s in settings.seeds],
                      {"fold": fold, "seeds": settings.seeds, "task": task, "model": model})
        level = "sequence" if task == "single" else "pair"
        predictions = {m: _predict_items(fold_dir / m, data, sets.test_items, batch,
                                         predict_device) for m in members}
        frame = _prediction_frame(data.ids, data.groups, data.target, fold, sets.test_items,
                                  predictions, members)
        write_tsv(frame, fold_dir / "predictions.tsv", float_format="%.6g")
        frames[level].append(frame)
        if settings.shuffled_control and control_matches(predictions[members[0]],
                                                         predictions["shuffled"]):
            uncontrolled.append(fold)
        if sets.test_pairs is not None:
            pair_pred = {m: _predict_pairs(fold_dir / m, data.codes, sets.test_pairs, batch,
                                           predict_device) for m in members}
            pair_frame = _pair_frame(data, fold, sets.test_pairs, pair_pred, members)
            write_tsv(pair_frame, fold_dir / "pair_predictions.tsv", float_format="%.6g")
            frames["pair"].append(pair_frame)
    joined = {level: pd.concat(parts, ignore_index=True) for level, parts in frames.items()}
    main_level = "sequence" if task == "single" else "pair"
    write_tsv(joined[main_level], outdir / "predictions.tsv", float_format="%.6g")
    if task == "single" and model == "contrast":
        write_tsv(joined["pair"], outdir / "pair_predictions.tsv", float_format="%.6g")
    if uncontrolled:
        for stale in ("metrics.tsv", "metrics_summary.tsv"):  # of an earlier run
            (outdir / stale).unlink(missing_ok=True)
        raise InputError(parsed.path, "the shuffled-label control did not control: in fold(s) "
                         f"{', '.join(map(str, uncontrolled))} its test predictions equal "
                         f"{members[0]}'s (the same values or the same ranking), so comparing "
                         "the model with it would be meaningless; the labels did not reach the "
                         "training (see the members' history.tsv and "
                         f"{outdir / 'predictions.tsv'}); no metrics were written")
    per_fold = metrics_table(joined, members, model)
    summary = summary_table(per_fold, joined, model)
    write_tsv(per_fold, outdir / "metrics.tsv", float_format="%.6g")
    write_tsv(summary, outdir / "metrics_summary.tsv", float_format="%.6g")
    member_dirs = [outdir / f"fold_{k}" / f"seed_{s}" for k in range(settings.folds)
                   for s in settings.seeds]
    save_ensemble(outdir / "model", member_dirs,
                  {"folds": settings.folds, "seeds": settings.seeds, "task": task, "model": model})
    eval_metrics = None
    if settings.eval_pairs:
        eval_metrics = evaluate_pairs(outdir, settings, data.policy, members, predict_device,
                                      batch)
    write_tsv(_folds_frame(data, folds), outdir / "folds.tsv")
    _write_fit_json(outdir, table, values, task, model, settings, data, time.monotonic() - start)
    for row in summary[(summary["metric"] == "spearman") & (summary["level"] == main_level)
                       ].itertuples(index=False):
        log.info("%s %s: Spearman %.3f ± %.3f across folds (pooled %.3f)", row.level, row.member,
                 row.mean, row.sd if np.isfinite(row.sd) else 0.0, row.pooled)
    return FitResult(outdir, joined[main_level], per_fold, summary, eval_metrics)


def _pair_frame(data: FitData, fold: int, pairs: PairSet, predictions: dict[str, np.ndarray],
                members: list[str]) -> pd.DataFrame:
    seeds = [m for m in members if m.startswith("seed_")]
    ids = np.asarray(data.ids, dtype=object)
    frame = pd.DataFrame({"fold": fold, "id_a": ids[pairs.idx_a], "id_b": ids[pairs.idx_b],
                          "group_a": data.groups[pairs.idx_a], "group_b": data.groups[pairs.idx_b],
                          "target": pairs.target.astype(np.float64),
                          "prediction": np.mean([predictions[m] for m in seeds], axis=0)})
    for member in members:
        frame[f"prediction_{member}"] = predictions[member]
    return frame


def evaluate_pairs(outdir: Path, settings: FitSettings, policy: LengthPolicy, members: list[str],
                   device: torch.device, batch_size: int) -> pd.DataFrame:
    """Every fold's members and ensemble, and ``model/``, on the ``eval_pairs`` table."""
    assert settings.eval_pairs is not None
    table = read_table(settings.eval_pairs, "pairs")
    assert isinstance(table, PairTable)
    codes_a = encode_fixed(table.sequence_a, policy, table.path, table.lines)
    codes_b = encode_fixed(table.sequence_b, policy, table.path, table.lines)
    codes = np.concatenate([codes_a, codes_b])
    n = len(table)
    idx_a, idx_b = np.arange(n), np.arange(n, 2 * n)
    frame = pd.DataFrame({"id": table.ids, "group": table.groups or [""] * n,
                          "target": table.target})
    rows = []

    def score(name: str, fold: str, member: str, directory: Path) -> np.ndarray:
        prediction = _predict_member_pairs(directory, codes, idx_a, idx_b, batch_size, device)
        metrics = prediction_metrics(table.target, prediction, "plantt")
        rows.append({"fold": fold, "member": member,
                     **{k: metrics.get(k, math.nan) for k in ["n", *METRIC_COLUMNS]}})
        frame[name] = prediction
        return prediction

    score("prediction", "all", "ensemble", outdir / "model")
    for fold in range(settings.folds):
        fold_dir = outdir / f"fold_{fold}"
        score(f"prediction_fold_{fold}", str(fold), "ensemble", fold_dir)
        for member in members:
            score(f"prediction_fold_{fold}_{member}", str(fold), member, fold_dir / member)
    metrics = pd.DataFrame(rows, columns=["fold", "member", "n", *METRIC_COLUMNS])
    write_tsv(frame, outdir / "eval_pairs_predictions.tsv", float_format="%.6g")
    write_tsv(metrics, outdir / "eval_pairs_metrics.tsv", float_format="%.6g")
    best = metrics[(metrics["fold"] == "all")].iloc[0]
    log.info("%s: Spearman %.3f, balanced accuracy %.3f (all folds' ensemble)",
             settings.eval_pairs, best["spearman"], best["balanced_accuracy"])
    return metrics


def _folds_frame(data: FitData, folds: Folds) -> pd.DataFrame:
    frame = pd.DataFrame({"id": data.ids, "group": data.groups, "test_fold": folds.test_fold})
    for fold in range(folds.n_folds):
        sets = np.full(len(data), "train", dtype=object)
        sets[folds.validation[:, fold]] = "validation"
        sets[folds.test_fold == fold] = "test"
        frame[f"set_fold_{fold}"] = sets
    return frame


def _write_fit_json(outdir: Path, table: PathLike, values: PathLike | None, task: str,
                    model: str, settings: FitSettings, data: FitData, seconds: float) -> None:
    info = {
        "plantt_version": __version__, "torch_version": torch.__version__,
        "table": str(table), "values": str(values) if values is not None else None,
        "task": task, "model": model, "items": len(data), "sequences": int(data.codes.shape[0]),
        "groups": len(set(data.groups.tolist())), "length_policy": data.policy.to_dict(),
        "settings": settings.to_dict(), "seconds": round(seconds, 1),
    }
    with atomic_open(outdir / "fit.json") as handle:
        json.dump(info, handle, indent=2)
        handle.write("\n")


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def load_fit_settings(config: PathLike | dict[str, Any] | None,
                      overrides: dict[str, Any] | None = None) -> FitSettings:
    """Settings from a YAML file (or mapping) plus overrides, with errors naming the source."""
    values: dict[str, Any] = {}
    source = None
    if isinstance(config, dict):
        values = dict(config)
    elif config is not None:
        source = config
        try:
            with open(config) as handle:
                loaded = yaml.safe_load(handle) or {}
        except FileNotFoundError:
            raise InputError(config, "file not found") from None
        except yaml.YAMLError as err:
            raise InputError(config, f"invalid YAML ({err})") from None
        if not isinstance(loaded, dict):
            raise InputError(config, "expected a mapping of fit settings")
        values = loaded
    train = {**values.get("train", {}), **(overrides or {}).get("train", {})}
    values.update({k: v for k, v in (overrides or {}).items() if k != "train"})
    if train:
        values["train"] = train
    try:
        return FitSettings.from_dict(values)
    except (TypeError, ValueError) as err:
        raise InputError(source, f"fit settings: {err}") from None


def run_command(args: argparse.Namespace) -> int:
    try:
        overrides: dict[str, Any] = json.loads(args.set) if args.set else {}
    except json.JSONDecodeError as err:
        raise InputError(None, f"--set is not valid JSON ({err.msg})") from None
    if not isinstance(overrides, dict):
        raise InputError(None, "--set must be a JSON object, e.g. '{\"folds\": 3}'")
    if args.eval_pairs:
        overrides["eval_pairs"] = args.eval_pairs
    settings = load_fit_settings(args.config, overrides)
    run_fit(args.table, args.task, args.out, settings, args.values, args.device)
    return 0
