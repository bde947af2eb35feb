"""Replicate and sample quality control from the expression tables.

* **Replicate concordance** (the PlanTT paper's Supplementary Figures 2-6): for every pair of
  replicates of one species and assay, the Pearson R² of log2(CPM + ``pseudocount``) over the genes
  with at least one read in either replicate, and a scatter matrix of the pairs.
* **Sample correlation and PCA**: per species, every sample of every assay, log2(CPM + pseudocount);
  the heatmap shows Pearson correlations between samples, the PCA is on the ``top_genes`` most
  variable genes (as DESeq2's ``plotPCA`` does, 500 by default), centred, not scaled. A swapped or
  failed library stands out as a row of low correlations or a point away from its assay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from plantt.io import InputError, PathLike, read_tsv

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
