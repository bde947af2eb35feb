"""The regulatory grammar of the simulated demo: which motifs, where, and how strongly they act.

A grammar is a YAML file (format documented in ``docs/grammar.md``; the default ships as
``plantt/data/grammar.yaml``). Two processes set a gene's expression::

    log2 transcription = transcription.baseline_log2 + sum_m effect_m * min(count_m, max_count_m) + noise
    log2 stability     = stability.baseline_log2     + (same sum over the stability motifs)    + noise
    abundance          = transcription * stability

``count_m`` is the number of occurrences of motif ``m`` on the gene's sense strand lying entirely
inside the motif's region. Regions are given relative to an anchor, in transcript orientation,
as half-open ``[start, end)`` offsets:

* ``tss``: offset 0 is the first transcribed base, -1 the base just upstream of it;
* ``tts``: offset 0 is the first base *after* the last annotated base, -1 the last annotated base.

So ``tss -1000..500`` and ``tts -500..1000`` are exactly the two halves of PlanTT's 3 kb model window.

This module parses and validates grammar files and scans sequences for motif occurrences; the
simulator (:mod:`plantt.simulate`) and the tests both use the same scanner, so the truth the
simulator writes is, by construction, what the documented grammar says about the final sequences.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from plantt.annotation import Gene
from plantt.encoding import encode, reverse_complement_codes
from plantt.io import InputError, PathLike
from plantt.jaspar import DEFAULT_RELEASE, PositionMatrix, load_jaspar, matrix_from_rows

PROCESSES = ("transcription", "stability")
ANCHORS = ("tss", "tts")
SPECIES_IDS = ("medicago", "vicia", "pisum", "lathyrus")
#: Offsets must stay within this distance of their anchor: the simulator keeps this much
#: homologous flank on each side of a gene, beyond it the sequence is unrelated filler.
MAX_ABS_OFFSET = 1000
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: Motif names become truth.tsv columns; they must not shadow the fixed ones.
RESERVED_NAMES = frozenset({
    "species", "gene_id", "family", "orthogroup", "strand", "seqid", "start", "end", "length",
    "n_exons", "transcription", "stability", "abundance", "transcription_log2_grammar",
    "stability_log2_grammar", "transcription_log2_noise", "stability_log2_noise",
    "pause_strength", "pause_offset", "utr3_length", "trans_offset_log2", "tss_annotation_offset",
    "tts_annotation_offset",
})


@dataclass(frozen=True)
class Motif:
    """One motif: a word or a position weight matrix whose sites in a region shift a process.

    A *word* (``sequence``) matches exactly; a *matrix* (``matrix``, from JASPAR or written in the
    grammar) matches wherever a site's relative score reaches ``min_score``. ``strand`` is
    ``sense`` (the gene's sense strand only) or ``either`` (both strands; a palindromic site counts
    once). ``edge_bp`` softens the region's edges: a site reaching ``d`` bases beyond them counts
    ``exp(-d^2 / (2 edge_bp^2))`` instead of 0 (sites up to ``3 edge_bp`` out are scanned).
    """

    name: str
    sequence: str
    anchor: str
    start: int
    end: int
    effect_log2: float
    max_count: int = 1
    process: str = "transcription"
    matrix: PositionMatrix | None = field(default=None, compare=False, repr=False)
    min_score: float = 1.0
    strand: str = "sense"
    edge_bp: float = 0.0

    @cached_property
    def codes(self) -> np.ndarray:
        """The word's codes, or the matrix's consensus."""
        return encode(self.sequence) if self.matrix is None else encode(self.matrix.consensus)

    @property
    def width(self) -> int:
        return len(self.codes) if self.matrix is None else self.matrix.width

    @property
    def label(self) -> str:
        """The word, or the matrix's id and consensus (for tables)."""
        if self.matrix is None:
            return self.sequence
        return f"{self.matrix.id}:{self.matrix.consensus}"

    @property
    def probabilities(self) -> np.ndarray | None:
        """The matrix's ``(width, 4)`` probabilities (None for a word)."""
        return None if self.matrix is None else self.matrix.probabilities

    @property
    def margin(self) -> int:
        """Bases scanned beyond each edge of the region (soft edges)."""
        return int(math.ceil(3 * self.edge_bp))

    @cached_property
    def _reverse_matrix(self) -> PositionMatrix | None:
        return None if self.matrix is None else self.matrix.reverse_complement()

    def site_starts(self, sense: np.ndarray) -> np.ndarray:
        """Start indices of this motif's sites in ``sense`` codes (both strands when ``either``;
        a site matching on both strands at one position counts once)."""
        if self.matrix is None:
            starts = occurrence_starts(sense, self.codes)
            if self.strand == "either":
                rc = reverse_complement_codes(self.codes)
                if not np.array_equal(rc, self.codes):
                    starts = np.union1d(starts, occurrence_starts(sense, rc))
            return np.asarray(starts, dtype=np.int64)
        hits = self.matrix.relative_scores(sense) >= self.min_score
        if self.strand == "either":
            hits |= self._reverse_matrix.relative_scores(sense) >= self.min_score
        return np.flatnonzero(hits).astype(np.int64)

    def site_weights(self, starts: np.ndarray, region_start: int, region_end: int) -> np.ndarray:
        """Weight of each site starting at ``starts`` for a region ``[region_start, region_end)``
        in the same coordinates: 1 inside, the soft edge outside (0 without one)."""
        starts = np.asarray(starts, dtype=np.int64)
        beyond = np.maximum(0, np.maximum(region_start - starts, starts + self.width - region_end))
        if self.edge_bp <= 0:
            return (beyond == 0).astype(np.float64)
        weights = np.exp(-0.5 * (beyond / self.edge_bp) ** 2)
        return np.where(beyond <= self.margin, weights, 0.0)

    def genomic_region(self, gene: Gene) -> tuple[int, int]:
        """The region as a 0-based half-open genomic interval (not clipped to the sequence)."""
        return region_interval(self.anchor, self.start, self.end, gene.start, gene.end, gene.strand)


