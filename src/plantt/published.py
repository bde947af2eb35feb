"""The published PlanTT-CNN in the workflow: settings, inputs, predictions, ISM and edits.

The rules of ``workflow/rules/published.smk`` (target ``published_all``) call these functions; the
``published:`` section of the workflow config (config/README.md, "The published PlanTT-CNN") is read
by :meth:`PublishedSettings.from_config`. The steps:

1. ``plantt import-weights`` (:func:`plantt.legacy.import_weights`): the released ``planttcnn.pt``
   becomes a model directory, stored with the house sign (the embedding negated, see
   :mod:`plantt.legacy`): a higher score means HIGHER expression, and ``f(a, b) > 0`` means ``a``
   is predicted MORE expressed than ``b``.
2. :func:`write_inputs`: the 3000-base inputs (1500 bases of promoter, then 1500 of terminator) from
   promoter and terminator FASTA files paired by order, or from one FASTA of 3000-base sequences.
3. :func:`predict_published`: every record's score ``sum(z)`` and the contrast ``f(a, b)`` of each
   pair (the configured pairs, or every record against the reference record), computed exactly as
   ``plantt predict`` computes them; with the raw published (rank) sign alongside.
4. :func:`ism_record` and :func:`edit_record`: in-silico mutagenesis (:mod:`plantt.ism`) and
   hill-climbing edits (:mod:`plantt.editing`) of chosen records; the figures mark the
   promoter/terminator junction (index 1500), not a TSS and a TTS.

This module imports no PyTorch at import time: the workflow reads its settings when it is parsed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plantt.io import InputError, PathLike, atomic_open, get_logger, write_tsv

log = get_logger("published")

DIRECTIONS = ("up", "down")
SCORE_COLUMNS = ["id", "score", "published_score"]
PREDICTION_COLUMNS = ["id_a", "id_b", "prediction", "more_expressed", "published_prediction"]
PREDICT_BATCH_SIZE = 64  # plantt predict's default: the same batches give the same numbers

# Keys of the config section whose values are numbers (`snakemake --config` hands nested values
# over as text, e.g. "1" or "null").
_INT_KEYS = ("ism_flank", "edit_budget", "ism_batch_size")
_NULL_TEXT = ("", "null", "none", "~")


def coerce_config(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``published:`` section with text from the command line converted: whole numbers of
    the numeric keys to ``int``, ``null``/``none``/``~`` (any case) and empty text to ``None``
    (paths and names too). Anything else is returned unchanged, for the schema to judge."""
    out = dict(raw or {})
    for key, value in out.items():
        if not isinstance(value, str):
            continue
        text = value.strip()
        if text.lower() in _NULL_TEXT:
            out[key] = None
        elif key in _INT_KEYS and text.lstrip("+-").isdigit():
            out[key] = int(text)
    return out


