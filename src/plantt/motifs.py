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

import argparse
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from plantt.encoding import ALPHABET, N_CODE, soft_one_hot
from plantt.grammar import Grammar
from plantt.io import PathLike, atomic_open, atomic_path, get_logger
from plantt.windows import DEFAULT_LAYOUT, WindowLayout

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
    """Write the grammar's motifs (of ``processes``, default all) as a MEME file; their names.
    A word becomes a matrix of its letters, a matrix motif (JASPAR or written out) its own base
    probabilities."""
    chosen = [m for p in grammar.processes if processes is None or p.name in processes
              for m in p.motifs]
    write_meme(path, [(m.name, word_pwm(m.sequence) if m.matrix is None
                       else np.asarray(m.matrix.probabilities, dtype=np.float64))
                      for m in chosen])
    return [m.name for m in chosen]


# ----------------------------------------------------------------------------------------------
# TF-MoDISco patterns and TOMTOM matches
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DiscoverySettings:
    """TF-MoDISco (``modisco-lite``) settings; the names are its own, except
    ``trim_threshold``/``trim_pad`` (ours, see :func:`trim_bounds`).

    ``min_passing_windows_frac``/``max_passing_windows_frac`` bound the share of windows that
    may become seqlets; :func:`discover_patterns` sets both to the share its empirical null
    admits when it is given one (see :func:`null_seqlet_threshold`).
    """

    sliding_window_size: int = 15
    flank_size: int = 5
    max_seqlets_per_metacluster: int = 2000
    target_seqlet_fdr: float = 0.2
    min_passing_windows_frac: float = 0.03
    max_passing_windows_frac: float = 0.2
    n_leiden_runs: int = 2
    #: Positions of a pattern whose summed |contribution| is below this share of its largest are
    #: trimmed from both ends (then ``trim_pad`` bases are put back on each side).
    trim_threshold: float = 0.3
    trim_pad: int = 2


def window_sums(scores: np.ndarray, window: int) -> np.ndarray:
    """Sums of ``scores`` (n, L) over every run of ``window`` positions: (n, L - window + 1)."""
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if scores.shape[1] < window:
        return np.zeros((scores.shape[0], 0))
    cumulative = np.cumsum(np.pad(scores, ((0, 0), (1, 0))), axis=1)
    return cumulative[:, window:] - cumulative[:, :-window]


@dataclass(frozen=True)
class SeqletThreshold:
    """Where seqlet calling starts: windows whose |summed contribution| is at least
    ``threshold``; ``passing_fraction`` of the windows do; ``fdr``: the estimated false discovery
    rate of the candidate seqlets at that threshold."""

    threshold: float
    passing_fraction: float
    fdr: float
    n_windows: int
    n_null_windows: int


def _peaks(sums: np.ndarray, suppress: int) -> np.ndarray:
    """|window sums| (n, W) at their local maxima (within ``suppress`` windows either side),
    the rest dropped: one value per candidate seqlet rather than one per overlapping window."""
    from scipy.ndimage import maximum_filter1d

    magnitude = np.abs(sums)
    local = maximum_filter1d(magnitude, size=2 * suppress + 1, axis=1, mode="constant")
    return magnitude[(magnitude == local) & (magnitude > 0)]


def null_seqlet_threshold(actual: np.ndarray, null_actual: np.ndarray, window: int,
                          target_fdr: float, suppress: int | None = None) -> SeqletThreshold:
    """The lowest |window sum| threshold at which candidate seqlets of ``actual`` (n, L:
    contributions summed over channels) pass at an estimated false discovery rate of at most
    ``target_fdr``, the expected false ones being counted in ``null_actual``: the same model's
    contributions to dinucleotide shuffles of the same sequences.

    Candidates are the local maxima of |window sum| (``suppress`` windows either side, default
    ``window // 2``, as TF-MoDISco separates seqlets), so an instance counts once however many
    overlapping windows it lifts; the null's count is scaled by the ratio of window numbers.

    Why an empirical null: modisco-lite fits a Laplace null to the centre of the contribution
    tracks themselves, which assumes most windows are noise around zero. A ReLU model's DeepLift
    leaves most positions of a 3 kb gene window at exactly zero (no detector differs from the
    references there), so that null collapses to zero, every window passes, and the
    ``max_passing_windows_frac`` cap (20% of windows) decides instead: TF-MoDISco then clusters
    faint partial matches anywhere in the window with the real instances. The shuffles keep the
    composition of the sequences and leave the model's own response to chance words.
    """
    suppress = window // 2 if suppress is None else suppress
    real_sums, null_sums = window_sums(actual, window), window_sums(null_actual, window)
    if not real_sums.size or not null_sums.size:
        raise ValueError("no windows to threshold: sequences shorter than the window")
    real = np.sort(_peaks(real_sums, suppress))[::-1]
    null = np.sort(_peaks(null_sums, suppress))
    scale = real_sums.size / null_sums.size
    n_windows, n_null_windows = int(real_sums.size), int(null_sums.size)
    if not real.size:
        return SeqletThreshold(float("inf"), 0.0, 0.0, n_windows, n_null_windows)
    # for threshold real[k]: expected null candidates at or above it, over the k + 1 real ones
    null_above = null.size - np.searchsorted(null, real, side="left")
    fdr = scale * null_above / np.arange(1, real.size + 1)
    passing = np.flatnonzero(fdr <= target_fdr)
    if not passing.size:
        return SeqletThreshold(float("inf"), 0.0, 0.0, n_windows, n_null_windows)
    k = int(passing[-1])
    threshold = float(real[k])
    fraction = float(np.count_nonzero(np.abs(real_sums) >= threshold)) / n_windows
    return SeqletThreshold(threshold, fraction, float(fdr[k]), n_windows, n_null_windows)


