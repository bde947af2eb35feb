"""``plantt predict``: predictions of a trained model for pairs of sequences or single sequences.

Pairs: a table with columns ``sequence_a`` and ``sequence_b`` (TSV, or CSV by its ``.csv`` name,
gzipped or not; every other column, e.g. ids, is carried through to the output), or two FASTA files
whose records are paired by order. Single sequences (``--sequences``): a FASTA file, or a table with
a ``sequence`` column (and optionally ``id``).

Every sequence is checked (:func:`plantt.tables.check_dna`) and an InputError names the file, the
line and the record (or column) of the first bad one: an empty sequence (an empty cell, a FASTA
header with no sequence lines), a character that is not DNA (text such as ``HELLO WORLD``, ``U``,
``-``, spaces; the characters found are named), or a sequence more than half of which is IUPAC
ambiguity codes (a protein sequence, say). Lower case is accepted, and the IUPAC ambiguity codes
(R, Y, S, W, K, M, B, D, H, V) are read as N (:func:`plantt.encoding.encode`). A table row with
another number of fields than the header, binary data and truncated gzip (recognised by content,
whatever the name) are InputErrors too. Ids must tell the outputs apart: a FASTA record name used
twice in ``--sequences`` (or a repeated ``id`` in its table) is an error; in ``--fasta-a`` or
``--fasta-b`` a name may repeat only with the same sequence (to pair one sequence with several by
order). Sequences must have exactly the model's length (``seq_len`` in its ``model.json``),
unless the model states how other lengths are handled (``"input"`` in model.json, written by
``plantt fit``): then that padding and trimming is applied (:class:`plantt.tables.LengthPolicy`).

``--model`` is a model directory, or a seed ensemble (a directory with ``ensemble.json``, e.g. a
``plantt fit`` fold or its ``model/``): the ensemble predicts the mean of its members.

Output: a TSV with the carried columns (``id_a``, ``id_b`` for FASTA input; ``id`` for single
sequences) and ``prediction``. For pairs: the predicted difference ``e_a - e_b`` (in the units of
the training targets; a single-sequence model predicts each sequence and subtracts), or, for the
Washburn classifier, the probability that gene a is more highly expressed than gene b. For single
sequences: a single-sequence model's predicted expression, or a two-tower model's score ``sum(z)``
(expression up to an offset that cancels in every difference).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from plantt.encoding import encode
from plantt.io import InputError, PathLike, get_logger, write_tsv
from plantt.models import load_model, read_model_info
from plantt.tables import (
    TABLE_SUFFIXES,
    LengthPolicy,
    check_dna,
    encode_fixed,
    is_fasta,
    iter_rows,
    read_dna_fasta,
)
from plantt.train import predict_pairs, predict_sequences, resolve_device

log = get_logger("predict")

SEQUENCE_COLUMNS = ("sequence_a", "sequence_b")


def read_fasta(path: PathLike) -> list[tuple[str, str]]:
    """``(name, sequence)`` records of a (possibly gzipped) FASTA file, in file order; sequences
    checked and upper-cased (:func:`plantt.tables.check_dna`), names unique."""
    return [(r.name, r.sequence) for r in read_dna_fasta(path)]


def encode_exact_length(sequences: list[str], names: list[str], seq_len: int, path: PathLike,
                        lines: list[int] | None = None) -> np.ndarray:
    """Encode sequences into an ``(n, seq_len)`` uint8 array; a wrong length names its record."""
    codes = np.empty((len(sequences), seq_len), dtype=np.uint8)
    for i, (seq, name) in enumerate(zip(sequences, names, strict=True)):
        if len(seq) != seq_len:
            raise InputError(path, f"sequence has {len(seq)} bases; this model expects exactly "
                                   f"{seq_len}", line=lines[i] if lines else None, record=name)
        codes[i] = encode(seq)
    return codes


Length = int | LengthPolicy


def encode_for_model(sequences: list[str], names: list[str], length: Length, path: PathLike,
                     lines: list[int] | None = None) -> np.ndarray:
    """Codes for a model taking ``length`` bases exactly (an int) or by a length policy."""
    if isinstance(length, LengthPolicy):
        return encode_fixed(sequences, length, path, lines, names)
    return encode_exact_length(sequences, names, length, path, lines)


def model_length(info: dict) -> Length:
    """What a model's ``model.json`` says about input lengths: a policy, or the exact length."""
    policy = LengthPolicy.from_model_info(info)
    return policy if policy is not None else int(info["seq_len"])


def _read_table(path: PathLike, required: list[str]) -> tuple[pd.DataFrame, list[int]]:
    """The rows of a TSV/CSV (every value a string) and the line of each row.

    Read with :func:`plantt.tables.iter_rows` rather than pandas: it keeps the true line of every
    row (blank lines included), and a row with fewer fields than the header is an error instead
    of a row of missing values.
    """
    suffix = Path(str(path).lower().removesuffix(".gz")).suffix
    header, rows = iter_rows(path, sep=TABLE_SUFFIXES.get(suffix, "\t"))
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}; found "
                               f"{', '.join(header)}", line=1)
    lines, values = [], []
    for line, row in rows:
        lines.append(line)
        values.append(row)
    if not values:
        raise InputError(path, "no rows (the table has a header but no rows)")
    return pd.DataFrame(values, columns=header, dtype=str), lines


def _checked_column(df: pd.DataFrame, column: str, path: PathLike, lines: list[int]
                    ) -> list[str]:
    return [check_dna(value, path, line, column=column)
            for value, line in zip(df[column].tolist(), lines, strict=True)]