@dataclass(frozen=True)
class PublishedSettings:
    """The ``published:`` section of the workflow config (every key documented in
    config/README.md). Nothing runs while ``weights`` is unset."""

    weights: str | None = None
    promoter: str | None = None
    terminator: str | None = None
    sequences: str | None = None
    reference: str | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    ism: tuple[str, ...] = ()
    ism_flank: int | None = None
    ism_batch_size: int = 256
    edit_budget: int = 0
    edit_direction: str = "up"
    edit_protect: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.weights:
            return
        if self.sequences and (self.promoter or self.terminator):
            raise ValueError("give either sequences (3000-base FASTA) or promoter and "
                             "terminator FASTA files, not both")
        if not self.sequences and not (self.promoter and self.terminator):
            raise ValueError("the inputs are missing: give sequences (a FASTA of 3000-base "
                             "promoter + terminator sequences) or both promoter and terminator "
                             "(FASTA files of 1500 bases each, paired by order)")
        for pair in self.pairs:
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ValueError(f"pairs: each pair is two different record ids, got {list(pair)}")
        if len(set(self.ism)) != len(self.ism):
            raise ValueError("ism: a record id is listed twice")
        if self.ism_flank is not None and self.ism_flank < 0:
            raise ValueError("ism_flank must be >= 0 (or null: every position)")
        if self.ism_batch_size < 1:
            raise ValueError("ism_batch_size must be >= 1")
        if self.edit_budget < 0:
            raise ValueError("edit_budget must be >= 0 (0: no edit run)")
        if self.edit_direction not in DIRECTIONS:
            raise ValueError(f"edit_direction must be up or down, got {self.edit_direction!r}")
        if self.edit_budget and not self.ism:
            raise ValueError("edit_budget is set but ism lists no record: the edit run edits the "
                             "records listed under ism")

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None) -> PublishedSettings:
        """Settings from the config section (text from ``--config`` coerced; unknown keys and
        inconsistent inputs are errors)."""
        values = coerce_config(raw)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(names))}")
        for key in ("ism", "edit_protect"):
            if values.get(key) is None:
                values.pop(key, None)
            else:
                values[key] = tuple(str(v) for v in values[key])
        if values.get("pairs") is None:
            values.pop("pairs", None)
        else:
            values["pairs"] = tuple(tuple(str(v) for v in pair) for pair in values["pairs"])
        for key in ("ism_batch_size", "edit_budget", "edit_direction"):
            if values.get(key) is None:
                values.pop(key, None)
        for key in ("weights", "promoter", "terminator", "sequences", "reference"):
            if values.get(key) is not None:
                values[key] = str(values[key])
        return cls(**values)

    @property
    def enabled(self) -> bool:
        return bool(self.weights)

    def input_files(self) -> dict[str, str]:
        """The input FASTA files, by role (``sequences``, or ``promoter`` and ``terminator``)."""
        roles = ("sequences",) if self.sequences else ("promoter", "terminator")
        return {role: str(getattr(self, role)) for role in roles}


# ----------------------------------------------------------------------------------------------
# Inputs and pairs
# ----------------------------------------------------------------------------------------------
def contrast_pairs(ids: Sequence[str], pairs: Sequence[Sequence[str]] = (),
                   reference: str | None = None) -> list[tuple[str, str]]:
    """The pairs ``(a, b)`` to predict: the given ones, or else every record against the
    reference record (by default the first), as ``(record, reference)``."""
    if pairs:
        return [(str(a), str(b)) for a, b in pairs]
    if not ids:
        return []
    ref = reference if reference is not None else ids[0]
    return [(name, ref) for name in ids if name != ref]


def check_records(ids: Sequence[str], named: Sequence[tuple[str, str]], path: PathLike) -> None:
    """Every ``(config key, record id)`` of ``named`` is a record of the inputs ``ids``."""
    known = set(ids)
    for key, name in named:
        if name not in known:
            raise InputError(path, f"published.{key} names {name!r}, which is not a record of "
                                   f"the inputs (records: {', '.join(list(ids)[:10])}"
                                   f"{', ...' if len(ids) > 10 else ''})", record=name)


def write_inputs(out: PathLike, promoter: PathLike | None = None,
                 terminator: PathLike | None = None, sequences: PathLike | None = None
                 ) -> list[str]:
    """Write the 3000-base inputs (FASTA, one line per sequence) built from promoter and
    terminator FASTA files (paired by order, ids from the promoter file) or from a FASTA of
    3000-base sequences, and return their ids (which must be unique)."""
    from plantt.encoding import decode
    from plantt.legacy import LEGACY_SEQ_LEN, legacy_inputs_from_files

    ids, codes = legacy_inputs_from_files(promoter, terminator, sequences)
    source = sequences or promoter
    seen: set[str] = set()
    for name in ids:
        if name in seen:
            raise InputError(source, "duplicate record id (ids name the records in pairs, ism and "
                                     "the outputs)", record=name)
        seen.add(name)
    with atomic_open(out) as handle:
        for name, row in zip(ids, codes, strict=True):
            handle.write(f">{name}\n{decode(row)}\n")
    log.info("wrote %d input(s) of %d bases to %s", len(ids), LEGACY_SEQ_LEN, out)
    return ids


