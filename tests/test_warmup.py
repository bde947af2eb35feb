"""plantt.warmup: set-up compiles the motif stage's numba code once, and it is the code the stage
then runs (no compilation left for the workflow's own calls)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from plantt.warmup import MOTIF, synthetic_contributions

# What the motif stage runs (plantt.motifs.run): the known motifs read back from a MEME file by
# memelite, TF-MoDISco on float32 contributions, then TOMTOM with decoys; another seed and
# another problem size than the warm-up's.
WORKFLOW_CALLS = """
import sys
from memelite.io import read_meme
from plantt.grammar import load_grammar
from plantt.motifs import discover_patterns, match_patterns, write_grammar_meme
from plantt.warmup import synthetic_contributions

codes, hypothetical = synthetic_contributions(seed=7, n_windows=200, length=150)
patterns = discover_patterns(codes, hypothetical, seed=7)
meme = sys.argv[1]
write_grammar_meme(load_grammar(), meme)
motifs = read_meme(meme)
match_patterns(patterns, {k: v for k, v in motifs.items()}, decoys_per_motif=10, seed=3)
print(len(patterns))
"""


def _cache_files(cache: Path) -> set[str]:
    return {str(p.relative_to(cache)) for p in cache.rglob("*") if p.suffix in {".nbi", ".nbc"}}


def test_synthetic_problem_plants_the_motif_with_its_contributions():
    codes, hypothetical = synthetic_contributions(seed=1)
    assert codes.dtype == np.uint8 and hypothetical.dtype == np.float32
    assert hypothetical.shape == (codes.shape[0], 4, codes.shape[1])
    motif = "".join("ACGT"[c] for c in codes[0])
    start = motif.find(MOTIF)
    assert start >= 0
    actual = np.take_along_axis(hypothetical, codes[:, None, :].astype(np.int64), axis=1)[:, 0]
    inside = actual[0, start:start + len(MOTIF)]
    outside = np.delete(actual[0], np.arange(start, start + len(MOTIF)))
    assert inside.min() > 0.5 > np.abs(outside).max()


def test_warmup_compiles_everything_the_motif_stage_calls(tmp_path):
    # a fresh numba cache stands for a fresh installation (the suite's own is already warm)
    cache = tmp_path / "numba"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    warm = subprocess.run([sys.executable, "-m", "plantt.warmup"], env=env, capture_output=True,
                          text=True, check=True)
    assert "numba caches ready: tfmodisco" in warm.stdout
    compiled = _cache_files(cache)
    assert any("tomtom" in name for name in compiled)
    assert any("affinitymat" in name for name in compiled)
    run = subprocess.run([sys.executable, "-c", WORKFLOW_CALLS, str(tmp_path / "known.meme")],
                         env=env, capture_output=True, text=True, check=True)
    assert int(run.stdout.split()[-1]) >= 1  # TF-MoDISco found the planted motif again
    # every function and signature the stage's calls needed was already in the cache
    assert _cache_files(cache) == compiled
