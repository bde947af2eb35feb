"""Compile, once per installation, the numba code that the motif stage runs.

memelite's TOMTOM and modisco-lite's TF-MoDISco are numba functions, compiled on their first call
and cached beside their sources (``cache=True``). On a 2-core VM the compilation takes about 80 s
(TOMTOM) and 30 s (TF-MoDISco), and until the cache is written every process compiles again: in
a fresh installation the demo's two ``discover_motifs`` jobs compiled side by side, at the end of
the run, for over two minutes. ``setup.sh`` runs ``python -m plantt.warmup`` right after
installing, so that workflow runs (and the test suite) start with the cache in place.

The warm-up goes through :func:`plantt.motifs.discover_patterns` and
:func:`plantt.motifs.match_patterns` on a small synthetic problem, so it compiles exactly the
signatures (array types and layouts) that the workflow's own calls use.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

#: The motif planted once in every window of the synthetic problem.
MOTIF = "TGACGTCATG"


def synthetic_contributions(seed: int = 0, n_windows: int = 160, length: int = 120
                            ) -> tuple[np.ndarray, np.ndarray]:
    """``n_windows`` random windows of ``length`` bases (codes 0-3), :data:`MOTIF` planted once in
    each, and hypothetical contributions (n, 4, L), large at the motif's bases and small noise
    elsewhere: enough for TF-MoDISco to call seqlets, cluster them and return a pattern."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n_windows, length), dtype=np.uint8)
    motif = np.array(["ACGT".index(base) for base in MOTIF], dtype=np.uint8)
    hypothetical = 0.02 * rng.standard_normal((n_windows, 4, length)).astype(np.float32)
    starts = rng.integers(20, length - 20 - motif.size, size=n_windows)
    for row, start in enumerate(starts):
        codes[row, start:start + motif.size] = motif
        hypothetical[row, motif, np.arange(start, start + motif.size)] += 1.0
    return codes, hypothetical


def warm_numba_caches(seed: int = 0) -> dict[str, float]:
    """Run TF-MoDISco and TOMTOM once on :func:`synthetic_contributions`; seconds per tool."""
    from plantt.motifs import DiscoverySettings, discover_patterns, match_patterns, word_pwm

    codes, hypothetical = synthetic_contributions(seed)
    seconds = {}
    start = time.perf_counter()
    patterns = discover_patterns(codes, hypothetical,
                                 DiscoverySettings(max_seqlets_per_metacluster=200), seed=seed)
    seconds["tfmodisco"] = time.perf_counter() - start
    if not patterns:
        raise RuntimeError("TF-MoDISco found no pattern in the warm-up's planted motif: the "
                           "numba cache of TOMTOM was not built")
    start = time.perf_counter()
    match_patterns(patterns, {"planted": word_pwm(MOTIF).T}, decoys_per_motif=4, seed=seed)
    seconds["tomtom"] = time.perf_counter() - start
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plantt.warmup",
        description="Compile and cache the numba code of TF-MoDISco and TOMTOM (once per "
                    "installation; setup.sh runs it).")
    parser.parse_args(argv)
    seconds = warm_numba_caches()
    print("numba caches ready: " + ", ".join(f"{tool} {value:.1f} s"
                                             for tool, value in seconds.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