@dataclass(frozen=True)
class Process:
    """A process (transcription or stability): baseline, gene-level noise and its motifs."""

    name: str
    baseline_log2: float
    noise_sd_log2: float
    motifs: tuple[Motif, ...]

    def grammar_log2(self, counts: dict[str, float]) -> float:
        """The sequence-determined log2 part (without baseline and noise) for motif counts."""
        return float(sum(m.effect_log2 * min(float(counts.get(m.name, 0)), m.max_count)
                         for m in self.motifs))


@dataclass(frozen=True)
class Evolution:
    """How the four species diverge from their common ancestor (each species is one branch)."""

    substitution_rate: float = 0.02
    indel_rate: float = 0.002
    indel_mean_length: float = 3.0
    ancestral_motif_probability: float = 0.5
    motif_gain_probability: float = 0.25
    motif_loss_probability: float = 0.25
    gene_loss_probability: float = 0.06
    duplication_probability: float = 0.03
    species_specific_fraction: float = 0.02
    # Realism (all off by default, the version-1 demo): coding exons substituted at this fraction
    # of the rate; transposon insertions per kb of flank and branch, of this many bases; the
    # annotated TSS and TTS off the true ones by a normal offset of this SD (bp).
    coding_substitution_ratio: float = 1.0
    transposon_rate: float = 0.0
    transposon_length_min: int = 150
    transposon_length_max: int = 1500
    annotation_offset_sd: float = 0.0


@dataclass(frozen=True)
class SpeciesModel:
    """What sets one species apart beyond its sequence: the GC share of the bases its branch
    writes (substitutions, insertions; None: the ancestor's composition) and a trans offset added
    to every gene's log2 transcription (its own transcription machinery, not in any window)."""

    gc: float | None = None
    trans_offset_log2: float = 0.0