@dataclass
class Pattern:
    """One discovered pattern, trimmed to where it carries contribution.

    ``ppm``, ``cwm`` (contribution weight matrix) and ``hcwm`` (hypothetical): (width, 4);
    ``seqlets``: ``example``, ``start``, ``end`` (window coordinates of the trimmed pattern, on the
    window's strand) and ``revcomp`` of each seqlet; ``sign`` +1 (raises the score) or -1.
    """

    id: str
    sign: int
    ppm: np.ndarray
    cwm: np.ndarray
    hcwm: np.ndarray
    seqlets: pd.DataFrame
    raw: object = None  # the modisco-lite SeqletSet, for its HDF5 file

    @property
    def consensus(self) -> str:
        return "".join(ALPHABET[i] for i in self.ppm.argmax(axis=1))

    @property
    def n_seqlets(self) -> int:
        return len(self.seqlets)


def trim_bounds(cwm: np.ndarray, threshold: float, pad: int) -> tuple[int, int]:
    """``[start, end)`` of the positions of ``cwm`` (width, 4) whose summed |contribution| is at
    least ``threshold`` of the largest, widened by ``pad`` on each side within the pattern."""
    score = np.abs(np.asarray(cwm)).sum(axis=1)
    if not score.size or score.max() <= 0:
        return 0, int(score.size)
    keep = np.flatnonzero(score >= threshold * score.max())
    return max(0, int(keep[0]) - pad), min(score.size, int(keep[-1]) + 1 + pad)


def _pattern(raw: object, sign: int, index: int, settings: DiscoverySettings) -> Pattern:
    cwm = np.asarray(raw.contrib_scores)
    start, end = trim_bounds(cwm, settings.trim_threshold, settings.trim_pad)
    rows = []
    for seqlet in raw.seqlets:
        # a reverse-complemented seqlet runs backwards through the window
        if seqlet.is_revcomp:
            lo, hi = seqlet.end - end, seqlet.end - start
        else:
            lo, hi = seqlet.start + start, seqlet.start + end
        rows.append((int(seqlet.example_idx), int(lo), int(hi), bool(seqlet.is_revcomp)))
    return Pattern(f"{'pos' if sign > 0 else 'neg'}_{index}", sign,
                   np.asarray(raw.sequence)[start:end], cwm[start:end],
                   np.asarray(raw.hypothetical_contribs)[start:end],
                   pd.DataFrame(rows, columns=["example", "start", "end", "revcomp"]), raw)


