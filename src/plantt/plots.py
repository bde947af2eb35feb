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
