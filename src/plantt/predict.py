"""``plantt predict``: expression-difference predictions of a trained model for sequence pairs.

Input is either a TSV with columns ``sequence_a`` and ``sequence_b`` (every other column, e.g. ids, is
carried through to the output) or two FASTA files whose records are paired by order. Every sequence
must have exactly the model's length (``seq_len`` in its ``model.json``); it is encoded with
:func:`plantt.encoding.encode` (lower case accepted, non-ACGT characters become N).

Output: a TSV with the carried columns (``id_a``, ``id_b`` for FASTA input) and ``prediction``:
PlanTT's predicted difference ``e_a - e_b`` (in the units of its training targets), or, for the
Washburn classifier, the probability that gene a is more highly expressed than gene b.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from plantt.encoding import encode
from plantt.io import InputError, PathLike, get_logger, open_text, read_tsv, write_tsv
from plantt.models import load_model, read_model_info
from plantt.train import predict_pairs, resolve_device

log = get_logger("predict")

SEQUENCE_COLUMNS = ("sequence_a", "sequence_b")


def read_fasta(path: PathLike) -> list[tuple[str, str]]:
    """``(name, sequence)`` records of a (possibly gzipped) FASTA file, in file order."""
    records: list[tuple[str, str]] = []
    name: str | None = None
    chunks: list[str] = []
    try:
        handle = open_text(path)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    with handle:
        for line_no, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                if name is not None:
                    records.append((name, "".join(chunks)))
                name = line[1:].split(maxsplit=1)[0] if len(line) > 1 else ""
                if not name:
                    raise InputError(path, "FASTA header without a name", line=line_no)
                chunks = []
            elif name is None:
                raise InputError(path, "sequence before the first '>' header; expected FASTA",
                                 line=line_no)
            else:
                chunks.append(line)
    if name is not None:
        records.append((name, "".join(chunks)))
    if not records:
        raise InputError(path, "no FASTA records found")
    return records


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


def pairs_from_tsv(path: PathLike, seq_len: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Carried columns and the encoded ``a`` and ``b`` sequences of a pairs TSV."""
    df = read_tsv(path, required=list(SEQUENCE_COLUMNS), dtype=str, keep_default_na=False)
    if df.empty:
        raise InputError(path, "no pairs (the table has a header but no rows)")
    lines = list(range(2, len(df) + 2))
    carried = df.drop(columns=list(SEQUENCE_COLUMNS))
    encoded = []
    for column in SEQUENCE_COLUMNS:
        names = [f"{column} of row {i + 1}" for i in range(len(df))]
        encoded.append(encode_exact_length(df[column].str.strip().tolist(), names, seq_len, path,
                                           lines))
    return carried.reset_index(drop=True), encoded[0], encoded[1]


def pairs_from_fasta(path_a: PathLike, path_b: PathLike, seq_len: int
                     ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Pairs of records matched by order from two FASTA files."""
    records_a, records_b = read_fasta(path_a), read_fasta(path_b)
    if len(records_a) != len(records_b):
        raise InputError(path_b, f"{len(records_b)} records, but {path_a} has "
                                 f"{len(records_a)}; records are paired by order")
    codes_a = encode_exact_length([s for _, s in records_a], [n for n, _ in records_a], seq_len,
                                  path_a)
    codes_b = encode_exact_length([s for _, s in records_b], [n for n, _ in records_b], seq_len,
                                  path_b)
    ids = pd.DataFrame({"id_a": [n for n, _ in records_a], "id_b": [n for n, _ in records_b]})
    return ids, codes_a, codes_b


def predict_encoded(model_dir: PathLike, codes_a: np.ndarray, codes_b: np.ndarray,
                    batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """Predictions of the model in ``model_dir`` for encoded pairs ``(codes_a[i], codes_b[i])``."""
    dev = resolve_device(device, allow_cpu_fallback=True)
    model = load_model(model_dir, device=dev)
    n = codes_a.shape[0]
    codes = np.concatenate([codes_a, codes_b])
    return predict_pairs(model, codes, np.arange(n), np.arange(n, 2 * n), batch_size, dev)


def run(args: argparse.Namespace) -> int:
    model_dir = Path(args.model)
    info = read_model_info(model_dir)
    seq_len = int(info["seq_len"])
    if args.pairs is not None:
        carried, codes_a, codes_b = pairs_from_tsv(args.pairs, seq_len)
    else:
        carried, codes_a, codes_b = pairs_from_fasta(args.fasta_a, args.fasta_b, seq_len)
    log.info("predicting %d pairs with the %s model in %s", len(carried), info["kind"], model_dir)
    out = carried.copy()
    out["prediction"] = predict_encoded(model_dir, codes_a, codes_b, args.batch_size, args.device)
    write_tsv(out, args.out, float_format="%.6g")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="predict expression differences for pairs of sequences",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, metavar="MODEL_DIR",
                        help="model directory (weights.pt + model.json)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", metavar="TSV",
                        help="TSV with columns sequence_a, sequence_b (other columns carried)")
    source.add_argument("--fasta-a", metavar="FASTA", help="sequences of gene a (paired by order)")
    parser.add_argument("--fasta-b", metavar="FASTA", help="sequences of gene b (with --fasta-a)")
    parser.add_argument("--out", required=True, metavar="TSV", help="output table")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:1, mps (default: the best available)")
    parser.set_defaults(func=_run_checked)


def _run_checked(args: argparse.Namespace) -> int:
    if args.pairs is not None and args.fasta_b is not None:
        raise InputError(None, "give either --pairs or --fasta-a/--fasta-b, not both")
    if args.fasta_a is not None and args.fasta_b is None:
        raise InputError(None, "--fasta-a needs --fasta-b")
    if args.fasta_b is not None and args.fasta_a is None:
        raise InputError(None, "--fasta-b needs --fasta-a")
    return run(args)