def discover_patterns(codes: np.ndarray, hypothetical: np.ndarray,
                      settings: DiscoverySettings = DiscoverySettings(),
                      null_actual: np.ndarray | None = None, seed: int = 0) -> list[Pattern]:
    """TF-MoDISco on windows ``codes`` (n, L) with their ``hypothetical`` contributions
    (n, 4, L): the patterns of both metaclusters, positive first, each trimmed.

    With ``null_actual`` (contributions to shuffled sequences, (m, L) summed over channels) the
    share of windows that may become seqlets is the one :func:`null_seqlet_threshold` admits at
    ``settings.target_seqlet_fdr``; none passing means no patterns.
    """
    import dataclasses

    import modiscolite.tfmodisco

    codes = np.atleast_2d(np.asarray(codes, dtype=np.uint8))
    hypothetical = np.asarray(hypothetical, dtype=np.float32)
    if hypothetical.shape != (codes.shape[0], 4, codes.shape[1]):
        raise ValueError(f"hypothetical contributions of shape {hypothetical.shape} for windows "
                         f"of shape {codes.shape}: expected {(codes.shape[0], 4, codes.shape[1])}")
    one_hot = np.eye(5, dtype=np.float32)[codes][:, :, :4]  # (n, L, 4); an N is no base
    if null_actual is not None:
        actual = (hypothetical * one_hot.transpose(0, 2, 1)).sum(axis=1)
        cut = null_seqlet_threshold(actual, null_actual, settings.sliding_window_size,
                                    settings.target_seqlet_fdr,
                                    settings.sliding_window_size // 2 + settings.flank_size)
        log.info("seqlet threshold %.4g from %d shuffled-sequence windows: %.2f%% of %d windows "
                 "pass (estimated FDR %.3f)", cut.threshold, cut.n_null_windows,
                 100 * cut.passing_fraction, cut.n_windows, cut.fdr)
        if cut.passing_fraction == 0.0:
            return []
        settings = dataclasses.replace(settings, min_passing_windows_frac=cut.passing_fraction,
                                       max_passing_windows_frac=cut.passing_fraction)
    hypothetical = hypothetical.transpose(0, 2, 1)
    scale = float(np.abs(hypothetical).max()) if hypothetical.size else 0.0
    # Stretches of exactly zero contribution (common with ReLU towers) give seqlet windows of
    # norm zero, and modisco-lite's cosine similarities become 0/0 (NaN). A jitter a million
    # times below the largest contribution makes them defined and changes nothing else.
    jitter = np.random.default_rng(seed).standard_normal(hypothetical.shape, dtype=np.float32)
    hypothetical = np.ascontiguousarray(hypothetical + (1e-6 * scale) * jitter)
    positive, negative = modiscolite.tfmodisco.TFMoDISco(
        one_hot=one_hot, hypothetical_contribs=hypothetical,
        sliding_window_size=settings.sliding_window_size, flank_size=settings.flank_size,
        max_seqlets_per_metacluster=settings.max_seqlets_per_metacluster,
        target_seqlet_fdr=settings.target_seqlet_fdr,
        min_passing_windows_frac=settings.min_passing_windows_frac,
        max_passing_windows_frac=settings.max_passing_windows_frac,
        n_leiden_runs=settings.n_leiden_runs, verbose=False)
    patterns = [_pattern(raw, +1, i, settings) for i, raw in enumerate(positive or [])]
    patterns += [_pattern(raw, -1, i, settings) for i, raw in enumerate(negative or [])]
    log.info("TF-MoDISco: %d positive and %d negative patterns from %d windows",
             len(positive or []), len(negative or []), codes.shape[0])
    return patterns


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """q-values of the Benjamini-Hochberg procedure (monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=np.float64)
    if not p.size:
        return p
    order = np.argsort(p)
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.minimum(q, 1.0)
    return out


MATCH_COLUMNS = ["pattern", "motif", "p_value", "q_value", "offset", "orientation"]


def column_shuffled_decoys(motifs: dict[str, np.ndarray], per_motif: int, seed: int = 0
                           ) -> dict[str, np.ndarray]:
    """``per_motif`` decoys of each (4, width) motif: its columns in a random order, each column
    also reverse-complemented at random. A decoy has its motif's width and information content,
    and so its score statistics, but not its word."""
    rng = np.random.default_rng(seed)
    decoys = {}
    for name, matrix in motifs.items():
        matrix = np.asarray(matrix, dtype=np.float64)
        for i in range(per_motif):
            columns = matrix[:, rng.permutation(matrix.shape[1])]
            flip = rng.random(matrix.shape[1]) < 0.5
            columns[:, flip] = columns[::-1, flip]  # A<->T, C<->G: rows are A, C, G, T
            decoys[f"decoy:{name}:{i}"] = columns
    return decoys


def jaspar_motifs(release: str, collection: str = "CORE", tax_group: str = "plants"
                  ) -> dict[str, np.ndarray]:
    """The matrices of a JASPAR collection (bundled with pyjaspar, read offline) as TOMTOM
    targets: ``"<matrix id> <TF name>"`` -> (4, width) probabilities, so that a match names the
    factor."""
    from plantt.jaspar import load_jaspar

    return {f"{m.id} {m.name}": np.asarray(m.probabilities, dtype=np.float64).T
            for m in load_jaspar(release, collection, tax_group)}


def match_patterns(patterns: Sequence[Pattern], motifs: dict[str, np.ndarray],
                   max_q: float = 0.05, decoys_per_motif: int = 0, seed: int = 0
                   ) -> pd.DataFrame:
    """TOMTOM (``memelite``) of every pattern's probability matrix against ``motifs`` (name ->
    (4, width) matrix, as ``memelite.io.read_meme`` returns them). Per pattern, q-values over the
    targets (Benjamini-Hochberg); rows with ``q <= max_q``, best first per pattern.

    TOMTOM's null distribution is built from the target columns, so a handful of targets (the
    demo grammar's nine) makes its p-values unreliable: ``decoys_per_motif`` column-shuffled
    copies of each motif (:func:`column_shuffled_decoys`) are added to the targets and count in
    the q-values, but are never reported; a pattern whose best target is a decoy gets no row.
    """
    from memelite import tomtom

    names = list(motifs)
    if not patterns or not names:
        return pd.DataFrame(columns=MATCH_COLUMNS)
    decoys = column_shuffled_decoys(motifs, decoys_per_motif, seed) if decoys_per_motif else {}
    all_names = names + list(decoys)
    targets = [np.asarray(motifs[name], dtype=np.float64) for name in names]
    targets += list(decoys.values())
    queries = [p.ppm.T.astype(np.float64) for p in patterns]
    with warnings.catch_warnings():
        # memelite warns about small target sets; the caller's database (and decoys) decide
        warnings.filterwarnings("ignore", message=".*target motifs.*")
        p_values, _, offsets, _, strands = tomtom(queries, targets)
    rows = []
    for i, pattern in enumerate(patterns):
        q_values = benjamini_hochberg(p_values[i])
        order = np.argsort(p_values[i], kind="stable")
        if all_names[order[0]].startswith("decoy:"):
            continue
        for j in order:
            if q_values[j] <= max_q and j < len(names):
                rows.append((pattern.id, names[j], float(p_values[i, j]), float(q_values[j]),
                             int(offsets[i, j]), "-" if int(strands[i, j]) else "+"))
    return pd.DataFrame(rows, columns=MATCH_COLUMNS)

PATTERN_COLUMNS = ["pattern", "sign", "n_seqlets", "consensus", "width", "median_start",
                   "anchor", "median_offset", "fraction_revcomp"]


def pattern_table(patterns: Sequence[Pattern], layout: WindowLayout = DEFAULT_LAYOUT
                  ) -> pd.DataFrame:
    """One row per pattern: its sign (+1 raises the tower score, -1 lowers it), seqlets,
    consensus and width, the median start of its seqlets in the window and the same position
    relative to the nearer of the TSS and TTS (``anchor`` TSS: offset 0 = the first transcribed
    base; TTS: offset -1 = the last annotated base), and the share of seqlets found on the
    reverse strand."""
    rows = []
    for pattern in patterns:
        starts = pattern.seqlets["start"].to_numpy()
        median = float(np.median(starts)) if starts.size else float("nan")
        tss, tts_next = layout.tss_index, layout.tts_index + 1
        if not np.isfinite(median):
            anchor, offset = "", float("nan")
        elif abs(median - tss) <= abs(median - tts_next):
            anchor, offset = "TSS", median - tss
        else:
            anchor, offset = "TTS", median - tts_next
        rows.append((pattern.id, pattern.sign, pattern.n_seqlets, pattern.consensus,
                     len(pattern.ppm), median, anchor, offset,
                     float(pattern.seqlets["revcomp"].mean()) if starts.size else float("nan")))
    return pd.DataFrame(rows, columns=PATTERN_COLUMNS)


RECOVERY_COLUMNS = ["motif", "process", "sign", "region_start", "region_end", "pattern",
                    "q_value", "pattern_sign", "n_seqlets", "fraction_in_region", "recovered"]


def planted_motif_recovery(patterns: pd.DataFrame, matches: pd.DataFrame, seqlets: pd.DataFrame,
                           grammar: Grammar | PathLike | None = None,
                           processes: Sequence[str] | None = None,
                           layout: WindowLayout = DEFAULT_LAYOUT, max_q: float = 0.05,
                           min_fraction_in_region: float = 0.7) -> pd.DataFrame:
    """For each motif of a simulator grammar (of ``processes``; default all), the discovered
    pattern that recovers it best, from the tables :func:`write_motif_results` writes.

    A pattern *recovers* a motif when the motif is its best TOMTOM match at ``q <= max_q``, its
    sign is the motif's (a pattern that raises the tower score for a motif that raises
    expression), and at least ``min_fraction_in_region`` of its seqlets are centred in the
    motif's planted region (window coordinates, :func:`plantt.attribution.grammar_window_regions`).
    Per motif the row shows the recovering pattern with most seqlets, else the best candidate
    (right sign first, then the largest share in the region); no candidate: empty pattern.
    """
    from plantt.attribution import grammar_window_regions
    from plantt.grammar import load_grammar

    parsed = grammar if isinstance(grammar, Grammar) else load_grammar(grammar)
    regions = {name: (lo, hi) for name, lo, hi in grammar_window_regions(parsed, processes,
                                                                          layout)}
    best = matches.sort_values("q_value", kind="stable").drop_duplicates("pattern") \
        if len(matches) else pd.DataFrame(columns=MATCH_COLUMNS)
    best = best[best["q_value"] <= max_q]
    centre = (seqlets["start"] + seqlets["end"]) / 2.0
    by_pattern = patterns.set_index("pattern")
    rows = []
    for process in parsed.processes:
        if processes is not None and process.name not in processes:
            continue
        for motif in process.motifs:
            if motif.name not in regions:
                continue
            lo, hi = regions[motif.name]
            sign = 1 if motif.effect_log2 > 0 else -1
            candidates = []
            for record in best[best["motif"] == motif.name].itertuples(index=False):
                mine = (seqlets["pattern"] == record.pattern).to_numpy()
                inside = float(((centre[mine] >= lo) & (centre[mine] < hi)).mean()) \
                    if mine.any() else 0.0
                pattern_sign = int(by_pattern.loc[record.pattern, "sign"])
                ok = pattern_sign == sign and inside >= min_fraction_in_region
                candidates.append((ok, pattern_sign == sign, inside, int(mine.sum()),
                                   record.pattern, float(record.q_value), pattern_sign))
            if candidates:
                ok, _, inside, n, pattern, q, pattern_sign = max(
                    candidates, key=lambda c: (c[0], c[1], c[3] if c[0] else c[2]))
            else:
                ok, inside, n, pattern, q, pattern_sign = False, float("nan"), 0, "", \
                    float("nan"), 0
            rows.append((motif.name, process.name, sign, lo, hi, pattern, q, pattern_sign, n,
                         inside, ok))
    return pd.DataFrame(rows, columns=RECOVERY_COLUMNS)


#: Base colours of the classic logo scheme (A green, C blue, G orange, T red).
LOGO_COLOURS = {"A": "#109648", "C": "#255c99", "G": "#f7b32b", "T": "#d62839"}


@cache
def _glyph(letter: str):
    """The outline of a bold capital ``letter`` scaled to the unit square (made once)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path as MplPath
    from matplotlib.textpath import TextPath

    path = TextPath((0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans",
                                                                 weight="bold"))
    box = path.get_extents()
    vertices = (path.vertices - [box.x0, box.y0]) / [box.width, box.height]
    return MplPath(vertices, path.codes)


