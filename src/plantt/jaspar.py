"""Position weight matrices, and the JASPAR CORE plant matrices as the default known motifs.

JASPAR (https://jaspar.elixir.no, CC BY 4.0; Rauluseviciute et al. 2024) is read offline through
the ``pyjaspar`` package, which bundles every release from 2014 on as an SQLite file: nothing is
downloaded. The plant collection of JASPAR 2024 CORE holds 805 matrices (JASPAR 2026: 927).

A :class:`PositionMatrix` holds base probabilities (``(width, 4)``, columns A, C, G, T). Its log-odds
scores use a small pseudocount so that a base never seen at a position costs a finite penalty;
a site's *relative score* is ``(score - min) / (max - min)`` over the matrix's possible scores, as
in MOODS or Biopython, so 1 is the best site and thresholds carry across matrices of any width.

Used by the simulator's grammar (motifs named by JASPAR id, sites sampled from the matrix), by the
occupancy baseline and by the priming of PlanTT's detectors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from plantt.io import InputError

#: The JASPAR release read by default: the first with 805 CORE plant matrices (pyjaspar bundles
#: 2014-2026). A setting wherever it is used.
DEFAULT_RELEASE = "JASPAR2024"
DEFAULT_PSEUDOCOUNT = 0.01


@dataclass(frozen=True, eq=False)
class PositionMatrix:
    """A motif as base probabilities per position (``(width, 4)``, A, C, G, T; rows sum to 1)."""

    id: str
    name: str
    probabilities: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        p = np.asarray(self.probabilities, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 4 or p.shape[0] < 1:
            raise ValueError(f"matrix {self.id}: expected (width, 4) probabilities, got {p.shape}")
        if not np.all(np.isfinite(p)) or (p < 0).any():
            raise ValueError(f"matrix {self.id}: probabilities must be finite and >= 0")
        sums = p.sum(axis=1, keepdims=True)
        if (sums <= 0).any():
            raise ValueError(f"matrix {self.id}: a position has no weight on any base")
        object.__setattr__(self, "probabilities", p / sums)

    @property
    def width(self) -> int:
        return int(self.probabilities.shape[0])

    @property
    def consensus(self) -> str:
        return "".join("ACGT"[i] for i in self.probabilities.argmax(axis=1))

    def log_odds(self, pseudocount: float = DEFAULT_PSEUDOCOUNT,
                 background: Sequence[float] = (0.25, 0.25, 0.25, 0.25)) -> np.ndarray:
        """``log2((p + c) / (1 + 4c)) - log2(background)`` per position and base, ``(width, 4)``."""
        bg = np.asarray(background, dtype=np.float64)
        p = (self.probabilities + pseudocount) / (1.0 + 4.0 * pseudocount)
        return np.log2(p) - np.log2(bg)[None, :]

    @cached_property
    def _score_range(self) -> tuple[float, float]:
        lo = self.log_odds()
        return float(lo.min(axis=1).sum()), float(lo.max(axis=1).sum())

    @cached_property
    def _score_table(self) -> np.ndarray:
        """Log-odds as a (5, width) lookup table by base code (row 4, N: -inf)."""
        return np.vstack([self.log_odds().T, np.full((1, self.width), -np.inf)])

    @cached_property
    def _score_columns(self) -> tuple[np.ndarray, ...]:
        """The score table's columns, each a (5,) lookup by base code."""
        return tuple(np.ascontiguousarray(self._score_table[:, j]) for j in range(self.width))

    def relative_scores(self, codes: np.ndarray) -> np.ndarray:
        """Relative score of every ``width``-long site of ``codes`` (uint8 A=0..T=3, N=4) on the
        given strand; a site holding N scores 0. Shape ``(len(codes) - width + 1,)``."""
        codes = np.asarray(codes, dtype=np.uint8)
        w = self.width
        n = len(codes) - w + 1
        if n < 1:
            return np.zeros(0)
        # position by position, each a lookup over every site at once: the simulator calls this
        # on short regions hundreds of thousands of times, where one (sites x width) gather
        # cost 5 times as much per call
        columns = self._score_columns
        raw = columns[0][codes[:n]]
        for j in range(1, w):
            raw += columns[j][codes[j:j + n]]
        smin, smax = self._score_range
        rel = (raw - smin) / (smax - smin) if smax > smin else np.ones_like(raw)
        return np.where(np.isfinite(rel), rel, 0.0)

    def reverse_complement(self) -> PositionMatrix:
        return PositionMatrix(self.id, self.name, self.probabilities[::-1, ::-1].copy())

    def sample_site(self, rng: np.random.Generator, min_relative_score: float = 0.0,
                    tries: int = 200) -> np.ndarray:
        """A site drawn base by base from the matrix, redrawn until its relative score reaches
        ``min_relative_score`` (after ``tries`` draws, the best one drawn, or the consensus)."""
        cum = np.cumsum(self.probabilities, axis=1)
        best, best_score = None, -1.0
        for _ in range(tries):
            site = (rng.random((self.width, 1)) > cum).sum(axis=1).astype(np.uint8)
            site = np.minimum(site, 3)
            score = float(self.relative_scores(site)[0])
            if score >= min_relative_score:
                return site
            if score > best_score:
                best, best_score = site, score
        consensus = self.probabilities.argmax(axis=1).astype(np.uint8)
        return best if best is not None and best_score >= min_relative_score else consensus