@dataclass(frozen=True)
class ProseqModel:
    """Where engaged polymerases sit along a gene (PRO-seq) and the replicate noise."""

    pause_offset: float = 50.0
    pause_offset_sd: float = 10.0
    pause_width: float = 5.0
    pause_strength: dict[str, float] = field(default_factory=lambda: {
        "medicago": 6.0, "vicia": 8.0, "pisum": 0.0, "lathyrus": 5.0})
    pause_strength_sd_log2: float = 0.3
    readthrough_enrichment: float = 2.0
    readthrough_decay: float = 400.0
    antisense_strength: float = 1.0
    antisense_offset: float = 150.0
    antisense_width: float = 20.0
    dispersion: float = 0.05
    background_fraction: float = 0.02


@dataclass(frozen=True)
class RnaseqModel:
    """3' UTRs and poly-A tails of the mature transcripts (3'-RNA-seq) and the replicate noise."""

    utr3_min: int = 50
    utr3_max: int = 250
    polya_min: int = 15
    polya_max: int = 40
    dispersion: float = 0.05
    background_fraction: float = 0.01


@dataclass(frozen=True)
class Grammar:
    transcription: Process
    stability: Process
    evolution: Evolution = field(default_factory=Evolution)
    proseq: ProseqModel = field(default_factory=ProseqModel)
    rnaseq: RnaseqModel = field(default_factory=RnaseqModel)
    source: str = "<default>"
    species: dict[str, SpeciesModel] = field(
        default_factory=lambda: {sp: SpeciesModel() for sp in SPECIES_IDS})
    jaspar_release: str = DEFAULT_RELEASE

    @property
    def processes(self) -> tuple[Process, Process]:
        return (self.transcription, self.stability)

    @property
    def motifs(self) -> tuple[Motif, ...]:
        return self.transcription.motifs + self.stability.motifs


# --------------------------------------------------------------------------------------------
# Coordinates and scanning
# --------------------------------------------------------------------------------------------


def region_interval(anchor: str, start: int, end: int, gene_start: int, gene_end: int,
                    strand: str) -> tuple[int, int]:
    """Map a ``[start, end)`` offset range around a gene's TSS or TTS to genomic coordinates.

    ``gene_start``/``gene_end`` are 0-based half-open. Offsets grow in the direction of
    transcription; the result is a 0-based half-open genomic interval ``(lo, hi)``.
    """
    if anchor == "tss":
        boundary = gene_start if strand == "+" else gene_end
    elif anchor == "tts":
        boundary = gene_end if strand == "+" else gene_start
    else:
        raise ValueError(f"unknown anchor {anchor!r}")
    if strand == "+":
        return boundary + start, boundary + end
    return boundary - end, boundary - start


def count_occurrences(sense: np.ndarray, motif: np.ndarray) -> int:
    """Occurrences (overlapping allowed) of ``motif`` codes in ``sense`` codes; N never matches."""
    return len(occurrence_starts(sense, motif))


def occurrence_starts(sense: np.ndarray, motif: np.ndarray) -> np.ndarray:
    """Start indices of every occurrence of ``motif`` in ``sense`` (both uint8 codes).

    Uses ``bytes.find`` (motifs are rare, so this is much faster than sliding windows).
    """
    haystack = np.ascontiguousarray(sense, dtype=np.uint8).tobytes()
    needle = np.ascontiguousarray(motif, dtype=np.uint8).tobytes()
    starts = []
    pos = haystack.find(needle)
    while pos >= 0:
        starts.append(pos)
        pos = haystack.find(needle, pos + 1)
    return np.array(starts, dtype=np.int64)


def sense_region(contig: np.ndarray, lo: int, hi: int, strand: str) -> np.ndarray:
    """Codes of genomic ``[lo, hi)`` (clipped to the contig) read on the gene's sense strand."""
    lo, hi = max(lo, 0), min(hi, len(contig))
    if hi <= lo:
        return np.zeros(0, dtype=np.uint8)
    part = np.asarray(contig[lo:hi], dtype=np.uint8)
    return part if strand == "+" else reverse_complement_codes(part)


def motif_value(motif: Motif, sense: np.ndarray, region_start: int, region_end: int) -> float:
    """The motif's weighted site count in ``sense`` codes for the region ``[region_start,
    region_end)`` of those codes (the codes may reach ``motif.margin`` bases beyond it)."""
    starts = motif.site_starts(sense)
    if not len(starts):
        return 0.0
    return float(motif.site_weights(starts, region_start, region_end).sum())