def draw_logo(ax, matrix: np.ndarray, width: float = 0.9) -> None:
    """A sequence logo of ``matrix`` (positions, 4: A, C, G, T) on ``ax``: at each position the
    letters stacked by |value|, the largest outermost, positive values above zero and negative
    below. Each letter is one cached outline scaled into place, so a logo takes milliseconds
    (logomaker builds every glyph anew: ~0.5 s per logo, most of the stage's figure time)."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import PathPatch
    from matplotlib.transforms import Affine2D

    matrix = np.asarray(matrix, dtype=np.float64)
    patches, colours = [], []
    for i, row in enumerate(matrix):
        for sign in (1, -1):
            base = 0.0
            for j in np.argsort(np.abs(row)):  # small first: the largest ends outermost
                value = row[j]
                if sign * value <= 0:
                    continue
                letter = ALPHABET[j]
                transform = Affine2D().scale(width, abs(value)).translate(
                    i - width / 2, base if sign > 0 else base - abs(value))
                patches.append(PathPatch(_glyph(letter).transformed(transform)))
                colours.append(LOGO_COLOURS[letter])
                base += sign * abs(value)
    ax.add_collection(PatchCollection(patches, facecolors=colours, edgecolors="none"))
    low = min(0.0, float(np.minimum(matrix, 0).sum(axis=1).min())) if matrix.size else 0.0
    high = max(0.0, float(np.maximum(matrix, 0).sum(axis=1).max())) if matrix.size else 1.0
    pad = 0.05 * ((high - low) or 1.0)
    ax.set_xlim(-0.5, max(len(matrix), 1) - 0.5)
    ax.set_ylim(low - pad, high + pad)


def plot_logo(pattern: Pattern, target: PathLike) -> None:
    """The pattern's contribution weight matrix as a sequence logo, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plantt.plots import save_figure

    fig, ax = plt.subplots(figsize=(max(3.0, 0.35 * len(pattern.cwm)), 1.8))
    draw_logo(ax, pattern.cwm)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_title(f"{pattern.id} ({'raises' if pattern.sign > 0 else 'lowers'}; "
                 f"{pattern.n_seqlets} seqlets)", fontsize=9)
    ax.set_ylabel("contribution")
    ax.set_xticks([])
    save_figure(fig, target)


