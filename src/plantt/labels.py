"""Regression targets: Cohen's d between the two genes of each ortholog pair (the paper's 3.1.1).

``d = (mean_a - mean_b) / s_pooled`` with
``s_pooled = sqrt(((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2))``, the SDs having ddof=1.
Means and SDs are recomputed from the replicate columns of the expression tables in the chosen unit,
after an optional per-replicate ``log2(x + pseudocount)``, so the transform acts on each measurement
and not on the summary. Replicate counts may differ between species (6 vs 3 in the paper's assays);
a gene measured once contributes no degrees of freedom to the pooled SD.

Pairs whose pooled SD is zero (both genes constant, usually both unexpressed) or undefined have no
finite d and are dropped; so are the (only theoretical) pairs whose d overflows to infinity. Pairs
with a gene absent from the tables are dropped too; both are counted in the log. The labels table
therefore only ever holds finite d, which ``plantt splits`` relies on.

Replicate cells must be numbers: an empty cell (or ``NA``/``NaN``) means "no such replicate" for that
gene, while text or an infinite value is an :class:`~plantt.io.InputError` naming the line.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from plantt.io import InputError, PathLike, get_logger, read_tsv, write_tsv

log = get_logger("labels")

EXPRESSION_COLUMNS = ["gene_id", "species", "assay", "unit", "n", "mean", "sd"]
REPLICATE_COLUMN = re.compile(r"^rep_\d+$")
TRANSFORMS = ("none", "log2")
STAT_COLUMNS = ["mean", "sd", "n"]
LABEL_COLUMNS = ["assay", "unit", "transform", "mean_a", "sd_a", "n_a", "mean_b", "sd_b", "n_b",
                 "d"]


def pooled_sd(sd_a, n_a, sd_b, n_b) -> np.ndarray:
    """Pooled standard deviation; NaN where it has no degrees of freedom (n_a + n_b <= 2)."""
    sd_a, n_a, sd_b, n_b = (np.asarray(x, dtype=float) for x in (sd_a, n_a, sd_b, n_b))
    with np.errstate(invalid="ignore", divide="ignore"):
        ss_a = np.where(n_a > 1, (n_a - 1) * sd_a**2, 0.0)
        ss_b = np.where(n_b > 1, (n_b - 1) * sd_b**2, 0.0)
        dof = n_a + n_b - 2
        return np.where(dof > 0, np.sqrt((ss_a + ss_b) / np.where(dof > 0, dof, 1)), np.nan)


def cohens_d(mean_a, sd_a, n_a, mean_b, sd_b, n_b) -> np.ndarray:
    """Cohen's d of a over b, element-wise; NaN where the pooled SD is zero or undefined."""
    s_pooled = pooled_sd(sd_a, n_a, sd_b, n_b)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        diff = np.asarray(mean_a, dtype=float) - np.asarray(mean_b, dtype=float)
        d = np.where(s_pooled > 0, diff / np.where(s_pooled > 0, s_pooled, 1.0), np.nan)
    # A huge mean difference over a tiny SD can overflow: no finite d is no label either.
    return np.where(np.isfinite(d), d, np.nan)


def replicate_stats(values: np.ndarray, transform: str = "none",
                    pseudocount: float = 1.0) -> pd.DataFrame:
    """Mean, SD (ddof=1) and n of each row of a (genes x replicates) matrix; NaN = no replicate."""
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    values = np.asarray(values, dtype=float)
    if transform == "log2":
        values = np.log2(values + pseudocount)
    present = ~np.isnan(values)
    n = present.sum(axis=1)
    filled = np.where(present, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=1) / n
        sq = np.where(present, (values - mean[:, None]) ** 2, 0.0).sum(axis=1)
        sd = np.where(n > 1, np.sqrt(sq / np.maximum(n - 1, 1)), np.nan)
    return pd.DataFrame({"mean": mean, "sd": sd, "n": n})


def _is_nan_text(cell: object) -> bool:
    try:
        return bool(np.isnan(float(str(cell))))
    except ValueError:
        return False


def _replicate_values(rows: pd.DataFrame, reps: list[str], path: PathLike) -> np.ndarray:
    """The rep_* cells as floats (NaN = no replicate); text or infinity is an InputError."""
    raw = rows[reps]
    values = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    candidates = np.argwhere((np.isnan(values) & raw.notna().to_numpy()) | np.isinf(values))
    for i, j in candidates:
        cell = raw.iloc[i, j]
        if np.isnan(values[i, j]) and _is_nan_text(cell):
            continue  # "nan" spelt out is no replicate, like an empty cell
        kind = "is infinite" if np.isinf(values[i, j]) else "is not a number"
        raise InputError(path, f"column {reps[j]}: {str(cell)!r} {kind}, expected an expression "
                               "value (empty = no replicate)",
                         line=int(rows.index[i]) + 2, record=rows["gene_id"].iloc[i])
    return values


