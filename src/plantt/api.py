"""Use a trained model from Python: load it, score sequences and pairs, explain and mutate them.

    import plantt

    model = plantt.load_model("results/models/rnaseq3p/plantt/fold_0")  # or a seed ensemble's
    scores = plantt.predict_sequences(model, ["ACGT...", "TTGA..."])  # one score per sequence
    d = plantt.predict_pairs(model, sequences_a, sequences_b)        # predicted a - b
    effects = plantt.saturation_mutagenesis(model, sequence)  # (4, L): each substitution
    contributions = plantt.attribute(model, sequences)  # (n, 4, L): DeepLift of each score

Every function takes the model as a folder (loaded on each call) or as what :func:`load_model`
returned (loaded once: the way for many calls). Sequences are DNA strings (one string or a list)
or one-hot arrays, channel first as in PyTorch and tangermeme: ``(4, L)`` for one sequence,
``(n, 4, L)`` for several, rows in A, C, G, T order (a column of zeros is an N). Strings are checked
as ``plantt predict`` checks them (:func:`plantt.tables.check_dna`: an error names the sequence's
position in the list and what is wrong) and must have the model's length (``seq_len`` in its
``model.json``) unless the model states how other lengths are handled (models of ``plantt fit``).

A two-tower PlanTT model scores a single sequence by its tower (``sum(z)``: expression up to an
offset that cancels in every difference); a single-sequence model predicts its expression; the
Washburn classifier scores pairs only (the probability that sequence a is the more expressed).
:func:`saturation_mutagenesis` and :func:`attribute` explain that per-sequence score, as
``plantt ism`` and ``plantt attribute`` do. ``device``: ``cuda``, ``mps``, ``cpu`` or None (the best
there is).
(No function is called ``predict`` or ``ism``: those names are the modules of the ``plantt predict``
and ``plantt ism`` commands, and ``plantt.ism`` would become the module once it is imported.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from plantt.io import InputError, PathLike

if TYPE_CHECKING:
    from torch import nn

#: A model: its folder, or the module :func:`load_model` returned.
ModelLike = Union[PathLike, "nn.Module"]  # noqa: UP007 - a string forward reference
#: Sequences: one DNA string, a list of them, or one-hot arrays ``(4, L)`` / ``(n, 4, L)``.
SequencesLike = str | Sequence[str] | np.ndarray


def load_model(model: PathLike, device: str | None = None) -> nn.Module:
    """The model (or seed ensemble) saved in the folder ``model``, in eval mode, on ``device``.
    Its ``info`` attribute holds its ``model.json``."""
    from plantt.models import load_model as load_saved
    from plantt.train import resolve_device

    return load_saved(model, device=resolve_device(device, allow_cpu_fallback=True))


def _loaded(model: ModelLike, device: str | None) -> tuple[nn.Module, str]:
    """The model as a module (loaded if a folder is given) and the name its errors use."""
    from torch import nn

    if isinstance(model, nn.Module):
        if not hasattr(model, "info"):
            raise TypeError("expected a model folder or a model plantt.load_model returned; "
                            f"got a {type(model).__name__} without its model.json (info)")
        if device is not None:
            from plantt.train import resolve_device

            model = model.to(resolve_device(device, allow_cpu_fallback=True))
        return model, str(model.info.get("kind", "model"))
    if isinstance(model, str | Path):
        return load_model(model, device), str(model)
    raise TypeError(f"expected a model folder or a loaded model, got {type(model).__name__}")


def _from_one_hot(array: np.ndarray, what: str) -> list[str]:
    """DNA strings of ``(4, L)`` / ``(n, 4, L)`` one-hot arrays; a column of zeros is an N."""
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1] != 4:
        raise ValueError(f"{what}: one-hot sequences must have shape (4, L) or (n, 4, L), "
                         f"channels in A, C, G, T order; got shape {array.shape}")
    values = np.asarray(array, dtype=np.float64)
    column_sums = values.sum(axis=1)
    bad = ~(np.isclose(column_sums, 1.0) | np.isclose(column_sums, 0.0)) | (values < 0).any(axis=1)
    if bad.any():
        row, position = map(int, np.argwhere(bad)[0])
        raise ValueError(f"{what}[{row}]: position {position} is not one-hot (its 4 channels "
                         f"sum to {column_sums[row, position]:g}; expected 1, or 0 for N)")
    letters = np.array(list("ACGTN"))
    codes = np.where(np.isclose(column_sums, 0.0), 4, values.argmax(axis=1))
    return ["".join(letters[row]) for row in codes]


def _codes(model: ModelLike, loaded: nn.Module, sequences: SequencesLike, what: str
           ) -> np.ndarray:
    from plantt.predict import encode_for_model, model_length
    from plantt.tables import check_dna

    if isinstance(sequences, np.ndarray):
        sequences = _from_one_hot(sequences, what)
    elif isinstance(sequences, str):
        sequences = [sequences]
    sequences = list(sequences)
    if not sequences:
        raise ValueError(f"{what}: no sequences to score")
    names = [f"{what}[{i}]" for i in range(len(sequences))]
    checked = []
    for name, sequence in zip(names, sequences, strict=True):
        if not isinstance(sequence, str):
            raise TypeError(f"{name}: expected a DNA string, got {type(sequence).__name__}")
        checked.append(check_dna(sequence, None, record=name))
    source = model if isinstance(model, str | Path) else what
    return encode_for_model(checked, names, model_length(loaded.info), source)


def predict_sequences(model: ModelLike, sequences: SequencesLike, batch_size: int = 64,
                      device: str | None = None) -> np.ndarray:
    """One score per sequence (float64, in the order given)."""
    from plantt.train import predict_sequences as predict_rows

    loaded, name = _loaded(model, device)
    if getattr(loaded, "kind", "") == "washburn":
        raise InputError(name, "the Washburn classifier predicts pairs only (predict_pairs)")
    codes = _codes(model, loaded, sequences, "sequences")
    return np.asarray(predict_rows(loaded, codes, np.arange(len(codes)), batch_size),
                      dtype=np.float64)


def predict_pairs(model: ModelLike, sequences_a: SequencesLike, sequences_b: SequencesLike,
                  batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """The predicted expression difference of each pair ``(sequences_a[i], sequences_b[i])``
    (a - b, in the units of the training targets; the Washburn classifier: the probability that
    a is the more expressed), float64."""
    from plantt.train import predict_pairs as predict_rows

    loaded, _ = _loaded(model, device)
    codes_a = _codes(model, loaded, sequences_a, "sequences_a")
    codes_b = _codes(model, loaded, sequences_b, "sequences_b")
    if len(codes_a) != len(codes_b):
        raise ValueError(f"{len(codes_a)} sequences_a but {len(codes_b)} sequences_b: pairs "
                         "need as many of each")
    n = len(codes_a)
    codes = np.concatenate([codes_a, codes_b])
    return np.asarray(predict_rows(loaded, codes, np.arange(n), np.arange(n, 2 * n), batch_size),
                      dtype=np.float64)


def saturation_mutagenesis(model: ModelLike, sequence: str | np.ndarray,
                           positions: Sequence[int] | None = None, device: str | None = None
                           ) -> np.ndarray:
    """In-silico (saturation) mutagenesis of one sequence: ``(4, L)`` float64, entry ``[b, i]``
    the change of the sequence's score when base ``b`` (A, C, G, T) is put at position ``i``; 0
    at the reference base, NaN at N and at positions outside ``positions`` (None: all). As
    ``plantt ism``: towers that can be sliced recompute only each mutation's receptive field,
    with the same results."""
    from plantt.ism import ism_scores, require_scorer

    loaded, name = _loaded(model, device)
    scorer = require_scorer(loaded, name)
    codes = _codes(model, loaded, sequence, "sequence")
    if len(codes) != 1:
        raise ValueError(f"saturation_mutagenesis takes one sequence; got {len(codes)} (call it "
                         "once per sequence)")
    chosen = None if positions is None else np.asarray(positions, dtype=np.int64)
    return ism_scores(scorer, codes[0], positions=chosen).effect.T.copy()


def attribute(model: ModelLike, sequences: SequencesLike,
              references: SequencesLike | None = None, batch_size: int = 64,
              device: str | None = None) -> np.ndarray:
    """DeepLift (captum, Rescale rule) of each sequence's score: ``(n, 4, L)`` float64, summing over
    a sequence to its score minus its reference's. ``references``: one per sequence (each row's
    own, e.g. its ortholog, as the workflow's pair attributions), or None for an all-zero input.
    Contributions are (input - reference) times DeepLift's multipliers, so they are zero wherever a
    channel of the sequence equals the reference's (against the zero input: every channel but the
    base present)."""
    from plantt.attribution import deeplift_scores
    from plantt.ism import require_plantt

    loaded, name = _loaded(model, device)
    plantt_model = require_plantt(loaded, name)
    codes = _codes(model, loaded, sequences, "sequences")
    reference_codes = None
    if references is not None:
        reference_codes = _codes(model, loaded, references, "references")
        if reference_codes.shape != codes.shape:
            raise ValueError(f"{len(reference_codes)} references for {len(codes)} sequences: "
                             "give one reference per sequence")
    values = deeplift_scores(plantt_model, codes, reference_codes, batch_size=batch_size).values
    return values.astype(np.float64)
