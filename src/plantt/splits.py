"""Orthogroup-guided, label-stratified, sign-balanced cross-validation folds (the paper's 3.1.2).

Pairs of one orthogroup share genes, so folds are drawn over orthogroups, never over pairs: an
orthogroup's pairs all sit in the same set of a fold. Within each species-set label (``{M,V}``...)
the orthogroups are shuffled and dealt round-robin to the test sets of the folds, so each orthogroup
is test in exactly one fold and every label is spread over the folds to within one orthogroup.
Validation takes a fraction of the remaining orthogroups by systematic sampling over the same
label-grouped order (again within one orthogroup of the exact fraction per label); the rest is train.

Each set of each fold is then balanced in sign: randomly chosen pairs of the over-represented sign
are flipped, ``(a, b, d) -> (b, a, -d)`` with every ``*_a``/``*_b`` column swapped, until the
positive and negative counts differ by at most one. Pairs with d = 0 have no sign and are left as
they are. One ``numpy.random.Generator`` seeded once drives every choice, so a seed fixes the folds.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from plantt.io import InputError, PathLike, get_logger, read_tsv, write_tsv

log = get_logger("splits")

SETS = ("train", "validation", "test")
DEFAULT_FOLDS = 5
DEFAULT_VALIDATION_FRACTION = 0.1
SPLIT_COLUMNS = ["fold", "set", "flipped"]


def orthogroup_table(labels: pd.DataFrame, path: PathLike | None = None) -> pd.DataFrame:
    """One row per orthogroup with its label, sorted by orthogroup id (row order must not matter)."""
    table = labels[["orthogroup", "label"]].drop_duplicates()
    clash = table["orthogroup"].duplicated(keep=False)
    if clash.any():
        og = table.loc[clash, "orthogroup"].iloc[0]
        found = sorted(table.loc[table["orthogroup"] == og, "label"].astype(str))
        raise InputError(path, f"orthogroup has several labels: {', '.join(found)}", record=og)
    return table.sort_values("orthogroup", kind="stable").reset_index(drop=True)


def _label_grouped_order(labels: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """Positions of ``labels`` grouped by label (sorted), shuffled within each label."""
    order = []
    for label in sorted(labels.unique()):
        members = np.flatnonzero(labels.to_numpy() == label)
        order.append(rng.permutation(members))
    return np.concatenate(order) if order else np.zeros(0, dtype=np.int64)


def assign_test_folds(labels: pd.Series, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold (0..folds-1) in whose test set each orthogroup lies, stratified by label.

    Dealing the label-grouped order round-robin from a random start puts each label's orthogroups
    (a consecutive run) in the folds evenly, to within one, and the fold sizes to within one too.
    """
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    order = _label_grouped_order(labels, rng)
    start = int(rng.integers(folds))
    fold = np.empty(len(labels), dtype=np.int64)
    fold[order] = (start + np.arange(len(order))) % folds
    return fold