def read_expression(paths: Sequence[PathLike], assay: str, unit: str, transform: str,
                    pseudocount: float) -> pd.DataFrame:
    """Per-gene stats of ``assay`` in ``unit`` from all tables, indexed by (species, gene_id)."""
    frames = []
    for path in paths:
        # Blank lines kept while reading (all-NaN rows, dropped) so that index + 2 is the line.
        table = read_tsv(path, required=EXPRESSION_COLUMNS,
                         dtype={"gene_id": str, "species": str, "assay": str, "unit": str},
                         skip_blank_lines=False)
        table = table.dropna(how="all")
        reps = [c for c in table.columns if REPLICATE_COLUMN.match(str(c))]
        if not reps:
            raise InputError(path, "no replicate columns (rep_1, rep_2, ...)", line=1)
        rows = table[(table["assay"] == assay) & (table["unit"] == unit)]
        if rows.empty:
            log.warning("%s has no rows of assay %r in unit %r", path, assay, unit)
            continue
        values = _replicate_values(rows, reps, path)
        if (values < 0).any() and transform == "log2":
            bad = int(np.argwhere(values < 0)[0, 0])
            raise InputError(path, "negative expression value cannot be log-transformed",
                             line=int(rows.index[bad]) + 2, record=rows["gene_id"].iloc[bad])
        stats = replicate_stats(values, transform, pseudocount)
        declared = pd.to_numeric(rows["n"], errors="coerce").to_numpy()
        mismatch = np.flatnonzero(declared != stats["n"].to_numpy())
        if len(mismatch):
            i = int(mismatch[0])
            raise InputError(path, f"column n says {rows['n'].iloc[i]} replicates but "
                                   f"{stats['n'].iloc[i]} rep_* values are present",
                             line=int(rows.index[i]) + 2, record=rows["gene_id"].iloc[i])
        stats.insert(0, "species", rows["species"].to_numpy())
        stats.insert(1, "gene_id", rows["gene_id"].to_numpy())
        stats["_source"] = str(path)
        stats["_line"] = rows.index.to_numpy() + 2
        frames.append(stats)
    if not frames:
        raise InputError(paths[0] if paths else None,
                         f"no expression rows of assay {assay!r} in unit {unit!r} in any table")
    expression = pd.concat(frames, ignore_index=True)
    dup = expression.duplicated(["species", "gene_id"])
    if dup.any():
        row = expression[dup].iloc[0]
        raise InputError(row["_source"], f"gene appears twice for assay {assay!r}, unit {unit!r}",
                         line=int(row["_line"]), record=f"{row['species']}/{row['gene_id']}")
    return expression.drop(columns=["_source", "_line"]).set_index(["species", "gene_id"])


def _side_stats(pairs: pd.DataFrame, expression: pd.DataFrame, side: str) -> pd.DataFrame:
    keys = pd.MultiIndex.from_arrays([pairs[f"species_{side}"], pairs[f"gene_{side}"]])
    stats = expression.reindex(keys)[STAT_COLUMNS]
    stats.columns = [f"{c}_{side}" for c in STAT_COLUMNS]
    return stats.set_index(pairs.index)


def label_pairs(pairs: pd.DataFrame, expression: pd.DataFrame, assay: str, unit: str,
                transform: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Pairs with their Cohen's d; returns (labelled pairs, counts of what was dropped)."""
    stats_a = _side_stats(pairs, expression, "a")
    stats_b = _side_stats(pairs, expression, "b")
    missing_a, missing_b = stats_a["n_a"].isna(), stats_b["n_b"].isna()
    counts: dict[str, int] = {"pairs": len(pairs)}
    missing_genes = pd.concat([
        pairs.loc[missing_a, ["species_a", "gene_a"]].set_axis(["species", "gene_id"], axis=1),
        pairs.loc[missing_b, ["species_b", "gene_b"]].set_axis(["species", "gene_id"], axis=1),
    ]).drop_duplicates()
    for species, genes in missing_genes.groupby("species")["gene_id"]:
        log.warning("species %s: %d gene(s) of the pairs have no %s %s expression, e.g. %s",
                    species, len(genes), assay, unit, ", ".join(genes.head(5)))
        counts[f"missing_genes_{species}"] = len(genes)
    out = pd.concat([pairs, stats_a, stats_b], axis=1)
    out = out[~(missing_a | missing_b)].copy()
    counts["missing_expression"] = int((missing_a | missing_b).sum())
    out["d"] = cohens_d(out["mean_a"], out["sd_a"], out["n_a"], out["mean_b"], out["sd_b"],
                        out["n_b"])
    undefined = out["d"].isna()
    counts["zero_pooled_sd"] = int(undefined.sum())
    out = out[~undefined].copy()
    out["assay"], out["unit"], out["transform"] = assay, unit, transform
    out[["n_a", "n_b"]] = out[["n_a", "n_b"]].astype(int)
    counts["labelled"] = len(out)
    log.info("%d pairs: %d lack expression for a gene, %d have a zero pooled SD, %d labelled",
             counts["pairs"], counts["missing_expression"], counts["zero_pooled_sd"],
             counts["labelled"])
    return out[list(pairs.columns) + LABEL_COLUMNS].reset_index(drop=True), counts


def run(args: argparse.Namespace) -> int:
    pairs = read_tsv(args.pairs, required=["orthogroup", "label", "gene_a", "species_a",
                                           "gene_b", "species_b"],
                     dtype=str, keep_default_na=False)
    expression = read_expression(args.expression, args.assay, args.unit, args.log_transform,
                                 args.pseudocount)
    labelled, _ = label_pairs(pairs, expression, args.assay, args.unit, args.log_transform)
    write_tsv(labelled, args.out)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "labels", help="Cohen's d between the genes of each ortholog pair",
        description="Compute Cohen's d (pooled SD, ddof=1) per pair from the replicate "
                    "expression values of one assay.")
    parser.add_argument("--pairs", required=True, help="pairs TSV from 'plantt orthologs'")
    parser.add_argument("--expression", required=True, nargs="+",
                        help="expression tables (one per species and assay)")
    parser.add_argument("--assay", required=True, help="assay name, as in the tables")
    parser.add_argument("--out", required=True, help="labels TSV to write")
    parser.add_argument("--unit", default="cpm", choices=["cpm", "tpm"],
                        help="expression unit (default %(default)s)")
    parser.add_argument("--log-transform", default="none", choices=TRANSFORMS,
                        help="per-replicate transform before d (default %(default)s)")
    parser.add_argument("--pseudocount", type=float, default=1.0,
                        help="added before log2 (default %(default)s)")
    parser.set_defaults(func=run)
