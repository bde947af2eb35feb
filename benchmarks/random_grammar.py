"""Draw a demo grammar at random, to test a recipe on a grammar nobody chose.

A recipe tuned on the default grammar (or on the two extra grammars under ``tests/data/``) may
have been fitted to them by the person who tuned it. A grammar drawn from a seed *before* the
recipe is run on it is a held-out test: nobody looked at its motifs first. Usage::

    python benchmarks/random_grammar.py --seed 101 --out /tmp/grammar_101.yaml

then run the workflow's preprocessing with ``demo_settings.grammar`` set to that file and
``benchmarks/models_vs_kmer.py`` on the result (``benchmarks/README.md`` has the figures).

What is drawn (the ranges the models issue names: other motifs, lengths 6-15, positions anywhere in
the 3 kb window including its far ends, weaker effects, more noise):

* 3-6 transcription motifs and 2-5 stability motifs;
* each 6-15 random bases, with no stop codon in any frame (the simulator removes in-frame stops
  from coding sequence, which would break a motif planted there), no run of 4 identical bases, a
  GC fraction of 0.25-0.75, and no 6-mer shared with another motif (on either strand);
* an anchor (TSS or TTS) and a region of 60-600 bp lying inside that anchor's half of the model
  window (TSS -1000..500, TTS -500..1000), anywhere in it;
* an effect of 0.5-1.5 log2 of either sign, and a max count of 1 or 2;
* a gene-level noise SD of 0.4-0.8 log2 per process.

With ``--realistic`` it draws instead a grammar of the realistic kind
(``src/plantt/data/grammar_realistic.yaml``, ``docs/grammar.md``), within ranges wider than that
file's own so that a recipe chosen on the realistic demo meets other settings:

* 10-24 transcription motifs, 55% of them JASPAR 2024 CORE plant matrices drawn at random (of
  width 7-20) and the rest matrices in no database (6-12 positions, each with one base of
  probability 0.55-0.9); 3-8 stability motifs in no database near the TTS;
* effects of 0.1-0.45 log2 for four motifs in five and 0.7-1.3 for the rest, of either sign;
  relative-score thresholds of 0.8-0.9; either strand for 90% of the transcription motifs;
* regions of 100-900 bp in the anchor's half of the window, soft edges of 20-120 bp;
* divergence: 5-12% substitutions per branch (coding exons at 20-50% of that), 0.4-1.2% indels,
  0.05-0.3 transposon insertions per kb, annotation offsets of SD 10-40 bp, motif turnover
  0.2-0.4, gene losses, duplications and species-specific genes of 5-20%;
* species GC of 0.32-0.42 and trans offsets of SD 0.3 log2;
* non-sequence noise of SD 1.2-2.2 (transcription) and 0.5-1.0 (stability) log2.

The same seed gives the same file. The result is checked by :func:`plantt.grammar.parse_grammar`
before it is written.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import yaml

from plantt.grammar import parse_grammar

BASES = "ACGT"
STOPS = ("TAA", "TAG", "TGA")
#: The two halves of the model window, as (min start, max end) offsets from each anchor.
WINDOW_HALF = {"tss": (-1000, 500), "tts": (-500, 1000)}


def _revcomp(seq: str) -> str:
    return seq[::-1].translate(str.maketrans("ACGT", "TGCA"))


def _kmers(seq: str, k: int = 6) -> set[str]:
    both = (seq, _revcomp(seq))
    return {s[i:i + k] for s in both for i in range(len(s) - k + 1)}


def _acceptable(seq: str, taken: set[str]) -> bool:
    if any(stop in seq for stop in STOPS):
        return False
    if any(base * 4 in seq for base in BASES):
        return False
    gc = sum(base in "GC" for base in seq) / len(seq)
    if not 0.25 <= gc <= 0.75:
        return False
    return not (_kmers(seq) & taken)


def draw_motif_sequence(rng: np.random.Generator, taken: set[str]) -> str:
    """Random bases meeting the rules in the module docstring; ``taken`` gains its 6-mers."""
    for _ in range(100_000):
        length = int(rng.integers(6, 16))
        seq = "".join(BASES[i] for i in rng.integers(0, 4, size=length))
        if _acceptable(seq, taken):
            taken |= _kmers(seq)
            return seq
    raise RuntimeError("could not draw a motif meeting the rules in 100,000 tries")


def draw_grammar(seed: int) -> dict:
    """A grammar (as the YAML mapping of ``docs/grammar.md``) drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    taken: set[str] = set()
    grammar: dict = {"version": 1}
    for process, (lo_n, hi_n), baseline in (("transcription", (3, 6), 3.0),
                                            ("stability", (2, 5), 0.0)):
        motifs = []
        for index in range(int(rng.integers(lo_n, hi_n + 1))):
            sequence = draw_motif_sequence(rng, taken)
            anchor = str(rng.choice(["tss", "tts"]))
            lo, hi = WINDOW_HALF[anchor]
            width = int(rng.integers(max(60, len(sequence) + 10), 601))
            start = int(rng.integers(lo, hi - width + 1))
            magnitude = float(rng.uniform(0.5, 1.5))
            sign = 1.0 if rng.random() < 0.5 else -1.0
            motifs.append({
                "name": f"{process[:5]}_{index + 1}",
                "sequence": sequence,
                "anchor": anchor,
                "start": start,
                "end": start + width,
                "effect_log2": round(sign * magnitude, 2),
                "max_count": int(rng.integers(1, 3)),
            })
        grammar[process] = {
            "baseline_log2": baseline,
            "noise_sd_log2": round(float(rng.uniform(0.4, 0.8)), 2),
            "motifs": motifs,
        }
    return grammar