def plot_pattern_overview(patterns: Sequence[Pattern], table: pd.DataFrame,
                          seqlets: pd.DataFrame, target: PathLike, title: str = "",
                          layout: WindowLayout = DEFAULT_LAYOUT, bin_size: int = 50) -> None:
    """One row per pattern: its logo (contribution weight matrix) and where its seqlets lie in
    the window, forward-strand seqlets above the axis and reverse-strand ones below, with the
    TSS and TTS marked; the row title gives the sign, seqlet count and best match."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plantt.plots import save_figure

    n = max(len(patterns), 1)
    fig, axes = plt.subplots(n, 2, figsize=(11, 1.25 * n + 0.6), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 2.4]})
    if not patterns:
        axes[0, 0].axis("off")
        axes[0, 1].axis("off")
        axes[0, 1].text(0.5, 0.5, "no pattern (the log gives the seqlet threshold and how many "
                        "windows passed it)", ha="center", va="center",
                        transform=axes[0, 1].transAxes)
    best = table.set_index("pattern") if len(table) else None
    edges = np.arange(0, layout.length + bin_size, bin_size)
    centres = (seqlets["start"] + seqlets["end"]) / 2.0
    for row, pattern in zip(axes, patterns, strict=False):
        logo_ax, pos_ax = row
        draw_logo(logo_ax, pattern.cwm)
        logo_ax.axhline(0, color="black", lw=0.5)
        logo_ax.set_xticks([])
        logo_ax.tick_params(labelsize=7)
        match = ""
        if best is not None and pattern.id in best.index and best.loc[pattern.id, "best_match"]:
            match = (f"; {best.loc[pattern.id, 'best_match']} "
                     f"(q {float(best.loc[pattern.id, 'best_q_value']):.1g})")
        logo_ax.set_title(f"{pattern.id}: {'raises' if pattern.sign > 0 else 'lowers'}, "
                          f"{pattern.n_seqlets} seqlets{match}", fontsize=8, loc="left")
        mine = (seqlets["pattern"] == pattern.id).to_numpy()
        reverse = seqlets["revcomp"].to_numpy(dtype=bool)
        forward_counts, _ = np.histogram(centres[mine & ~reverse], edges)
        reverse_counts, _ = np.histogram(centres[mine & reverse], edges)
        colour = "#c0504d" if pattern.sign > 0 else "#4f81bd"
        pos_ax.stairs(forward_counts, edges, fill=True, color=colour)
        pos_ax.stairs(-reverse_counts, edges, fill=True, color=colour, alpha=0.5)
        pos_ax.axhline(0, color="black", lw=0.5)
        for anchor in layout.anchors():
            pos_ax.axvline(anchor.index, color="grey", ls="--", lw=0.7)
        pos_ax.set_xlim(0, layout.length)
        pos_ax.tick_params(labelsize=7)
        pos_ax.set_ylabel("+ / - strand", fontsize=7)
    last = axes[-1, 1]
    last.set_xlabel(f"{layout.axis_label}; dashed: TSS ({layout.tss_index}) and TTS "
                    f"({layout.tts_index})", fontsize=8)
    # fixed margins, in inches: tight_layout over dozens of axes took most of the figure's time
    height = 1.25 * n + 0.6
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.45 / height,
                        top=1 - (0.45 if title else 0.25) / height, wspace=0.15,
                        hspace=0.55 if n > 1 else 0.2)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.12 / height)
    save_figure(fig, target)


def save_modisco_h5(path: PathLike, patterns: Sequence[Pattern], window_size: int) -> None:
    """TF-MoDISco's own HDF5 file (``modiscolite.io.save_hdf5``), written atomically."""
    from modiscolite.io import save_hdf5

    positive = [p.raw for p in patterns if p.sign > 0]
    negative = [p.raw for p in patterns if p.sign < 0]
    with atomic_path(path, suffix=".h5") as tmp:
        save_hdf5(str(tmp), positive or None, negative or None, window_size)


