"""A k-mer ridge-regression baseline (model ``kmer``): what a linear model of k-mer counts explains.

A convolutional network earns its cost only where it beats a bag of motifs, so every assay and fold
also fits this baseline. Each window is described by the counts of every k-mer, counted separately
in blocks of ``block_length`` bases, so that a motif may weigh differently near the TSS than far
from it (750: the four quarters of a 3000-base window, i.e. the distal promoter, the proximal
promoter with the gene's first 500 bases, the gene's last 500 bases with the proximal terminator,
the distal terminator; 100: thirty blocks, position to a tenth of a kilobase). A ridge regression
on these counts is then fitted:

* on pairs (the workflow's task) the predicted difference is ``coef . (counts(a) - counts(b))``,
  without intercept: like PlanTT's head it is antisymmetric, f(a, b) = -f(b, a) and f(a, a) = 0,
  and ``coef . counts(a)`` is a per-sequence score (offset 0);
* on single sequences (``plantt fit``) it is ``coef . counts + intercept``.

Every k, block length and ridge penalty alpha of :class:`KmerSettings` is fitted on the training
set and scored on the validation set; the best validation Spearman is kept, ties going to the
simpler model (smaller k, then longer blocks, then larger alpha), and a warning is logged when the
chosen alpha is the smallest or largest of the grid (:func:`plantt.ridge.select_on_validation`).
The model is not refitted on training + validation, so that its test scores compare with PlanTT's:
PlanTT too learns from the training pairs only and uses the validation pairs only to choose (its
epoch).

Counting (:func:`kmer_block_counts`): codes as in :mod:`plantt.encoding` (A=0 C=1 G=2 T=3 N=4). A
k-mer's index is its bases read as a base-4 number, first base most significant (``AA..A`` = 0,
``TT..T`` = 4**k - 1); it belongs to the block of its first base; k-mers containing an N are not
counted (an N is no base, and counting it as one would invent sequence). Column
``block * 4**k + index``. The counts are used raw: dividing each column by its SD over the
training windows, square roots of the counts, presence/absence or tf-idf weights were no better on
the validation pairs of realistic data (benchmarks/README.md, "The k-mer baseline at full
strength").

Solver: the exact ridge solution, in whichever form is smaller (:func:`solver_form`). k = 10 in
blocks of 100 bases is 4**10 x 30 = 31 M columns, so with more columns than training rows (the
usual case) the baseline is solved in the dual (kernel ridge): ``K = X X'`` over the training rows
(pairs: their difference rows), from the Gram matrix of the distinct windows computed on the sparse
counts without ever densifying X (:func:`window_gram`, in float64 or exact float32 products), then
``(K + alpha I)^-1 y`` for every alpha from one tridiagonal reduction of K
(:func:`plantt.ridge.shifted_solves`; a Cholesky factorisation per alpha for up to 4 alphas); the
coefficients ``w = X' (K + alpha I)^-1 y`` are formed, sparse, only for the chosen model (and kept
sparse: the (k-mer, block) columns seen in a training window). With no more columns than training
rows it is the primal ``(X'X + alpha I)^-1 X'y``, the same solves on ``X'X``. Both give the same
solution to rounding (tests/test_kmer.py), and LSQR's to 1e-5. scikit-learn's iterative LSQR per
alpha (relative tolerance 1e-6, the solver of earlier versions) is left for a single penalty with
more columns than rows (the CNN's seeding ridges: one iterative solve costs less than a Gram
matrix) and for more than :data:`MAX_DIRECT` rows and columns both (tens of thousands of single
sequences, ``plantt fit``).

Cost, on one core of a busy 2-core machine, for 2,484 training and 278 validation pairs of 2,308
distinct 3,000-base windows (realistic data): per (k, block length) counting 0.2 s, the Gram matrix
1.5-4 s (most for k = 6 and 7), the tridiagonal reduction of the 2,484 x 2,484 K about 1 s whatever
the number of alphas; the default grid (15 points x 9 alphas) about a minute per fold
(benchmarks/README.md, "The k-mer baseline at full strength").
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import sparse
from scipy.linalg import blas

from plantt.encoding import N_CODE, decode
from plantt.io import InputError, PathLike, atomic_open, atomic_path, get_logger
from plantt.ridge import (
    GridRows,
    as_float,
    as_int,
    as_tuple,
    check_alphas,
    check_block_lengths,
    check_code_values,
    check_codes,
    check_rows,
    n_blocks_of,
    pair_rows,
    select_on_validation,
    sequence_rows,
    shifted_solves,
)
from plantt.train import PairSet, SequenceSet

log = get_logger("kmer")

MODEL_NPZ = "kmer_model.npz"
MODEL_JSON = "kmer_model.json"
MODEL_FORMAT = "plantt-kmer-ridge"
# 2: coefficients stored sparse (coef_index, coef_value); version 1 (a dense coef) still loads.
MODEL_FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)
SELECTION_COLUMNS = ["k", "block_length", "alpha", "val_spearman", "val_pearson", "chosen"]
# 4**12 = 16.8 M k-mers per block: beyond that a coefficient vector (8 bytes each, per block) no
# longer fits comfortably in memory, and windows of a few thousand bases hold each k-mer at most once.
MAX_K = 12
DEFAULT_KS = (6, 7, 8, 9, 10)
# 100 too is one setting away (the full grid, block_lengths [100, 250, 500, 750]): on the
# validation pairs of realistic data, blocks of 100 were the worst for every k and never chosen,
# and cost a quarter of the fit (benchmarks/README.md, "The k-mer baseline at full strength").
DEFAULT_BLOCK_LENGTHS = (250, 500, 750)
# 0.1 to 1e7, one per decade: on realistic data every validation curve is flat at both ends (within
# 0.0002 between 0.1 and 1, 0.0015 between 1e6 and 1e7: the minimum-norm fit at one end, a multiple
# of X'y at the other), so the grid spans the whole path; the old 10-1000 was left at an edge, the
# score still changing there, in 7 of 10 fits.
DEFAULT_ALPHAS = tuple(10.0 ** e for e in range(-1, 8))
# Past this many training rows and columns both, the exact solution (a matrix of min(rows,
# columns) squared, reduced in O(n^3)) gives way to LSQR.
MAX_DIRECT = 6000
# LSQR's stopping tolerance: 1e-6 keeps coefficients within ~1e-5 (relative) of the exact ridge
# solution at ~1.2 times the cost of scikit-learn's default 1e-4 (off by ~5e-4).
SOLVER_TOL = 1e-6
# A column enters the Gram matrix through a dense (float32, exact for counts) matrix product when
# its windows x training windows exceed this share of all window pairs: such k-mers (short ones,
# repeats) are in most windows, where a sparse product pays per pair of entries.
DENSE_SHARE = 0.005
# The training windows' Gram matrix is symmetric: its sparse product is made in this many column
# pieces, each against the rows from its own piece on (9/16 of the work, not all of it).
_GRAM_PIECES = 8
# Windows counted at once: a chunk's work arrays (chunk x window length int32) stay in cache-sized
# pieces, and the memory of a count does not grow with the number of windows beyond its result.
_CHUNK_ROWS = 256
# Windows scored at once when predicting: bounds the memory of the counts held for scoring.
_SCORE_ROWS = 4096
# Coefficient vectors of at most this many columns are expanded for scoring (32 MiB).
_DENSE_SCORING = 1 << 22


@dataclass(frozen=True, init=False)
class KmerSettings:
    """The grid the baseline is chosen from: k-mer lengths, block lengths and ridge penalties.

    ``block_length`` (one value) is the older spelling of ``block_lengths`` (a grid), still read
    so that configs and saved models that have it load: ``KmerSettings(block_length=750)`` is
    ``KmerSettings(block_lengths=(750,))``, and :attr:`block_length` is that one value (None for
    a grid of several).
    """

    ks: tuple[int, ...]
    block_lengths: tuple[int, ...]
    alphas: tuple[float, ...]

    def __init__(self, ks: Any = DEFAULT_KS, block_lengths: Any = None,
                 alphas: Any = DEFAULT_ALPHAS, *, block_length: Any = None) -> None:
        # Normalised here (frozen: object.__setattr__) so that KmerSettings(ks=[6]) is the same
        # object as KmerSettings(ks=(6,)) and compares and serialises alike.
        ks = tuple(as_int("ks", k) for k in as_tuple(ks))
        if not ks:
            raise ValueError("ks: give at least one k-mer length")
        bad = [k for k in ks if not 1 <= k <= MAX_K]
        if bad:
            raise ValueError(f"ks: k-mer lengths must be 1 to {MAX_K}, got {bad}")
        if len(set(ks)) != len(ks):
            raise ValueError(f"ks: a k-mer length appears twice in {list(ks)}")
        if block_length is not None:
            single = (as_int("block_length", block_length),)
            if block_lengths is not None and tuple(
                    as_int("block_lengths", b) for b in as_tuple(block_lengths)) != single:
                raise ValueError(f"give block_lengths or block_length (one value), not both: "
                                 f"{block_lengths!r} and {block_length!r}")
            block_lengths = single
        elif block_lengths is None:
            block_lengths = DEFAULT_BLOCK_LENGTHS
        block_lengths = check_block_lengths(block_lengths)
        object.__setattr__(self, "ks", ks)
        object.__setattr__(self, "block_lengths", block_lengths)
        object.__setattr__(self, "alphas", check_alphas(alphas))

    @property
    def block_length(self) -> int | None:
        """The block length when the grid has one, else None."""
        return self.block_lengths[0] if len(self.block_lengths) == 1 else None

    @property
    def grid_size(self) -> int:
        return len(self.ks) * len(self.block_lengths) * len(self.alphas)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> KmerSettings:
        """Build from a config mapping; unknown keys are an error (they are typos).

        Lists become tuples and a single value a one-element tuple; ``block_length`` is one block
        length (the older key; null: absent). Text is read as YAML, because ``snakemake --config``
        and ``--set`` hand nested values over as strings (``"[6, 7]"``).
        """
        values = dict(values or {})
        names = ("ks", "block_lengths", "block_length", "alphas")
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown k-mer setting(s) {', '.join(map(str, unknown))}; "
                             f"known: {', '.join(names)}")
        parsed = {}
        for key, value in values.items():
            try:
                parsed[key] = yaml.safe_load(value) if isinstance(value, str) else value
            except yaml.YAMLError:
                raise ValueError(f"{key}: cannot read {value!r}") from None
        for key in ("block_lengths", "block_length"):
            if key in parsed and parsed[key] is None:
                del parsed[key]
        return cls(**parsed)

    def to_dict(self) -> dict[str, Any]:
        return {"ks": list(self.ks), "block_lengths": list(self.block_lengths),
                "alphas": list(self.alphas)}


def kmer_block_counts(codes: np.ndarray, k: int, block_length: int) -> sparse.csr_matrix:
    """Counts of every k-mer in each block of every window: rows windows, columns
    ``block * 4**k + kmer_index`` (float64, canonical CSR: sorted indices, no duplicates).

    Vectorised over windows and positions: one pass per base of the k-mer builds every k-mer's
    index, a row-wise sort groups equal k-mers, and run lengths are the counts (8,000 windows of
    3,000 bases: 0.75 s for any k of 6-8 on one core).
    """
    codes = np.asarray(codes)
    check_codes(codes)
    k = as_int("k", k)
    block_length = as_int("block_length", block_length)
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be 1 to {MAX_K}, got {k}")
    if block_length < 1:
        raise ValueError(f"block_length must be at least 1, got {block_length}")
    n, length = codes.shape
    n_kmers = 4 ** k
    n_columns = n_blocks_of(length, block_length) * n_kmers
    span = length - k + 1  # k-mer start positions
    if n == 0 or span <= 0:
        return sparse.csr_matrix((n, n_columns), dtype=np.float64)
    # n_columns itself marks a k-mer with an N: it sorts after every real column and is dropped.
    index_dtype = np.int32 if n_columns < np.iinfo(np.int32).max else np.int64
    block_offset = (np.arange(span, dtype=np.int64) // block_length * n_kmers).astype(index_dtype)
    data, indices, row_sizes = [], [], []
    for start in range(0, n, _CHUNK_ROWS):
        chunk = np.asarray(codes[start:start + _CHUNK_ROWS])
        check_code_values(chunk)
        chunk = chunk.astype(np.uint8, copy=False)
        rows = chunk.shape[0]
        index = np.zeros((rows, span), dtype=index_dtype)
        has_n = np.zeros((rows, span), dtype=bool)
        for offset in range(k):
            base = chunk[:, offset:offset + span]
            index *= 4
            index += np.minimum(base, 3)
            has_n |= base == N_CODE
        index += block_offset
        index[has_n] = n_columns
        index.sort(axis=1)
        # A run of equal values in a sorted row is one k-mer; every row's first value starts a run,
        # so runs never cross rows and the flattened run starts give rows and counts at once.
        run_start = np.ones((rows, span), dtype=bool)
        np.not_equal(index[:, 1:], index[:, :-1], out=run_start[:, 1:])
        starts = np.flatnonzero(run_start)
        run_length = np.diff(np.append(starts, rows * span))
        column = index.ravel()[starts]
        keep = column != n_columns
        data.append(run_length[keep].astype(np.float64))
        indices.append(column[keep])
        row_sizes.append(np.bincount(starts[keep] // span, minlength=rows))
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(row_sizes))]).astype(np.int64)
    return sparse.csr_matrix((np.concatenate(data), np.concatenate(indices), indptr),
                             shape=(n, n_columns))


def _kmer_text(index: int, k: int) -> str:
    """The k-mer of column ``index`` (first base most significant)."""
    return decode(np.array([(index >> (2 * (k - 1 - j))) & 3 for j in range(k)]))


class _SparseCoef:
    """A coefficient vector of ``size`` columns, nonzero at most at ``index`` (sorted, unique)."""

    __slots__ = ("index", "value", "size")

    def __init__(self, index: np.ndarray, value: np.ndarray, size: int) -> None:
        self.index = np.asarray(index, dtype=np.int64).ravel()
        self.value = np.asarray(value, dtype=np.float64).ravel()
        self.size = int(size)
        if self.index.shape != self.value.shape:
            raise ValueError(f"{self.index.size} coefficient indices but {self.value.size} values")
        if self.index.size and (self.index.min() < 0 or self.index.max() >= self.size
                                or np.any(np.diff(self.index) <= 0)):
            raise ValueError(f"coefficient indices must be sorted, unique and 0 to {self.size - 1}")

    @classmethod
    def of(cls, coef: Any) -> _SparseCoef:
        if isinstance(coef, _SparseCoef):
            return coef
        if sparse.issparse(coef):
            vector = sparse.coo_matrix(coef)
            if 1 not in vector.shape:
                raise ValueError(f"coefficients must be a vector, got shape {vector.shape}")
            vector.sum_duplicates()
            where = vector.col if vector.shape[0] == 1 else vector.row
            order = np.argsort(where)
            return cls(where[order], vector.data[order], max(vector.shape))
        dense = np.asarray(coef, dtype=np.float64).ravel()
        index = np.flatnonzero(dense)
        return cls(index, dense[index], dense.size)

    def dense(self) -> np.ndarray:
        out = np.zeros(self.size)
        out[self.index] = self.value
        return out

    def dot(self, counts: sparse.csr_matrix) -> np.ndarray:
        """``counts @ coef`` for CSR counts of ``size`` columns."""
        if self.size <= _DENSE_SCORING:
            return np.asarray(counts @ self.dense(), dtype=np.float64).ravel()
        found = np.searchsorted(self.index, counts.indices)
        found = np.minimum(found, max(self.index.size - 1, 0))
        hit = self.index[found] == counts.indices if self.index.size else np.zeros(
            counts.indices.size, dtype=bool)
        products = np.where(hit, counts.data * self.value[found] if self.index.size else 0.0,
                            0.0)
        return np.bincount(_entry_rows(counts), weights=products, minlength=counts.shape[0])


class KmerRidge:
    """A fitted k-mer ridge model: coefficients over ``block * 4**k + kmer`` columns.

    ``coef`` may be given dense (a vector) or sparse (a scipy sparse vector): a model solved in the
    dual has weight only on the (k-mer, block) columns seen in a training window, a few million of
    4**10 x 30, and is kept and saved that way. :attr:`coef` is the dense vector (built on each
    access: 8 bytes per column); scoring and :meth:`top_kmers` use the sparse one.
    """

    def __init__(self, k: int, alpha: float, block_length: int, coef: Any, intercept: float,
                 paired: bool, seq_len: int | None = None,
                 settings: KmerSettings | None = None) -> None:
        self.k = int(k)
        self.alpha = float(alpha)
        self.block_length = int(block_length)
        self.weights = _SparseCoef.of(coef)
        self.intercept = float(intercept)
        self.paired = bool(paired)  # fitted on pair differences (no intercept), not sequences
        self.seq_len = None if seq_len is None else int(seq_len)  # None: any length, same blocks
        self.settings = settings  # the grid the model was chosen from
        n_kmers = 4 ** self.k
        if self.weights.size == 0 or self.weights.size % n_kmers:
            raise ValueError(f"{self.weights.size} coefficients are not a whole number of blocks "
                             f"of 4**{self.k} k-mers")
        if self.seq_len is not None:
            expected = n_blocks_of(self.seq_len, self.block_length)
            if expected != self.n_blocks:
                raise ValueError(f"{self.n_blocks} blocks of coefficients, but windows of "
                                 f"{self.seq_len} bases have {expected} blocks of "
                                 f"{self.block_length}")

    def __repr__(self) -> str:
        return (f"KmerRidge(k={self.k}, block_length={self.block_length}, alpha={self.alpha:g}, "
                f"{self.weights.index.size} of {self.n_features} coefficients nonzero, "
                f"paired={self.paired})")

    @property
    def coef(self) -> np.ndarray:
        """The coefficients as a dense vector of :attr:`n_features` (a new array each time)."""
        return self.weights.dense()

    @property
    def n_features(self) -> int:
        return self.weights.size

    @property
    def n_blocks(self) -> int:
        return self.weights.size // 4 ** self.k

    def _check_length(self, codes: np.ndarray) -> None:
        length = codes.shape[1]
        if self.seq_len is not None and length != self.seq_len:
            raise ValueError(f"the k-mer model was fitted on windows of {self.seq_len} bases; "
                             f"these have {length} (its blocks would mean other positions)")
        if n_blocks_of(length, self.block_length) != self.n_blocks:
            raise ValueError(f"windows of {length} bases have "
                             f"{n_blocks_of(length, self.block_length)} blocks of "
                             f"{self.block_length}, the model {self.n_blocks}")

    def sequence_scores(self, codes: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``coef . counts`` of rows ``idx`` of ``codes`` (no intercept), each distinct row counted
        once."""
        codes = np.asarray(codes)
        check_codes(codes)
        self._check_length(codes)
        idx = check_rows(idx, codes.shape[0], "idx")
        rows, inverse = np.unique(idx, return_inverse=True)
        scores = np.empty(rows.size, dtype=np.float64)
        for start in range(0, rows.size, _SCORE_ROWS):
            part = rows[start:start + _SCORE_ROWS]
            scores[start:start + part.size] = self.weights.dot(
                kmer_block_counts(codes[part], self.k, self.block_length))
        return scores[inverse]

    def predict_pairs(self, codes: np.ndarray, idx_a: np.ndarray, idx_b: np.ndarray
                      ) -> np.ndarray:
        """Predicted difference a - b: score(a) - score(b), so f(a, b) = -f(b, a), f(a, a) = 0."""
        idx_a = np.asarray(idx_a)
        idx_b = np.asarray(idx_b)
        if idx_a.shape != idx_b.shape or idx_a.ndim != 1:
            raise ValueError("idx_a and idx_b must be 1-d arrays of the same length")
        scores = self.sequence_scores(codes, np.concatenate([idx_a, idx_b]))
        return scores[:idx_a.size] - scores[idx_a.size:]

    def top_kmers(self, n: int) -> list[str]:
        """The ``n`` k-mers of largest weight, ``max over blocks |coef|``, strongest first (ties in
        index order); the k-mers whose counts the model leans on most, motifs or parts of them."""
        if n < 0:
            raise ValueError("n must be >= 0")
        n_kmers = 4 ** self.k
        kmer = self.weights.index % n_kmers
        distinct, inverse = np.unique(kmer, return_inverse=True)
        strength = np.zeros(distinct.size)
        np.maximum.at(strength, inverse, np.abs(self.weights.value))
        strong = strength > 0
        order = np.lexsort((distinct[strong], -strength[strong]))
        ranked = distinct[strong][order][:n]
        if ranked.size < n:  # then the weightless k-mers, in index order
            spare = np.setdiff1d(np.arange(min(n_kmers, n + ranked.size)), ranked)
            ranked = np.concatenate([ranked, spare[:n - ranked.size]])
        return [_kmer_text(int(index), self.k) for index in ranked]

    def predict_sequences(self, codes: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Predicted value of each sequence: ``coef . counts + intercept`` (offset 0 for a model
        fitted on pairs, whose intercept cancels in every difference)."""
        return self.sequence_scores(codes, idx) + self.intercept

    def save(self, directory: PathLike, provenance: Mapping[str, Any] | None = None) -> Path:
        """Write ``kmer_model.npz`` (the nonzero coefficients: ``coef_index``, ``coef_value``) and
        ``kmer_model.json`` (everything else, with the chosen ``block_length``) into
        ``directory``, each atomically; returns the directory."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        index_dtype = np.int32 if self.n_features <= np.iinfo(np.int32).max else np.int64
        with atomic_path(directory / MODEL_NPZ, suffix=".npz") as tmp:
            np.savez(tmp, coef_index=self.weights.index.astype(index_dtype),
                     coef_value=self.weights.value)
        info = {
            "format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION,
            "k": self.k, "alpha": self.alpha, "block_length": self.block_length,
            "intercept": self.intercept, "paired": self.paired, "seq_len": self.seq_len,
            "n_blocks": self.n_blocks, "n_features": self.n_features,
            "n_nonzero": int(self.weights.index.size),
            "settings": None if self.settings is None else self.settings.to_dict(),
            "provenance": dict(provenance or {}),
        }
        with atomic_open(directory / MODEL_JSON) as handle:
            json.dump(info, handle, indent=2)
            handle.write("\n")
        return directory

    @classmethod
    def load(cls, directory: PathLike) -> KmerRidge:
        """Read a model written by :meth:`save` (or by the format-1 writer, whose ``coef`` was
        dense); a missing or malformed file is an InputError."""
        directory = Path(directory)
        json_path, npz_path = directory / MODEL_JSON, directory / MODEL_NPZ
        try:
            info = json.loads(json_path.read_text())
        except FileNotFoundError:
            raise InputError(json_path, "k-mer model description not found") from None
        except json.JSONDecodeError as err:
            raise InputError(json_path, f"invalid JSON ({err.msg})", line=err.lineno) from None
        if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
            raise InputError(json_path, f"not a k-mer model (expected format {MODEL_FORMAT!r})")
        if info.get("format_version") not in READABLE_FORMAT_VERSIONS:
            raise InputError(json_path, f"format version {info.get('format_version')!r}; this "
                                        f"version of plantt reads "
                                        f"{', '.join(map(str, READABLE_FORMAT_VERSIONS))}")
        missing = [key for key in ("k", "alpha", "block_length", "intercept", "paired")
                   if key not in info]
        if missing:
            raise InputError(json_path, f"missing {', '.join(missing)}")
        try:
            with np.load(npz_path) as arrays:
                if "coef" in arrays:
                    coef: Any = arrays["coef"]
                elif "coef_index" in arrays and "coef_value" in arrays:
                    if "n_features" not in info:
                        raise InputError(json_path, "missing n_features")
                    coef = (arrays["coef_index"], arrays["coef_value"])
                else:
                    raise InputError(npz_path, "no array 'coef' or 'coef_index' and 'coef_value'")
        except InputError:
            raise
        except FileNotFoundError:
            raise InputError(npz_path, "k-mer model coefficients not found") from None
        except (OSError, ValueError) as err:
            raise InputError(npz_path, f"not a .npz archive: {err}") from None
        try:
            if isinstance(coef, tuple):
                coef = _SparseCoef(coef[0], coef[1], as_int("n_features", info["n_features"]))
            settings = info.get("settings")
            return cls(k=as_int("k", info["k"]), alpha=as_float("alpha", info["alpha"]),
                       block_length=as_int("block_length", info["block_length"]), coef=coef,
                       intercept=as_float("intercept", info["intercept"]),
                       paired=bool(info["paired"]),
                       seq_len=None if info.get("seq_len") is None else
                       as_int("seq_len", info["seq_len"]),
                       settings=None if settings is None else KmerSettings.from_dict(settings))
        except (TypeError, ValueError) as err:
            raise InputError(json_path, str(err)) from None


def _entry_rows(counts: sparse.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))