def _novel_matrix(rng: np.random.Generator) -> list[list[float]]:
    rows = []
    for _ in range(int(rng.integers(6, 13))):
        top = float(rng.uniform(0.55, 0.9))
        base = int(rng.integers(4))
        rest = rng.dirichlet(np.ones(3)) * (1.0 - top)
        row = np.insert(rest, base, top)
        rows.append([round(float(v), 3) for v in row])
    return rows


def _effect(rng: np.random.Generator, positive_share: float) -> float:
    magnitude = rng.uniform(0.1, 0.45) if rng.random() < 0.8 else rng.uniform(0.7, 1.3)
    sign = 1.0 if rng.random() < positive_share else -1.0
    return round(float(sign * magnitude), 2)


def draw_realistic_grammar(seed: int) -> dict:
    """A realistic grammar (degenerate JASPAR and novel matrices, divergence, transposons,
    annotation offsets, species effects, mostly unexplained variance) drawn from ``seed``."""
    from plantt.jaspar import load_jaspar

    rng = np.random.default_rng([seed, 2])
    jaspar = [m for m in load_jaspar() if 7 <= m.width <= 20]
    grammar: dict = {"version": 1, "jaspar_release": "JASPAR2024"}
    used: set[str] = set()
    for process, (lo_n, hi_n) in (("transcription", (10, 24)), ("stability", (3, 8))):
        motifs = []
        for index in range(int(rng.integers(lo_n, hi_n + 1))):
            anchor = "tss" if process == "transcription" else "tts"
            lo, hi = WINDOW_HALF[anchor]
            if process == "stability":
                lo, hi = -500, 600
            width = int(rng.integers(100, 901))
            start = int(rng.integers(lo, hi - width + 1))
            motif: dict = {"name": f"{process[:5]}_{index + 1}"}
            if process == "transcription" and rng.random() < 0.55:
                matrix = jaspar[int(rng.integers(len(jaspar)))]
                while matrix.id in used:
                    matrix = jaspar[int(rng.integers(len(jaspar)))]
                used.add(matrix.id)
                motif["jaspar"] = matrix.id
            else:
                motif["matrix"] = _novel_matrix(rng)
            either = process == "transcription" and rng.random() < 0.9
            motif.update({
                "anchor": anchor, "start": start, "end": start + width,
                "edge_bp": int(rng.integers(20, 121)),
                "strand": "either" if either else "sense",
                "min_score": round(float(rng.uniform(0.8, 0.9)), 2),
                "effect_log2": _effect(rng, 0.65 if process == "transcription" else 0.4),
                "max_count": int(rng.integers(1, 4)),
            })
            motifs.append(motif)
        noise = (1.2, 2.2) if process == "transcription" else (0.5, 1.0)
        grammar[process] = {"baseline_log2": 3.0 if process == "transcription" else 0.0,
                            "noise_sd_log2": round(float(rng.uniform(*noise)), 2),
                            "motifs": motifs}
    grammar["evolution"] = {
        "substitution_rate": round(float(rng.uniform(0.05, 0.12)), 3),
        "coding_substitution_ratio": round(float(rng.uniform(0.2, 0.5)), 2),
        "indel_rate": round(float(rng.uniform(0.004, 0.012)), 4),
        "indel_mean_length": 4.0,
        "transposon_rate": round(float(rng.uniform(0.05, 0.3)), 3),
        "annotation_offset_sd": round(float(rng.uniform(10, 40)), 1),
        "ancestral_motif_probability": round(float(rng.uniform(0.25, 0.45)), 2),
        "motif_gain_probability": round(float(rng.uniform(0.2, 0.4)), 2),
        "motif_loss_probability": round(float(rng.uniform(0.2, 0.4)), 2),
        "gene_loss_probability": round(float(rng.uniform(0.05, 0.15)), 2),
        "duplication_probability": round(float(rng.uniform(0.05, 0.15)), 2),
        "species_specific_fraction": round(float(rng.uniform(0.05, 0.2)), 2),
    }
    grammar["species"] = {sp: {"gc": round(float(rng.uniform(0.32, 0.42)), 3),
                               "trans_offset_log2": round(float(rng.normal(0, 0.3)), 2)}
                          for sp in ("medicago", "vicia", "pisum", "lathyrus")}
    return grammar


def write_grammar(grammar: dict, out: Path, seed: int) -> None:
    """Validate, then write atomically (temporary name, then rename)."""
    parse_grammar(grammar, out)
    how = "--realistic " if "species" in grammar else ""
    text = (f"# Drawn by benchmarks/random_grammar.py {how}--seed {seed} "
            "(format: docs/grammar.md).\n"
            + yaml.safe_dump(grammar, sort_keys=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--realistic", action="store_true",
                        help="a realistic grammar (matrices, divergence, transposons, ...)")
    args = parser.parse_args()
    draw = draw_realistic_grammar if args.realistic else draw_grammar
    write_grammar(draw(args.seed), args.out, args.seed)
    print(args.out)


if __name__ == "__main__":
    main()
