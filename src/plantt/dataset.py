"""Encoded training data: each gene's window stored once, pairs as row indices into it.

A pair dataset repeats genes (an orthogroup of four species gives six pairs), and one-hot tensors
take 16 bytes per base in float32. So windows are stored once per gene as uint8 codes (A=0 C=1 G=2
T=3 N=4, :mod:`plantt.encoding`) in a ``.npy`` file (n_genes x window length) that can be memory
mapped, with a ``genes.tsv`` naming each row (``index, species, gene_id``). A fold's set of pairs is
then two int64 index arrays and a float32 target; the soft one-hot input is built per batch with
:func:`plantt.encoding.soft_one_hot`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import torch

from plantt.encoding import encode, soft_one_hot
from plantt.io import InputError, PathLike, atomic_path, get_logger, read_tsv, write_tsv
from plantt.tables import check_dna, read_fasta_records

log = get_logger("dataset")

GENES_COLUMNS = ["index", "species", "gene_id"]


def read_fasta_codes(path: PathLike) -> tuple[list[str], np.ndarray]:
    """Records of a windows FASTA as (ids, codes n x L); all records must have the same length.

    The FASTA may be plain or gzip (recognised by content, whatever the name). A file without
    records gives no windows (``write_encoded_windows`` warns). Errors (InputErrors naming the
    line and record): text before the first header, a header without an id, a record without a
    sequence, an id used twice, a sequence that is not DNA (:func:`plantt.tables.check_dna`:
    A, C, G, T, N in either case; IUPAC ambiguity codes are read as N), records of another length
    than the first, binary data, truncated gzip.
    """
    records = read_fasta_records(path, allow_empty=True)
    if not records:
        return [], np.zeros((0, 0), dtype=np.uint8)
    first_line: dict[str, int] = {}
    for record in records:
        if record.name in first_line:
            raise InputError(path, f"gene id {record.name!r} appears twice (first on line "
                                   f"{first_line[record.name]})", line=record.line,
                             record=record.name)
        first_line[record.name] = record.line
    seqs = [check_dna(r.sequence, path, r.line, r.name) for r in records]
    length = len(seqs[0])
    for record, seq in zip(records, seqs, strict=True):
        if len(seq) != length:
            raise InputError(path, f"window of {len(seq)} bases, expected {length} like the "
                                   "first record", line=record.line, record=record.name)
    return [r.name for r in records], encode("".join(seqs)).reshape(len(records), length)


def write_encoded_windows(fasta_paths_by_species: Mapping[str, PathLike], out_npy: PathLike,
                          out_genes_tsv: PathLike) -> pd.DataFrame:
    """Encode the windows FASTA of every species into one ``.npy`` plus its ``genes.tsv``.

    Rows follow the species order given, then FASTA order. Returns the genes table.
    """
    tables, arrays, length, first_path = [], [], None, None
    for species, path in fasta_paths_by_species.items():
        ids, codes = read_fasta_codes(path)
        if not ids:
            log.warning("species %s: %s has no windows", species, path)
            continue
        if length is not None and codes.shape[1] != length:
            raise InputError(path, f"windows of {codes.shape[1]} bases, but {first_path} has "
                                   f"{length}", record=ids[0])
        length, first_path = codes.shape[1], first_path or path
        dup = pd.Index(ids).duplicated()
        if dup.any():
            raise InputError(path, "gene id appears twice", record=ids[int(dup.argmax())])
        tables.append(pd.DataFrame({"species": species, "gene_id": ids}))
        arrays.append(codes)
    if not tables:
        # an empty array would only fail later, far from its cause
        raise InputError(first_path or next(iter(fasta_paths_by_species.values()), None),
                         "no window in any of the FASTA files "
                         f"({', '.join(str(p) for p in fasta_paths_by_species.values())}): "
                         "expected records of the windows (plantt windows)")
    genes = pd.concat(tables, ignore_index=True)
    genes.insert(0, "index", np.arange(len(genes), dtype=np.int64))
    shape = (len(genes), length or 0)
    with atomic_path(out_npy, suffix=".npy") as tmp:
        codes_out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        row = 0
        for codes in arrays:
            codes_out[row:row + len(codes)] = codes
            row += len(codes)
        codes_out.flush()
        del codes_out
    write_tsv(genes, out_genes_tsv)
    log.info("%d windows of %d bases from %d species encoded", shape[0], shape[1],
             len(fasta_paths_by_species))
    return genes


@dataclass
class EncodedWindows:
    """Window codes (n_genes x L uint8, usually memory mapped) and the gene of each row."""

    codes: np.ndarray
    genes: pd.DataFrame

    @classmethod
    def load(cls, npy: PathLike, genes_tsv: PathLike, mmap: bool = True) -> EncodedWindows:
        try:
            codes = np.load(npy, mmap_mode="r" if mmap else None)
        except FileNotFoundError:
            raise InputError(npy, "encoded windows file not found") from None
        except ValueError as err:
            raise InputError(npy, f"not a .npy array: {err}") from None
        genes = read_tsv(genes_tsv, required=GENES_COLUMNS,
                         dtype={"species": str, "gene_id": str})
        if codes.ndim != 2 or codes.dtype != np.uint8:
            raise InputError(npy, f"expected a 2-D uint8 array, found {codes.ndim}-D "
                                  f"{codes.dtype}")
        if len(genes) != codes.shape[0]:
            raise InputError(genes_tsv, f"{len(genes)} genes but {npy} has {codes.shape[0]} rows")
        if not np.array_equal(genes["index"].to_numpy(), np.arange(len(genes))):
            raise InputError(genes_tsv, "column index must be 0, 1, 2, ... in row order")
        return cls(codes, genes)

    def __post_init__(self) -> None:
        self._lookup = pd.MultiIndex.from_arrays([self.genes["species"].to_numpy(),
                                                  self.genes["gene_id"].to_numpy()])
        if self._lookup.has_duplicates:
            raise ValueError("a (species, gene_id) appears on two rows")

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def index_of(self, species: str, gene_id: str) -> int:
        """Row of a gene; KeyError when it has no window."""
        return int(self._lookup.get_loc((species, gene_id)))

    def indices_of(self, species: Sequence[str], gene_ids: Sequence[str]) -> np.ndarray:
        """Rows of many genes at once (int64); -1 where a gene has no window."""
        keys = pd.MultiIndex.from_arrays([np.asarray(species, dtype=object),
                                          np.asarray(gene_ids, dtype=object)])
        return self._lookup.get_indexer(keys).astype(np.int64)


@dataclass
class PairArrays:
    """One set of one fold: rows of gene a and gene b in the windows, target d, orthogroup."""

    idx_a: np.ndarray
    idx_b: np.ndarray
    target: np.ndarray
    orthogroup: np.ndarray

    def __len__(self) -> int:
        return len(self.target)


def pair_arrays(splits: pd.DataFrame, windows: EncodedWindows, fold: int,
                set_name: str) -> PairArrays:
    """Index arrays of the pairs of ``set_name`` in ``fold`` (rows kept in file order)."""
    rows = splits[(splits["fold"] == fold) & (splits["set"] == set_name)]
    idx_a = windows.indices_of(rows["species_a"], rows["gene_a"].astype(str))
    idx_b = windows.indices_of(rows["species_b"], rows["gene_b"].astype(str))
    missing = np.concatenate([
        (rows["species_a"] + "/" + rows["gene_a"].astype(str)).to_numpy()[idx_a < 0],
        (rows["species_b"] + "/" + rows["gene_b"].astype(str)).to_numpy()[idx_b < 0]])
    if len(missing):
        missing = pd.unique(missing)
        raise InputError(None, f"{len(missing)} gene(s) of fold {fold} {set_name} have no "
                               f"encoded window: {', '.join(missing[:10])}", record=missing[0])
    return PairArrays(idx_a, idx_b, rows["d"].to_numpy(dtype=np.float32),
                      rows["orthogroup"].astype(str).to_numpy())


def gene_levels(splits: pd.DataFrame, windows: EncodedWindows, fold: int,
                set_name: str = "train") -> Any:
    """Each gene of ``fold``'s ``set_name`` pairs with its expression level, ``log2(mean + 1)``
    of the mean over replicates the labels were computed from (columns ``mean_a``, ``mean_b``):
    a :class:`plantt.train.GeneLevels`, or None when the table has no means."""
    from plantt.train import GeneLevels

    if not {"mean_a", "mean_b"} <= set(splits.columns):
        return None
    rows = splits[(splits["fold"] == fold) & (splits["set"] == set_name)]
    sides = pd.concat([
        pd.DataFrame({"species": rows[f"species_{s}"].astype(str),
                      "gene": rows[f"gene_{s}"].astype(str),
                      "mean": pd.to_numeric(rows[f"mean_{s}"], errors="coerce")})
        for s in ("a", "b")], ignore_index=True).drop_duplicates(["species", "gene"])
    sides = sides[np.isfinite(sides["mean"]) & (sides["mean"] >= 0)]
    idx = windows.indices_of(sides["species"], sides["gene"])
    keep = idx >= 0
    return GeneLevels(idx[keep], np.log2(sides["mean"].to_numpy()[keep] + 1.0),
                      sides["species"].to_numpy()[keep])


def batch_tensors(windows: EncodedWindows, pairs: PairArrays, batch: np.ndarray,
                  device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor,
                                                               torch.Tensor]:
    """Soft one-hot inputs (B, 4, L) of both sides and the targets (B,) for positions ``batch``."""
    import torch  # here: `plantt encode` (data preparation) must not need PyTorch

    codes_a = torch.from_numpy(np.ascontiguousarray(windows.codes[pairs.idx_a[batch]]))
    codes_b = torch.from_numpy(np.ascontiguousarray(windows.codes[pairs.idx_b[batch]]))
    target = torch.from_numpy(pairs.target[batch])
    return (soft_one_hot(codes_a.to(device)), soft_one_hot(codes_b.to(device)),
            target.to(device))


def read_splits(path: PathLike) -> pd.DataFrame:
    """A splits table from ``plantt splits`` with ids read as strings, ``d`` finite, ``fold`` an
    integer and ``set`` train/validation/test; anything else is an InputError naming the line
    (:func:`plantt.splits.check_splits_table`). Only empty cells are missing values."""
    from plantt.splits import check_splits_table

    # Blank lines kept so that a row's index + 2 is its line; check_splits_table drops them.
    return check_splits_table(
        read_tsv(path, required=["orthogroup", "gene_a", "species_a", "gene_b", "species_b",
                                 "d", "fold", "set"],
                 dtype={"orthogroup": str, "label": str, "gene_a": str, "gene_b": str,
                        "species_a": str, "species_b": str, "set": str},
                 keep_default_na=False, na_values=[""], skip_blank_lines=False), path)


def _parse_windows_args(items: Sequence[str]) -> dict[str, Path]:
    result: dict[str, Path] = {}
    for item in items:
        species, sep, path = item.partition("=")
        if not sep or not species or not path:
            raise InputError(None, f"--windows expects SPECIES=FASTA, got {item!r}")
        if species in result:
            raise InputError(None, f"--windows names species {species!r} twice")
        result[species] = Path(path)
    return result


def run(args: argparse.Namespace) -> int:
    write_encoded_windows(_parse_windows_args(args.windows), args.out_npy, args.out_genes)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode", help="encode windows FASTAs into one memory-mappable array",
        description="Store each gene's window once as uint8 codes (.npy) with a genes table.")
    parser.add_argument("--windows", required=True, nargs="+", metavar="SPECIES=FASTA",
                        help="windows FASTA of each species")
    parser.add_argument("--out-npy", required=True, help=".npy file to write")
    parser.add_argument("--out-genes", required=True, help="genes TSV to write")
    parser.set_defaults(func=run)