def _submatrix(counts: sparse.csr_matrix, rows: np.ndarray, keep: np.ndarray,
               columns: np.ndarray, n_columns: int, dtype: Any = np.float64
               ) -> sparse.csr_matrix:
    """The entries ``keep`` of ``counts`` (their rows ``rows``), in columns ``columns``."""
    indptr = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=counts.shape[0]), out=indptr[1:])
    return sparse.csr_matrix((counts.data[keep].astype(dtype), columns[keep], indptr),
                             shape=(counts.shape[0], n_columns))


def window_gram(counts: sparse.csr_matrix, train: np.ndarray) -> np.ndarray:
    """``counts @ counts[train].T`` as a dense float64 array (windows x training windows), exact for
    counts (whole numbers), without densifying ``counts``.

    Columns are sorted by how many windows hold them: those of one window add only to its own
    diagonal entry; those in a large share of all window pairs (:data:`DENSE_SHARE`: short k-mers,
    repeats) go through a dense float32 matrix product, exact while a window holds fewer than
    2**12 k-mers (every partial sum a whole number below 2**24; float64 above that); the rest
    through a sparse product of the columns that are left, renumbered so that no array spans the
    4**k x blocks columns.
    """
    counts = sparse.csr_matrix(counts)
    m, p = counts.shape
    train = np.asarray(train, dtype=np.int64)
    if counts.nnz == 0 or train.size == 0:
        return np.zeros((m, train.size))
    rows = _entry_rows(counts)
    is_train = np.zeros(m, dtype=bool)
    is_train[train] = True
    in_train = is_train[rows]
    # column ids renumbered 0..q-1, and per entry the number of windows / training windows of its
    # column
    if p <= 2 * counts.nnz:  # a count per column beats sorting the entries
        per_column = np.bincount(counts.indices, minlength=p)
        present = per_column > 0
        renumber = np.cumsum(present, dtype=np.int64) - 1
        column = renumber[counts.indices]
        per_column = per_column[present]
        del renumber, present
    else:
        _, column, per_column = np.unique(counts.indices, return_inverse=True, return_counts=True)
    q = per_column.size
    per_column_train = np.bincount(column[in_train], minlength=q)
    others = np.flatnonzero(~is_train)  # windows that only validate: rows, not columns
    # the training windows' own Gram matrix (symmetric) and the other windows' rows
    own = np.zeros((train.size, train.size))
    across = np.zeros((others.size, train.size))
    # a column of one window: that window's square, if it trains
    lone = (per_column[column] == 1) & in_train
    squares = np.bincount(rows[lone], weights=counts.data[lone] ** 2, minlength=m)
    own[np.diag_indices(train.size)] += squares[train]
    shared = (per_column > 1) & (per_column_train > 0)
    dense = shared & (per_column.astype(np.float64) * per_column_train
                      > DENSE_SHARE * m * train.size)
    if dense.any():
        # every partial sum of a float32 product a whole number below 2**24: exact
        totals = np.bincount(rows, weights=counts.data, minlength=m)
        dtype = np.float32 if float(totals.max()) < 2 ** 12 else np.float64
        block = _columns(counts, rows, column, dense, dtype).toarray()
        mine = np.ascontiguousarray(block[train])
        syrk = blas.ssyrk if dtype == np.float32 else blas.dsyrk
        upper = syrk(1.0, mine)  # the upper triangle of mine @ mine.T: half the work
        own += np.triu(upper) + np.triu(upper, 1).T
        across += block[others] @ mine.T
        del block, mine, upper
    rest = shared & ~dense
    if rest.any():
        part = _columns(counts, rows, column, rest)
        mine = part[train]
        # symmetric: the columns in pieces, each against the rows from its own piece on; the
        # lower triangle is then complete (and exact, so its mirror is the upper one)
        bounds = np.linspace(0, train.size, _GRAM_PIECES + 1).astype(int)
        lower = np.zeros((train.size, train.size))
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            if hi > lo:
                lower[lo:, lo:hi] = _dense_product(mine[lo:], mine[lo:hi].T.tocsr())
        own += np.tril(lower) + np.tril(lower, -1).T
        del lower
        if others.size:
            across += _dense_product(part[others], mine.T.tocsr())
    gram = np.empty((m, train.size))
    gram[train] = own
    gram[others] = across
    return gram