# ----------------------------------------------------------------------------------------------
# Predictions
# ----------------------------------------------------------------------------------------------
def output_sign(model_dir: PathLike) -> int:
    """The imported model's sign relative to the published one (-1: negated to the house sign)."""
    from plantt.models import read_model_info

    return int(read_model_info(model_dir)["settings"].get("output_sign", 1))


def predict_published(model_dir: PathLike, inputs: PathLike,
                      pairs: Sequence[tuple[str, str]], device: str | None = None
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of every input record and predictions of every pair, computed as ``plantt predict``
    computes them (same functions, batches of 64).

    ``scores``: ``id, score`` (``sum(z)``, house sign: higher = more expressed) and
    ``published_score`` (the released model's own sign: a rank, higher = LESS expressed).
    ``predictions``: ``id_a, id_b, prediction`` (``f(a, b) = score_a - score_b``: > 0 means a is
    predicted more expressed than b), ``more_expressed`` (the id predicted more expressed) and
    ``published_prediction`` (the released model's raw ``f(a, b)``: an expression-rank difference,
    > 0 means a is LESS expressed).
    """
    from plantt.legacy import LEGACY_SEQ_LEN
    from plantt.predict import encode_exact_length, predict_encoded, predict_encoded_sequences
    from plantt.tables import read_fasta_records

    records = read_fasta_records(inputs)
    ids = [r.name for r in records]
    codes = encode_exact_length([r.sequence for r in records], ids, LEGACY_SEQ_LEN, inputs,
                                [r.line for r in records])
    sign = output_sign(model_dir)
    score = predict_encoded_sequences(model_dir, codes, PREDICT_BATCH_SIZE, device)
    scores = pd.DataFrame({"id": ids, "score": score, "published_score": sign * score},
                          columns=SCORE_COLUMNS)
    row = {name: i for i, name in enumerate(ids)}
    missing = [name for pair in pairs for name in pair if name not in row]
    if missing:
        raise InputError(inputs, "pair names a record that is not among the inputs",
                         record=missing[0])
    if pairs:
        idx_a = np.array([row[a] for a, _ in pairs])
        idx_b = np.array([row[b] for _, b in pairs])
        prediction = predict_encoded(model_dir, codes[idx_a], codes[idx_b], PREDICT_BATCH_SIZE,
                                     device)
    else:
        prediction = np.zeros(0, dtype=np.float32)
    predictions = pd.DataFrame({
        "id_a": [a for a, _ in pairs], "id_b": [b for _, b in pairs], "prediction": prediction,
        "more_expressed": [a if p > 0 else b if p < 0 else "tie"
                           for (a, b), p in zip(pairs, prediction, strict=True)],
        "published_prediction": sign * prediction}, columns=PREDICTION_COLUMNS)
    return scores, predictions


def plot_predictions(scores: pd.DataFrame, predictions: pd.DataFrame, target: PathLike,
                     title: str = "") -> None:
    """Bars: each record's score ``sum(z)`` (left) and each pair's ``f(a, b)`` (right), both
    in the house sign (right of zero: more expressed)."""
    from plantt.plots import plt, save_figure  # the Agg backend, set there

    panels = [(scores["id"].tolist(), scores["score"].to_numpy(), "score sum(z) per record",
               "score (higher = more expressed; offset arbitrary)")]
    if not predictions.empty:
        labels = [f"{a} vs {b}" for a, b in zip(predictions["id_a"], predictions["id_b"],
                                                strict=True)]
        panels.append((labels, predictions["prediction"].to_numpy(), "contrast f(a, b) per pair",
                       "f(a, b) = score_a - score_b (> 0: a more expressed)"))
    rows = max(len(p[0]) for p in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 1.2 + 0.3 * rows),
                             squeeze=False)
    for i, (ax, (labels, values, name, xlabel)) in enumerate(zip(axes[0], panels, strict=True)):
        # a score's sign means nothing (arbitrary offset); a contrast's does
        colors = ["#999999"] * len(values) if i == 0 else \
            ["#c0504d" if v > 0 else "#4f81bd" for v in values]
        ax.barh(range(len(values)), values, color=colors)
        ax.set_yticks(range(len(values)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
    fig.suptitle(title or "published PlanTT-CNN: predictions")
    fig.tight_layout()
    save_figure(fig, target)


def write_predictions(model_dir: PathLike, inputs: PathLike, scores_out: PathLike,
                      predictions_out: PathLike, plot_out: PathLike,
                      pairs: Sequence[Sequence[str]] = (), reference: str | None = None,
                      device: str | None = None) -> pd.DataFrame:
    """:func:`predict_published` on the given pairs, or on every record against the reference
    (:func:`contrast_pairs`); the two tables and their figure."""
    from plantt.tables import read_fasta_records

    ids = [r.name for r in read_fasta_records(inputs)]
    named = [("pairs", str(name)) for pair in pairs for name in pair]
    if reference is not None:
        named.append(("reference", reference))
    check_records(ids, named, inputs)
    pairs = contrast_pairs(ids, pairs, reference)
    scores, predictions = predict_published(model_dir, inputs, pairs, device)
    write_tsv(scores, scores_out, float_format="%.8g")
    write_tsv(predictions, predictions_out, float_format="%.8g")
    plot_predictions(scores, predictions, plot_out)
    for row in predictions.itertuples():
        log.info("f(%s, %s) = %.6g: %s predicted more expressed", row.id_a, row.id_b,
                 row.prediction, row.more_expressed)
    return predictions


# ----------------------------------------------------------------------------------------------
# ISM and edits
# ----------------------------------------------------------------------------------------------
def ism_record(model_dir: PathLike, inputs: PathLike, record: str, outdir: PathLike,
               flank: int | None = None, batch_size: int = 256) -> dict[str, Path]:
    """ISM of one input record: ``ism.tsv``, ``ism.npz``, ``heatmap.png`` and ``zoom.png`` in
    ``outdir`` (positions within ``flank`` bp of the promoter/terminator junction, or all)."""
    from plantt.ism import (
        flank_positions,
        ism_scores,
        load_scorer,
        model_layout,
        read_sequences,
        write_ism_outputs,
    )
    from plantt.legacy import LegacyLayout

    model = load_scorer(model_dir)
    layout = model_layout(model) or LegacyLayout()
    genes, codes = read_sequences(inputs, model.seq_len, [record])
    result = ism_scores(model, codes[0], batch_size, flank_positions(flank, model.seq_len, layout))
    log.info("%s: sum(z) = %.6g; strongest substitution %.4g", record, result.reference_score,
             np.nanmax(np.abs(result.effect)) if np.isfinite(result.effect).any() else 0.0)
    where = "every position" if flank is None else f"within {flank} bp of the junction"
    return write_ism_outputs(outdir, genes, [result], layout,
                             title=f"published PlanTT-CNN ({where})")


def edit_record(model_dir: PathLike, inputs: PathLike, record: str, budget: int, out: PathLike,
                edited_fasta: PathLike, direction: str = "up", protect: Sequence[str] = (),
                batch_size: int = 256) -> pd.DataFrame:
    """Hill-climbing edits of one input record (``plantt edit``): the edits table and the edited
    sequence; ``protect``: ``START-END`` ranges never edited (0-based, END excluded)."""
    from plantt.editing import EDIT_COLUMNS, hill_climb, parse_range, write_fasta_record
    from plantt.ism import load_scorer, read_sequences

    model = load_scorer(model_dir)
    genes, codes = read_sequences(inputs, model.seq_len, [record])
    ranges = [parse_range(text) for text in protect]
    result = hill_climb(model, codes[0], budget, direction, ranges, batch_size=batch_size)
    log.info("%s: %d edit(s), %s", record, len(result.edits), result.stop_reason)
    table = result.to_frame(record) if result.edits else pd.DataFrame(columns=EDIT_COLUMNS)
    write_tsv(table, out, float_format="%.6g")
    with atomic_open(edited_fasta) as handle:
        write_fasta_record(handle, record, result.edited)
    return table
