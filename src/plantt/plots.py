"""Figures for the report. Matplotlib with the Agg backend (no display needed); every figure is
written atomically as PNG."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from plantt.io import PathLike, atomic_path  # noqa: E402

COUNT_CATEGORIES = ["assigned", "ambiguous", "antisense", "no_feature", "low_mapq",
                    "secondary_or_supplementary"]


def save_figure(fig: plt.Figure, target: PathLike, dpi: int = 120) -> None:
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)


def plot_counting_summary(summary: pd.DataFrame, target: PathLike) -> None:
    """Stacked bars: the fate of each sample's alignments (sample on y, share of alignments on x)."""
    data = summary.set_index("sample")
    cats = [c for c in COUNT_CATEGORIES if c in data.columns]
    # antisense reads are a subset of no_feature; show them separately.
    frame = data[cats].copy()
    if "antisense" in frame and "no_feature" in frame:
        frame["no_feature"] = frame["no_feature"] - frame["antisense"]
    shares = frame.div(frame.sum(axis=1).where(lambda s: s > 0, 1), axis=0)
    fig, ax = plt.subplots(figsize=(8, 0.25 * len(shares) + 1.5))
    shares.plot.barh(stacked=True, ax=ax, width=0.8, colormap="tab10")
    ax.set_xlabel("share of alignments")
    ax.set_ylabel("")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.6 / max(len(shares), 1) - 0.05),
              ncol=3, frameon=False)
    save_figure(fig, target)


def plot_split_summary(summary: pd.DataFrame, target: PathLike, title: str = "") -> None:
    """Pairs per fold and set, split by the sign of d (bars) — balance and sizes at a glance."""
    sets = [s for s in ("train", "validation", "test") if s in set(summary["set"])]
    table = (summary.groupby(["fold", "set", "sign"])["pairs"].sum()
             .unstack("sign", fill_value=0))
    fig, axes = plt.subplots(1, len(sets), figsize=(3.2 * len(sets), 3), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        part = table.xs(name, level="set")
        part.plot.bar(ax=ax, stacked=True, color=["#c0504d", "#4f81bd", "#999999"][:part.shape[1]],
                      width=0.8, legend=ax is axes[0][0])
        ax.set_title(name)
        ax.set_xlabel("fold")
        ax.set_ylabel("pairs")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, target)


SUMMARY_METRICS = ["spearman", "pearson", "r2", "balanced_accuracy", "f1", "auroc"]


def plot_metric_summary(per_fold: pd.DataFrame, target: PathLike, title: str = "") -> None:
    """Bars: mean across folds per model and metric, with ± SD and each fold as a dot."""
    metrics = [m for m in SUMMARY_METRICS if m in per_fold.columns]
    models = list(dict.fromkeys(per_fold["model"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.2 * len(metrics), 3.2), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, model in enumerate(models):
            values = per_fold.loc[per_fold["model"] == model, metric].dropna()
            if values.empty:
                continue
            ax.bar(i, values.mean(), yerr=values.std(ddof=1) if len(values) > 1 else 0,
                   color=colors(i), alpha=0.7, capsize=3)
            ax.scatter([i] * len(values), values, color="black", s=8, zorder=3)
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models, rotation=45, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.axhline(0.5 if metric in ("balanced_accuracy", "auroc") else 0.0, color="grey",
                   lw=0.8, ls="--")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, target)


def plot_predicted_vs_true(predictions: pd.DataFrame, target: PathLike, title: str = "") -> None:
    """Predicted vs true Cohen's d on the test pairs, one panel per regression model and fold."""
    regression = [m for m in dict.fromkeys(predictions["model"]) if m != "washburn"]
    folds = sorted(predictions["fold"].unique())
    fig, axes = plt.subplots(max(len(regression), 1), len(folds),
                             figsize=(2.4 * len(folds), 2.4 * max(len(regression), 1)),
                             squeeze=False, sharex=True)
    for r, model in enumerate(regression):
        for c, fold in enumerate(folds):
            ax = axes[r][c]
            part = predictions[(predictions["model"] == model) & (predictions["fold"] == fold)]
            ax.scatter(part["target"], part["prediction"], s=3, alpha=0.4, color="#4f81bd")
            rho = part["target"].corr(part["prediction"], method="spearman")
            ax.set_title(f"{model}, fold {fold}\nSpearman {rho:.2f}", fontsize=8)
            ax.axhline(0, color="grey", lw=0.5)
            ax.axvline(0, color="grey", lw=0.5)
            if c == 0:
                ax.set_ylabel("predicted d")
            if r == len(regression) - 1:
                ax.set_xlabel("true d")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, target)


def plot_sequential_training(per_fold: pd.DataFrame, target: PathLike, alone: str,
                             pretrained: str, title: str = "") -> None:
    """The paper's Table 2 as a figure: per metric, each fold's value trained alone and
    pre-trained on the other assay, joined by a line (paired across folds)."""
    metrics = [m for m in SUMMARY_METRICS if m in per_fold.columns]
    fig, axes = plt.subplots(1, len(metrics), figsize=(1.9 * len(metrics), 3.0), squeeze=False)
    wide = {name: per_fold[per_fold["model"] == name].set_index("fold") for name in
            (alone, pretrained)}
    folds = wide[alone].index.intersection(wide[pretrained].index)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for fold in folds:
            ax.plot([0, 1], [wide[alone].at[fold, metric], wide[pretrained].at[fold, metric]],
                    color="grey", lw=0.8, marker="o", ms=3)
        for x, name in enumerate((alone, pretrained)):
            values = wide[name].loc[folds, metric]
            ax.errorbar(x, values.mean(), yerr=values.std(ddof=1) if len(values) > 1 else 0,
                        color="black", marker="_", ms=14, capsize=3, zorder=3)
        ax.set_xticks([0, 1])
        ax.set_xticklabels(["alone", "pre-trained"], fontsize=8)
        ax.set_xlim(-0.4, 1.4)
        ax.set_title(metric, fontsize=9)
    fig.suptitle(title or f"{alone} vs {pretrained}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, target)