def _dense_product(a: sparse.csr_matrix, b: sparse.csr_matrix) -> np.ndarray:
    """``a @ b`` of two CSR matrices, as a dense array.

    The product's size is known (at most every entry), so scipy's sparse kernel is called once
    with room for all of them, skipping the counting pass ``a @ b`` makes first: 35-45 % less time
    for the Gram matrices here. That kernel is scipy's internal one (``_sparsetools.csr_matmat``,
    unchanged for a decade); should it ever change, the public product is used.
    """
    n_rows, n_cols = a.shape[0], b.shape[1]
    try:
        from scipy.sparse import _sparsetools

        dtype = np.int64 if max(a.nnz, b.nnz, n_rows * n_cols) >= np.iinfo(np.int32).max \
            else np.int32
        indptr = np.empty(n_rows + 1, dtype=dtype)
        indices = np.empty(n_rows * n_cols, dtype=dtype)
        data = np.empty(n_rows * n_cols, dtype=np.float64)
        _sparsetools.csr_matmat(n_rows, n_cols, a.indptr.astype(dtype, copy=False),
                                a.indices.astype(dtype, copy=False),
                                a.data.astype(np.float64, copy=False),
                                b.indptr.astype(dtype, copy=False),
                                b.indices.astype(dtype, copy=False),
                                b.data.astype(np.float64, copy=False), indptr, indices, data)
        size = int(indptr[-1])
        return sparse.csr_matrix((data[:size], indices[:size], indptr),
                                 shape=(n_rows, n_cols)).toarray()
    except (ImportError, AttributeError, TypeError, ValueError):
        return (a @ b).toarray()


