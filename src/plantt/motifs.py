"""Contribution scores in the form motif discovery needs, and known motifs as MEME files.

TF-MoDISco (``modisco-lite``) clusters *seqlets*, short stretches of high contribution, and needs
two arrays per sequence: the **actual** contributions (per base and channel, non-zero only in the
channel of the base present) and the **hypothetical** ones (what each of the four bases would
contribute at each position). Both come here from DeepLift's multipliers against
**dinucleotide-shuffled references** (the convention of DeepSHAP and the BPNet/ChromBPNet tools):
a zero reference, as in the paper's Figure 5 profile (:mod:`plantt.attribution`), explains a
sequence against "no sequence at all", while a shuffle of the sequence itself keeps its base and
dinucleotide composition and leaves the arrangement (the motifs) to be explained.

With ``m`` the multipliers of one reference ``r`` (captum's DeepLift with
``multiply_by_inputs=False``), the hypothetical contribution of base ``b`` at position ``i`` is
``sum_c (e_b - r_i)[c] * m_i[c] = m_i[b] - sum_c r_i[c] m_i[c]``: the contribution base ``b``
would make at ``i`` with the multipliers of the sequence's own pass. Both arrays are averaged over
the references. **Completeness** holds per reference: the actual contributions of a sequence sum
to ``F(x) - F(r)``, so their mean sums to ``F(x) - mean F(r)``; the deviation is reported.

The demo's grammar (:mod:`plantt.grammar`) is written as a MEME motif file by
:func:`write_grammar_meme` so TOMTOM (``memelite``) can match discovered patterns to the planted
motifs; for real data the user's own MEME file (JASPAR, PlantTFDB, ...) takes its place.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from plantt.encoding import ALPHABET, N_CODE, soft_one_hot
from plantt.grammar import Grammar
from plantt.io import PathLike, atomic_open, get_logger

log = get_logger("motifs")


# ----------------------------------------------------------------------------------------------
# Dinucleotide shuffles
# ----------------------------------------------------------------------------------------------
def dinucleotide_shuffle(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random sequence with exactly the dinucleotide counts of ``codes`` (1-D, 0-4 with N).

    Altschul and Erickson's (1985) construction: the sequence is an Eulerian walk through the
    graph whose vertices are the letters and whose edges are its dinucleotides. A uniformly
    random walk with the same first and last letter and the same edge counts is drawn by choosing,
    for every letter but the last, which of its outgoing edges is used last (the chosen edges must
    form a tree pointing to the last letter: drawn again until they do), putting the remaining
    edges of each letter in random order before it, and walking from the first letter. N counts
    as a fifth letter, so masked bases keep their neighbours' statistics.
    """
    codes = np.asarray(codes)
    if codes.ndim != 1:
        raise ValueError(f"expected one sequence of codes, got shape {codes.shape}")
    if codes.size < 3:
        return codes.copy()
    letters = codes.tolist()
    first, last = letters[0], letters[-1]
    successors: dict[int, list[int]] = {}
    for here, after in zip(letters[:-1], letters[1:], strict=True):
        successors.setdefault(here, []).append(after)
    vertices = [v for v in successors if v != last]
    while True:
        last_edge = {v: int(rng.integers(len(successors[v]))) for v in vertices}
        if _reaches(last, {v: successors[v][i] for v, i in last_edge.items()}):
            break
    order: dict[int, list[int]] = {}
    for vertex, edges in successors.items():
        if vertex == last:
            shuffled = [edges[i] for i in rng.permutation(len(edges))]
        else:
            keep = last_edge[vertex]
            rest = edges[:keep] + edges[keep + 1:]
            shuffled = [rest[i] for i in rng.permutation(len(rest))] + [edges[keep]]
        order[vertex] = shuffled[::-1]  # popped from the end
    walk = [first]
    for _ in range(len(letters) - 1):
        walk.append(order[walk[-1]].pop())
    return np.asarray(walk, dtype=codes.dtype)


def _reaches(root: int, parent: dict[int, int]) -> bool:
    """Whether following ``parent`` from every vertex ends at ``root`` (no cycle)."""
    for start in parent:
        seen, vertex = set(), start
        while vertex != root:
            if vertex in seen or vertex not in parent:
                return False
            seen.add(vertex)
            vertex = parent[vertex]
    return True


def dinucleotide_counts(codes: np.ndarray, alphabet_size: int = N_CODE + 1) -> np.ndarray:
    """(alphabet, alphabet) counts of adjacent pairs in 1-D ``codes``."""
    codes = np.asarray(codes, dtype=np.int64)
    counts = np.zeros((alphabet_size, alphabet_size), dtype=np.int64)
    np.add.at(counts, (codes[:-1], codes[1:]), 1)
    return counts


# ----------------------------------------------------------------------------------------------
# Hypothetical contributions
# ----------------------------------------------------------------------------------------------
@dataclass
class Contributions:
    """DeepLift against shuffled references, per sequence (arrays (n, 4, L), float32).

    ``hypothetical``: what each base would contribute at each position; ``actual``: the
    contribution of the base present (``hypothetical`` times the soft one-hot input);
    ``output``: the score ``F(x)``; ``reference_output``: ``mean F(r)`` over the references;
    ``delta``: ``sum(actual) - (output - reference_output)`` (completeness; float rounding only
    for ReLU towers).
    """

    hypothetical: np.ndarray
    actual: np.ndarray
    output: np.ndarray
    reference_output: np.ndarray
    delta: np.ndarray

    @property
    def max_abs_delta(self) -> float:
        return float(np.max(np.abs(self.delta))) if self.delta.size else 0.0


