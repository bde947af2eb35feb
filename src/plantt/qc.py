"""Replicate and sample quality control from the expression tables.

* **Replicate concordance** (the PlanTT paper's Supplementary Figures 2-6): for every pair of
  replicates of one species and assay, the Pearson R² of log2(CPM + ``pseudocount``) over the genes
  with at least one read in either replicate, and a scatter matrix of the pairs.
* **Sample correlation and PCA**: per species, every sample of every assay, log2(CPM + pseudocount);
  the heatmap shows Pearson correlations between samples, the PCA is on the ``top_genes`` most
  variable genes (as DESeq2's ``plotPCA`` does, 500 by default), centred, not scaled. A swapped or
  failed library stands out as a row of low correlations or a point away from its assay.
* **MultiQC custom content**: the per-sample read assignment (a stacked bar graph) and the
  replicate concordance (a table, one row per pair of replicates) as ``*_mqc.yaml`` files that
  MultiQC shows beside its own cutadapt, STAR and samtools sections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from plantt.io import InputError, PathLike, atomic_open, read_tsv
from plantt.quantify import SUMMARY_COLUMNS

CONCORDANCE_COLUMNS = ["species", "assay", "replicate_x", "replicate_y", "genes", "pearson_r",
                       "pearson_r2"]


def replicate_matrix(expression_table: PathLike, unit: str = "cpm") -> pd.DataFrame:
    """Genes x replicates (columns ``rep_<n>``) of one expression table, in ``unit``."""
    table = read_tsv(expression_table, required=["gene_id", "unit"])
    chosen = table[table["unit"] == unit]
    replicates = [c for c in table.columns if c.startswith("rep_")]
    if chosen.empty or not replicates:
        raise InputError(expression_table, f"no {unit} rows with rep_<n> columns (expected the "
                                           "workflow's expression table)")
    return chosen.set_index("gene_id")[replicates].astype(float)


def log_expression(values: pd.DataFrame, pseudocount: float = 1.0) -> pd.DataFrame:
    return np.log2(values + pseudocount)


def replicate_concordance(values: pd.DataFrame, species: str, assay: str,
                          pseudocount: float = 1.0) -> pd.DataFrame:
    """One row per pair of replicates: Pearson r and R² of log2(CPM + pseudocount) over the genes
    expressed (CPM > 0) in either of the two."""
    logged = log_expression(values, pseudocount)
    rows = []
    for x, y in combinations(values.columns, 2):
        expressed = (values[x] > 0) | (values[y] > 0)
        a, b = logged.loc[expressed, x].to_numpy(), logged.loc[expressed, y].to_numpy()
        r = float(np.corrcoef(a, b)[0, 1]) if a.size > 2 and a.std() > 0 and b.std() > 0 else np.nan
        rows.append({"species": species, "assay": assay, "replicate_x": x, "replicate_y": y,
                     "genes": int(expressed.sum()), "pearson_r": r, "pearson_r2": r * r})
    return pd.DataFrame(rows, columns=CONCORDANCE_COLUMNS)


def plot_replicate_scatter(values: pd.DataFrame, concordance: pd.DataFrame, target: PathLike,
                           title: str, pseudocount: float = 1.0) -> None:
    """Lower-triangle scatter matrix of log2(CPM + 1), R² in each panel."""
    from plantt.plots import plt, save_figure

    replicates = list(values.columns)
    n = len(replicates)
    logged = log_expression(values, pseudocount)
    r2 = {(row.replicate_x, row.replicate_y): row.pearson_r2 for row in concordance.itertuples()}
    size = max(1.6, min(2.4, 12 / max(n - 1, 1)))
    fig, axes = plt.subplots(n - 1, n - 1, figsize=(size * (n - 1) + 0.5, size * (n - 1) + 0.5),
                             squeeze=False, sharex=True, sharey=True)
    top = float(np.nanmax(logged.to_numpy())) if logged.size else 1.0
    for i in range(1, n):
        for j in range(n - 1):
            ax = axes[i - 1, j]
            if j >= i:
                ax.axis("off")
                continue
            x, y = replicates[j], replicates[i]
            ax.scatter(logged[x], logged[y], s=2, alpha=0.3, color="#1f77b4", linewidths=0)
            ax.plot([0, top], [0, top], color="0.6", linewidth=0.6)
            ax.text(0.04, 0.94, f"R² {r2[(x, y)]:.3f}", transform=ax.transAxes, va="top",
                    fontsize=8)
            if i == n - 1:
                ax.set_xlabel(x, fontsize=8)
            if j == 0:
                ax.set_ylabel(y, fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle(f"{title}: log2(CPM + {pseudocount:g}), replicate vs replicate", fontsize=10)
    fig.tight_layout()
    save_figure(fig, target)


def sample_matrix(tables: Mapping[str, PathLike], unit: str = "cpm") -> pd.DataFrame:
    """Genes x samples of one species over its assays: columns ``<assay>_<rep_n>`` (genes present
    in every table)."""
    frames = []
    for assay, path in tables.items():
        values = replicate_matrix(path, unit)
        frames.append(values.rename(columns=lambda c, a=assay: f"{a}_{c}"))
    return pd.concat(frames, axis=1, join="inner")


def sample_correlation(values: pd.DataFrame, pseudocount: float = 1.0) -> pd.DataFrame:
    """Pearson correlation of log2(CPM + pseudocount) between samples (columns)."""
    return log_expression(values, pseudocount).corr(method="pearson")


def sample_pca(values: pd.DataFrame, top_genes: int = 500, pseudocount: float = 1.0,
               components: int = 2) -> tuple[pd.DataFrame, np.ndarray]:
    """PCA of the samples on the ``top_genes`` genes of highest variance of log2(CPM + 1):
    sample coordinates (``PC1``, ``PC2``, ...) and the explained variance ratios."""
    from sklearn.decomposition import PCA

    logged = log_expression(values, pseudocount)
    variance = logged.var(axis=1, ddof=1)
    chosen = logged.loc[variance.sort_values(ascending=False).index[:top_genes]]
    n = min(components, chosen.shape[1], chosen.shape[0])
    if n < 1:
        raise ValueError("need at least one sample and one gene for a PCA")
    pca = PCA(n_components=n, svd_solver="full")
    coordinates = pca.fit_transform(chosen.T.to_numpy())
    frame = pd.DataFrame(coordinates, index=chosen.columns,
                         columns=[f"PC{k + 1}" for k in range(n)])
    return frame, pca.explained_variance_ratio_


def plot_sample_qc(correlation: pd.DataFrame, pca: pd.DataFrame, explained: Sequence[float],
                   heatmap_target: PathLike, pca_target: PathLike, title: str) -> None:
    """The correlation heatmap and the PCA scatter (colour = assay) of one species."""
    from plantt.plots import plt, save_figure

    n = len(correlation)
    fig, ax = plt.subplots(figsize=(0.45 * n + 2.5, 0.45 * n + 1.5))
    image = ax.imshow(correlation.to_numpy(), cmap="viridis",
                      vmin=float(np.nanmin(correlation.to_numpy())), vmax=1.0)
    ax.set_xticks(range(n), correlation.columns, rotation=90, fontsize=8)
    ax.set_yticks(range(n), correlation.index, fontsize=8)
    fig.colorbar(image, ax=ax, label="Pearson r, log2(CPM + 1)", shrink=0.8)
    ax.set_title(f"{title}: sample correlation", fontsize=10)
    save_figure(fig, heatmap_target)

    fig, ax = plt.subplots(figsize=(5, 4))
    assays = [name.rsplit("_rep_", 1)[0] for name in pca.index]
    colours = dict(zip(sorted(set(assays)), plt.cm.tab10.colors, strict=False))
    second = pca["PC2"] if "PC2" in pca else pd.Series(0.0, index=pca.index)
    for assay in sorted(set(assays)):
        mine = [a == assay for a in assays]
        ax.scatter(pca.loc[mine, "PC1"], second[mine], label=assay, color=colours[assay], s=30)
    for name in pca.index:
        ax.annotate(name.rsplit("_", 1)[-1], (pca.loc[name, "PC1"], second[name]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"PC1 ({100 * explained[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC2 ({100 * explained[1]:.0f}% of variance)" if len(explained) > 1 else "")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(f"{title}: PCA of samples", fontsize=10)
    fig.tight_layout()
    save_figure(fig, pca_target)


# The counting summary's categories as disjoint parts of each sample's alignments (antisense is a
# part of no_feature in the table; the bar shows the rest of no_feature as intergenic): column,
# MultiQC name, colour. Order: the bar's, from left.
READ_ASSIGNMENT_CATEGORIES = [
    ("assigned", "Assigned to a gene", "#2ca02c"),
    ("ambiguous", "Ambiguous (overlapping genes)", "#bcbd22"),
    ("antisense", "Antisense to a gene", "#ff7f0e"),
    ("intergenic", "No feature (intergenic)", "#7f7f7f"),
    ("low_mapq", "Low MAPQ (multi-mapped) or QC-failed", "#d62728"),
    ("secondary_or_supplementary", "Secondary or supplementary", "#9467bd"),
    ("unmapped", "Unmapped", "#8c564b"),
    ("not_read1", "Read 2 (PRO-seq: not counted)", "#c7c7c7"),
]
MULTIQC_READ_ASSIGNMENT_ID = "plantt_read_assignment"
MULTIQC_CONCORDANCE_ID = "plantt_replicate_concordance"


def _count_columns(table: pd.DataFrame, path: PathLike, columns: Sequence[str],
                   key: str) -> dict[str, dict[str, int]]:
    """``{row[key]: {column: int}}``; a value that is not a count, or a key seen twice, is an
    InputError naming the line."""
    rows: dict[str, dict[str, int]] = {}
    for position, row in enumerate(table.itertuples(index=False)):
        line = position + 2  # the header is line 1
        record = row._asdict()
        name = str(record[key])
        if name in rows:
            raise InputError(path, f"{key} {name!r} appears twice", line=line)
        values: dict[str, int] = {}
        for column in columns:
            value = record[column]
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = float("nan")
            if not np.isfinite(number) or number < 0 or number != int(number):
                raise InputError(path, f"{column} is {value!r}, expected a count (an integer "
                                       ">= 0)", line=line)
            values[column] = int(number)
        rows[name] = values
    return rows


def read_assignment_multiqc(summary: PathLike) -> dict[str, Any]:
    """MultiQC custom content of the counting summary (``results/qc/counting_summary.tsv``): a
    stacked bar per sample of where its alignments went, in the disjoint categories of
    :data:`READ_ASSIGNMENT_CATEGORIES` (counts as in the table; intergenic = no_feature -
    antisense)."""
    table = read_tsv(summary, required=["sample", *SUMMARY_COLUMNS], dtype={"sample": str})
    if table.empty:
        raise InputError(summary, "no samples (expected one row per sample)")
    counts = _count_columns(table, summary, SUMMARY_COLUMNS, "sample")
    data: dict[str, dict[str, int]] = {}
    for line, (sample, values) in enumerate(counts.items(), start=2):
        if values["antisense"] > values["no_feature"]:
            raise InputError(summary, f"antisense ({values['antisense']}) exceeds no_feature "
                                      f"({values['no_feature']}): antisense reads are a part of "
                                      "no_feature", line=line)
        parts = {**values, "intergenic": values["no_feature"] - values["antisense"]}
        data[sample] = {key: parts[key] for key, _, _ in READ_ASSIGNMENT_CATEGORIES}
    return {
        "id": MULTIQC_READ_ASSIGNMENT_ID,
        "section_name": "Read assignment",
        "description": (
            "Where each sample's alignments went when counting reads per gene (plantt count; "
            "results/qc/counting_summary.tsv). Each alignment is reduced to one position: the "
            "read's 5' end for 3'-RNA-seq, read 1's 5' end (the polymerase) for PRO-seq."),
        "plot_type": "bargraph",
        "pconfig": {
            "id": f"{MULTIQC_READ_ASSIGNMENT_ID}_plot",
            "title": "Read assignment: alignments per category",
            "ylab": "Alignments",
            "cpswitch_counts_label": "Alignments",
        },
        "categories": {key: {"name": name, "color": colour}
                       for key, name, colour in READ_ASSIGNMENT_CATEGORIES},
        "data": data,
    }


def replicate_concordance_multiqc(concordance: PathLike,
                                  sample_names: Mapping[tuple[str, str, str], str] | None = None,
                                  ) -> dict[str, Any]:
    """MultiQC custom content of the replicate concordance (``results/qc/replicate_concordance.tsv``):
    a table with one row per pair of replicates. ``sample_names`` maps ``(species, assay,
    "rep_<n>")`` to the sample sheet's name, so that rows name the samples as the other sections
    do (``<sample x> vs <sample y>``); without it rows are ``<species> <assay> rep_x vs rep_y``."""
    table = read_tsv(concordance, required=CONCORDANCE_COLUMNS,
                     dtype={"species": str, "assay": str, "replicate_x": str, "replicate_y": str})
    data: dict[str, dict[str, Any]] = {}
    for position, row in enumerate(table.itertuples(index=False)):
        line = position + 2
        names: list[str] = []
        for replicate in (row.replicate_x, row.replicate_y):
            key = (row.species, row.assay, replicate)
            if sample_names is None:
                names.append(f"{row.species} {row.assay} {replicate}")
            elif key in sample_names:
                names.append(sample_names[key])
            else:
                raise InputError(concordance, f"{replicate} of {row.species} {row.assay} is not "
                                              "in the sample sheet", line=line)
        pair = f"{names[0]} vs {names[1]}"
        if pair in data:
            raise InputError(concordance, f"the pair {pair} appears twice", line=line)
        values: dict[str, float] = {}
        for column, low, high in (("genes", 0, np.inf), ("pearson_r", -1, 1), ("pearson_r2", 0, 1)):
            raw = getattr(row, column)
            value: float | None
            try:
                value = float("nan") if pd.isna(raw) else float(raw)  # empty: no correlation
            except (TypeError, ValueError):
                value = None  # text
            if value is None or not (np.isnan(value) or low - 1e-9 <= value <= high + 1e-9) or (
                    column == "genes" and not (np.isfinite(value) and value == int(value))):
                kind = "an integer >= 0" if column == "genes" else f"a number in [{low}, {high}]"
                raise InputError(concordance, f"{column} is {raw!r}, expected {kind}", line=line)
            values[column] = value
        data[pair] = {
            "species": row.species, "assay": row.assay,
            "sample_x": names[0], "sample_y": names[1],
            "genes": int(values["genes"]),
            # NaN (too few genes, or a replicate without variance) is left out: an empty cell
            **{column: values[column] for column in ("pearson_r", "pearson_r2")
               if not np.isnan(values[column])},
        }
    if not data:
        raise InputError(concordance, "no pairs of replicates (expected one row per pair)")
    return {
        "id": MULTIQC_CONCORDANCE_ID,
        "section_name": "Replicate concordance",
        "description": (
            "Every pair of replicates of a species and assay: Pearson r and R² of log2(CPM + "
            "qc.pseudocount) over the genes with a read in either replicate (results/qc/"
            "replicate_concordance.tsv; the scatter matrices are in the Snakemake report). A "
            "failed or swapped library shows as low R² in every pair it is part of."),
        "plot_type": "table",
        "pconfig": {
            "id": f"{MULTIQC_CONCORDANCE_ID}_table",
            "title": "Replicate concordance",
            "col1_header": "Pair of replicates",
            "sort_rows": False,
        },
        "headers": {
            "species": {"title": "Species", "description": "species"},
            "assay": {"title": "Assay", "description": "assay"},
            "sample_x": {"title": "Replicate x", "description": "first replicate of the pair"},
            "sample_y": {"title": "Replicate y", "description": "second replicate of the pair"},
            "genes": {"title": "Genes", "format": "{:,.0f}",
                      "description": "genes with a read in either replicate"},
            "pearson_r": {"title": "Pearson r", "min": -1, "max": 1, "format": "{:,.3f}",
                          "scale": "RdYlGn", "description": "Pearson r of log2(CPM + qc.pseudocount)"},
            "pearson_r2": {"title": "R²", "min": 0, "max": 1, "format": "{:,.3f}",
                           "scale": "RdYlGn", "description": "Pearson R² of log2(CPM + qc.pseudocount)"},
        },
        "data": data,
    }


def write_multiqc_content(content: Mapping[str, Any], target: PathLike) -> None:
    """Write MultiQC custom content as YAML (name it ``*_mqc.yaml`` for MultiQC to find it),
    atomically."""
    import yaml

    with atomic_open(target) as handle:
        yaml.safe_dump(dict(content), handle, sort_keys=False, allow_unicode=True)