def _columns(counts: sparse.csr_matrix, rows: np.ndarray, column: np.ndarray, keep: np.ndarray,
             dtype: Any = np.float64) -> sparse.csr_matrix:
    """The columns ``keep`` (a mask over the renumbered columns ``column`` of the entries of
    ``counts``), numbered 0.. in order."""
    renumber = np.cumsum(keep) - 1
    entries = keep[column]
    return _submatrix(counts, rows, entries, renumber[column], int(keep.sum()), dtype)


def _sparse_coef(counts: sparse.csr_matrix, weights: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``counts.T @ weights`` kept sparse: the columns holding an entry and their values."""
    contributions = counts.data * weights[_entry_rows(counts)]
    if counts.shape[1] <= 2 * counts.nnz:
        values = np.bincount(counts.indices, weights=contributions, minlength=counts.shape[1])
        index = np.flatnonzero(np.bincount(counts.indices, minlength=counts.shape[1]))
        return index.astype(np.int64), values[index]
    index, inverse = np.unique(counts.indices, return_inverse=True)
    return index.astype(np.int64), np.bincount(inverse, weights=contributions,
                                               minlength=index.size)


def _ridge(x: sparse.csr_matrix, y: np.ndarray, alpha: float, intercept: bool
           ) -> tuple[np.ndarray, float]:
    # scikit-learn is imported here: it takes about a second, and only this fallback needs it.
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=alpha, fit_intercept=intercept, solver="lsqr", tol=SOLVER_TOL)
    model.fit(x, y)
    return (np.asarray(model.coef_, dtype=np.float64).ravel(),
            float(model.intercept_) if intercept else 0.0)


BASELINE = "the k-mer baseline"
CHOICES = "k, the block length and alpha"


class _Layout:
    """Where the training rows sit among the distinct windows ``rows.used`` (``*_used``) and among
    the distinct training windows ``windows`` (``*_train``), for the dual form."""

    def __init__(self, rows: GridRows) -> None:
        self.rows = rows
        self.windows = rows.training_rows
        self.used = tuple(rows.train)
        self.train = tuple(np.searchsorted(self.windows, part) for part in rows.train)
        self.n = int(rows.y.size)

    def window_weights(self, beta: np.ndarray) -> np.ndarray:
        """``D' beta``: the dual coefficients summed per training window (pairs: +a, -b)."""
        size = self.windows.size
        weights = np.bincount(self.train[0], weights=beta, minlength=size)
        if self.rows.paired:
            weights -= np.bincount(self.train[1], weights=beta, minlength=size)
        return weights


def _dual(counts: sparse.csr_matrix, layout: _Layout, alphas: Sequence[float]
          ) -> Iterator[tuple[float, np.ndarray, Any]]:
    """Kernel ridge: ``beta = (K + alpha I)^-1 y``, ``K`` the training rows' Gram matrix; the
    scores of the used windows are ``G D' beta`` (+ intercept), G their Gram matrix with the
    training windows. Payload: the training windows' weights ``D' beta`` and the intercept."""
    rows = layout.rows
    started = time.perf_counter()
    gram = window_gram(counts, layout.windows)
    gram_seconds = time.perf_counter() - started
    if rows.paired:
        # rows of the design x[a] - x[b]: K = (G[a] - G[b]) (columns a - b)
        across = gram[:, layout.train[0]] - gram[:, layout.train[1]]
        kernel = across[layout.used[0]] - across[layout.used[1]]
        y = rows.y
        y_mean = 0.0
    else:
        across = gram[:, layout.train[0]]
        kernel = across[layout.used[0]]
        # centring (the intercept): K - row means - column means + grand mean
        means = kernel.mean(axis=0)
        kernel = kernel - means[None, :] - means[:, None] + means.mean()
        y_mean = float(rows.y.mean())
        y = rows.y - y_mean
    del gram
    started = time.perf_counter()
    betas = shifted_solves(kernel, y, alphas, overwrite=True)
    del kernel
    log.info("dual form: %d x %d kernel; Gram matrix %.1f s, solves for %d alphas %.1f s",
             layout.n, layout.n, gram_seconds, len(alphas), time.perf_counter() - started)
    for alpha, beta in zip(alphas, betas, strict=True):
        if not rows.paired:
            beta = beta - beta.mean()  # w = X_c' beta = X' (beta - mean beta)
        scores = across @ beta
        intercept = y_mean - float(scores[layout.used[0]].mean()) if not rows.paired else 0.0
        yield alpha, scores + intercept, ("dual", layout.window_weights(beta), intercept)


def _primal(counts: sparse.csr_matrix, rows: GridRows, alphas: Sequence[float]
            ) -> Iterator[tuple[float, np.ndarray, Any]]:
    """``w = (X'X + alpha I)^-1 X'y`` (centred with an intercept); payload the dense ``w``."""
    x = sparse.csr_matrix(rows.design(counts))
    gram = (x.T @ x).toarray()
    if rows.paired:
        x_mean, y_mean = np.zeros(x.shape[1]), 0.0
        rhs = x.T @ rows.y
    else:
        x_mean, y_mean = np.asarray(x.mean(axis=0)).ravel(), float(rows.y.mean())
        gram -= x.shape[0] * np.outer(x_mean, x_mean)
        rhs = x.T @ (rows.y - y_mean)
    for alpha, coef in zip(alphas, shifted_solves(gram, rhs, alphas, overwrite=True),
                           strict=True):
        intercept = y_mean - float(x_mean @ coef)
        yield alpha, counts @ coef + intercept, ("primal", coef, intercept)


def _iterative(counts: sparse.csr_matrix, rows: GridRows, alphas: Sequence[float]
               ) -> Iterator[tuple[float, np.ndarray, Any]]:
    x = sparse.csr_matrix(rows.design(counts))
    for alpha in alphas:
        coef, intercept = _ridge(x, rows.y, alpha, not rows.paired)
        yield alpha, counts @ coef + intercept, ("primal", coef, intercept)


def solver_form(n_rows: int, n_columns: int, n_alphas: int = 2) -> str:
    """The form :func:`fit_kmer_pairs` solves a grid point in: ``primal`` when there are no more
    columns than training rows, ``dual`` when there are more; ``lsqr`` when both exceed
    :data:`MAX_DIRECT`, or for a single penalty with more columns than rows (one iterative solve,
    0.5-1 s for 2,500-3,400 pairs, costs less than their Gram matrix, 1-4 s: the CNN's seeding
    ridges (``seed_stem_kmers``) fit one penalty per k)."""
    if min(n_rows, n_columns) > MAX_DIRECT or (n_alphas == 1 and n_columns > n_rows):
        return "lsqr"
    return "primal" if n_columns <= n_rows else "dual"


def _fit_grid(codes: np.ndarray, rows: GridRows, settings: KmerSettings
              ) -> tuple[KmerRidge, pd.DataFrame]:
    """Fit every (k, block length, alpha) and keep the best on validation
    (:func:`plantt.ridge.select_on_validation`; ties: smaller k, then longer blocks, then larger
    alpha), the distinct rows ``rows.used`` counted once per (k, block length)."""
    subset = np.asarray(codes[rows.used])
    layout = _Layout(rows)

    def candidates(point: tuple[int, int]) -> Iterator[tuple[float, np.ndarray, Any]]:
        k, block_length = point
        started = time.perf_counter()
        counts = kmer_block_counts(subset, k, block_length)
        form = solver_form(layout.n, counts.shape[1], len(settings.alphas))
        log.info("k=%d block_length=%d: %d features, %d training rows, %s form (counted in "
                 "%.1f s)", k, block_length, counts.shape[1], layout.n, form,
                 time.perf_counter() - started)
        if form == "dual":
            return _dual(counts, layout, settings.alphas)
        if form == "primal":
            return _primal(counts, rows, settings.alphas)
        return _iterative(counts, rows, settings.alphas)

    points = [(k, b) for k in settings.ks for b in settings.block_lengths]
    (k, block_length), alpha, (form, weights, intercept), table = select_on_validation(
        rows, ["k", "block_length"], points, candidates, lambda point: (point[0], -point[1]), log)
    if form == "dual":
        counts = kmer_block_counts(subset[layout.windows], k, block_length)
        coef: Any = _SparseCoef(*_sparse_coef(counts, weights), counts.shape[1])
    else:
        coef = weights
    model = KmerRidge(k=k, alpha=alpha, block_length=block_length, coef=coef,
                      intercept=intercept, paired=rows.paired, seq_len=int(codes.shape[1]),
                      settings=settings)
    return model, table[SELECTION_COLUMNS]


def fit_kmer_pairs(codes: np.ndarray, train: PairSet, val: PairSet, settings: KmerSettings
                   ) -> tuple[KmerRidge, pd.DataFrame]:
    """Fit the baseline on pair differences and choose k, the block length and alpha on the
    validation pairs.

    ``X = counts[idx_a] - counts[idx_b]`` without intercept (an intercept would break
    f(a, b) = -f(b, a)). Returns the chosen model and the selection table (one row per (k, block
    length, alpha): ``k, block_length, alpha, val_spearman, val_pearson, chosen``).
    Deterministic. Each grid point is solved exactly, in the dual form when it has more columns
    than training pairs (:func:`solver_form`).
    """
    codes = np.asarray(codes)
    check_codes(codes)
    return _fit_grid(codes, pair_rows(codes, PairSet.coerce(train), PairSet.coerce(val),
                                      BASELINE, CHOICES), settings)


def fit_kmer_sequences(codes: np.ndarray, train: SequenceSet, val: SequenceSet,
                       settings: KmerSettings) -> tuple[KmerRidge, pd.DataFrame]:
    """Fit the baseline on single sequences (with intercept) and choose k, the block length and
    alpha on the validation sequences; returns the model and the selection table as
    :func:`fit_kmer_pairs`."""
    codes = np.asarray(codes)
    check_codes(codes)
    return _fit_grid(codes, sequence_rows(codes, train, val, BASELINE, CHOICES), settings)