def _multipliers(module: torch.nn.Module, inputs: torch.Tensor, baselines: torch.Tensor
                 ) -> torch.Tensor:
    from captum.attr import DeepLift

    explainer = DeepLift(module, multiply_by_inputs=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]etting forward, backward hooks.*")
        multipliers = explainer.attribute(inputs.requires_grad_(), baselines=baselines)
    return multipliers.detach()


def shuffled_reference_contributions(model: torch.nn.Module, codes: np.ndarray,
                                     n_references: int = 10, seed: int = 0,
                                     batch_size: int = 64) -> Contributions:
    """Hypothetical and actual DeepLift contributions of PlanTT's tower score ``sum(z)`` for each
    row of ``codes`` (n, L), averaged over ``n_references`` dinucleotide shuffles of that row.

    The shuffles of row ``i`` are drawn from ``numpy.random.default_rng([seed, i])``: a sequence
    gets the same references whichever batch or subset it is in.
    """
    from plantt.attribution import deeplift_module
    from plantt.ism import model_device_dtype

    if n_references < 1:
        raise ValueError("n_references must be at least 1")
    codes = np.atleast_2d(np.asarray(codes, dtype=np.uint8))
    module = deeplift_module(model)
    device, dtype = model_device_dtype(model)
    n, length = codes.shape
    hypothetical = np.zeros((n, 4, length), dtype=np.float64)
    output, reference_output = np.zeros(n), np.zeros(n)
    per_batch = max(1, batch_size // n_references)
    for start in range(0, n, per_batch):
        rows = range(start, min(n, start + per_batch))
        references = np.stack([dinucleotide_shuffle(codes[i], np.random.default_rng([seed, i]))
                               for i in rows for _ in range(n_references)])
        repeated = np.repeat(codes[start:rows.stop], n_references, axis=0)
        x = soft_one_hot(torch.as_tensor(repeated, device=device), dtype=dtype)
        r = soft_one_hot(torch.as_tensor(references, device=device), dtype=dtype)
        m = _multipliers(module, x, r)
        # m_i[b] - sum_c r_i[c] m_i[c], per reference, then averaged
        hyp = (m - (r * m).sum(dim=1, keepdim=True)).double()
        hyp = hyp.reshape(len(rows), n_references, 4, length).mean(dim=1)
        hypothetical[start:rows.stop] = hyp.cpu().numpy()
        with torch.inference_mode():
            scores = module(torch.cat([x.detach(), r])).double().cpu().numpy()
        output[start:rows.stop] = scores[:len(repeated):n_references]
        reference_output[start:rows.stop] = scores[len(repeated):].reshape(
            len(rows), n_references).mean(axis=1)
    one_hot = soft_one_hot(torch.as_tensor(codes), dtype=torch.float64).numpy()
    actual = hypothetical * one_hot
    delta = actual.sum(axis=(1, 2)) - (output - reference_output)
    log.info("%d sequences x %d shuffled references: completeness deviation <= %.3g", n,
             n_references, float(np.max(np.abs(delta))) if n else 0.0)
    return Contributions(hypothetical.astype(np.float32), actual.astype(np.float32), output,
                         reference_output, delta)


# ----------------------------------------------------------------------------------------------
# Known motifs as MEME files
# ----------------------------------------------------------------------------------------------
def word_pwm(sequence: str, match: float = 0.97) -> np.ndarray:
    """(len, 4) probability matrix of an exact word: ``match`` for its base, the rest shared."""
    if not 0.25 < match <= 1.0:
        raise ValueError("match must be in (0.25, 1]")
    other = (1.0 - match) / 3.0
    pwm = np.full((len(sequence), 4), other)
    for i, base in enumerate(sequence.upper()):
        if base not in ALPHABET[:4]:
            raise ValueError(f"motif {sequence!r}: {base!r} at {i + 1} is not A, C, G or T")
        pwm[i, ALPHABET.index(base)] = match
    return pwm


def write_meme(path: PathLike, motifs: Sequence[tuple[str, np.ndarray]],
               background: Sequence[float] = (0.25, 0.25, 0.25, 0.25)) -> None:
    """A MEME (version 4) motif file of ``(name, (len, 4) probabilities)`` pairs, atomically."""
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
             "Background letter frequencies",
             " ".join(f"{b} {f:.4f}" for b, f in zip("ACGT", background, strict=True)), ""]
    for name, pwm in motifs:
        pwm = np.asarray(pwm, dtype=np.float64)
        if pwm.ndim != 2 or pwm.shape[1] != 4 or not np.allclose(pwm.sum(axis=1), 1.0, atol=1e-3):
            raise ValueError(f"motif {name!r}: expected a (length, 4) matrix of probabilities")
        lines += [f"MOTIF {name}", "",
                  f"letter-probability matrix: alength= 4 w= {len(pwm)} nsites= 20 E= 0"]
        lines += ["  " + "  ".join(f"{p:.6f}" for p in row) for row in pwm]
        lines.append("")
    with atomic_open(path) as handle:
        handle.write("\n".join(lines))


def write_grammar_meme(grammar: Grammar, path: PathLike,
                       processes: Sequence[str] | None = None) -> list[str]:
    """Write the grammar's motifs (of ``processes``, default all) as a MEME file; their names."""
    chosen = [m for p in grammar.processes if processes is None or p.name in processes
              for m in p.motifs]
    write_meme(path, [(m.name, word_pwm(m.sequence)) for m in chosen])
    return [m.name for m in chosen]