def systematic_sample(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask choosing about ``fraction * n`` of ``n`` ordered items, evenly spread.

    Item i is chosen when ``floor(u + (i+1) f)`` exceeds ``floor(u + i f)`` (u uniform in [0,1)),
    so every run of m consecutive items holds floor(m f) or ceil(m f) chosen items.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    u = rng.random()
    steps = np.floor(u + np.arange(n + 1) * fraction)
    return np.diff(steps) > 0


def choose_validation(labels: pd.Series, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Mask of the orthogroups (given by their labels) that go to validation, stratified by label."""
    order = _label_grouped_order(labels, rng)
    chosen = np.zeros(len(labels), dtype=bool)
    chosen[order] = systematic_sample(len(order), fraction, rng)
    return chosen


def swap_columns(columns: list[str]) -> dict[str, str]:
    """``{x_a: x_b, x_b: x_a}`` for every column present with both suffixes."""
    mapping = {}
    for column in columns:
        if column.endswith("_a") and f"{column[:-2]}_b" in columns:
            mapping[column] = f"{column[:-2]}_b"
            mapping[f"{column[:-2]}_b"] = column
    return mapping


def flip_pairs(pairs: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """Swap a and b (all ``*_a``/``*_b`` columns) and negate ``d`` on the rows in ``mask``."""
    mask = np.asarray(mask, dtype=bool)
    swap = swap_columns(list(pairs.columns))
    columns = {}
    for column in pairs.columns:
        values = pairs[column]
        if column in swap:
            other = pairs[swap[column]].to_numpy()
            values = pd.Series(np.where(mask, other, values.to_numpy()), index=pairs.index,
                               dtype=values.dtype)
        elif column == "d":
            d = values.to_numpy()
            values = pd.Series(np.where(mask, -d, d), index=pairs.index, dtype=values.dtype)
        columns[column] = values
    return pd.DataFrame(columns, index=pairs.index)


def balance_mask(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows to flip so that positive and negative ``d`` counts differ by at most one."""
    d = np.asarray(d, dtype=float)
    positive, negative = np.flatnonzero(d > 0), np.flatnonzero(d < 0)
    major = positive if len(positive) > len(negative) else negative
    excess = abs(len(positive) - len(negative)) // 2
    mask = np.zeros(len(d), dtype=bool)
    mask[rng.choice(major, size=excess, replace=False)] = True
    return mask


def make_splits(labels: pd.DataFrame, folds: int = DEFAULT_FOLDS,
                validation_fraction: float = DEFAULT_VALIDATION_FRACTION, seed: int = 0,
                path: PathLike | None = None) -> pd.DataFrame:
    """All folds: one row per (pair, fold) with ``fold``, ``set`` and ``flipped`` added."""
    rng = np.random.default_rng(seed)
    groups = orthogroup_table(labels, path)
    test_fold = assign_test_folds(groups["label"], folds, rng)
    if len(groups) < folds:
        log.warning("only %d orthogroups for %d folds: some test sets are empty",
                    len(groups), folds)
    row_group = pd.Index(groups["orthogroup"]).get_indexer(labels["orthogroup"])
    d = labels["d"].to_numpy(dtype=float)
    set_parts, flip_parts = [], []
    for fold in range(folds):
        sets = np.full(len(groups), "train", dtype=object)
        sets[test_fold == fold] = "test"
        rest = np.flatnonzero(test_fold != fold)
        validation = choose_validation(groups["label"].iloc[rest].reset_index(drop=True),
                                       validation_fraction, rng)
        sets[rest[validation]] = "validation"
        row_sets = sets[row_group]
        flip = np.zeros(len(labels), dtype=bool)
        for name in SETS:
            in_set = np.flatnonzero(row_sets == name)
            flip[in_set[balance_mask(d[in_set], rng)]] = True
        set_parts.append(row_sets)
        flip_parts.append(flip)
    flip_all = np.concatenate(flip_parts)
    out = labels.iloc[np.tile(np.arange(len(labels)), folds)].reset_index(drop=True)
    out = flip_pairs(out, flip_all)
    out["fold"] = np.repeat(np.arange(folds), len(labels))
    out["set"] = np.concatenate(set_parts)
    out["flipped"] = flip_all
    return out[list(labels.columns) + SPLIT_COLUMNS]


def split_summary(splits: pd.DataFrame) -> pd.DataFrame:
    """Pairs and orthogroups per fold, set, label and sign of d."""
    sign = np.select([splits["d"] > 0, splits["d"] < 0], ["positive", "negative"], "zero")
    keyed = splits.assign(sign=sign)
    pairs = keyed.groupby(["fold", "set", "label", "sign"]).size().rename("pairs")
    groups = keyed.groupby(["fold", "set", "label"])["orthogroup"].nunique().rename("orthogroups")
    summary = pairs.reset_index().merge(groups.reset_index(), on=["fold", "set", "label"])
    set_rank = {name: i for i, name in enumerate(SETS)}
    return (summary.sort_values(["fold", "set", "label", "sign"],
                                key=lambda c: c.map(set_rank) if c.name == "set" else c)
            .reset_index(drop=True))


def run(args: argparse.Namespace) -> int:
    labels = read_tsv(args.labels, required=["orthogroup", "label", "gene_a", "species_a",
                                             "gene_b", "species_b", "d"],
                      dtype={"orthogroup": str, "label": str, "gene_a": str, "gene_b": str,
                             "species_a": str, "species_b": str})
    if labels["d"].isna().any():
        line = int(np.flatnonzero(labels["d"].isna().to_numpy())[0]) + 2
        raise InputError(args.labels, "d is missing", line=line)
    if not 0 <= args.validation_fraction < 1:
        raise InputError(None, f"--validation-fraction must be in [0, 1), got "
                               f"{args.validation_fraction}")
    if args.folds < 2:
        raise InputError(None, f"--folds must be >= 2, got {args.folds}")
    splits = make_splits(labels, args.folds, args.validation_fraction, args.seed, args.labels)
    write_tsv(splits, args.out)
    summary = split_summary(splits)
    for (fold, name), sub in summary.groupby(["fold", "set"], sort=False):
        log.info("fold %d %s: %d orthogroups, %d pairs (%d positive, %d negative)", fold, name,
                 sub.drop_duplicates("label")["orthogroups"].sum(), sub["pairs"].sum(),
                 sub.loc[sub["sign"] == "positive", "pairs"].sum(),
                 sub.loc[sub["sign"] == "negative", "pairs"].sum())
    if args.summary:
        write_tsv(summary, args.summary)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "splits", help="orthogroup-guided cross-validation folds",
        description="Deal orthogroups to folds stratified by species-set label, pick a "
                    "stratified validation fraction, and balance the sign of d in every set.")
    parser.add_argument("--labels", required=True, help="labels TSV from 'plantt labels'")
    parser.add_argument("--out", required=True, help="splits TSV: one row per (pair, fold)")
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="default %(default)s")
    parser.add_argument("--validation-fraction", type=float, default=DEFAULT_VALIDATION_FRACTION,
                        help="fraction of the non-test orthogroups used for validation "
                             "(default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="default %(default)s")
    parser.add_argument("--summary", help="counts per fold, set, label and sign (TSV)")
    parser.set_defaults(func=run)