def gene_motif_sense(contig: np.ndarray, gene: Gene, motif: Motif
                     ) -> tuple[np.ndarray, int, int]:
    """The sense-strand codes a motif's sites are looked for in (its region and soft margins,
    clipped to the contig), and the region's ``[start, end)`` within them."""
    lo, hi = motif.genomic_region(gene)
    a, b = max(lo - motif.margin, 0), min(hi + motif.margin, len(contig))
    if b <= a:
        return np.zeros(0, dtype=np.uint8), 0, 0
    sense = sense_region(contig, a, b, gene.strand)
    if gene.strand == "+":
        return sense, lo - a, hi - a
    return sense, b - hi, b - lo


def count_gene_motifs(contig: np.ndarray, gene: Gene, motifs: tuple[Motif, ...]
                      ) -> dict[str, float]:
    """Motif counts of one gene: its sites in each motif's region, weighted by the soft edges
    (a plain count for words on the sense strand fully inside the region, the version-1 rule).

    ``contig`` holds the codes (:func:`plantt.encoding.encode`) of the sequence the gene lies on;
    parts of a region beyond the contig's ends simply contain no occurrence. Whole counts are
    returned as ``int``.
    """
    counts: dict[str, float] = {}
    for motif in motifs:
        sense, start, end = gene_motif_sense(contig, gene, motif)
        value = motif_value(motif, sense, start, end)
        counts[motif.name] = int(value) if float(value).is_integer() else round(value, 6)
    return counts


# --------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------


def default_grammar_path() -> Path:
    """The default grammar shipped with the package."""
    return Path(str(resources.files("plantt") / "data" / "grammar.yaml"))


def realistic_grammar_path() -> Path:
    """The packaged realistic grammar (degenerate JASPAR and novel matrices, divergence,
    transposons, annotation offsets; ``plantt/data/grammar_realistic.yaml``)."""
    return Path(str(resources.files("plantt") / "data" / "grammar_realistic.yaml"))


#: Names of the packaged grammars, usable wherever a grammar file is asked for.
PACKAGED_GRAMMARS = ("default", "realistic")


def resolve_grammar_path(path: PathLike | None) -> Path:
    """A grammar file's path: ``path`` itself, or a packaged grammar for None, ``default`` or
    ``realistic``."""
    if path is None or str(path) == "default":
        return default_grammar_path()
    if str(path) == "realistic":
        return realistic_grammar_path()
    return Path(path)


