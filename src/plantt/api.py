"""Score sequences with a trained model from Python, in one call.

    import plantt

    folder = "results/models/rnaseq3p/plantt/fold_0"      # a model, or a seed ensemble's folder
    scores = plantt.predict_sequences(folder, ["ACGT...", "TTGA..."])  # one score per sequence
    d = plantt.predict_pairs(folder, sequences_a, sequences_b)  # predicted difference a - b

Sequences are checked as ``plantt predict`` checks them (:func:`plantt.tables.check_dna`: an
error names the sequence's position in the list and what is wrong) and must have the model's
length (``seq_len`` in its ``model.json``), unless the model states how other lengths are handled
(models of ``plantt fit``). A two-tower PlanTT model scores a single sequence by its tower
(``sum(z)``: expression up to an offset that cancels in every difference); a single-sequence model
predicts its expression; the Washburn classifier scores pairs only (the probability that sequence a
is the more expressed). The model is loaded on every call; for many calls, batch the sequences.
(Neither is called ``predict``: that name is the ``plantt predict`` command's module.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from plantt.io import PathLike


def _codes(model: PathLike, sequences: str | Sequence[str], what: str) -> np.ndarray:
    from plantt.models import read_model_info
    from plantt.predict import encode_for_model, model_length
    from plantt.tables import check_dna

    if isinstance(sequences, str):
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
    return encode_for_model(checked, names, model_length(read_model_info(model)), model)


def predict_sequences(model: PathLike, sequences: str | Sequence[str], batch_size: int = 64,
                      device: str | None = None) -> np.ndarray:
    """One score per sequence (float64, in the order given) from the model (or seed ensemble)
    in the folder ``model``; ``device``: ``cuda``, ``mps``, ``cpu`` or None (the best there
    is)."""
    from plantt.predict import predict_encoded_sequences

    codes = _codes(model, sequences, "sequences")
    return np.asarray(predict_encoded_sequences(model, codes, batch_size, device),
                      dtype=np.float64)


def predict_pairs(model: PathLike, sequences_a: str | Sequence[str],
                  sequences_b: str | Sequence[str], batch_size: int = 64,
                  device: str | None = None) -> np.ndarray:
    """The predicted expression difference of each pair ``(sequences_a[i], sequences_b[i])``
    (a - b, in the units of the training targets; the Washburn classifier: the probability that
    a is the more expressed), float64."""
    from plantt.predict import predict_encoded

    codes_a = _codes(model, sequences_a, "sequences_a")
    codes_b = _codes(model, sequences_b, "sequences_b")
    if len(codes_a) != len(codes_b):
        raise ValueError(f"{len(codes_a)} sequences_a but {len(codes_b)} sequences_b: pairs "
                         "need as many of each")
    return np.asarray(predict_encoded(model, codes_a, codes_b, batch_size, device),
                      dtype=np.float64)
