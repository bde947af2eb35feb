"""A known-motif ridge-regression baseline (model ``pwm``): what the occupancy of every known plant
transcription-factor matrix per block of the window explains.

Where the k-mer baseline (:mod:`plantt.kmer`) learns its words from the data, this one starts from
the motifs biologists already know: by default the 805 plant matrices of JASPAR 2024 CORE
(:func:`plantt.jaspar.load_jaspar`, read offline), or the matrices of a MEME file
(``motif_file``). Each window is described, per matrix and per block of ``block_length`` bases, by

* ``occupancy`` (default): the soft count of its sites on both strands,
  ``sum sigmoid((relative_score - threshold) / temperature)`` over the sites starting in the block,
  a relative score being ``(score - min) / (max - min)`` of the matrix's log-odds scores
  (:class:`plantt.jaspar.PositionMatrix`), so that 1 is the best site of any matrix: with the
  default threshold 0.85 and temperature 0.03, a site of relative score 0.95 counts 0.97, one of
  0.9 counts 0.84, one of 0.85 counts 0.5, one of 0.8 counts 0.16 and one of 0.75 counts 0.03; or
* ``max_score``: the best relative score of a site starting in the block, on either strand.

Which works better depends on the data (benchmarks/README.md, "The known-motif baseline"): on a
simulated demo whose grammar counts sites of 15 JASPAR matrices above relative scores of 0.82-0.9
(``grammar_realistic.yaml``), the mean test Spearman of 4 folds was 0.30 with occupancy at a
threshold of 0.8, 0.36 at 0.85 (the default), 0.36 at 0.9 (temperature 0.02) and 0.37 with
``max_score`` (the k-mer baseline: 0.10); on planted sites counted per block (tests/test_pwm.py)
occupancy at 0.8 or 0.85 beat ``max_score`` by 0.08-0.13.

A site holding an N (or running past the window's end) counts for nothing: relative score 0, as
in :meth:`PositionMatrix.relative_scores`, and occupancy 0. A ridge regression is then fitted on
these features, standardised (each column divided by its SD over the training sequences, so that
one penalty grid serves rare and frequent motifs alike; the coefficients are stored in the
features' own units):

* on pairs (the workflow's task) the predicted difference is ``coef . (x(a) - x(b))`` without
  intercept, antisymmetric like PlanTT's head and the k-mer baseline;
* on single sequences it is ``coef . x + intercept``.

Every block length and ridge penalty of :class:`PwmSettings` is fitted on the training set and
scored on the validation set; the best validation Spearman is kept, ties going to the simpler model
(longer blocks, then larger alpha), as for the k-mer baseline (:func:`plantt.ridge.fit_grid`). Each
penalty grid point is solved exactly from one tridiagonal reduction per block length
(:func:`plantt.ridge.ridge_path`).

Scanning (:func:`matrix_scan`) is the costly part, so a fit scans once, at the finest block length
(the greatest common divisor of ``block_lengths``), and sums (or, for ``max_score``, takes the
maximum of) neighbouring blocks for the coarser ones. A matrix's score at every position is a sum
of table look-ups: the log-odds of each run of :data:`CHUNK` bases, for both strands and every
matrix of the same width class at once (``torch.nn.functional.embedding_bag``), the affine map to
relative scores or occupancy logits folded into the tables, and an N worth ``-N_PENALTY``. Positions
are scored in pieces small enough to stay in the processor's cache, the soft threshold applied and
the piece reduced to its blocks at once, on ``threads`` worker threads of one PyTorch thread each
(on the 2-core development VM with its other core busy, a PyTorch operation split over two
threads took about 8 ms to start, more than the work of a piece). Measured there: the 805 JASPAR
2024 plant matrices, both strands, over random 3,000-base windows take 43-51 s per 10,000 windows
on one thread and 37 s on two (a conv1d padded to the widest matrix: 250-320 s;
benchmarks/README.md, "The known-motif baseline").

JASPAR: Rauluseviciute et al. (2024) JASPAR 2024: 20th anniversary of the open-access database of
transcription factor binding profiles. Nucleic Acids Res. 52:D174-D182; CC BY 4.0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from plantt.io import InputError, PathLike, atomic_open, atomic_path, get_logger
from plantt.jaspar import DEFAULT_RELEASE, PositionMatrix, load_jaspar
from plantt.ridge import (
    GridRows,
    as_float,
    as_int,
    check_alphas,
    check_block_lengths,
    check_code_values,
    check_codes,
    check_rows,
    fit_grid,
    n_blocks_of,
    pair_rows,
    ridge_path,
    sequence_rows,
)

if TYPE_CHECKING:
    import torch

    from plantt.train import PairSet, SequenceSet

log = get_logger("pwm")

MODEL_NPZ = "pwm_model.npz"
MODEL_JSON = "pwm_model.json"
MODEL_FORMAT = "plantt-pwm-ridge"
MODEL_FORMAT_VERSION = 1
SELECTION_COLUMNS = ["block_length", "alpha", "val_spearman", "val_pearson", "chosen"]
FEATURES = ("occupancy", "max_score")
BASELINE = "the known-motif baseline"
CHOICES = "the block length and alpha"

#: Bases per table look-up: a site of width w costs ceil(w / CHUNK) look-ups (5**CHUNK rows per
#: look-up, A C G T N at each base). 3 measured fastest (1: 1.4x, 2: 1.0x slower per window).
CHUNK = 3
_WORDS = 5 ** CHUNK
#: What an N inside a site (or a position past the window's end) adds to its relative score or
#: occupancy logit: enough to make any such site score 0 (relative) or occupy 0 (sigmoid).
N_PENALTY = 1.0e4
#: Matrices scanned together need as many look-ups as the widest: those of a width class with
#: fewer matrices than this join the next wider class (one pass over the positions per class).
_MIN_GROUP = 24
#: Positions x windows scored per table pass: the (rows x 2 matrices) scores stay in cache.
_PIECE_ROWS = 2048
#: Windows whose look-up indices are built at once.
_BATCH = 16
#: Windows scored at once when predicting: bounds the memory of the features held for scoring.
_SCORE_ROWS = 4096
#: The largest scan a fit holds in memory (windows x finest blocks x matrices, float32).
MAX_SCAN_BYTES = 8 * 2 ** 30


# ---- matrices ----


def load_motif_file(path: PathLike) -> list[PositionMatrix]:
    """The matrices of a MEME motif file (``memelite.io.read_meme``): id the first word of each
    MOTIF line, name the rest (or the id). A missing file, one that is not MEME or one without a
    motif is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "motif file not found")
    try:
        from memelite.io import read_meme
    except ImportError:  # pragma: no cover - an optional dependency (plantt[motifs])
        raise InputError(path, "reading a MEME file needs memelite (pip install memelite)") from None
    try:
        motifs = read_meme(str(path))
    except (OSError, ValueError, IndexError, AttributeError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a MEME motif file ({err})") from None
    if not motifs:
        raise InputError(path, "no MOTIF records: not a MEME motif file, or an empty one")
    matrices = []
    for key, pwm in motifs.items():
        words = str(key).split()
        matrix_id = words[0] if words else f"motif_{len(matrices) + 1}"
        name = " ".join(words[1:]) or matrix_id
        try:
            matrices.append(PositionMatrix(matrix_id, name, np.asarray(pwm, dtype=float).T))
        except ValueError as err:
            raise InputError(path, str(err), record=matrix_id) from None
    ids = [m.id for m in matrices]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise InputError(path, f"motif id(s) {', '.join(twice[:5])} appear more than once")
    return matrices


# ---- scanning ----


@dataclass(frozen=True)
class _Group:
    """Matrices scored in one pass: columns ``[forward of each, reverse complement of each]``."""

    members: np.ndarray  # indices into the matrix list
    taps: int  # look-ups per site: ceil(widest member / CHUNK)
    table: torch.Tensor  # (taps * _WORDS, 2 * len(members)) float32


def _affine(matrix: PositionMatrix, feature: str, threshold: float, temperature: float
            ) -> tuple[np.ndarray, float, float]:
    """The matrix's log-odds and the map ``a * score + b`` to what is summed or maximised: the
    relative score (``relative``, ``max_score``) or the occupancy logit (``occupancy``)."""
    lo = matrix.log_odds()
    smin, smax = float(lo.min(axis=1).sum()), float(lo.max(axis=1).sum())
    if smax > smin:
        a, b = 1.0 / (smax - smin), -smin / (smax - smin)
    else:  # a matrix of equal columns: every site is its best (relative_scores gives 1)
        a, b = 0.0, 1.0
    if feature == "occupancy":
        a, b = a / temperature, (b - threshold) / temperature
    return lo, a, b


def _groups(matrices: Sequence[PositionMatrix], feature: str, threshold: float,
            temperature: float) -> list[_Group]:
    import torch

    taps = np.array([-(-m.width // CHUNK) for m in matrices])
    classes: list[list[int]] = []
    pending: list[int] = []
    for t in np.unique(taps):
        pending += np.flatnonzero(taps == t).tolist()
        if len(pending) >= _MIN_GROUP:
            classes.append(pending)
            pending = []
    if pending:  # the widest few: their own pass (joining a larger class would widen its pass)
        classes.append(pending)
    digits = (np.arange(_WORDS)[:, None] // 5 ** np.arange(CHUNK - 1, -1, -1)[None, :]) % 5
    groups = []
    for members in classes:
        n_taps = int(taps[members].max())
        span = n_taps * CHUNK
        # per-position values (columns x span x 5 codes), then summed over each run of CHUNK
        values = np.zeros((2 * len(members), span, 5))
        bias = np.zeros(2 * len(members))
        for j, index in enumerate(members):
            lo, a, b = _affine(matrices[index], feature, threshold, temperature)
            width = lo.shape[0]
            for column, strand_lo in ((j, lo), (j + len(members), lo[::-1, ::-1])):
                values[column, :width, :4] = a * strand_lo
                values[column, :width, 4] = -N_PENALTY
                bias[column] = b
        values = values.reshape(2 * len(members), n_taps, CHUNK, 5)
        table = sum(values[:, :, t, digits[:, t]] for t in range(CHUNK))  # (cols, taps, words)
        table[:, 0, :] += bias[:, None]
        table = table.transpose(1, 2, 0).reshape(n_taps * _WORDS, 2 * len(members))
        groups.append(_Group(np.asarray(members), n_taps,
                             torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32))))
    return groups


def _words(codes: np.ndarray, length: int) -> torch.Tensor:
    """``(B, length)`` int64: the index of the run of CHUNK bases starting at each position (base-5,
    first base most significant), positions past the window N."""
    import torch

    padded = np.full((codes.shape[0], length + CHUNK - 1), 4, dtype=np.int64)
    padded[:, :codes.shape[1]] = codes
    words = np.zeros((codes.shape[0], length), dtype=np.int64)
    for t in range(CHUNK):
        words = words * 5 + padded[:, t:t + length]
    return torch.from_numpy(words)


def _piece_scores(words: torch.Tensor, group: _Group, start: int, stop: int) -> torch.Tensor:
    """``(B, stop - start, columns)``: each column's value at each site starting in the piece."""
    import torch
    import torch.nn.functional as F

    index = torch.stack([words[:, start + i * CHUNK:stop + i * CHUNK] + i * _WORDS
                         for i in range(group.taps)], dim=-1)
    rows = F.embedding_bag(index.reshape(-1, group.taps), group.table, mode="sum")
    return rows.view(words.shape[0], stop - start, -1)


def _pieces(n_blocks: int, block_length: int, batch: int) -> list[tuple[int, int, bool]]:
    """Position ranges ``(start, stop, whole_blocks)`` scored at once: whole blocks when a block
    fits in a piece of _PIECE_ROWS rows, else even parts of each block."""
    cap = max(1, _PIECE_ROWS // batch)
    if block_length <= cap:
        size = block_length * (cap // block_length)
        total = n_blocks * block_length
        return [(s, min(s + size, total), True) for s in range(0, total, size)]
    parts = -(-block_length // cap)
    size = -(-block_length // parts)
    return [(b * block_length + s, min((b + 1) * block_length, b * block_length + s + size), False)
            for b in range(n_blocks) for s in range(0, block_length, size)]


def _scan_batch(codes: np.ndarray, groups: Sequence[_Group], n_matrices: int, block_length: int,
                feature: str) -> np.ndarray:
    import torch

    check_code_values(codes)
    batch, length = codes.shape
    n_blocks = n_blocks_of(length, block_length)
    padded_length = n_blocks * block_length
    widest = max(g.taps for g in groups)
    words = _words(codes, padded_length + (widest - 1) * CHUNK)
    out = np.zeros((batch, n_blocks, n_matrices), dtype=np.float32)
    occupancy = feature == "occupancy"
    with torch.no_grad():
        for group in groups:
            columns = group.table.shape[1]
            acc = torch.zeros(batch, n_blocks, columns)
            for start, stop, whole in _pieces(n_blocks, block_length, batch):
                scores = _piece_scores(words, group, start, stop)
                if occupancy:
                    torch.sigmoid_(scores)
                first = start // block_length
                if whole:
                    blocks = scores.view(batch, -1, block_length, columns)
                    reduced = blocks.sum(2) if occupancy else blocks.amax(2)
                    acc[:, first:first + reduced.shape[1]] = reduced
                elif occupancy:
                    acc[:, first] += scores.sum(1)
                else:
                    acc[:, first] = torch.maximum(acc[:, first], scores.amax(1))
            half = columns // 2
            if occupancy:
                both = acc[..., :half] + acc[..., half:]
            else:  # a site with an N scores below 0: relative scores are 0 there
                both = torch.maximum(acc[..., :half], acc[..., half:]).clamp_(min=0.0)
            out[:, :, group.members] = both.numpy()
    return out


def _check_scan_settings(feature: str, threshold: float, temperature: float) -> None:
    if feature not in FEATURES:
        raise ValueError(f"feature must be one of {', '.join(FEATURES)}, got {feature!r}")
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold must be a relative score from 0 to 1, got {threshold!r}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")


def _resolve_threads(threads: int | None) -> int:
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    threads = as_int("threads", threads)
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    return threads


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def matrix_scan(codes: np.ndarray, matrices: Sequence[PositionMatrix], block_length: int, *,
                feature: str = "occupancy", threshold: float = 0.85, temperature: float = 0.03,
                threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Features of every window, matrix and block: ``(n, n_blocks, n_matrices)`` float32.

    ``codes``: ``(n, L)`` encoded windows (A=0 C=1 G=2 T=3 N=4; a memmap is fine, read in batches).
    A site belongs to the block of its first base (as a k-mer does in :mod:`plantt.kmer`); the
    last block may be shorter. ``feature``: ``occupancy``, the soft count of sites on both strands,
    ``sum sigmoid((relative - threshold) / temperature)``, or ``max_score``, the best relative score
    on either strand (0 where no site fits). ``threads``: worker threads (default: PyTorch's
    thread count), each running PyTorch on one thread. ``out``: an array (or a memmap, so that a
    genome's scan need not fit in memory) of the result's shape and dtype to fill and return.
    """
    codes = np.asarray(codes)  # a memmap stays mapped
    check_codes(codes)
    block_length = as_int("block_length", block_length)
    if block_length < 1:
        raise ValueError(f"block_length must be at least 1, got {block_length}")
    _check_scan_settings(feature, float(threshold), float(temperature))
    if not matrices:
        raise ValueError("no matrices to scan")
    threads = _resolve_threads(threads)
    n, length = codes.shape
    groups = _groups(matrices, feature, float(threshold), float(temperature))
    shape = (n, n_blocks_of(length, block_length), len(matrices))
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise ValueError(f"out must be float32 of shape {shape}, got {out.dtype} {out.shape}")
    starts = range(0, n, _BATCH)

    def run(start: int) -> None:
        chunk = np.asarray(codes[start:start + _BATCH])
        out[start:start + chunk.shape[0]] = _scan_batch(chunk, groups, len(matrices),
                                                        block_length, feature)

    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        if threads == 1 or n <= _BATCH:
            for start in starts:
                run(start)
        else:
            with ThreadPoolExecutor(threads, initializer=_one_thread) as pool:
                for _ in pool.map(run, starts):
                    pass
    finally:
        torch.set_num_threads(before)
    return out


def site_scores(codes: np.ndarray, matrices: Sequence[PositionMatrix]) -> np.ndarray:
    """Relative score of every site: ``(n, 2, n_matrices, L)`` float32, strand 0 the matrix as
    given, strand 1 its reverse complement, site ``p`` the bases ``p .. p + width - 1`` (0 where it
    holds an N or runs past the window's end). The same tables as :func:`matrix_scan`, without
    reduction: for a few windows (it holds 8 bytes x matrices x L per window)."""
    import torch

    codes = np.asarray(codes)
    check_codes(codes)
    check_code_values(codes)
    n, length = codes.shape
    groups = _groups(matrices, "max_score", 0.0, 1.0)
    out = np.zeros((n, 2, len(matrices), length), dtype=np.float32)
    words = _words(codes, length + (max(g.taps for g in groups) - 1) * CHUNK)
    with torch.no_grad():
        for group in groups:
            scores = _piece_scores(words, group, 0, length).clamp_(min=0.0).numpy()
            half = len(group.members)
            out[:, 0, group.members, :] = scores[..., :half].transpose(0, 2, 1)
            out[:, 1, group.members, :] = scores[..., half:].transpose(0, 2, 1)
    return out


def coarser_blocks(features: np.ndarray, factor: int, feature: str) -> np.ndarray:
    """``(n, blocks, m)`` features of blocks ``factor`` times longer: sums of neighbouring blocks
    (``occupancy``), or their maximum (``max_score``); the last block may hold fewer."""
    n, blocks, m = features.shape
    coarse = -(-blocks // factor)
    padded = np.zeros((n, coarse * factor, m), dtype=features.dtype)
    padded[:, :blocks] = features  # 0 adds nothing, and no score is below 0
    grouped = padded.reshape(n, coarse, factor, m)
    return grouped.sum(axis=2) if feature == "occupancy" else grouped.max(axis=2)


# ---- one scan per work directory ----


@dataclass(frozen=True)
class MatrixScan:
    """Every window's features, scanned once (:func:`write_matrix_scan`) for every fold job that
    fits on them: ``features`` ``(n_windows, n_blocks, n_matrices)`` float32 (a memmap) at
    ``block_length``, with the scan settings that made them."""

    features: np.ndarray
    block_length: int
    matrix_ids: tuple[str, ...]
    feature: str
    threshold: float
    temperature: float


def _scan_record(settings: PwmSettings, matrices: Sequence[PositionMatrix], block_length: int,
                 shape: tuple[int, ...], seq_len: int) -> dict[str, Any]:
    return {"format": 1, "matrix_ids": [m.id for m in matrices], "block_length": block_length,
            "feature": settings.feature, "threshold": settings.threshold,
            "temperature": settings.temperature, "n_windows": int(shape[0]), "seq_len": seq_len}


def write_matrix_scan(codes: np.ndarray, settings: PwmSettings, target: PathLike,
                      threads: int | None = None) -> Path:
    """Scan every window of ``codes`` once for the matrices of ``settings`` at their finest block
    (the greatest common divisor of ``block_lengths``) and write ``target`` (``.npy``, float32
    ``(n_windows, n_blocks, n_matrices)``) with its settings beside it (``.json``), so that the
    fold jobs of every assay and model read it instead of scanning again
    (:func:`load_matrix_scan`). Each file is written under a temporary name, then renamed."""
    codes = np.asarray(codes)
    check_codes(codes)
    matrices = settings.matrices()
    block_length = settings.fine_block_length
    size = codes.shape[0] * n_blocks_of(codes.shape[1], block_length) * len(matrices) * 4
    log.info("scanning %d windows for %d matrices (%s, blocks of %d): %.2f GB", codes.shape[0],
             len(matrices), settings.feature, block_length, size / 1e9)
    shape = (codes.shape[0], n_blocks_of(codes.shape[1], block_length), len(matrices))
    target = Path(target)
    with atomic_path(target, suffix=".npy") as tmp:
        # written in place, batch by batch: a genome's scan need not fit in memory
        features = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        matrix_scan(codes, matrices, block_length, feature=settings.feature,
                    threshold=settings.threshold, temperature=settings.temperature,
                    threads=threads, out=features)
        features.flush()
        del features
    record = _scan_record(settings, matrices, block_length, shape, int(codes.shape[1]))
    with atomic_open(target.with_suffix(".json")) as handle:
        json.dump(record, handle, indent=1)
    return target


def load_matrix_scan(path: PathLike, settings: PwmSettings, codes: np.ndarray) -> MatrixScan:
    """The scan :func:`write_matrix_scan` wrote, memory-mapped, after checking that it was made
    with ``settings``' matrices and feature, at a block that divides each of their block lengths,
    from windows of the shape of ``codes`` (an error names the file and what differs)."""
    path = Path(path)
    sidecar = path.with_suffix(".json")
    try:
        record = json.loads(sidecar.read_text())
        features = np.load(path, mmap_mode="r")
    except FileNotFoundError as err:
        raise InputError(err.filename, "matrix scan not found (write it with "
                                       "plantt.pwm.write_matrix_scan)") from None
    except (OSError, ValueError) as err:
        raise InputError(path, f"not a matrix scan ({err})") from None
    ids = [m.id for m in settings.matrices()]
    expected = {"matrix_ids": ids, "feature": settings.feature,
                "threshold": settings.threshold, "temperature": settings.temperature,
                "n_windows": int(codes.shape[0]), "seq_len": int(codes.shape[1])}
    for key, value in expected.items():
        if record.get(key) != value:
            shown = (f"{len(record.get(key) or [])} matrices" if key == "matrix_ids"
                     else repr(record.get(key)))
            wanted = f"{len(value)} matrices" if key == "matrix_ids" else repr(value)
            raise InputError(sidecar, f"the scan was made with {key} {shown}, the settings "
                                      f"(or windows) ask for {wanted}: scan again")
    block_length = int(record.get("block_length", 0))
    if block_length < 1 or any(b % block_length for b in settings.block_lengths):
        raise InputError(sidecar, f"the scan's blocks of {block_length} bases do not divide the "
                                  f"block lengths {list(settings.block_lengths)}: scan again")
    n_blocks = n_blocks_of(int(codes.shape[1]), block_length)
    if features.shape != (codes.shape[0], n_blocks, len(ids)) or features.dtype != np.float32:
        raise InputError(path, f"expected float32 features of shape "
                               f"{(codes.shape[0], n_blocks, len(ids))}, found {features.dtype} "
                               f"{features.shape}")
    return MatrixScan(features, block_length, tuple(ids), settings.feature, settings.threshold,
                      settings.temperature)


# ---- settings ----


@dataclass(frozen=True)
class PwmSettings:
    """Where the matrices come from, how sites become features, and the grid the baseline is
    chosen from (block lengths and ridge penalties)."""

    release: str = DEFAULT_RELEASE
    collection: str = "CORE"
    tax_group: str = "plants"
    motif_file: str | None = None  # a MEME file of your own matrices instead of JASPAR's
    block_lengths: tuple[int, ...] = (250, 500, 1000)
    # penalties on standardised features, 8 decades: a planted toy set chose 1e3, the demo 1e5-1e7
    alphas: tuple[float, ...] = (10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8)
    feature: str = "occupancy"
    threshold: float = 0.85  # relative score at which a site counts one half (occupancy)
    temperature: float = 0.03  # width of the soft threshold, in relative score

    def __post_init__(self) -> None:
        block_lengths = check_block_lengths(self.block_lengths)
        alphas = check_alphas(self.alphas)
        threshold = as_float("threshold", self.threshold)
        temperature = as_float("temperature", self.temperature)
        _check_scan_settings(self.feature, threshold, temperature)
        for name in ("release", "collection", "tax_group"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string")
        motif_file = self.motif_file
        if motif_file is not None:
            if not isinstance(motif_file, str | Path) or not str(motif_file):
                raise ValueError(f"motif_file must be a path, got {motif_file!r}")
            motif_file = str(motif_file)
        object.__setattr__(self, "block_lengths", block_lengths)
        object.__setattr__(self, "alphas", alphas)
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "temperature", temperature)
        object.__setattr__(self, "motif_file", motif_file)

    @property
    def fine_block_length(self) -> int:
        """The block length scanned: every block length of the grid is a whole number of them."""
        return math.gcd(*self.block_lengths)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> PwmSettings:
        """Build from a config mapping; unknown keys are an error (they are typos). Text of the
        numeric and list settings is read as YAML (``snakemake --config`` hands nested values over
        as strings)."""
        values = dict(values or {})
        names = tuple(cls.__dataclass_fields__)
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown pwm setting(s) {', '.join(map(str, unknown))}; "
                             f"known: {', '.join(names)}")
        parsed = {}
        for key, value in values.items():
            if isinstance(value, str) and key in ("block_lengths", "alphas", "threshold",
                                                  "temperature"):
                try:
                    value = yaml.safe_load(value)
                except yaml.YAMLError:
                    raise ValueError(f"{key}: cannot read {value!r}") from None
            parsed[key] = value
        return cls(**parsed)

    def to_dict(self) -> dict[str, Any]:
        return {"release": self.release, "collection": self.collection,
                "tax_group": self.tax_group, "motif_file": self.motif_file,
                "block_lengths": list(self.block_lengths), "alphas": list(self.alphas),
                "feature": self.feature, "threshold": self.threshold,
                "temperature": self.temperature}

    def matrices(self) -> list[PositionMatrix]:
        """The matrices scanned: the MEME file's, or the JASPAR collection's (sorted by id)."""
        if self.motif_file is not None:
            return load_motif_file(self.motif_file)
        matrices = load_jaspar(self.release, self.collection, self.tax_group)
        if not matrices:
            raise InputError(None, f"{self.release} {self.collection} has no matrix of tax_group "
                                   f"{self.tax_group!r}")
        return matrices


# ---- the model ----


@dataclass(frozen=True)
class TopMatrix:
    """A matrix the ridge leans on: ``weight`` the sum over blocks of its standardised |coef|,
    ``sign`` +1 where more sites raise the prediction (summed coefficient > 0), else -1. Sites are
    counted on both strands, so the matrix and its reverse complement are equally supported."""

    matrix: PositionMatrix
    weight: float
    sign: int

    @property
    def id(self) -> str:
        return self.matrix.id


@dataclass
class PwmRidge:
    """A fitted known-motif ridge model: ``coef`` over ``block * n_matrices + matrix`` columns, in
    the features' own units; ``scale``: each column's SD on the training sequences (the ridge was
    fitted on ``features / scale``)."""

    matrices: list[PositionMatrix]
    block_length: int
    alpha: float
    coef: np.ndarray
    intercept: float
    paired: bool
    feature: str = "occupancy"
    threshold: float = 0.85
    temperature: float = 0.03
    scale: np.ndarray | None = None
    seq_len: int | None = None
    settings: PwmSettings | None = None
    threads: int | None = field(default=None, repr=False, compare=False)  # scanning threads (None: PyTorch's)

    def __post_init__(self) -> None:
        self.matrices = list(self.matrices)
        if not self.matrices:
            raise ValueError("a pwm model needs at least one matrix")
        self.coef = np.asarray(self.coef, dtype=np.float64).ravel()
        self.scale = (np.ones_like(self.coef) if self.scale is None
                      else np.asarray(self.scale, dtype=np.float64).ravel())
        self.intercept = float(self.intercept)
        self.block_length = as_int("block_length", self.block_length)
        _check_scan_settings(self.feature, float(self.threshold), float(self.temperature))
        m = len(self.matrices)
        if self.coef.size == 0 or self.coef.size % m:
            raise ValueError(f"{self.coef.size} coefficients are not a whole number of blocks of "
                             f"{m} matrices")
        if self.scale.shape != self.coef.shape:
            raise ValueError(f"{self.scale.size} scales for {self.coef.size} coefficients")
        if self.seq_len is not None:
            expected = n_blocks_of(self.seq_len, self.block_length)
            if expected != self.n_blocks:
                raise ValueError(f"{self.n_blocks} blocks of coefficients, but windows of "
                                 f"{self.seq_len} bases have {expected} blocks of "
                                 f"{self.block_length}")

    @property
    def n_blocks(self) -> int:
        return self.coef.size // len(self.matrices)

    def _check_length(self, codes: np.ndarray) -> None:
        length = codes.shape[1]
        if self.seq_len is not None and length != self.seq_len:
            raise ValueError(f"the pwm model was fitted on windows of {self.seq_len} bases; these "
                             f"have {length} (its blocks would mean other positions)")
        if n_blocks_of(length, self.block_length) != self.n_blocks:
            raise ValueError(f"windows of {length} bases have "
                             f"{n_blocks_of(length, self.block_length)} blocks of "
                             f"{self.block_length}, the model {self.n_blocks}")

    def features(self, codes: np.ndarray) -> np.ndarray:
        """``(n, n_blocks * n_matrices)`` features of windows (:func:`matrix_scan`)."""
        scan = matrix_scan(codes, self.matrices, self.block_length, feature=self.feature,
                           threshold=self.threshold, temperature=self.temperature,
                           threads=self.threads)
        return scan.reshape(scan.shape[0], -1)

    def sequence_scores(self, codes: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``coef . features`` of rows ``idx`` of ``codes`` (no intercept), each distinct row
        scanned once."""
        check_codes(codes)
        self._check_length(codes)
        idx = check_rows(idx, codes.shape[0], "idx")
        rows, inverse = np.unique(idx, return_inverse=True)
        scores = np.empty(rows.size, dtype=np.float64)
        for start in range(0, rows.size, _SCORE_ROWS):
            part = rows[start:start + _SCORE_ROWS]
            scores[start:start + part.size] = self.features(np.asarray(codes[part])) @ self.coef
        return scores[inverse]

    def predict_pairs(self, codes: np.ndarray, idx_a: np.ndarray, idx_b: np.ndarray
                      ) -> np.ndarray:
        """Predicted difference a - b: score(a) - score(b), so f(a, b) = -f(b, a), f(a, a) = 0."""
        idx_a, idx_b = np.asarray(idx_a), np.asarray(idx_b)
        if idx_a.shape != idx_b.shape or idx_a.ndim != 1:
            raise ValueError("idx_a and idx_b must be 1-d arrays of the same length")
        scores = self.sequence_scores(codes, np.concatenate([idx_a, idx_b]))
        return scores[:idx_a.size] - scores[idx_a.size:]

    def predict_sequences(self, codes: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Predicted value of each sequence: ``coef . features + intercept`` (offset 0 for a model
        fitted on pairs)."""
        return self.sequence_scores(codes, idx) + self.intercept

    def top_matrices(self, n: int) -> list[TopMatrix]:
        """The ``n`` matrices of largest weight, the sum over blocks of their standardised
        ``|coef * scale|``, strongest first (ties in matrix order): the motifs the model leans on,
        e.g. to start a CNN's first-layer detectors from."""
        if n < 0:
            raise ValueError("n must be >= 0")
        shape = (self.n_blocks, len(self.matrices))
        standardised = (self.coef * self.scale).reshape(shape)
        strength = np.abs(standardised).sum(axis=0)
        direction = standardised.sum(axis=0)
        order = np.argsort(-strength, kind="stable")[:n]
        return [TopMatrix(self.matrices[i], float(strength[i]), 1 if direction[i] >= 0 else -1)
                for i in order]

    def save(self, directory: PathLike, provenance: Mapping[str, Any] | None = None) -> Path:
        """Write ``pwm_model.npz`` (coefficients, scales and the matrices' probabilities) and
        ``pwm_model.json`` (everything else) into ``directory``, each atomically; the model reads
        back without JASPAR or the motif file."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        widths = np.array([m.width for m in self.matrices])
        probabilities = np.zeros((len(self.matrices), int(widths.max()), 4))
        for i, m in enumerate(self.matrices):
            probabilities[i, :m.width] = m.probabilities
        with atomic_path(directory / MODEL_NPZ, suffix=".npz") as tmp:
            np.savez(tmp, coef=self.coef, scale=self.scale, probabilities=probabilities,
                     widths=widths)
        info = {
            "format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION,
            "block_length": self.block_length, "alpha": float(self.alpha),
            "intercept": self.intercept, "paired": bool(self.paired), "feature": self.feature,
            "threshold": float(self.threshold), "temperature": float(self.temperature),
            "seq_len": None if self.seq_len is None else int(self.seq_len),
            "n_blocks": self.n_blocks, "n_matrices": len(self.matrices),
            "n_features": int(self.coef.size),
            "matrix_ids": [m.id for m in self.matrices],
            "matrix_names": [m.name for m in self.matrices],
            "settings": None if self.settings is None else self.settings.to_dict(),
            "provenance": dict(provenance or {}),
        }
        with atomic_open(directory / MODEL_JSON) as handle:
            json.dump(info, handle, indent=2)
            handle.write("\n")
        return directory

    @classmethod
    def load(cls, directory: PathLike) -> PwmRidge:
        """Read a model written by :meth:`save`; a missing or malformed file is an InputError."""
        directory = Path(directory)
        json_path, npz_path = directory / MODEL_JSON, directory / MODEL_NPZ
        try:
            info = json.loads(json_path.read_text())
        except FileNotFoundError:
            raise InputError(json_path, "pwm model description not found") from None
        except json.JSONDecodeError as err:
            raise InputError(json_path, f"invalid JSON ({err.msg})", line=err.lineno) from None
        if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
            raise InputError(json_path, f"not a pwm model (expected format {MODEL_FORMAT!r})")
        if info.get("format_version") != MODEL_FORMAT_VERSION:
            raise InputError(json_path, f"format version {info.get('format_version')!r}; this "
                                        f"version of plantt reads {MODEL_FORMAT_VERSION}")
        keys = ("block_length", "alpha", "intercept", "paired", "feature", "threshold",
                "temperature", "matrix_ids", "matrix_names")
        missing = [key for key in keys if key not in info]
        if missing:
            raise InputError(json_path, f"missing {', '.join(missing)}")
        try:
            with np.load(npz_path) as arrays:
                absent = [k for k in ("coef", "scale", "probabilities", "widths")
                          if k not in arrays]
                if absent:
                    raise InputError(npz_path, f"no array {', '.join(absent)}")
                coef, scale = arrays["coef"], arrays["scale"]
                probabilities, widths = arrays["probabilities"], arrays["widths"]
        except FileNotFoundError:
            raise InputError(npz_path, "pwm model coefficients not found") from None
        except (OSError, ValueError) as err:
            raise InputError(npz_path, f"not a .npz archive: {err}") from None
        try:
            ids, names = list(info["matrix_ids"]), list(info["matrix_names"])
            if not (len(ids) == len(names) == len(widths) == len(probabilities)):
                raise ValueError(f"{len(ids)} matrix ids, {len(names)} names, {len(widths)} "
                                 f"widths and {len(probabilities)} matrices")
            matrices = [PositionMatrix(str(i), str(nm), probabilities[k, :int(widths[k])])
                        for k, (i, nm) in enumerate(zip(ids, names, strict=True))]
            settings = info.get("settings")
            return cls(matrices=matrices, block_length=as_int("block_length",
                                                              info["block_length"]),
                       alpha=as_float("alpha", info["alpha"]), coef=coef,
                       intercept=as_float("intercept", info["intercept"]),
                       paired=bool(info["paired"]), feature=str(info["feature"]),
                       threshold=as_float("threshold", info["threshold"]),
                       temperature=as_float("temperature", info["temperature"]), scale=scale,
                       seq_len=None if info.get("seq_len") is None else
                       as_int("seq_len", info["seq_len"]),
                       settings=None if settings is None else PwmSettings.from_dict(settings))
        except (TypeError, ValueError) as err:
            raise InputError(json_path, str(err)) from None


# ---- fitting ----


def _standardised(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x / sd`` with each column's SD over ``rows`` (1 where a column is constant there)."""
    sd = x[rows].astype(np.float64).std(axis=0)
    scale = np.where(sd > 0, sd, 1.0)
    return (x / scale).astype(np.float32), scale


def _fit_grid(codes: np.ndarray, rows: GridRows, settings: PwmSettings, threads: int | None,
              scanned: MatrixScan | None = None) -> tuple[PwmRidge, pd.DataFrame]:
    matrices = settings.matrices()
    length = int(codes.shape[1])
    fine = settings.fine_block_length if scanned is None else scanned.block_length
    size = rows.used.size * n_blocks_of(length, fine) * len(matrices) * 4
    if size > MAX_SCAN_BYTES:
        raise ValueError(f"block_lengths {list(settings.block_lengths)}: scanning {rows.used.size} "
                         f"windows at blocks of {fine} bases (their greatest common divisor) "
                         f"would hold {size / 2 ** 30:.1f} GiB; choose block lengths with a "
                         "larger common divisor")
    if scanned is not None:
        if scanned.matrix_ids != tuple(m.id for m in matrices):
            raise ValueError("the matrix scan holds other matrices than the settings'")
        log.info("reading the scan of %d windows for %d matrices (%s, blocks of %d)",
                 rows.used.size, len(matrices), settings.feature, fine)
        scan = np.asarray(scanned.features[rows.used])
    else:
        log.info("scanning %d windows for %d matrices (%s, blocks of %d)", rows.used.size,
                 len(matrices), settings.feature, fine)
        scan = matrix_scan(codes[rows.used], matrices, fine, feature=settings.feature,
                           threshold=settings.threshold, temperature=settings.temperature,
                           threads=threads)
    training = rows.training_rows
    scales: dict[int, np.ndarray] = {}

    def features(block_length: int) -> np.ndarray:
        coarse = coarser_blocks(scan, block_length // fine, settings.feature)
        x, scales[block_length] = _standardised(coarse.reshape(coarse.shape[0], -1), training)
        return x

    choice, table = fit_grid(rows, "block_length", settings.block_lengths, settings.alphas,
                             features, ridge_path, lambda block_length: -block_length, log)
    scale = scales[choice.value]
    model = PwmRidge(matrices=matrices, block_length=choice.value, alpha=choice.alpha,
                     coef=choice.coef / scale, intercept=choice.intercept, paired=rows.paired,
                     feature=settings.feature, threshold=settings.threshold,
                     temperature=settings.temperature, scale=scale, seq_len=length,
                     settings=settings, threads=threads)
    return model, table[SELECTION_COLUMNS]


def fit_pwm_pairs(codes: np.ndarray, train: PairSet, val: PairSet, settings: PwmSettings,
                  threads: int | None = None, scanned: MatrixScan | None = None
                  ) -> tuple[PwmRidge, pd.DataFrame]:
    """Fit the baseline on pair differences ``x[idx_a] - x[idx_b]`` (no intercept) and choose the
    block length and alpha on the validation pairs. Returns the chosen model and the selection
    table (one row per block length and alpha: ``block_length, alpha, val_spearman,
    val_pearson, chosen``). Deterministic; ``threads`` as in :func:`matrix_scan`; ``scanned``:
    every window's scan made once (:func:`load_matrix_scan`) instead of scanning here."""
    codes = np.asarray(codes)
    check_codes(codes)
    return _fit_grid(codes, pair_rows(codes, train, val, BASELINE, CHOICES), settings, threads,
                     scanned)


def fit_pwm_sequences(codes: np.ndarray, train: SequenceSet, val: SequenceSet,
                      settings: PwmSettings, threads: int | None = None,
                      scanned: MatrixScan | None = None) -> tuple[PwmRidge, pd.DataFrame]:
    """Fit the baseline on single sequences (with intercept) and choose the block length and alpha
    on the validation sequences; returns the model and the selection table as
    :func:`fit_pwm_pairs`."""
    codes = np.asarray(codes)
    check_codes(codes)
    return _fit_grid(codes, sequence_rows(codes, train, val, BASELINE, CHOICES), settings,
                     threads, scanned)