def load_grammar(path: PathLike | None = None) -> Grammar:
    """Read and validate a grammar YAML file (the packaged default when ``path`` is None; the
    words ``default`` and ``realistic`` name the two packaged grammars)."""
    path = resolve_grammar_path(path)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise InputError(path, "grammar file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(path, f"not valid YAML: {err}") from None
    return parse_grammar(data, path)


def parse_grammar(data: Any, path: PathLike | None = None) -> Grammar:
    """Validate a grammar given as a parsed mapping; errors name ``path`` and the offending key."""
    checker = _Checker(path)
    top = checker.mapping(data, "<top level>")
    checker.known_keys(top, "<top level>", {"version", "transcription", "stability", "evolution",
                                            "proseq", "rnaseq", "species", "jaspar_release"})
    if "version" in top and top["version"] != 1:
        checker.fail("version", f"unsupported version {top['version']!r} (expected 1)")
    release = top.get("jaspar_release", DEFAULT_RELEASE)
    if not isinstance(release, str):
        checker.fail("jaspar_release", f"expected a release name such as {DEFAULT_RELEASE}")
    processes = {name: _parse_process(checker, top, name, release) for name in PROCESSES}
    names = [m.name for p in processes.values() for m in p.motifs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        checker.fail("motifs", f"motif names must be unique, repeated: {', '.join(duplicates)}")
    evolution = _parse_simple(checker, top, "evolution", Evolution)
    proseq = _parse_proseq(checker, top)
    rnaseq = _parse_simple(checker, top, "rnaseq", RnaseqModel)
    _check_evolution(checker, evolution)
    _check_rnaseq(checker, rnaseq)
    species = _parse_species(checker, top)
    return Grammar(processes["transcription"], processes["stability"], evolution, proseq, rnaseq,
                   source=str(path) if path is not None else "<mapping>", species=species,
                   jaspar_release=release)


class _Checker:
    """Small helpers that raise :class:`InputError` naming the file and the dotted key."""

    def __init__(self, path: PathLike | None):
        self.path = path

    def fail(self, key: str, problem: str) -> None:
        raise InputError(self.path, f"{key}: {problem}")

    def mapping(self, value: Any, key: str) -> dict:
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping, got {type(value).__name__}")
        return value

    def known_keys(self, mapping: dict, key: str, allowed: set[str]) -> None:
        unknown = sorted(str(k) for k in mapping if k not in allowed)
        if unknown:
            self.fail(key, f"unknown key(s) {', '.join(unknown)}; allowed: "
                           f"{', '.join(sorted(allowed))}")

    def number(self, value: Any, key: str, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(key, f"expected a finite number, got {value!r}")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            self.fail(key, f"must be {'>' if lo_open else '>='} {lo}, got {value!r}")
        if hi is not None and value > hi:
            self.fail(key, f"must be <= {hi}, got {value!r}")
        return float(value)

    def integer(self, value: Any, key: str, lo: int | None = None, hi: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"expected an integer, got {value!r}")
        if lo is not None and value < lo:
            self.fail(key, f"must be >= {lo}, got {value!r}")
        if hi is not None and value > hi:
            self.fail(key, f"must be <= {hi}, got {value!r}")
        return int(value)


def _parse_process(checker: _Checker, top: dict, name: str, release: str) -> Process:
    if name not in top:
        checker.fail(name, "missing section (each grammar needs transcription and stability)")
    section = checker.mapping(top[name], name)
    checker.known_keys(section, name, {"baseline_log2", "noise_sd_log2", "motifs"})
    baseline = checker.number(section.get("baseline_log2", 0.0), f"{name}.baseline_log2",
                              -30, 30)
    noise = checker.number(section.get("noise_sd_log2", 0.0), f"{name}.noise_sd_log2", 0, 10)
    raw_motifs = section.get("motifs") or []
    if not isinstance(raw_motifs, list):
        checker.fail(f"{name}.motifs", "expected a list of motifs")
    motifs = tuple(_parse_motif(checker, entry, f"{name}.motifs[{i}]", name, release)
                   for i, entry in enumerate(raw_motifs))
    return Process(name, baseline, noise, motifs)


def _parse_motif(checker: _Checker, entry: Any, key: str, process: str,
                 release: str = DEFAULT_RELEASE) -> Motif:
    entry = checker.mapping(entry, key)
    checker.known_keys(entry, key, {"name", "sequence", "jaspar", "matrix", "anchor", "start",
                                    "end", "effect_log2", "max_count", "min_score", "strand",
                                    "edge_bp", "description"})
    for required in ("name", "anchor", "start", "end", "effect_log2"):
        if required not in entry:
            checker.fail(key, f"missing key {required!r}")
    name = entry["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        checker.fail(f"{key}.name", f"expected a name of letters, digits and '_' starting with a "
                                    f"letter, got {name!r}")
    if name in RESERVED_NAMES:
        checker.fail(f"{key}.name", f"{name!r} is reserved for a truth.tsv column")
    given = [k for k in ("sequence", "jaspar", "matrix") if k in entry]
    if len(given) != 1:
        checker.fail(key, "give exactly one of sequence (a word), jaspar (a JASPAR matrix id) or "
                          f"matrix (rows of A, C, G, T weights); got {', '.join(given) or 'none'}")
    sequence, matrix = "", None
    if "sequence" in entry:
        sequence = entry["sequence"]
        if not isinstance(sequence, str) or not re.fullmatch(r"[ACGTacgt]+", sequence):
            checker.fail(f"{key}.sequence", f"expected a word of A, C, G, T only, got {sequence!r}")
        sequence = sequence.upper()
        if not 4 <= len(sequence) <= 50:
            checker.fail(f"{key}.sequence", f"length must be 4-50 bases, got {len(sequence)}")
        width = len(sequence)
    else:
        matrix = _parse_matrix(checker, entry, key, name, release)
        width = matrix.width
    anchor = entry["anchor"]
    if anchor not in ANCHORS:
        checker.fail(f"{key}.anchor", f"unknown anchor {anchor!r} (expected tss or tts)")
    start = checker.integer(entry["start"], f"{key}.start", -MAX_ABS_OFFSET, MAX_ABS_OFFSET)
    end = checker.integer(entry["end"], f"{key}.end", -MAX_ABS_OFFSET, MAX_ABS_OFFSET)
    if start >= end:
        checker.fail(key, f"start ({start}) must be smaller than end ({end})")
    if end - start < width:
        checker.fail(key, f"region {start}..{end} ({end - start} bp) is shorter than the motif "
                          f"({width} bp)")
    effect = checker.number(entry["effect_log2"], f"{key}.effect_log2", -10, 10)
    max_count = checker.integer(entry.get("max_count", 1), f"{key}.max_count", 1, 10)
    default_score = 1.0 if matrix is None else 0.85
    min_score = checker.number(entry.get("min_score", default_score), f"{key}.min_score", 0, 1,
                               lo_open=True)
    if matrix is None and "min_score" in entry and min_score != 1.0:
        checker.fail(f"{key}.min_score", "a word matches exactly; min_score is for matrices")
    strand = entry.get("strand", "sense")
    if strand not in ("sense", "either"):
        checker.fail(f"{key}.strand", f"expected sense or either, got {strand!r}")
    edge_bp = checker.number(entry.get("edge_bp", 0.0), f"{key}.edge_bp", 0, 300)
    return Motif(name, sequence, anchor, start, end, effect, max_count, process, matrix,
                 min_score, strand, edge_bp)


def _parse_matrix(checker: _Checker, entry: dict, key: str, name: str,
                  release: str) -> PositionMatrix:
    if "jaspar" in entry:
        matrix_id = entry["jaspar"]
        if not isinstance(matrix_id, str) or not re.fullmatch(r"[A-Z]{2}\d{4}(\.\d+)?", matrix_id):
            checker.fail(f"{key}.jaspar", f"expected a JASPAR matrix id such as MA0097.1, got "
                                          f"{matrix_id!r}")
        try:
            return load_jaspar(release, collection="CORE", tax_group="plants", ids=[matrix_id])[0]
        except InputError as err:
            checker.fail(f"{key}.jaspar", err.problem)
    rows = entry["matrix"]
    if (not isinstance(rows, list) or not rows
            or not all(isinstance(r, list) and len(r) == 4 for r in rows)):
        checker.fail(f"{key}.matrix", "expected a list of rows of four numbers (A, C, G, T)")
    for i, row in enumerate(rows):
        for value in row:
            checker.number(value, f"{key}.matrix[{i}]", 0)
        if sum(row) <= 0:
            checker.fail(f"{key}.matrix[{i}]", "a row needs a positive weight on some base")
    if not 4 <= len(rows) <= 50:
        checker.fail(f"{key}.matrix", f"width must be 4-50 positions, got {len(rows)}")
    return matrix_from_rows(name, rows, name)


def _parse_species(checker: _Checker, top: dict) -> dict[str, SpeciesModel]:
    section = checker.mapping(top.get("species") or {}, "species")
    checker.known_keys(section, "species", set(SPECIES_IDS))
    out = {}
    for sp in SPECIES_IDS:
        entry = checker.mapping(section.get(sp) or {}, f"species.{sp}")
        checker.known_keys(entry, f"species.{sp}", {"gc", "trans_offset_log2"})
        gc = entry.get("gc")
        if gc is not None:
            gc = checker.number(gc, f"species.{sp}.gc", 0.1, 0.9)
        offset = checker.number(entry.get("trans_offset_log2", 0.0),
                                f"species.{sp}.trans_offset_log2", -10, 10)
        out[sp] = SpeciesModel(gc, offset)
    return out


def _parse_simple(checker: _Checker, top: dict, section_name: str, cls: type) -> Any:
    """Parse a section of plain numbers into dataclass ``cls``; absent keys keep the defaults."""
    section = checker.mapping(top.get(section_name) or {}, section_name)
    defaults = cls()
    checker.known_keys(section, section_name, set(defaults.__dataclass_fields__))
    values = {}
    for key, value in section.items():
        default = getattr(defaults, key)
        if isinstance(default, int) and not isinstance(default, bool):
            values[key] = checker.integer(value, f"{section_name}.{key}", 0)
        else:
            values[key] = checker.number(value, f"{section_name}.{key}", 0)
    return cls(**values)


def _parse_proseq(checker: _Checker, top: dict) -> ProseqModel:
    section = dict(checker.mapping(top.get("proseq") or {}, "proseq"))
    strengths = section.pop("pause_strength", None)
    model = _parse_simple(checker, {"proseq": section}, "proseq", ProseqModel)
    if strengths is not None:
        if isinstance(strengths, int | float) and not isinstance(strengths, bool):
            value = checker.number(strengths, "proseq.pause_strength", 0)
            parsed = {sp: value for sp in SPECIES_IDS}
        else:
            strengths = checker.mapping(strengths, "proseq.pause_strength")
            checker.known_keys(strengths, "proseq.pause_strength", set(SPECIES_IDS))
            parsed = {sp: checker.number(strengths.get(sp, 0.0), f"proseq.pause_strength.{sp}", 0)
                      for sp in SPECIES_IDS}
        model = ProseqModel(**{**model.__dict__, "pause_strength": parsed})
    if not 10 <= model.pause_offset <= 500:
        checker.fail("proseq.pause_offset", f"must be within 10..500 bp, got {model.pause_offset}")
    if model.readthrough_decay <= 0:
        checker.fail("proseq.readthrough_decay", "must be > 0")
    if model.background_fraction >= 0.5:
        checker.fail("proseq.background_fraction", "must be < 0.5")
    return model


def _check_evolution(checker: _Checker, evo: Evolution) -> None:
    for key in ("ancestral_motif_probability", "motif_gain_probability",
                "motif_loss_probability", "gene_loss_probability", "duplication_probability",
                "species_specific_fraction"):
        checker.number(getattr(evo, key), f"evolution.{key}", 0, 1)
    checker.number(evo.substitution_rate, "evolution.substitution_rate", 0, 0.5)
    checker.number(evo.indel_rate, "evolution.indel_rate", 0, 0.05)
    checker.number(evo.indel_mean_length, "evolution.indel_mean_length", 1, 50)
    checker.number(evo.coding_substitution_ratio, "evolution.coding_substitution_ratio", 0, 1)
    checker.number(evo.transposon_rate, "evolution.transposon_rate", 0, 2)
    checker.number(evo.annotation_offset_sd, "evolution.annotation_offset_sd", 0, 100)
    if not 20 <= evo.transposon_length_min <= evo.transposon_length_max <= 5000:
        checker.fail("evolution", "need 20 <= transposon_length_min <= transposon_length_max "
                                  f"<= 5000, got {evo.transposon_length_min}.."
                                  f"{evo.transposon_length_max}")
    if evo.gene_loss_probability + evo.duplication_probability > 0.5:
        checker.fail("evolution", "gene_loss_probability + duplication_probability must be <= 0.5")
    if evo.species_specific_fraction > 0.5:
        checker.fail("evolution.species_specific_fraction", "must be <= 0.5")


def _check_rnaseq(checker: _Checker, rna: RnaseqModel) -> None:
    if not 1 <= rna.utr3_min <= rna.utr3_max <= MAX_ABS_OFFSET:
        checker.fail("rnaseq", f"need 1 <= utr3_min <= utr3_max <= {MAX_ABS_OFFSET}, got "
                               f"{rna.utr3_min}..{rna.utr3_max}")
    if not 1 <= rna.polya_min <= rna.polya_max <= 300:
        checker.fail("rnaseq", f"need 1 <= polya_min <= polya_max <= 300, got "
                               f"{rna.polya_min}..{rna.polya_max}")
    if rna.background_fraction >= 0.5:
        checker.fail("rnaseq.background_fraction", "must be < 0.5")