# ----------------------------------------------------------------------------------------------
# Cross-validation folds
# ----------------------------------------------------------------------------------------------
@dataclass
class CvContributions:
    """Contributions of the test genes of every fold, each explained by its fold's model.

    ``genes``: ``fold, species, gene_id, row``; ``codes`` (n, L); ``hypothetical``, ``actual``
    (n, 4, L) float32; ``null_actual`` (m, L): the contributions (summed over channels) of one
    dinucleotide shuffle of each of the first test genes of every fold, by the same model, for
    :func:`null_seqlet_threshold`; ``summary``: per fold the genes, null sequences and the
    largest completeness deviation.
    """

    genes: pd.DataFrame
    codes: np.ndarray
    hypothetical: np.ndarray
    actual: np.ndarray
    null_actual: np.ndarray
    summary: pd.DataFrame


def cv_contributions(model_dirs: dict[int, PathLike], codes_npy: PathLike, genes_tsv: PathLike,
                     splits_tsv: PathLike, max_genes_per_fold: int | None = 100,
                     n_references: int = 5, seed: int = 0, batch_size: int = 64,
                     null_genes_per_fold: int = 20) -> CvContributions:
    """Shuffled-reference contributions (:func:`shuffled_reference_contributions`) of at most
    ``max_genes_per_fold`` test genes of each fold, drawn with ``seed`` as
    :func:`plantt.ism.fold_test_genes` draws them, and of dinucleotide shuffles of the first
    ``null_genes_per_fold`` of them (the null of seqlet calling)."""
    from plantt.dataset import EncodedWindows, read_splits
    from plantt.ism import fold_test_rows, load_plantt

    windows = EncodedWindows.load(codes_npy, genes_tsv, mmap=True)
    splits = read_splits(splits_tsv)
    tables, codes, hyp, act, null, summary = [], [], [], [], [], []
    for fold in sorted(model_dirs):
        genes, rows = fold_test_rows(windows, splits, fold, max_genes_per_fold, seed, genes_tsv)
        fold_codes = np.asarray(windows.codes[rows])
        model = load_plantt(model_dirs[fold])
        result = shuffled_reference_contributions(model, fold_codes, n_references, seed,
                                                  batch_size)
        # a stream of its own (seed, fold, 1), so the null never repeats a reference
        shuffles = np.stack([dinucleotide_shuffle(row, np.random.default_rng([seed, fold, 1, i]))
                             for i, row in enumerate(fold_codes[:null_genes_per_fold])]) \
            if null_genes_per_fold > 0 and len(fold_codes) else fold_codes[:0]
        null_result = shuffled_reference_contributions(model, shuffles, n_references, seed,
                                                       batch_size) if len(shuffles) else None
        tables.append(genes.assign(fold=fold, row=rows)[["fold", "species", "gene_id", "row"]])
        codes.append(fold_codes)
        hyp.append(result.hypothetical)
        act.append(result.actual)
        null.append(null_result.actual.sum(axis=1) if null_result is not None
                    else np.zeros((0, fold_codes.shape[1]), dtype=np.float32))
        deltas = [result.max_abs_delta] + ([null_result.max_abs_delta] if null_result else [])
        summary.append({"fold": fold, "n_genes": len(rows), "n_null_sequences": len(shuffles),
                        "n_references": n_references, "max_abs_delta": max(deltas)})
    return CvContributions(pd.concat(tables, ignore_index=True), np.concatenate(codes),
                           np.concatenate(hyp), np.concatenate(act), np.concatenate(null),
                           pd.DataFrame(summary))


