"""Sequence editing by hill climbing on PlanTT's expression estimate (paper Section 4.7).

Starting from a sequence ``s(0)``, each step scores every single-base substitution of the current
sequence with in-silico mutagenesis (:func:`plantt.ism.ism_scores`) and applies the best one:
the largest increase of ``sum(z)`` (``direction="up"``) or the largest decrease (``"down"``).
The search stops after ``budget`` edits, or earlier when no substitution improves the objective
(the best predicted change is <= 0 in the wanted direction), as in the paper. Like every hill
climber it finds a local optimum, not necessarily the best set of edits.

Choices where the paper is silent:

* Positions holding N are never edited unless ``include_n`` (the masked TSS and TTS bases are N in
  every window, so they are protected by default), and ``protect`` ranges (0-based, half-open
  window indices, e.g. ``1000-1003``) are never edited either.
* A position may be edited again in a later step (e.g. A->G, then G->T) when that is the best move;
  every applied step strictly improves the objective, so the search cannot cycle.
* Ties are broken by the lowest position, then the base order A, C, G, T (deterministic).

The same search edits sequences for a single-sequence model or a seed ensemble trained by
``plantt fit``: the objective is then the predicted expression itself (or the ensemble's mean), and
the N bases that padded a short sequence to the model's length are never edited (they are N).

Each recorded edit has the predicted change of that step, the cumulative change
``f(edited, original) = sum(z_edited) - sum(z_original)`` and its percent change relative to
``|sum(z_original)|`` (Equation 3 of the paper).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO

import numpy as np
import pandas as pd

from plantt import fastism
from plantt.encoding import decode
from plantt.io import InputError, atomic_open, get_logger, write_tsv
from plantt.ism import (
    IsmResult,
    ScoredModel,
    command_device,
    ism_scores,
    load_scorer,
    model_length_policy,
    percent_change,
    read_sequences,
    sequence_scores,
)
from plantt.progress import progress

log = get_logger("editing")

DIRECTIONS = {"up": 1.0, "down": -1.0}
EDIT_COLUMNS = ["gene", "step", "position", "ref", "alt", "step_effect", "cumulative_effect",
                "percent_change", "score"]

# scorer(model, codes, batch_size, positions, include_n) -> IsmResult
Scorer = Callable[[ScoredModel, np.ndarray, int, np.ndarray | None, bool], IsmResult]


@dataclass
class Edit:
    step: int
    position: int
    ref: str
    alt: str
    step_effect: float  # sum(z) after this step minus before it
    cumulative_effect: float  # f(edited, original)
    percent_change: float
    score: float  # sum(z) after this step


@dataclass
class EditResult:
    original: np.ndarray
    edited: np.ndarray
    original_score: float
    edits: list[Edit] = field(default_factory=list)
    stop_reason: str = ""

    def to_frame(self, gene: str) -> pd.DataFrame:
        rows = [{"gene": gene, **vars(edit)} for edit in self.edits]
        return pd.DataFrame(rows, columns=EDIT_COLUMNS)


def parse_range(text: str) -> tuple[int, int]:
    """``START-END`` (0-based, half-open window indices) -> ``(start, end)``."""
    start, sep, end = text.partition("-")
    try:
        lo, hi = int(start), int(end)
    except ValueError:
        lo, hi, sep = 0, 0, ""
    if not sep or lo < 0 or hi <= lo:
        raise InputError(None, f"--protect expects START-END with 0 <= START < END "
                               f"(0-based, END excluded), got {text!r}")
    return lo, hi


def editable_positions(length: int, protect: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """Window positions outside every protected ``[start, end)`` range."""
    allowed = np.ones(length, dtype=bool)
    for start, end in protect:
        allowed[max(0, start):min(length, end)] = False
    return np.nonzero(allowed)[0]


def _best_move(result: IsmResult, sign: float) -> tuple[int, int, float] | None:
    """(position, alt, effect) of the substitution that improves the objective most, if any."""
    objective = sign * result.effect
    objective = np.where(np.isnan(objective), -np.inf, objective)
    flat = int(np.argmax(objective))  # first maximum: lowest position, then A, C, G, T
    position, alt = divmod(flat, 4)
    if not objective[position, alt] > 0:
        return None
    return position, alt, float(result.effect[position, alt])


def _neighbourhoods(model: ScoredModel, positions: np.ndarray, incremental: bool
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """Final-layer ranges each position can change (:func:`plantt.fastism.output_ranges`), or
    ``None`` when every step must rescore every position."""
    compiled = fastism.fast_ism_scorer(model) if incremental else None
    if compiled is None:
        return None
    lo, hi = np.full(positions.max(initial=0) + 1, 0), np.full(positions.max(initial=0) + 1, 0)
    lo[positions], hi[positions] = fastism.output_ranges(compiled, positions)
    return lo, hi


def hill_climb(model: ScoredModel, codes: np.ndarray, budget: int, direction: str = "up",
               protect: Sequence[tuple[int, int]] = (), include_n: bool = False,
               batch_size: int = 256, scorer: Scorer = ism_scores,
               incremental: bool = True) -> EditResult:
    """Greedy single-base edits raising (``up``) or lowering (``down``) ``sum(z)``.

    With ``incremental`` (and a tower :mod:`plantt.fastism` can slice), only the first step scores
    every substitution; after an edit at ``p``, only the substitutions whose final-layer range
    overlaps ``p``'s are rescored. The others keep their effect exactly: the readout is linear over
    final positions, so non-overlapping changes add up (see :func:`plantt.fastism.output_ranges`).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    if budget < 0:
        raise ValueError("budget must be >= 0")
    sign = DIRECTIONS[direction]
    current = np.array(codes, dtype=np.uint8, copy=True)
    positions = editable_positions(current.size, protect)
    original_score = float(sequence_scores(model, current)[0])
    result = EditResult(current.copy(), current, original_score)
    ranges = _neighbourhoods(model, positions, incremental and scorer is ism_scores) \
        if positions.size else None
    score = original_score
    scores: IsmResult | None = None
    for step in range(1, budget + 1):
        if positions.size == 0:
            result.stop_reason = "no editable position"
            break
        if scores is None or ranges is None:
            scores = scorer(model, current, batch_size, positions, include_n)
        else:
            lo, hi = ranges
            last = result.edits[-1].position
            near = positions[(lo[positions] < hi[last]) & (hi[positions] > lo[last])]
            update = scorer(model, current, batch_size, near, include_n)
            scores.effect[near] = update.effect[near]
            scores = IsmResult(update.codes, update.reference_score, scores.effect)
        move = _best_move(scores, sign)
        if move is None:
            result.stop_reason = f"no substitution {'raises' if sign > 0 else 'lowers'} the " \
                                 f"predicted expression any further (after {step - 1} edit(s))"
            break
        position, alt, effect = move
        ref = decode(current[position:position + 1])
        current[position] = alt
        score = scores.reference_score + effect
        cumulative = score - original_score
        result.edits.append(Edit(step, position, ref, "ACGT"[alt], effect, cumulative,
                                 float(percent_change(cumulative, original_score)), score))
        log.info("step %d: %s%d%s, effect %.4g, cumulative %.4g", step, ref, position,
                 "ACGT"[alt], effect, cumulative)
    else:
        result.stop_reason = f"budget of {budget} edit(s) reached"
    result.edited = current
    return result


def write_fasta_record(handle: IO[str], gene: str, codes: np.ndarray) -> None:
    handle.write(f">{gene}\n{decode(codes)}\n")


def run(args: argparse.Namespace) -> int:
    model = load_scorer(args.model, command_device(args))
    genes, codes = read_sequences(args.fasta, model.seq_len, args.genes, model_length_policy(model))
    protect = [parse_range(text) for text in (args.protect or [])]
    frames, edited = [], []
    for gene, row in progress(list(zip(genes, codes, strict=True)), desc="edit", unit="sequence",
                              log=log):
        result = hill_climb(model, row, args.budget, args.direction, protect, args.include_n,
                            args.batch_size)
        log.info("%s: %d edit(s), %s", gene, len(result.edits), result.stop_reason)
        frames.append(result.to_frame(gene))
        edited.append(result.edited)
    table = pd.concat(frames, ignore_index=True)
    write_tsv(table, args.out, float_format="%.6g")
    if args.edited_fasta:
        with atomic_open(args.edited_fasta) as handle:
            for gene, row in zip(genes, edited, strict=True):
                write_fasta_record(handle, gene, row)
    table.to_string(sys.stdout, index=False, float_format=lambda v: f"{v:.4g}")
    sys.stdout.write("\n")
    return 0