def pairs_from_tsv(path: PathLike, length: Length) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Carried columns and the encoded ``a`` and ``b`` sequences of a pairs table."""
    df, lines = _read_table(path, list(SEQUENCE_COLUMNS))
    carried = df.drop(columns=list(SEQUENCE_COLUMNS))
    encoded = []
    for column in SEQUENCE_COLUMNS:
        names = [f"{column} of row {i + 1}" for i in range(len(df))]
        encoded.append(encode_for_model(_checked_column(df, column, path, lines), names, length,
                                        path, lines))
    return carried.reset_index(drop=True), encoded[0], encoded[1]


def pairs_from_fasta(path_a: PathLike, path_b: PathLike, length: Length
                     ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Pairs of records matched by order from two FASTA files."""
    records_a = read_dna_fasta(path_a, duplicates="same")
    records_b = read_dna_fasta(path_b, duplicates="same")
    if len(records_a) != len(records_b):
        raise InputError(path_b, f"{len(records_b)} records, but {path_a} has "
                                 f"{len(records_a)}; records are paired by order")
    codes_a = encode_for_model([r.sequence for r in records_a], [r.name for r in records_a],
                               length, path_a, [r.line for r in records_a])
    codes_b = encode_for_model([r.sequence for r in records_b], [r.name for r in records_b],
                               length, path_b, [r.line for r in records_b])
    ids = pd.DataFrame({"id_a": [r.name for r in records_a], "id_b": [r.name for r in records_b]})
    return ids, codes_a, codes_b


def sequences_from_file(path: PathLike, length: Length) -> tuple[pd.DataFrame, np.ndarray]:
    """Ids and encoded sequences of a FASTA file or a table with a ``sequence`` column."""
    if is_fasta(path):
        records = read_dna_fasta(path)
        names, seqs, lines = [r.name for r in records], [r.sequence for r in records], \
            [r.line for r in records]
        carried = pd.DataFrame({"id": names})
    else:
        df, lines = _read_table(path, ["sequence"])
        seqs = _checked_column(df, "sequence", path, lines)
        if "id" in df:
            names = _unique_ids(df["id"].tolist(), path, lines)
        else:
            names = [f"row {i + 1}" for i in range(len(df))]
        carried = df.drop(columns=["sequence"]).reset_index(drop=True)
    return carried, encode_for_model(seqs, names, length, path, lines)


def _unique_ids(ids: list[str], path: PathLike, lines: list[int]) -> list[str]:
    """The ids of a table stripped; an empty id, or one of an earlier row, is an error (the
    outputs would be ambiguous)."""
    first: dict[str, int] = {}
    out = []
    for ident, line in zip(ids, lines, strict=True):
        ident = ident.strip()
        if not ident:
            raise InputError(path, "empty id", line=line)
        if ident in first:
            raise InputError(path, f"duplicate id {ident!r} (first on line {first[ident]})",
                             line=line, record=ident)
        first[ident] = line
        out.append(ident)
    return out


def predict_encoded(model_dir: PathLike, codes_a: np.ndarray, codes_b: np.ndarray,
                    batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """Predictions of the model in ``model_dir`` for encoded pairs ``(codes_a[i], codes_b[i])``."""
    dev = resolve_device(device, allow_cpu_fallback=True)
    model = load_model(model_dir, device=dev)
    n = codes_a.shape[0]
    codes = np.concatenate([codes_a, codes_b])
    return predict_pairs(model, codes, np.arange(n), np.arange(n, 2 * n), batch_size, dev)


def predict_encoded_sequences(model_dir: PathLike, codes: np.ndarray, batch_size: int = 64,
                              device: str | None = None) -> np.ndarray:
    """Per-sequence predictions (or two-tower scores) of the model in ``model_dir``."""
    dev = resolve_device(device, allow_cpu_fallback=True)
    model = load_model(model_dir, device=dev)
    if getattr(model, "kind", "") == "washburn":
        raise InputError(model_dir, "the Washburn classifier predicts pairs only (use --pairs)")
    return predict_sequences(model, codes, np.arange(codes.shape[0]), batch_size, dev)


def run(args: argparse.Namespace) -> int:
    model_dir = Path(args.model)
    info = read_model_info(model_dir)
    length = model_length(info)
    what = "ensemble of " + str(len(info["ensemble"])) if "ensemble" in info else "one"
    out: pd.DataFrame
    if args.sequences is not None:
        carried, codes = sequences_from_file(args.sequences, length)
        log.info("predicting %d sequences with %s %s model(s) in %s", len(carried), what,
                 info["kind"], model_dir)
        out = carried.copy()
        out["prediction"] = predict_encoded_sequences(model_dir, codes, args.batch_size,
                                                      args.device)
    else:
        if args.pairs is not None:
            carried, codes_a, codes_b = pairs_from_tsv(args.pairs, length)
        else:
            carried, codes_a, codes_b = pairs_from_fasta(args.fasta_a, args.fasta_b, length)
        log.info("predicting %d pairs with %s %s model(s) in %s", len(carried), what,
                 info["kind"], model_dir)
        out = carried.copy()
        out["prediction"] = predict_encoded(model_dir, codes_a, codes_b, args.batch_size,
                                            args.device)
    write_tsv(out, args.out, float_format="%.6g")
    return 0



def run_checked(args: argparse.Namespace) -> int:
    if (args.pairs is not None or args.sequences is not None) and args.fasta_b is not None:
        raise InputError(None, "give one of --pairs, --sequences or --fasta-a/--fasta-b")
    if args.fasta_a is not None and args.fasta_b is None:
        raise InputError(None, "--fasta-a needs --fasta-b")
    if args.fasta_b is not None and args.fasta_a is None:
        raise InputError(None, "--fasta-b needs --fasta-a")
    return run(args)