# ----------------------------------------------------------------------------------------------
# plantt motifs
# ----------------------------------------------------------------------------------------------
SEQLET_COLUMNS = ["pattern", "fold", "species", "gene_id", "start", "end", "revcomp"]


def seqlet_table(patterns: Sequence[Pattern], genes: pd.DataFrame) -> pd.DataFrame:
    """Every seqlet of every pattern: its gene (``genes``: the rows the patterns were found in,
    e.g. :attr:`CvContributions.genes`) and window coordinates of the trimmed pattern."""
    frames = []
    for pattern in patterns:
        rows = pattern.seqlets
        gene = genes.iloc[rows["example"].to_numpy()].reset_index(drop=True)
        frames.append(pd.DataFrame({"pattern": pattern.id, "fold": gene["fold"],
                                    "species": gene["species"], "gene_id": gene["gene_id"],
                                    "start": rows["start"].to_numpy(),
                                    "end": rows["end"].to_numpy(),
                                    "revcomp": rows["revcomp"].to_numpy()}))
    return pd.concat(frames, ignore_index=True) if frames else \
        pd.DataFrame(columns=SEQLET_COLUMNS)


def _best_matches(table: pd.DataFrame, matches: pd.DataFrame, prefix: str) -> None:
    """Each pattern's best match (``<prefix>match``, ``<prefix>q_value``) as columns of
    ``table``; empty and NaN where a pattern has none."""
    best = matches.drop_duplicates("pattern").set_index("pattern") if len(matches) else None
    table[f"{prefix}match"] = [best.loc[p, "motif"] if best is not None and p in best.index
                               else "" for p in table["pattern"]]
    table[f"{prefix}q_value"] = [best.loc[p, "q_value"] if best is not None and p in best.index
                                 else float("nan") for p in table["pattern"]]


def write_motif_results(outdir: PathLike, cv: CvContributions, patterns: Sequence[Pattern],
                        matches: pd.DataFrame, settings: DiscoverySettings = DiscoverySettings(),
                        layout: WindowLayout = DEFAULT_LAYOUT,
                        recovery: pd.DataFrame | None = None, title: str = "",
                        database_matches: pd.DataFrame | None = None) -> Path:
    """``patterns.tsv``, ``matches.tsv``, ``database_matches.tsv`` (with ``database_matches``,
    else its header), ``seqlets.tsv``, ``recovery.tsv`` (with ``recovery``, else its header),
    ``contributions_summary.tsv``, ``modisco.h5``, ``patterns.png``
    (:func:`plot_pattern_overview`) and ``logos/<pattern>.png`` in ``outdir``; the pattern table
    gets each pattern's best match (``best_match``) and best database match
    (``database_match``: a JASPAR id and the factor's name)."""
    from plantt.io import write_tsv

    outdir = Path(outdir)
    (outdir / "logos").mkdir(parents=True, exist_ok=True)
    table = pattern_table(patterns, layout)
    _best_matches(table, matches, "best_")
    if database_matches is None:
        database_matches = pd.DataFrame(columns=MATCH_COLUMNS)
    _best_matches(table, database_matches, "database_")
    write_tsv(table, outdir / "patterns.tsv", float_format="%.6g")
    write_tsv(matches, outdir / "matches.tsv", float_format="%.6g")
    write_tsv(database_matches, outdir / "database_matches.tsv", float_format="%.6g")
    write_tsv(cv.summary, outdir / "contributions_summary.tsv", float_format="%.6g")
    seqlets = seqlet_table(patterns, cv.genes)
    write_tsv(seqlets, outdir / "seqlets.tsv")
    write_tsv(recovery if recovery is not None else pd.DataFrame(columns=RECOVERY_COLUMNS),
              outdir / "recovery.tsv", float_format="%.6g")
    save_modisco_h5(outdir / "modisco.h5", patterns, settings.sliding_window_size)
    plot_pattern_overview(patterns, table, seqlets, outdir / "patterns.png", title, layout)
    for pattern in patterns:
        plot_logo(pattern, outdir / "logos" / f"{pattern.id}.png")
    return outdir


