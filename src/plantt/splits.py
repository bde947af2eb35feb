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

Several assays share one fold assignment (``plantt splits --shared-with``, as the workflow does):
the test folds are dealt over the union of the assays' orthogroups, so an orthogroup dropped from
one assay's labels (a pair without reads) moves no other orthogroup, and each orthogroup has the
same test fold in every assay. (Validation sets are drawn over the union too, but after the
previous fold's sign balancing, which depends on the assay's own pairs: they may differ between
assays, which leaks nothing.) Sequential training (fold k of one assay
starting from fold k of another, the paper's Table 2) relies on it: the source model never saw
the target fold's test orthogroups.

Why not scikit-learn's ``StratifiedGroupKFold``: it stratifies a class label within groups, but
has no validation set drawn from the same groups, no sign balancing by flipping pairs, and no fold
assignment shared across assays that lack some groups; its greedy assignment also differs between
versions. The round-robin deal above is short, exact and pinned by ``tests/test_splits.py``.

The labels table (from ``plantt labels``) must give every pair non-empty ids and a finite d:
``plantt labels`` drops pairs whose d is undefined (zero pooled SD), so a missing, NaN, infinite or
text d here is an :class:`~plantt.io.InputError` naming the line and the pair, never a fold trained
on ``inf``. The splits table read back by :func:`plantt.dataset.read_splits` is checked the same way
(:func:`check_splits_table`), with ``fold`` a non-negative integer and ``set`` one of :data:`SETS`.
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
ID_COLUMNS = ["orthogroup", "label", "gene_a", "species_a", "gene_b", "species_b"]
STAT_COLUMNS = [f"{stat}_{side}" for side in "ab" for stat in ("mean", "sd", "n")]


def _pair_name(row: pd.Series) -> str:
    return f"{row.get('species_a')}/{row.get('gene_a')} vs {row.get('species_b')}/{row.get('gene_b')}"


def _line(table: pd.DataFrame, position: int, path: PathLike | None) -> int | None:
    """File line of a row of a table read with :func:`read_labels` or ``read_splits`` (whose
    index is the data row number, blank lines included), or None for an in-memory table."""
    if path is None:
        return None
    return int(table.index[position]) + 2


def finite_d(table: pd.DataFrame, path: PathLike | None = None, lines: bool = True) -> np.ndarray:
    """Column ``d`` as floats; a missing, NaN, infinite or non-numeric d is an InputError naming
    the pair (and the line, when ``path`` is given and ``lines`` is true)."""
    raw = table["d"]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        i = int(bad[0])
        cell = raw.iloc[i]
        text = "" if pd.isna(cell) else str(cell).strip()
        if not text:
            problem = "d is missing, expected a finite number"
        elif np.isnan(values[i]):
            try:
                float(text)
                problem = f"d is {text!r} (not a number), expected a finite number"
            except ValueError:
                problem = f"d {text!r} is not a number"
        else:
            problem = (f"d is {text!r} (infinite), expected a finite number; 'plantt labels' "
                       "drops pairs without a finite d")
        raise InputError(path, problem, line=_line(table, i, path) if lines else None,
                         record=_pair_name(table.iloc[i]))
    return values


def _check_ids(table: pd.DataFrame, columns: list[str], path: PathLike | None) -> None:
    for column in columns:
        if column not in table.columns:
            continue
        # a plain loop: pandas string methods cost more than the check on small tables
        empty = [i for i, v in enumerate(table[column].to_numpy(dtype=object))
                 if not isinstance(v, str) or not v.strip()]
        if empty:
            i = empty[0]
            raise InputError(path, f"{column} is empty", line=_line(table, i, path),
                             record=_pair_name(table.iloc[i]))


def _read_pair_table(path: PathLike, required: list[str], dtype: dict[str, type]) -> pd.DataFrame:
    # Only empty cells are missing (a gene may be called "NA"); blank lines are kept while reading
    # and then dropped, so that the index + 2 of a row is its line in the file.
    table = read_tsv(path, required=required, dtype=dtype, keep_default_na=False, na_values=[""],
                     skip_blank_lines=False)
    return table.dropna(how="all")


def read_labels(path: PathLike) -> pd.DataFrame:
    """The labels table of ``plantt labels``: ids as strings, ``d`` as finite floats.

    Any bad value is an InputError naming the line (see the module docstring).
    """
    table = _read_pair_table(path, ID_COLUMNS + ["d"], {c: str for c in ID_COLUMNS})
    _check_ids(table, ID_COLUMNS, path)
    for column in STAT_COLUMNS:
        if column not in table.columns or table[column].dtype.kind in "fiu":
            continue  # absent, or read as numbers already
        # passed through (and swapped on a flip): numbers, or empty (an SD of one replicate)
        text = table[column].notna() & pd.to_numeric(table[column], errors="coerce").isna()
        if text.any():
            i = int(np.flatnonzero(text.to_numpy())[0])
            raise InputError(path, f"{column} {str(table[column].iloc[i])!r} is not a number",
                             line=_line(table, i, path), record=_pair_name(table.iloc[i]))
        table[column] = pd.to_numeric(table[column])
    table["d"] = finite_d(table, path)
    return table.reset_index(drop=True)


def check_splits_table(table: pd.DataFrame, path: PathLike | None = None) -> pd.DataFrame:
    """Validate a splits table as read by ``plantt.dataset.read_splits``; returns it with ``d``
    as floats, ``fold`` as int64 and a fresh index. Bad values are InputErrors with the line."""
    table = table.dropna(how="all")
    _check_ids(table, [c for c in ID_COLUMNS if c != "label"] + ["set"], path)
    table = table.assign(d=finite_d(table, path))
    fold = pd.to_numeric(table["fold"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(fold) | (fold < 0) | (fold != np.floor(fold))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(path, f"fold {str(table['fold'].iloc[i])!r} is not a non-negative integer",
                         line=_line(table, i, path), record=_pair_name(table.iloc[i]))
    unknown = ~table["set"].isin(SETS).to_numpy()
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise InputError(path, f"set {table['set'].iloc[i]!r} is not one of {', '.join(SETS)}",
                         line=_line(table, i, path), record=_pair_name(table.iloc[i]))
    return table.assign(fold=fold.astype(np.int64)).reset_index(drop=True)


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
            other = pairs[swap[column]]
            # The two sides may differ in dtype (an int n_a, a float n_b): keep what fits both.
            if other.dtype == values.dtype:
                dtype = values.dtype
            else:
                try:
                    dtype = np.result_type(values.dtype, other.dtype)
                except TypeError:
                    dtype = np.dtype(object)
            values = pd.Series(np.where(mask, other.to_numpy(), values.to_numpy()),
                               index=pairs.index, dtype=dtype)
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


def shared_orthogroups(tables: list[pd.DataFrame], paths: list[PathLike | None] | None = None
                       ) -> pd.DataFrame:
    """The union of the orthogroups (with their labels) of several assays' label tables, the
    set every assay's folds are dealt over (:func:`make_splits` ``orthogroups``), so that an
    orthogroup is in the same fold's test set in every assay; an orthogroup labelled differently
    in two tables is an InputError."""
    paths = list(paths) if paths is not None else [None] * len(tables)
    parts = [table[["orthogroup", "label"]].assign(source=str(path))
             for table, path in zip(tables, paths, strict=True)]
    union = pd.concat(parts, ignore_index=True).drop_duplicates(["orthogroup", "label"])
    clash = union["orthogroup"].duplicated(keep=False)
    if clash.any():
        og = union.loc[clash, "orthogroup"].iloc[0]
        found = union.loc[union["orthogroup"] == og]
        raise InputError(found["source"].iloc[-1], "orthogroup labelled "
                         + " and ".join(f"{row.label} (in {row.source})"
                                        for row in found.itertuples())
                         + "; the assays' label tables must come from the same ortholog pairs",
                         record=og)
    return orthogroup_table(union.drop(columns="source"))


def make_splits(labels: pd.DataFrame, folds: int = DEFAULT_FOLDS,
                validation_fraction: float = DEFAULT_VALIDATION_FRACTION, seed: int = 0,
                path: PathLike | None = None, orthogroups: pd.DataFrame | None = None
                ) -> pd.DataFrame:
    """All folds: one row per (pair, fold) with ``fold``, ``set`` and ``flipped`` added.

    ``orthogroups`` (``orthogroup``, ``label``; :func:`shared_orthogroups`): deal the folds over
    these orthogroups instead of those of ``labels`` alone, so that every assay split with the
    same table and seed puts each orthogroup in the same fold's test set, whichever pairs one
    assay has dropped. Signs are balanced over ``labels``' own pairs. With the orthogroups of
    ``labels`` themselves the result is the same as without.
    """
    rng = np.random.default_rng(seed)
    groups = orthogroup_table(labels, path)
    if orthogroups is not None:
        missing = sorted(set(groups["orthogroup"]) - set(orthogroups["orthogroup"]))
        if missing:
            raise InputError(path, f"{len(missing)} orthogroup(s) missing from the shared fold "
                                   f"assignment: {', '.join(map(str, missing[:5]))}",
                             record=missing[0])
        groups = orthogroup_table(orthogroups)
    test_fold = assign_test_folds(groups["label"], folds, rng)
    if len(groups) < folds:
        log.warning("only %d orthogroups for %d folds: some test sets are empty",
                    len(groups), folds)
    row_group = pd.Index(groups["orthogroup"]).get_indexer(labels["orthogroup"])
    # In-memory tables have no lines; read_labels has already named the line of a file's bad d.
    d = finite_d(labels, path, lines=False)
    labels = labels.assign(d=d)  # numeric text in an in-memory table is negated as a number
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
    labels = read_labels(args.labels)
    if not 0 <= args.validation_fraction < 1:
        raise InputError(None, f"--validation-fraction must be in [0, 1), got "
                               f"{args.validation_fraction}")
    if args.folds < 2:
        raise InputError(None, f"--folds must be >= 2, got {args.folds}")
    shared = None
    if args.shared_with:
        shared = shared_orthogroups([labels] + [read_labels(other) for other in args.shared_with],
                                    [args.labels, *args.shared_with])
    splits = make_splits(labels, args.folds, args.validation_fraction, args.seed, args.labels,
                         orthogroups=shared)
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
    parser.add_argument("--shared-with", nargs="+", metavar="LABELS",
                        help="the other assays' labels TSVs: folds are dealt over the union of "
                             "the orthogroups, so that each orthogroup has the same test fold in "
                             "every assay split with these tables and seed (needed for "
                             "sequential training across assays)")
    parser.set_defaults(func=run)