def matrix_from_rows(matrix_id: str, rows: Iterable[Iterable[float]], name: str = ""
                     ) -> PositionMatrix:
    """A matrix from rows of four numbers (counts or probabilities of A, C, G, T)."""
    return PositionMatrix(matrix_id, name or matrix_id, np.asarray(list(map(list, rows)), float))


@lru_cache(maxsize=8)
def _jaspar_collection(release: str, collection: str, tax_group: str
                       ) -> tuple[PositionMatrix, ...]:
    try:
        from pyjaspar import jaspardb
    except ImportError:  # pragma: no cover - a declared dependency
        raise InputError(None, "the JASPAR matrices need the pyjaspar package "
                               "(pip install pyjaspar)") from None
    # (pyjaspar may accept an unknown release name and fail later on its missing database)
    bundled = jaspardb().get_releases()
    if release not in bundled:
        raise InputError(None, f"JASPAR release {release!r} is not bundled with pyjaspar "
                               f"(bundled: {', '.join(bundled)})")
    try:
        db = jaspardb(release=release)
    except Exception as err:  # pyjaspar raises a bare Exception for an unknown release
        raise InputError(None, f"JASPAR release {release!r} is not bundled with pyjaspar "
                               f"({err})") from None
    motifs = db.fetch_motifs(collection=collection, tax_group=[tax_group])
    out = []
    for m in motifs:
        counts = np.array([[m.counts[b][i] for b in "ACGT"] for i in range(m.length)], float)
        out.append(PositionMatrix(str(m.matrix_id), str(m.name), counts))
    out.sort(key=lambda pm: pm.id)
    return tuple(out)


def load_jaspar(release: str = DEFAULT_RELEASE, collection: str = "CORE", tax_group: str = "plants",
                ids: Sequence[str] | None = None) -> list[PositionMatrix]:
    """The matrices of one JASPAR collection and taxonomic group (latest version of each), read
    offline from pyjaspar's bundled database, sorted by id; ``ids`` picks some of them (in that
    order) and fails naming any id the collection lacks (a version suffix is optional)."""
    matrices = _jaspar_collection(release, collection, tax_group)
    if ids is None:
        return list(matrices)
    by_id = {m.id: m for m in matrices}
    by_base = {m.id.split(".")[0]: m for m in matrices}
    chosen, missing = [], []
    for matrix_id in ids:
        found = by_id.get(matrix_id) or (by_base.get(matrix_id) if "." not in matrix_id else None)
        if found is None:
            missing.append(matrix_id)
        else:
            chosen.append(found)
    if missing:
        raise InputError(None, f"{release} {collection} {tax_group} has no matrix "
                               f"{', '.join(missing)}")
    return chosen