def run(args: argparse.Namespace) -> int:
    from memelite.io import read_meme

    from plantt.grammar import load_grammar
    from plantt.io import InputError

    model_root = Path(args.models)
    model_dirs = {int(d.name.removeprefix("fold_")): d for d in sorted(model_root.glob("fold_*"))
                  if d.name.removeprefix("fold_").isdigit()}
    if not model_dirs:
        raise InputError(model_root, "no fold_<k> model directories")
    if args.folds:
        missing = sorted(set(args.folds) - set(model_dirs))
        if missing:
            raise InputError(model_root, f"no model for fold(s) {missing}")
        model_dirs = {k: model_dirs[k] for k in args.folds}
    layout = WindowLayout(args.upstream, args.gene_part, args.downstream, args.mask)
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    grammar = None
    database = jaspar_motifs(*args.jaspar) if args.jaspar else None
    if args.no_match:
        motifs = {}
    elif database is not None and not (args.meme or args.grammar):
        # the database is the known set: its matches are the matches
        motifs = database
    else:
        if args.meme:
            meme = Path(args.meme)
        else:
            grammar = load_grammar(args.grammar)
            meme = outdir / "grammar.meme"
            write_grammar_meme(grammar, meme, args.processes)
        try:
            motifs = read_meme(str(meme))
        except (OSError, ValueError, IndexError) as err:
            raise InputError(meme, f"not a MEME motif file ({err})") from None
        if not motifs:
            raise InputError(meme, "no MOTIF records")
    cv = cv_contributions(model_dirs, args.codes, args.genes, args.splits,
                          args.max_genes_per_fold or None, args.references, args.seed, args.batch_size,
                          args.null_genes_per_fold)
    settings = DiscoverySettings(max_seqlets_per_metacluster=args.max_seqlets,
                                 target_seqlet_fdr=args.seqlet_fdr,
                                 n_leiden_runs=args.leiden_runs)
    patterns = discover_patterns(cv.codes, cv.hypothetical, settings,
                                 cv.null_actual if len(cv.null_actual) else None, args.seed)
    matches = match_patterns(patterns, {k: np.asarray(v) for k, v in motifs.items()},
                             args.max_q, 0 if motifs is database else args.decoys, args.seed)
    database_matches = None
    if database is not None:
        # hundreds of matrices are TOMTOM's null themselves: no decoys
        database_matches = (matches if motifs is database
                            else match_patterns(patterns, database, args.max_q, 0, args.seed))
        log.info("%d patterns named by %s %s %s at q <= %g", database_matches["pattern"].nunique()
                 if len(database_matches) else 0, *args.jaspar, args.max_q)
    recovery = None
    if grammar is not None:
        recovery = planted_motif_recovery(pattern_table(patterns, layout), matches,
                                          seqlet_table(patterns, cv.genes), grammar,
                                          args.processes, layout, max_q=args.max_q,
                                          min_fraction_in_region=args.min_fraction_in_region)
        for record in recovery.itertuples(index=False):
            if not record.pattern:
                log.info("planted motif %s: not recovered (no pattern matches it)", record.motif)
                continue
            log.info("planted motif %s: %s (pattern %s, q %.2g, sign %+d, %.0f%% of %d seqlets "
                     "in its region)", record.motif,
                     "recovered" if record.recovered else "not recovered", record.pattern,
                     record.q_value, record.pattern_sign, 100 * record.fraction_in_region,
                     record.n_seqlets)
    write_motif_results(outdir, cv, patterns, matches, settings, layout, recovery,
                        title=args.title or f"TF-MoDISco patterns of {model_root}",
                        database_matches=database_matches)
    log.info("%d patterns, %d matched at q <= %g; results in %s", len(patterns),
             matches["pattern"].nunique() if len(matches) else 0, args.max_q, outdir)
    return 0
