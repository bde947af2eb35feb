"""``plantt simulate``: a deterministic demo dataset with a known sequence -> expression grammar.

Four legume-like species (medicago, vicia, pisum, lathyrus) descend from one ancestor (a star
phylogeny). Every ancestral gene family is a *locus* (1.1 kb 5' flank, exons and introns, 1.1 kb
3' flank, in transcript orientation) that carries the grammar's motifs with some probability; each
species inherits most families, evolves them (substitutions, indels, motif gains and losses) and
lays its copies out on a few contigs separated by unrelated filler. Expression is then computed
from the *final* genome sequence by rescanning the motif regions (:mod:`plantt.grammar`), so
``truth.tsv`` is exactly what the documented grammar says about the files on disk.

Reads are drawn from that truth: 3'-RNA-seq (QuantSeq FWD-like) reads near the 3' end of the
mature transcripts (with 3' UTR, poly-A and adapter read-through) in proportion to abundance, and
PRO-seq read pairs whose read 1 starts at the polymerase (RNA 3' end) in proportion to
transcription, with a promoter-proximal pause peak, gene-body density, post-TTS read-through and a
weak divergent antisense peak. Replicates get negative-binomial noise.

Everything random derives from the seed through ``numpy.random.SeedSequence`` keys per stage and
species, and gzip members carry no file name and mtime 0, so equal settings give equal bytes.
The model and file formats are documented in ``docs/grammar.md``.
"""

from __future__ import annotations

import argparse
import gzip
import math
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from plantt.annotation import Gene, Transcript
from plantt.encoding import reverse_complement_codes
from plantt.grammar import (
    Evolution,
    Grammar,
    Motif,
    count_gene_motifs,
    load_grammar,
    resolve_grammar_path,
)
from plantt.io import InputError, PathLike, atomic_open, atomic_path, get_logger, write_tsv

log = get_logger("simulate")


@dataclass(frozen=True)
class SpeciesInfo:
    species: str
    code: str
    prefix: str


SPECIES: tuple[SpeciesInfo, ...] = (
    SpeciesInfo("medicago", "M", "Mtr"),
    SpeciesInfo("vicia", "V", "Vfa"),
    SpeciesInfo("pisum", "P", "Psa"),
    SpeciesInfo("lathyrus", "L", "Lsa"),
)
ASSAYS = ("rnaseq3p", "proseq")

#: Adapters the reads run into when the insert is shorter than the read. Each continues with an
#: index and the flow-cell primer, then dark cycles that a two-colour sequencer reads as G.
RNASEQ_ADAPTER = "AGATCGGAAGAGCACACGTCTGAACTCCAGTCAC" + "ATCACG" + "ATCTCGTATGCCGTCTTCTGCTTG"
PROSEQ_R1_ADAPTER = "TGGAATTCTCGGGTGCCAAGGAACTCCAGTCAC" + "CGATGT" + "ATCTCGTATGCCGTCTTCTGCTTG"
PROSEQ_R2_ADAPTER = "GATCGTCGGACTGTAGAACTCTGAACGTGTAGATCTCGGTGGTCGCCGTATCATT"

FLANK = 1100  # homologous flank kept on each side of an ancestral gene
MIN_SEGMENT = {"flank": 1050, "exon": 30, "intron": 60}
_BASE_P = np.array([0.32, 0.18, 0.18, 0.32])  # AT-rich non-coding composition
_INTRON_P = np.array([0.34, 0.16, 0.16, 0.34])
# Standard genetic code, codons indexed 16*b1 + 4*b2 + b3 with A=0, C=1, G=2, T=3.
_CODON_TABLE = "KNKNTTTTRSRSIIMIQHQHPPPPRRRRLLLLEDEDAAAAGGGGVVVV*Y*YSSSS*CWCLFLF"
_STOP_CODONS = np.array([i for i, aa in enumerate(_CODON_TABLE) if aa == "*"])
_STOP_SET = frozenset(_STOP_CODONS.tolist())
_SENSE_CODONS = np.array([i for i, aa in enumerate(_CODON_TABLE) if aa != "*"])
_ASCII = np.frombuffer(b"ACGTN", dtype=np.uint8)
_ASCII_LOWER = np.frombuffer(b"acgtN", dtype=np.uint8)
_STAGES = {"ancestor": 0, "species": 1, "genome": 2, "truth": 3, "reads": 4}


# --------------------------------------------------------------------------------------------
# Settings and summary
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulationSettings:
    """What to simulate. Read numbers are per replicate (PRO-seq: read pairs)."""

    seed: int = 1
    genes_per_species: int = 1000
    grammar: str | None = None
    rnaseq_reads: int = 60_000
    proseq_reads: int = 60_000
    rnaseq_replicates: int = 6
    proseq_replicates: int = 3
    read_length: int = 75
    error_rate: float = 0.002
    contigs_per_genome: int = 4

    def validate(self) -> None:
        checks = [
            (self.genes_per_species >= 4, "genes_per_species must be >= 4"),
            (self.genes_per_species <= 50_000, "genes_per_species must be <= 50000"),
            (self.rnaseq_reads >= 0 and self.proseq_reads >= 0, "read numbers must be >= 0"),
            (1 <= self.rnaseq_replicates <= 99 and 1 <= self.proseq_replicates <= 99,
             "replicates must be within 1..99"),
            (40 <= self.read_length <= 300, "read_length must be within 40..300"),
            (0 <= self.error_rate <= 0.1, "error_rate must be within 0..0.1"),
            (1 <= self.contigs_per_genome <= 99, "contigs_per_genome must be within 1..99"),
        ]
        for ok, problem in checks:
            if not ok:
                raise InputError(None, f"simulation settings: {problem}")


@dataclass
class SimulationSummary:
    outdir: str
    genes: dict[str, int]
    orthogroups: int
    unassigned_genes: int
    reads: dict[str, int]
    ceiling: dict[str, float]
    pairs: dict[str, int]
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Loci: one gene with its homologous flanks, in transcript orientation
# --------------------------------------------------------------------------------------------


@dataclass
class Locus:
    """Segments in transcript orientation: 5' flank, exon, (intron, exon)*, 3' flank."""

    segments: list[np.ndarray]
    family: str

    @property
    def n_exons(self) -> int:
        return (len(self.segments) - 1) // 2

    def kind(self, i: int) -> str:
        if i == 0 or i == len(self.segments) - 1:
            return "flank"
        return "exon" if i % 2 == 1 else "intron"

    @property
    def sequence(self) -> np.ndarray:
        return np.concatenate(self.segments)

    @property
    def tss_index(self) -> int:
        return len(self.segments[0])

    @property
    def tts_index(self) -> int:
        """Index of the first base after the gene body."""
        return sum(len(s) for s in self.segments[:-1])

    def with_sequence(self, seq: np.ndarray) -> Locus:
        """Same segment lengths, new bases."""
        bounds = np.cumsum([len(s) for s in self.segments])[:-1]
        return Locus([s.copy() for s in np.split(seq, bounds)], self.family)


def _random_codes(rng: np.random.Generator, n: int, p: np.ndarray = _BASE_P) -> np.ndarray:
    return np.searchsorted(np.cumsum(p)[:-1], rng.random(n), side="right").astype(np.uint8)


def _codon_codes(indices: np.ndarray) -> np.ndarray:
    """Codon table indices -> flat base codes."""
    idx = np.asarray(indices)
    return np.stack([idx // 16, (idx // 4) % 4, idx % 4], axis=1).astype(np.uint8).ravel()


def _split_lengths(rng: np.random.Generator, total: int, parts: int, minimum: int) -> np.ndarray:
    weights = rng.dirichlet(np.full(parts, 2.0))
    lengths = minimum + np.floor(weights * (total - minimum * parts)).astype(int)
    lengths[-1] += total - lengths.sum()
    return lengths


def make_locus(rng: np.random.Generator, grammar: Grammar, family: str,
               short: bool | None = None) -> Locus:
    """A new gene: random exon-intron structure, a coding sequence, flanks and planted motifs.

    Genes are 1.2-4 kb long, or 0.45-0.95 kb when ``short`` (at random, 6%, when None). Exons
    form one open reading frame (ATG ... stop, no UTRs); introns are GT...AG.
    """
    if short is None:
        short = bool(rng.random() < 0.06)
    n_exons = int(rng.choice([1, 2, 3, 4, 5], p=[0.15, 0.25, 0.25, 0.2, 0.15]))
    if short:
        n_exons = min(n_exons, 3)
    target = int(rng.integers(450, 950) if short else rng.integers(1200, 4000))
    introns = rng.integers(80, 400, size=n_exons - 1)
    while n_exons > 1 and introns.sum() > 0.6 * target:
        introns = np.maximum(introns * 7 // 10, MIN_SEGMENT["intron"] + 10)
        if introns.sum() <= 0.6 * target or introns.max() <= MIN_SEGMENT["intron"] + 10:
            break
    coding = max(target - int(introns.sum()), 90 * n_exons) // 3 * 3
    cds = _codon_codes(np.concatenate([
        [14],  # ATG
        rng.choice(_SENSE_CODONS, size=coding // 3 - 2),
        [rng.choice(_STOP_CODONS)],
    ]))
    exon_lengths = _split_lengths(rng, coding, n_exons, 45)
    exons = np.split(cds, np.cumsum(exon_lengths)[:-1])
    segments: list[np.ndarray] = [_random_codes(rng, FLANK)]
    for i, exon in enumerate(exons):
        segments.append(exon)
        if i < n_exons - 1:
            intron = _random_codes(rng, int(introns[i]), _INTRON_P)
            intron[:2], intron[-2:] = (2, 3), (0, 2)  # GT ... AG
            segments.append(intron)
    segments.append(_random_codes(rng, FLANK))
    locus = Locus(segments, family)
    seq = locus.sequence
    for motif in grammar.motifs:
        if rng.random() < grammar.evolution.ancestral_motif_probability:
            _plant_motif(seq, locus, motif, rng)
    return _fix_gene_structure(locus.with_sequence(seq))


def _motif_window(locus: Locus, motif: Motif, seq_length: int) -> tuple[int, int]:
    """Locus indices ``[lo, hi)`` of a motif's region, clipped to the locus."""
    anchor = locus.tss_index if motif.anchor == "tss" else locus.tts_index
    return max(anchor + motif.start, 0), min(anchor + motif.end, seq_length)


def motif_site(motif: Motif, rng: np.random.Generator) -> np.ndarray:
    """One site to plant: the word, or a site drawn from the matrix (its relative score at least
    ``min_score``); on ``either`` strand, reverse-complemented half of the time."""
    if motif.matrix is None:
        codes = motif.codes.copy()
    else:
        codes = motif.matrix.sample_site(rng, motif.min_score)
    if motif.strand == "either" and rng.random() < 0.5:
        codes = reverse_complement_codes(codes)
    return codes


def _plant_motif(seq: np.ndarray, locus: Locus, motif: Motif, rng: np.random.Generator) -> None:
    """Write one site of the motif at a random position inside its region (in place)."""
    codes = motif_site(motif, rng)
    lo, hi = _motif_window(locus, motif, len(seq))
    if hi - lo < len(codes):
        return
    pos = int(rng.integers(lo, hi - len(codes) + 1))
    seq[pos:pos + len(codes)] = codes


def _region_sites(seq: np.ndarray, locus: Locus, motif: Motif) -> tuple[np.ndarray, float]:
    """Locus indices of the motif's sites that count (weight > 0) and their weighted count."""
    anchor = locus.tss_index if motif.anchor == "tss" else locus.tts_index
    lo, hi = anchor + motif.start, anchor + motif.end
    a, b = max(lo - motif.margin, 0), min(hi + motif.margin, len(seq))
    if b <= a:
        return np.zeros(0, dtype=np.int64), 0.0
    starts = motif.site_starts(seq[a:b])
    weights = motif.site_weights(starts, lo - a, hi - a)
    return a + starts[weights > 0], float(weights.sum())


def _region_occurrences(seq: np.ndarray, locus: Locus, motif: Motif) -> np.ndarray:
    return _region_sites(seq, locus, motif)[0]


def _substitute(seq: np.ndarray, positions: np.ndarray, rng: np.random.Generator,
                composition: np.ndarray | None = None) -> None:
    """Replace the bases at ``positions`` by a different base (in place): uniformly among the
    three others, or drawn from ``composition`` (A, C, G, T) among them."""
    if composition is None:
        seq[positions] = (seq[positions] + rng.integers(1, 4, size=len(positions))) % 4
        return
    old = seq[positions].astype(np.int64)
    weights = np.tile(composition, (len(positions), 1))
    weights[np.arange(len(positions)), old] = 0.0
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    seq[positions] = np.minimum((rng.random((len(positions), 1)) > cum).sum(axis=1), 3)


def species_composition(grammar: Grammar, species: str) -> np.ndarray | None:
    """Base composition (A, C, G, T) a species' branch writes, or None (the version-1 rule)."""
    gc = grammar.species[species].gc if species in grammar.species else None
    if gc is None:
        return None
    return np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])


def transposon_families(seed: int, n: int = 6) -> list[np.ndarray]:
    """The consensus sequences of a few transposon families (AT-rich, 1.5-3 kb)."""
    rng = np.random.default_rng([seed, 97])
    return [_random_codes(rng, int(rng.integers(1500, 3000)), np.array([0.33, 0.17, 0.17, 0.33]))
            for _ in range(n)]


def _insert_transposons(seg: np.ndarray, evo: Evolution, families: list[np.ndarray],
                        rng: np.random.Generator) -> np.ndarray:
    """Insert fragments of transposon families (10% diverged, either orientation) into a flank."""
    n = rng.poisson(evo.transposon_rate * len(seg) / 1000.0)
    for _ in range(n):
        family = families[int(rng.integers(len(families)))]
        length = int(rng.integers(evo.transposon_length_min, evo.transposon_length_max + 1))
        length = min(length, len(family))
        start = int(rng.integers(0, len(family) - length + 1))
        copy = family[start:start + length].copy()
        _substitute(copy, np.flatnonzero(rng.random(length) < 0.1), rng)
        if rng.random() < 0.5:
            copy = reverse_complement_codes(copy)
        at = int(rng.integers(0, len(seg) + 1))
        seg = np.concatenate([seg[:at], copy, seg[at:]])
    return seg


def _apply_indels(seg: np.ndarray, kind: str, evo: Evolution,
                  rng: np.random.Generator, composition: np.ndarray | None = None) -> np.ndarray:
    """Random insertions and deletions; coding exons only get multiples of 3 (keeps the frame)."""
    n = rng.poisson(evo.indel_rate * len(seg))
    if n == 0:
        return seg
    lengths = rng.geometric(1.0 / evo.indel_mean_length, size=n)
    if kind == "exon":
        lengths = 3 * np.ceil(lengths / 3).astype(int)
    deletion = rng.random(n) < 0.5
    keep = np.ones(len(seg), dtype=bool)
    for pos_len in lengths[deletion]:
        if pos_len < len(seg) - 6:
            pos = int(rng.integers(3, len(seg) - pos_len - 2))
            if keep[pos:pos + pos_len].all():  # overlapping deletions could break the frame
                keep[pos:pos + pos_len] = False
    if keep.sum() < MIN_SEGMENT[kind]:
        keep[:] = True
    ins_lengths = lengths[~deletion]
    ins_at = rng.integers(3, max(len(seg) - 2, 4), size=len(ins_lengths))
    inserted = _random_codes(rng, int(ins_lengths.sum()),
                             _BASE_P if composition is None else composition)
    where = np.repeat(ins_at, ins_lengths)
    new_seg = np.insert(seg, where, inserted)
    new_keep = np.insert(keep, where, True)
    return new_seg[new_keep]


def _fix_gene_structure(locus: Locus) -> Locus:
    """Re-impose ATG, a final stop, no in-frame internal stop and GT...AG introns.

    Mutations may break them; the fixes run before the truth is computed, so motif counts always
    describe the final sequence.
    """
    exon_idx = list(range(1, len(locus.segments) - 1, 2))
    cds = np.concatenate([locus.segments[i] for i in exon_idx])
    cds[:3] = (0, 3, 2)
    if not _is_stop(cds[-3:]):
        cds[-3:] = (3, 0, 0)  # TAA
    codons = cds[3:-3].reshape(-1, 3)
    internal_stop = np.isin(codons[:, 0] * 16 + codons[:, 1] * 4 + codons[:, 2], _STOP_CODONS)
    codons[internal_stop, 0] = 1  # T -> C turns TAA/TAG/TGA into CAA/CAG/CGA
    cds[3:-3] = codons.ravel()
    parts = np.split(cds, np.cumsum([len(locus.segments[i]) for i in exon_idx])[:-1])
    segments = list(locus.segments)
    for i, part in zip(exon_idx, parts, strict=True):
        segments[i] = part
    for i in range(2, len(segments) - 1, 2):
        intron = segments[i].copy()
        intron[:2], intron[-2:] = (2, 3), (0, 2)
        segments[i] = intron
    return Locus(segments, locus.family)


def _is_stop(codon: np.ndarray) -> bool:
    return int(codon[0]) * 16 + int(codon[1]) * 4 + int(codon[2]) in _STOP_SET


def evolve_locus(ancestor: Locus, grammar: Grammar, rng: np.random.Generator,
                 composition: np.ndarray | None = None,
                 transposons: list[np.ndarray] | None = None) -> Locus:
    """One species branch: substitutions (slower in coding exons where the grammar says so),
    indels, transposon insertions into the flanks, motif losses, motif gains, structure fixes.
    ``composition``: the bases the branch writes (None: uniform substitutions, the ancestor's
    composition for insertions)."""
    evo = grammar.evolution
    seq = ancestor.sequence.copy()
    if evo.coding_substitution_ratio == 1.0:
        n_sub = rng.binomial(len(seq), evo.substitution_rate)
        positions = rng.integers(0, len(seq), size=n_sub)
    else:
        rate = np.concatenate([
            np.full(len(s), evo.substitution_rate
                    * (evo.coding_substitution_ratio if ancestor.kind(i) == "exon" else 1.0))
            for i, s in enumerate(ancestor.segments)])
        positions = np.flatnonzero(rng.random(len(seq)) < rate)
    _substitute(seq, positions, rng, composition)
    mutated = ancestor.with_sequence(seq)
    segments = [_apply_indels(s, mutated.kind(i), evo, rng, composition)
                for i, s in enumerate(mutated.segments)]
    if evo.transposon_rate > 0 and transposons:
        for i in (0, len(segments) - 1):
            segments[i] = _insert_transposons(segments[i], evo, transposons, rng)
    locus = Locus(segments, ancestor.family)
    seq = locus.sequence
    for motif in grammar.motifs:
        hits = _region_occurrences(seq, locus, motif)
        lost = hits[rng.random(len(hits)) < evo.motif_loss_probability]
        if len(lost):
            _substitute(seq, lost + rng.integers(0, motif.width, size=len(lost)), rng)
    for motif in grammar.motifs:
        if rng.random() < evo.motif_gain_probability:
            if _region_sites(seq, locus, motif)[1] < motif.max_count:
                _plant_motif(seq, locus, motif, rng)
    return _fix_gene_structure(locus.with_sequence(seq))


# --------------------------------------------------------------------------------------------
# Species: gene content and genome layout
# --------------------------------------------------------------------------------------------


@dataclass
class SimGene:
    """One annotated gene of one species, with what the read simulators need."""

    gene: Gene
    family: str
    contig: int
    n_exons: int
    # The gene as the annotation gives it (GFF3): its TSS and TTS off the true ones by these
    # many bases, positive outward (annotation_offset_sd; None: the true gene).
    annotated: Gene | None = None
    tss_offset: int = 0
    tts_offset: int = 0


@dataclass
class SpeciesGenome:
    info: SpeciesInfo
    contig_names: list[str]
    contigs: list[np.ndarray]
    lower: list[np.ndarray]  # soft-masked positions
    genes: list[SimGene]

    @property
    def contig_lengths(self) -> list[int]:
        return [len(c) for c in self.contigs]


def _seed(settings: SimulationSettings, stage: str, *keys: int) -> np.random.Generator:
    return np.random.default_rng([settings.seed, _STAGES[stage], *keys])


def _count_for(probability: float, n: int) -> int:
    """At least one event whenever the probability is positive, so tiny demos show every case."""
    return max(1, round(probability * n)) if probability > 0 else 0


def species_loci(ancestors: list[Locus], grammar: Grammar, species_index: int,
                 rng: np.random.Generator, transposons: list[np.ndarray] | None = None
                 ) -> list[Locus]:
    """The gene copies one species inherits: most families, some twice, plus a few new genes."""
    evo = grammar.evolution
    n_fam = len(ancestors)
    order = rng.permutation(n_fam)
    n_lost = min(_count_for(evo.gene_loss_probability, n_fam), n_fam - 1)
    n_dup = min(_count_for(evo.duplication_probability, n_fam), n_fam - n_lost)
    lost = set(order[:n_lost].tolist())
    duplicated = set(order[n_lost:n_lost + n_dup].tolist())
    loci: list[Locus] = []
    name = SPECIES[species_index].species
    composition = species_composition(grammar, name)
    for f, ancestor in enumerate(ancestors):
        if f in lost:
            continue
        loci.append(evolve_locus(ancestor, grammar, rng, composition, transposons))
        if f in duplicated:
            loci.append(evolve_locus(ancestor, grammar, rng, composition, transposons))
    for k in range(_count_for(evo.species_specific_fraction, n_fam)):
        loci.append(make_locus(rng, grammar, f"{name}_specific{k + 1:04d}"))
    return loci


def assemble_genome(info: SpeciesInfo, loci: list[Locus], n_contigs: int,
                    rng: np.random.Generator, annotation_offset_sd: float = 0.0,
                    composition: np.ndarray | None = None) -> SpeciesGenome:
    """Shuffle the loci onto contigs, on random strands, separated by unrelated filler.

    Flanks are shortened where genes sit close to a contig end (first contig: start, second
    contig: end, others at random) or, rarely, close to each other; one filler per contig carries
    a run of Ns; some intergenic stretches are soft-masked (lower case).
    """
    order = rng.permutation(len(loci))
    strands = np.where(rng.random(len(loci)) < 0.5, "+", "-")
    if len(loci) >= 2 and len(set(strands.tolist())) == 1:
        strands[0] = "-" if strands[0] == "+" else "+"
    n_contigs = min(n_contigs, len(loci))
    names = [f"{info.species}_ctg{c + 1}" for c in range(n_contigs)]
    genome = SpeciesGenome(info, names, [], [], [])
    for c, chunk in enumerate(np.array_split(np.arange(len(loci)), n_contigs)):
        placed = [(loci[order[k]], str(strands[k])) for k in chunk]
        trim_start = c == 0 or rng.random() < 0.3
        trim_end = c == min(1, n_contigs - 1) or rng.random() < 0.3
        _build_contig(genome, c, placed, trim_start, trim_end, rng,
                      _BASE_P if composition is None else composition)
    if annotation_offset_sd > 0:
        offsets = np.rint(rng.normal(0.0, annotation_offset_sd, size=(len(genome.genes), 2)))
        for sg, (tss_off, tts_off) in zip(genome.genes, offsets.astype(int).tolist(), strict=True):
            _annotate_off(sg, tss_off, tts_off, len(genome.contigs[sg.contig]))
    return genome


def _annotate_off(sg: SimGene, tss_offset: int, tts_offset: int, contig_length: int) -> None:
    """Give ``sg`` an annotated gene whose TSS and TTS lie ``tss_offset``/``tts_offset`` bases
    outward (negative: inward) of the true ones; inward offsets leave 30 bases of the end exons
    and outward ones stay on the contig."""
    gene = sg.gene
    exons = sorted(gene.transcripts[f"{gene.gene_id}.1"].exons)
    first, last = (exons[0], exons[-1]) if gene.strand == "+" else (exons[-1], exons[0])
    tss_offset = max(tss_offset, -(first[1] - first[0] - 30))
    tts_offset = max(tts_offset, -(last[1] - last[0] - 30))
    if len(exons) == 1:
        room = exons[0][1] - exons[0][0] - 60
        tss_offset, tts_offset = max(tss_offset, -room // 2), max(tts_offset, -room // 2)
    left, right = (tss_offset, tts_offset) if gene.strand == "+" else (tts_offset, tss_offset)
    left = min(left, gene.start)
    right = min(right, contig_length - gene.end)
    start, end = gene.start - left, gene.end + right
    new_exons = [list(e) for e in exons]
    new_exons[0][0], new_exons[-1][1] = start, end
    new_exons = [tuple(e) for e in new_exons]
    annotated = Gene(gene.gene_id, gene.seqid, start, end, gene.strand)
    tid = f"{gene.gene_id}.1"
    annotated.transcripts[tid] = Transcript(tid, new_exons, list(new_exons))
    sg.annotated = annotated
    sg.tss_offset, sg.tts_offset = (left, right) if gene.strand == "+" else (right, left)


def _build_contig(genome: SpeciesGenome, c: int, placed: list[tuple[Locus, str]],
                  trim_start: bool, trim_end: bool, rng: np.random.Generator,
                  composition: np.ndarray = _BASE_P) -> None:
    """Lay out one contig's loci (appending the contig, its mask and its genes to ``genome``)."""
    pieces: list[np.ndarray] = []
    cursor = 0
    n_gap_at = int(rng.integers(1, len(placed))) if len(placed) > 1 else -1
    close = rng.random(len(placed)) < 0.03  # junction before locus j is a close one
    bodies: list[tuple[int, int]] = []
    for j, (locus, strand) in enumerate(placed):
        seq, left_len, right_len, exon_bounds = _oriented(locus, strand)
        if j == 0:
            new_left = int(rng.integers(150, 900)) if trim_start else left_len
            filler = 0 if trim_start else int(rng.integers(200, 1200))
        else:
            new_left = int(rng.integers(250, 700)) if close[j] else left_len
            filler = int(rng.integers(0, 150)) if close[j] else int(rng.integers(100, 1500))
        spacer = [_random_codes(rng, filler, composition)] + (
            [_n_gap(rng)] if j == n_gap_at else [])
        pieces += spacer
        cursor += sum(len(p) for p in spacer)
        new_right = right_len
        if j == len(placed) - 1 and trim_end:
            new_right = int(rng.integers(150, 900))
        elif j < len(placed) - 1 and close[j + 1]:
            new_right = int(rng.integers(250, 700))
        seq = seq[left_len - new_left: len(seq) - (right_len - new_right)]
        body_start = cursor + new_left
        body_end = body_start + len(seq) - new_left - new_right
        pieces.append(seq)
        cursor += len(seq)
        bodies.append((body_start, body_end))
        gene_id = f"{genome.info.prefix}_g{len(genome.genes) + 1:05d}"
        gene = Gene(gene_id, genome.contig_names[c], body_start, body_end, strand)
        exons = sorted((body_start + s, body_start + e) for s, e in exon_bounds)
        gene.transcripts[f"{gene_id}.1"] = Transcript(f"{gene_id}.1", exons, list(exons))
        genome.genes.append(SimGene(gene, locus.family, c, locus.n_exons))
    if not trim_end:
        pieces.append(_random_codes(rng, int(rng.integers(200, 1200)), composition))
    contig = np.concatenate(pieces)
    genome.contigs.append(contig)
    genome.lower.append(_soft_mask(contig, bodies, rng))


def _oriented(locus: Locus, strand: str) -> tuple[np.ndarray, int, int, list[tuple[int, int]]]:
    """The locus as it reads on the contig's plus strand: sequence, left and right flank lengths,
    and exons relative to the gene body's left end."""
    seq = locus.sequence
    left, right = len(locus.segments[0]), len(locus.segments[-1])
    exons = _exon_intervals(locus)
    if strand == "+":
        return seq, left, right, exons
    body = locus.tts_index - locus.tss_index
    return (reverse_complement_codes(seq), right, left, [(body - e, body - s) for s, e in exons])


def _n_gap(rng: np.random.Generator) -> np.ndarray:
    """A filler of 100-300 bp with a run of 20-39 Ns in its middle."""
    gap = _random_codes(rng, int(rng.integers(100, 300)))
    start = int(rng.integers(40, len(gap) - 40))
    gap[start:start + int(rng.integers(20, 40))] = 4
    return gap


def _exon_intervals(locus: Locus) -> list[tuple[int, int]]:
    """Exons relative to the gene body start, in transcript orientation."""
    intervals, pos = [], 0
    for i, seg in enumerate(locus.segments[1:-1], start=1):
        if locus.kind(i) == "exon":
            intervals.append((pos, pos + len(seg)))
        pos += len(seg)
    return intervals


def _soft_mask(contig: np.ndarray, bodies: list[tuple[int, int]],
               rng: np.random.Generator) -> np.ndarray:
    """Lower-case stretches (repeat-masking look-alike) outside gene bodies, never on Ns."""
    mask = np.zeros(len(contig), dtype=bool)
    n = rng.poisson(len(contig) / 15_000) + 1
    for _ in range(n):
        length = int(rng.integers(60, 600))
        start = int(rng.integers(0, max(len(contig) - length, 1)))
        mask[start:start + length] = True
    for start, end in bodies:
        mask[start:end] = False
    mask &= contig != 4
    return mask


# --------------------------------------------------------------------------------------------
# Truth: expression from the final sequences
# --------------------------------------------------------------------------------------------


def compute_truth(genome: SpeciesGenome, grammar: Grammar,
                  rng: np.random.Generator) -> pd.DataFrame:
    """Rescan every gene's motif regions and turn the counts into true rates (truth.tsv rows)."""
    rows = []
    species = genome.info.species
    pause_base = grammar.proseq.pause_strength.get(species, 0.0)
    rna = grammar.rnaseq
    model = grammar.species.get(species)
    trans_offset = model.trans_offset_log2 if model is not None else 0.0
    for sg in genome.genes:
        gene = sg.gene
        contig = genome.contigs[sg.contig]
        counts = count_gene_motifs(contig, gene, grammar.motifs)
        row: dict[str, object] = {
            "species": species, "gene_id": gene.gene_id, "family": sg.family,
            "strand": gene.strand, "seqid": gene.seqid, "start": gene.start + 1, "end": gene.end,
            "length": gene.length, "n_exons": sg.n_exons,
        }
        log2_total = {}
        for process in grammar.processes:
            grammar_part = process.grammar_log2(counts)
            noise = float(rng.normal(0.0, process.noise_sd_log2))
            row[f"{process.name}_log2_grammar"] = grammar_part
            row[f"{process.name}_log2_noise"] = noise
            log2_total[process.name] = process.baseline_log2 + grammar_part + noise
        log2_total["transcription"] += trans_offset
        row["transcription"] = 2.0 ** log2_total["transcription"]
        row["stability"] = 2.0 ** log2_total["stability"]
        row["abundance"] = row["transcription"] * row["stability"]
        row.update(counts)
        gene_sd = grammar.proseq.pause_strength_sd_log2
        row["pause_strength"] = pause_base * 2.0 ** float(rng.normal(0.0, gene_sd))
        offset = round(float(rng.normal(grammar.proseq.pause_offset,
                                        grammar.proseq.pause_offset_sd)))
        row["pause_offset"] = int(np.clip(offset, 10, max(10, min(500, gene.length - 1))))
        room = (len(contig) - gene.end) if gene.strand == "+" else gene.start
        row["utr3_length"] = int(min(rng.integers(rna.utr3_min, rna.utr3_max + 1), max(room, 1)))
        row["trans_offset_log2"] = trans_offset
        row["tss_annotation_offset"] = sg.tss_offset
        row["tts_annotation_offset"] = sg.tts_offset
        rows.append(row)
    columns = ["species", "gene_id", "family", "orthogroup", "strand", "seqid", "start", "end",
               "length", "n_exons", "transcription", "stability", "abundance",
               "transcription_log2_grammar", "stability_log2_grammar",
               "transcription_log2_noise", "stability_log2_noise",
               *[m.name for m in grammar.motifs], "pause_strength", "pause_offset", "utr3_length",
               "trans_offset_log2", "tss_annotation_offset", "tts_annotation_offset"]
    table = pd.DataFrame(rows)
    table["orthogroup"] = ""
    return table[columns]


# --------------------------------------------------------------------------------------------
# Orthogroups (OrthoFinder format) and the sequence ceiling
# --------------------------------------------------------------------------------------------


def orthogroup_tables(truth: pd.DataFrame) -> tuple[list[list[str]], list[list[str]], np.ndarray]:
    """Rows of Orthogroups.tsv and Orthogroups_UnassignedGenes.tsv, and each gene's orthogroup.

    Families with two or more genes in total become orthogroups, largest first (as OrthoFinder
    orders them); genes alone in their family are "unassigned", numbered after them. Cells hold
    protein ids (mRNA ids, ``.1``), comma+space separated.
    """
    species_order = [s.species for s in SPECIES]
    members: dict[str, list[int]] = {}
    for i, family in enumerate(truth["family"].tolist()):
        members.setdefault(family, []).append(i)
    rank = {f: k for k, f in enumerate(members)}
    species = truth["species"].tolist()
    proteins = [f"{g}.1" for g in truth["gene_id"].tolist()]
    gene_og = np.empty(len(truth), dtype=object)
    assigned = sorted((f for f, idx in members.items() if len(idx) >= 2),
                      key=lambda f: (-len(members[f]), rank[f]))
    rows = []
    for k, family in enumerate(assigned):
        og = f"OG{k:07d}"
        cells = {sp: [] for sp in species_order}
        for i in members[family]:
            cells[species[i]].append(proteins[i])
            gene_og[i] = og
        rows.append([og, *(", ".join(sorted(cells[sp])) for sp in species_order)])
    lonely = sorted((i for idx in members.values() if len(idx) == 1 for i in idx),
                    key=lambda i: (species_order.index(species[i]), proteins[i]))
    unassigned = []
    for k, i in enumerate(lonely, start=len(assigned)):
        og = f"OG{k:07d}"
        gene_og[i] = og
        unassigned.append([og, *(proteins[i] if sp == species[i] else "" for sp in species_order)])
    return rows, unassigned, gene_og


def single_copy_pairs(truth: pd.DataFrame, min_length: int = 1000) -> pd.DataFrame:
    """Ortholog pairs as PlanTT uses them: sole gene of its species in the orthogroup, >= 1 kb."""
    species_rank = {s.species: i for i, s in enumerate(SPECIES)}
    assigned = truth[truth["orthogroup"].isin(
        truth.groupby("orthogroup").filter(lambda g: len(g) >= 2)["orthogroup"].unique())]
    per_species = assigned.groupby(["orthogroup", "species"])["gene_id"].transform("size")
    sole = assigned[(per_species == 1) & (assigned["length"] >= min_length)]
    pairs = []
    for _og, group in sole.groupby("orthogroup", sort=True):
        group = group.sort_values("species", key=lambda s: s.map(species_rank))
        idx = list(group.index)
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                pairs.append((idx[a], idx[b]))
    return pd.DataFrame(pairs, columns=["a", "b"])


def sequence_ceiling(truth: pd.DataFrame, min_length: int = 1000) -> pd.DataFrame:
    """Share of the variance of ortholog log2 differences that the grammar explains, per assay.

    For each single-copy pair the true log2 difference is split into the grammar part and the
    non-sequence noise part; ``ceiling_r2 = 1 - sum(noise diff^2) / sum(total diff^2)``, the R^2
    a perfect sequence model would reach. Sums are about zero because a pair has no natural
    orientation (PlanTT balances signs by swapping pair members).
    """
    pairs = single_copy_pairs(truth, min_length)
    log2_t = np.log2(truth["transcription"].to_numpy())
    log2_a = np.log2(truth["abundance"].to_numpy())
    grammar_t = truth["transcription_log2_grammar"].to_numpy()
    grammar_a = grammar_t + truth["stability_log2_grammar"].to_numpy()
    rows = []
    for assay, total, grammar_part in (("rnaseq3p", log2_a, grammar_a),
                                       ("proseq", log2_t, grammar_t)):
        a, b = pairs["a"].to_numpy(dtype=int), pairs["b"].to_numpy(dtype=int)
        diff = total[a] - total[b] if len(pairs) else np.zeros(0)
        diff_grammar = grammar_part[a] - grammar_part[b] if len(pairs) else np.zeros(0)
        ss_total = float(np.sum(diff ** 2))
        ss_noise = float(np.sum((diff - diff_grammar) ** 2))
        rows.append({
            "assay": assay,
            "measure": "abundance" if assay == "rnaseq3p" else "transcription",
            "n_pairs": len(pairs),
            "min_gene_length": min_length,
            "var_total": ss_total / max(len(pairs), 1),
            "var_grammar": float(np.sum(diff_grammar ** 2)) / max(len(pairs), 1),
            "var_noise": ss_noise / max(len(pairs), 1),
            "ceiling_r2": 1.0 - ss_noise / ss_total if ss_total > 0 else float("nan"),
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Reads
# --------------------------------------------------------------------------------------------


@dataclass
class ReadOrigins:
    """Where each read (pair) came from, written into the FASTQ comment."""

    label_table: list[str]  # e.g. gene ids, "Mtr_g00001/pause", "background"
    label: np.ndarray  # index into label_table
    contig: np.ndarray  # contig index
    pos1: np.ndarray  # 1-based position the read's 5' end marks
    plus: np.ndarray  # bool, strand of the transcript / nascent RNA

    def take(self, order: np.ndarray) -> ReadOrigins:
        return ReadOrigins(self.label_table, self.label[order], self.contig[order],
                           self.pos1[order], self.plus[order])


@dataclass
class ReadBatch:
    """Reads of one sample (read 2 only for paired-end) and the per-gene truth counts."""

    origins: ReadOrigins
    read1: np.ndarray  # (n, L) codes, 4 = N
    qual1: np.ndarray  # (n, L) ASCII
    read2: np.ndarray | None
    qual2: np.ndarray | None
    gene_reads: np.ndarray
    gene_usable: np.ndarray

    @property
    def n(self) -> int:
        return len(self.read1)


class _GenomeIndex:
    """All contigs of a species concatenated, for vectorised base look-ups."""

    def __init__(self, genome: SpeciesGenome):
        self.genome = genome
        self.seq = np.concatenate(genome.contigs)
        self.lengths = np.array(genome.contig_lengths, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.gene_ids = [g.gene.gene_id for g in genome.genes]
        self.gene_contig = np.array([g.contig for g in genome.genes], dtype=np.int64)
        self.gene_strand = np.array([1 if g.gene.strand == "+" else -1 for g in genome.genes])
        self.gene_tss = np.array([g.gene.tss for g in genome.genes], dtype=np.int64)
        self.gene_length = np.array([g.gene.length for g in genome.genes], dtype=np.int64)

    def random_positions(self, rng: np.random.Generator, n: int,
                         margin: int) -> tuple[np.ndarray, np.ndarray]:
        """Uniform positions at least ``margin`` bases from contig ends: (contig, local pos)."""
        usable = np.maximum(self.lengths - 2 * margin, 1)
        contig = rng.choice(len(usable), size=n, p=usable / usable.sum())
        pos = margin + np.floor(rng.random(n) * usable[contig]).astype(np.int64)
        return contig, np.minimum(pos, self.lengths[contig] - 1)


def _ascii_codes(text: str) -> np.ndarray:
    """ACGT text -> codes."""
    table = np.full(256, 4, dtype=np.uint8)
    for i, b in enumerate(b"ACGT"):
        table[b] = i
    return table[np.frombuffer(text.encode(), dtype=np.uint8)]


def _adapter(adapter: str, length: int) -> tuple[np.ndarray, int]:
    """Adapter codes padded with dark-cycle Gs to at least ``length``; also the real length."""
    return _ascii_codes(adapter + "G" * max(0, length - len(adapter))), len(adapter)


def _library_sizes(rng: np.random.Generator, reads: int, replicates: int) -> np.ndarray:
    """Library sizes that vary a little (about 10%) between replicates."""
    return np.maximum(np.round(reads * np.exp(rng.normal(0.0, 0.1, replicates))), 0).astype(int)


def _nb_means(rng: np.random.Generator, weights: np.ndarray, total: float,
              dispersion: float) -> np.ndarray:
    """Expected counts per gene, with gamma noise: Poisson draws from them are negative binomial."""
    shares = weights / weights.sum() if weights.sum() > 0 else weights
    if dispersion > 0:
        shares = shares * rng.gamma(1.0 / dispersion, dispersion, size=len(shares))
    return shares * total


def _qualities(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    qual = np.full((n, length), ord("F"), dtype=np.uint8)
    flat = qual.reshape(-1)
    flat[rng.integers(0, flat.size, size=rng.binomial(flat.size, 0.04))] = ord(":")
    return qual


def _add_errors(rng: np.random.Generator, codes: np.ndarray, qual: np.ndarray,
                rate: float) -> None:
    """Sequencing errors (in place): a different base and a low quality at ~``rate``."""
    flat, flat_q = codes.reshape(-1), qual.reshape(-1)
    pos = rng.integers(0, flat.size, size=rng.binomial(flat.size, rate))
    pos = pos[flat[pos] < 4]
    flat[pos] = (flat[pos] + rng.integers(1, 4, size=len(pos))) % 4
    flat_q[pos] = ord(",")


def _complement_where(codes: np.ndarray, where: np.ndarray) -> np.ndarray:
    return np.where(where & (codes < 4), 3 - codes, codes).astype(np.uint8)


class RnaseqTemplates:
    """Mature transcripts (spliced exons + 3' UTR) of all genes, concatenated, with coordinates."""

    def __init__(self, index: _GenomeIndex, utr3_lengths: np.ndarray):
        positions, offsets, lengths = [], [], []
        offset = 0
        for sg, utr in zip(index.genome.genes, utr3_lengths.tolist(), strict=True):
            gene = sg.gene
            exons = sorted(next(iter(gene.transcripts.values())).exons)
            if gene.strand == "+":
                parts = [np.arange(s, e) for s, e in exons] + [np.arange(gene.end, gene.end + utr)]
            else:
                parts = [np.arange(e - 1, s - 1, -1) for s, e in reversed(exons)]
                parts.append(np.arange(gene.start - 1, gene.start - 1 - utr, -1))
            pos = np.concatenate(parts).astype(np.int64) + index.offsets[sg.contig]
            positions.append(pos)
            offsets.append(offset)
            lengths.append(len(pos))
            offset += len(pos)
        self.coords = np.concatenate(positions)
        strand_per_base = np.repeat(index.gene_strand, lengths)
        self.codes = _complement_where(index.seq[self.coords], strand_per_base < 0)
        self.offsets = np.array(offsets, dtype=np.int64)
        self.lengths = np.array(lengths, dtype=np.int64)


def simulate_rnaseq_sample(index: _GenomeIndex, templates: RnaseqTemplates, truth: pd.DataFrame,
                           grammar: Grammar, settings: SimulationSettings, library_size: int,
                           rng: np.random.Generator) -> ReadBatch:
    """QuantSeq FWD-like reads: sense strand, starting in the last ~300 nt of the transcript.

    A read whose start lies closer than the read length to the transcript end continues into the
    poly-A tail and then the adapter.
    """
    model, L = grammar.rnaseq, settings.read_length
    n_bg = rng.poisson(library_size * model.background_fraction)
    means = _nb_means(rng, truth["abundance"].to_numpy(), library_size - n_bg, model.dispersion)
    per_gene = rng.poisson(means)
    gene = np.repeat(np.arange(len(per_gene)), per_gene)
    length = templates.lengths[gene]
    dist = np.clip(np.round(rng.normal(150, 70, size=len(gene))), 5, np.minimum(300, length))
    start = length - dist.astype(np.int64)
    polya = rng.integers(model.polya_min, model.polya_max + 1, size=len(gene))
    adapter, real_len = _adapter(RNASEQ_ADAPTER, L)
    j = np.arange(L)
    idx = start[:, None] + j
    inside = idx < length[:, None]
    reads = templates.codes[templates.offsets[gene][:, None] + np.minimum(idx, length[:, None] - 1)]
    past = idx - length[:, None] - polya[:, None]
    tail = np.where(past < 0, 0, adapter[np.clip(past, 0, len(adapter) - 1)])
    reads = np.where(inside, reads, tail).astype(np.uint8)
    qual = _qualities(rng, len(gene), L)
    qual[~inside & (past >= real_len)] = ord("#")
    origin = templates.coords[templates.offsets[gene] + start]
    # background: random genomic positions, either strand
    bg_contig, bg_pos = index.random_positions(rng, n_bg, L)
    bg_plus = rng.random(n_bg) < 0.5
    bg_global = index.offsets[bg_contig] + bg_pos
    bg_reads = _complement_where(
        index.seq[np.where(bg_plus[:, None], bg_global[:, None] + j, bg_global[:, None] - j)],
        ~bg_plus[:, None])
    gene_contig = index.gene_contig[gene]
    origins = ReadOrigins(
        [*index.gene_ids, "background"],
        np.concatenate([gene, np.full(n_bg, len(per_gene))]),
        np.concatenate([gene_contig, bg_contig]),
        np.concatenate([origin - index.offsets[gene_contig], bg_pos]) + 1,
        np.concatenate([index.gene_strand[gene] > 0, bg_plus]),
    )
    reads = np.concatenate([reads, bg_reads])
    qual = np.concatenate([qual, _qualities(rng, n_bg, L)])
    _add_errors(rng, reads, qual, settings.error_rate)
    order = rng.permutation(len(reads))
    usable = np.bincount(gene[dist >= 33], minlength=len(per_gene))
    return ReadBatch(origins.take(order), reads[order], qual[order], None, None,
                     gene_reads=per_gene, gene_usable=usable)


PRO_PARTS = ("body", "pause", "readthrough", "antisense")


def _pro_masses(index: _GenomeIndex, truth: pd.DataFrame, grammar: Grammar) -> np.ndarray:
    """Expected polymerases per gene and component (body, pause, readthrough, antisense).

    A gene's transcription rate is, by definition, the expected number of engaged polymerases
    between its TSS and TTS (gene body plus pause peak), so PRO-seq gene-body counts measure it
    directly. The pause peak holds ``pause_strength`` x 100 bp worth of body density;
    read-through and antisense are set relative to the same body density.
    """
    model = grammar.proseq
    length = index.gene_length.astype(float)
    pause_bp = 100.0 * truth["pause_strength"].to_numpy()
    density = truth["transcription"].to_numpy() / (length + pause_bp)  # per bp of gene body
    readthrough = model.readthrough_enrichment * model.readthrough_decay * (1 - math.exp(-3))
    return np.stack([density * length, density * pause_bp, density * readthrough,
                     density * 100.0 * model.antisense_strength], axis=1)


def simulate_proseq_sample(index: _GenomeIndex, truth: pd.DataFrame, grammar: Grammar,
                           settings: SimulationSettings, library_size: int,
                           rng: np.random.Generator) -> ReadBatch:
    """PRO-seq read pairs: read 1 = reverse complement of the nascent RNA from its 3' end."""
    model, L = grammar.proseq, settings.read_length
    n_bg = rng.poisson(library_size * model.background_fraction)
    masses = _pro_masses(index, truth, grammar)
    gene_means = _nb_means(rng, masses.sum(axis=1), library_size - n_bg, model.dispersion)
    counts = rng.poisson(gene_means[:, None] * masses / masses.sum(axis=1, keepdims=True))
    n_genes = len(counts)
    gene = np.repeat(np.repeat(np.arange(n_genes), 4), counts.ravel())
    part = np.repeat(np.tile(np.arange(4), n_genes), counts.ravel())
    x = _polymerase_offsets(rng, gene, part, index.gene_length[gene],
                            truth["pause_offset"].to_numpy(), grammar)
    gstrand = index.gene_strand[gene]
    local = index.gene_tss[gene] + gstrand * x
    plus = np.where(part == 3, -gstrand, gstrand) > 0
    contig = index.gene_contig[gene]
    ok = (local >= 0) & (local < index.lengths[contig])  # read-through may run off a contig
    gene, part, local, plus, contig = (a[ok] for a in (gene, part, local, plus, contig))
    bg_contig, bg_pos = index.random_positions(rng, n_bg, 0)
    origins = ReadOrigins(
        [f"{gid}/{name}" for gid in index.gene_ids for name in PRO_PARTS] + ["background"],
        np.concatenate([gene * 4 + part, np.full(n_bg, 4 * n_genes)]),
        np.concatenate([contig, bg_contig]),
        np.concatenate([local, bg_pos]) + 1,
        np.concatenate([plus, rng.random(n_bg) < 0.5]),
    )
    n = len(origins.pos1)
    short = rng.random(n) < 0.06  # inserts < 40 nt, for cutadapt -m 40:40 to drop
    insert = np.where(short, rng.integers(15, 40, size=n),
                      np.clip(np.round(rng.normal(85, 30, size=n)), 40, 250)).astype(np.int64)
    local_all = origins.pos1 - 1
    room = np.where(origins.plus, local_all + 1, index.lengths[origins.contig] - local_all)
    insert = np.minimum(insert, room)
    p = index.offsets[origins.contig] + local_all
    read1, qual1 = _pro_read(index, rng, p, origins.plus, insert, L, first=True)
    read2, qual2 = _pro_read(index, rng, p, origins.plus, insert, L, first=False)
    _add_errors(rng, read1, qual1, settings.error_rate)
    _add_errors(rng, read2, qual2, settings.error_rate)
    in_gene = part <= 1
    gene_reads = np.bincount(gene[in_gene], minlength=n_genes)
    usable = np.bincount(gene[in_gene & (insert[: len(gene)] >= 40)], minlength=n_genes)
    order = rng.permutation(n)
    return ReadBatch(origins.take(order), read1[order], qual1[order], read2[order], qual2[order],
                     gene_reads=gene_reads, gene_usable=usable)


def _polymerase_offsets(rng: np.random.Generator, gene: np.ndarray, part: np.ndarray,
                        length: np.ndarray, pause_offsets: np.ndarray,
                        grammar: Grammar) -> np.ndarray:
    """Polymerase positions relative to the TSS base, in transcript orientation, per component."""
    model = grammar.proseq
    x = np.zeros(len(gene), dtype=np.int64)
    body, pause, readthrough, antisense = (part == k for k in range(4))
    x[body] = np.floor(rng.random(body.sum()) * length[body]).astype(np.int64)
    x[pause] = np.clip(np.round(rng.normal(pause_offsets[gene[pause]], model.pause_width)),
                       0, length[pause] - 1).astype(np.int64)
    u = rng.random(readthrough.sum()) * (1 - math.exp(-3))  # exponential, cut at 3 decays
    x[readthrough] = length[readthrough] + np.floor(
        -model.readthrough_decay * np.log1p(-u)).astype(np.int64)
    x[antisense] = -np.maximum(1, np.round(rng.normal(
        model.antisense_offset, model.antisense_width, size=antisense.sum()))).astype(np.int64)
    return x


def _pro_read(index: _GenomeIndex, rng: np.random.Generator, p: np.ndarray, plus: np.ndarray,
              insert: np.ndarray, length: int, first: bool) -> tuple[np.ndarray, np.ndarray]:
    """Read 1 (from the RNA 3' end, antisense) or read 2 (from the RNA 5' end, sense).

    For a plus-strand RNA ending at p, read 1 is the complement of p, p-1, ... and read 2 is
    p-insert+1, p-insert+2, ...; for a minus-strand RNA read 1 is p, p+1, ... and read 2 the
    complement of p+insert-1, p+insert-2, ... Past the insert each read runs into its adapter.
    """
    j = np.arange(length)
    sign = np.where(plus, 1, -1)
    if first:
        pos = p[:, None] - sign[:, None] * j
        complement = plus[:, None]
        adapter, real_len = _adapter(PROSEQ_R1_ADAPTER, length)
    else:
        pos = (p - sign * (insert - 1))[:, None] + sign[:, None] * j
        complement = ~plus[:, None]
        adapter, real_len = _adapter(PROSEQ_R2_ADAPTER, length)
    bases = _complement_where(index.seq[np.clip(pos, 0, len(index.seq) - 1)], complement)
    inside = j[None, :] < insert[:, None]
    past = j[None, :] - insert[:, None]
    reads = np.where(inside, bases, adapter[np.clip(past, 0, len(adapter) - 1)]).astype(np.uint8)
    qual = _qualities(rng, len(p), length)
    qual[~inside & (past >= real_len)] = ord("#")
    return reads, qual


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _table_field(table: list[str], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-record strings chosen from ``table``: padded ASCII matrix and mask of real bytes."""
    width = max(len(t) for t in table)
    mat = np.zeros((len(table), width), dtype=np.uint8)
    lengths = np.array([len(t) for t in table])
    for i, text in enumerate(table):
        mat[i, :len(text)] = np.frombuffer(text.encode(), dtype=np.uint8)
    return mat[idx], np.arange(width)[None, :] < lengths[idx][:, None]


def _int_field(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decimal digits of non-negative integers, without leading zeros."""
    values = np.asarray(values, dtype=np.int64)
    width = len(str(int(values.max()))) if len(values) else 1
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = ((values[:, None] // powers) % 10 + 48).astype(np.uint8)
    n_digits = np.maximum((values[:, None] >= powers).sum(axis=1), 1)
    return digits, np.arange(width)[None, :] >= (width - n_digits)[:, None]


def _const_field(text: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    row = np.frombuffer(text.encode(), dtype=np.uint8)
    return np.broadcast_to(row, (n, len(row))), np.ones((n, len(row)), dtype=bool)


def fastq_bytes(sample: str, origins: ReadOrigins, contig_names: list[str], codes: np.ndarray,
                qual: np.ndarray) -> bytes:
    """FASTQ records ``@{sample}:{i} {source}:{contig}:{pos}:{strand}``, built with numpy.

    The comment records the read's origin (see :class:`ReadOrigins`); aligners ignore it.
    """
    n = len(codes)
    if n == 0:
        return b""
    fields = [
        _const_field(f"@{sample}:", n), _int_field(np.arange(1, n + 1)), _const_field(" ", n),
        _table_field(origins.label_table, origins.label), _const_field(":", n),
        _table_field(contig_names, origins.contig), _const_field(":", n),
        _int_field(origins.pos1), _const_field(":", n),
        _table_field(["-", "+"], origins.plus.astype(np.int64)), _const_field("\n", n),
        (_ASCII[codes], np.ones(codes.shape, dtype=bool)), _const_field("\n+\n", n),
        (qual, np.ones(qual.shape, dtype=bool)), _const_field("\n", n),
    ]
    matrix = np.concatenate([f[0] for f in fields], axis=1)
    mask = np.concatenate([f[1] for f in fields], axis=1)
    return matrix[mask].tobytes()


def write_gzip(path: PathLike, data: bytes) -> None:
    """Gzip ``data`` reproducibly: no file name and mtime 0 in the header; atomic rename."""
    with atomic_path(path, suffix=".gz") as tmp, open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) as gz:
            gz.write(data)


def _fasta_lines(name: str, ascii_seq: np.ndarray, width: int = 60) -> bytes:
    n_full = len(ascii_seq) // width
    full = np.concatenate([ascii_seq[:n_full * width].reshape(n_full, width),
                           np.full((n_full, 1), ord("\n"), dtype=np.uint8)], axis=1)
    rest = ascii_seq[n_full * width:]
    tail = rest.tobytes() + b"\n" if len(rest) else b""
    return f">{name}\n".encode() + full.tobytes() + tail


def write_genome_fasta(genome: SpeciesGenome, path: PathLike) -> None:
    with atomic_open(path, "wb") as handle:
        for name, codes, lower in zip(genome.contig_names, genome.contigs, genome.lower,
                                      strict=True):
            ascii_seq = np.where(lower, _ASCII_LOWER[codes], _ASCII[codes])
            handle.write(_fasta_lines(name, ascii_seq))


def write_gff3(genome: SpeciesGenome, path: PathLike) -> None:
    """The annotation: gene, mRNA, exons and CDS of every gene as annotated (``SimGene.annotated``,
    whose TSS and TTS may be off the true ones); CDS parts are the true coding sequence inside
    the annotated gene, with their phases."""
    lines = ["##gff-version 3"]
    for name, length in zip(genome.contig_names, genome.contig_lengths, strict=True):
        lines.append(f"##sequence-region {name} 1 {length}")
    src = "plantt_simulate"
    for sg in genome.genes:
        g = sg.annotated or sg.gene
        tid = f"{g.gene_id}.1"
        exons = sorted(g.transcripts[tid].exons)
        cds = sorted(sg.gene.transcripts[tid].exons)  # the true gene: exons are its ORF
        lines.append(f"{g.seqid}\t{src}\tgene\t{g.start + 1}\t{g.end}\t.\t{g.strand}\t.\t"
                     f"ID={g.gene_id};Name={g.gene_id}")
        lines.append(f"{g.seqid}\t{src}\tmRNA\t{g.start + 1}\t{g.end}\t.\t{g.strand}\t.\t"
                     f"ID={tid};Parent={g.gene_id}")
        in_order = exons if g.strand == "+" else exons[::-1]
        for k, (s, e) in enumerate(in_order, start=1):
            lines.append(f"{g.seqid}\t{src}\texon\t{s + 1}\t{e}\t.\t{g.strand}\t.\t"
                         f"ID={tid}.exon{k};Parent={tid}")
        cds_order = cds if g.strand == "+" else cds[::-1]
        done, parts = 0, []
        for s, e in cds_order:
            lo, hi = max(s, g.start), min(e, g.end)
            if hi > lo:
                skipped = (lo - s) if g.strand == "+" else (e - hi)
                parts.append((lo, hi, (3 - (done + skipped) % 3) % 3))
            done += e - s
        for lo, hi, phase in sorted(parts):
            lines.append(f"{g.seqid}\t{src}\tCDS\t{lo + 1}\t{hi}\t.\t{g.strand}\t{phase}\t"
                         f"ID=cds.{tid};Parent={tid}")
    with atomic_open(path) as handle:
        handle.write("\n".join(lines) + "\n")


def write_proteome(genome: SpeciesGenome, path: PathLike) -> None:
    """Protein FASTA (ids = mRNA ids), the kind of file OrthoFinder would have been given."""
    table = np.frombuffer(_CODON_TABLE.encode(), dtype=np.uint8)
    chunks = []
    for sg in genome.genes:
        g = sg.gene
        tid = f"{g.gene_id}.1"
        contig = genome.contigs[sg.contig]
        cds = np.concatenate([contig[s:e] for s, e in sorted(g.transcripts[tid].exons)])
        if g.strand == "-":
            cds = reverse_complement_codes(cds)
        codons = cds[: len(cds) // 3 * 3].reshape(-1, 3).astype(np.int64)
        protein = table[codons[:, 0] * 16 + codons[:, 1] * 4 + codons[:, 2]].tobytes()
        protein = protein.rstrip(b"*").decode()
        chunks.append(f">{tid}\n" + "\n".join(protein[i:i + 60]
                                             for i in range(0, len(protein), 60)) + "\n")
    with atomic_open(path) as handle:
        handle.write("".join(chunks))


def _write_rows(path: PathLike, header: list[str], rows: list[list[str]]) -> None:
    with atomic_open(path) as handle:
        handle.write("\t".join(header) + "\n")
        for row in rows:
            handle.write("\t".join(row) + "\n")


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def simulate(outdir: PathLike, settings: SimulationSettings | None = None) -> SimulationSummary:
    """Generate the whole demo under ``outdir``; see the module docstring and docs/grammar.md."""
    settings = settings or SimulationSettings()
    settings.validate()
    began = time.perf_counter()
    grammar_file = resolve_grammar_path(settings.grammar)
    grammar = load_grammar(grammar_file)
    out = Path(outdir)
    prefix = str(outdir).rstrip("/") or "/"

    genomes, truths = simulate_species(settings, grammar)
    truth = pd.concat(truths, ignore_index=True)
    og_rows, unassigned_rows, gene_og = orthogroup_tables(truth)
    truth["orthogroup"] = gene_og
    ceiling = sequence_ceiling(truth)

    files = _write_genomes(out, genomes)
    header = ["Orthogroup", *[f"{s.species}_pep" for s in SPECIES]]
    for name, rows in (("Orthogroups.tsv", og_rows),
                       ("Orthogroups_UnassignedGenes.tsv", unassigned_rows)):
        _write_rows(out / "orthofinder" / name, header, rows)
        files.append(f"orthofinder/{name}")
    samples, counts, read_totals, read_files = _write_reads(out, prefix, settings, grammar,
                                                            genomes, truths)
    files += read_files
    tables = {
        "species.tsv": pd.DataFrame([{
            "species": s.species, "code": s.code,
            "genome": f"{prefix}/genomes/{s.species}.fa",
            "annotation": f"{prefix}/annotation/{s.species}.gff3",
            "proteome": f"{s.species}_pep"} for s in SPECIES]),
        "samples.tsv": samples,
        "truth.tsv": truth,
        "truth_counts.tsv": counts,
        "ceiling.tsv": ceiling,
    }
    for name, table in tables.items():
        write_tsv(table, out / name, float_format="%.6g")
        files.append(name)
    with atomic_path(out / "grammar.yaml") as tmp:
        shutil.copyfile(grammar_file, tmp)
    files.append("grammar.yaml")

    summary = SimulationSummary(
        outdir=prefix,
        genes={g.info.species: len(g.genes) for g in genomes},
        orthogroups=len(og_rows),
        unassigned_genes=len(unassigned_rows),
        reads=read_totals,
        ceiling={a: round(float(c), 4) for a, c in zip(ceiling["assay"], ceiling["ceiling_r2"],
                                                        strict=True)},
        pairs={a: int(n) for a, n in zip(ceiling["assay"], ceiling["n_pairs"], strict=True)},
        seconds=round(time.perf_counter() - began, 2),
        files=files,
    )
    log.info("ceiling R^2 %s over %s pairs; %d reads in %.1f s", summary.ceiling,
             summary.pairs, sum(read_totals.values()), summary.seconds)
    return summary


def simulate_species(settings: SimulationSettings, grammar: Grammar
                     ) -> tuple[list[SpeciesGenome], list[pd.DataFrame]]:
    """Ancestral families, then per species: inheritance, evolution, genome layout, truth."""
    anc_rng = _seed(settings, "ancestor")
    # one family in 16 is a short gene (< 1 kb), so even tiny demos have some
    ancestors = [make_locus(anc_rng, grammar, f"fam{f + 1:05d}", short=f % 16 == 3)
                 for f in range(settings.genes_per_species)]
    transposons = (transposon_families(settings.seed)
                   if grammar.evolution.transposon_rate > 0 else None)
    genomes, truths = [], []
    for si, info in enumerate(SPECIES):
        loci = species_loci(ancestors, grammar, si, _seed(settings, "species", si), transposons)
        genome = assemble_genome(info, loci, settings.contigs_per_genome,
                                 _seed(settings, "genome", si),
                                 grammar.evolution.annotation_offset_sd,
                                 species_composition(grammar, info.species))
        genomes.append(genome)
        truths.append(compute_truth(genome, grammar, _seed(settings, "truth", si)))
        log.info("%s: %d genes on %d contigs (%d bp)", info.species, len(genome.genes),
                 len(genome.contigs), sum(genome.contig_lengths))
    return genomes, truths


def _write_genomes(out: Path, genomes: list[SpeciesGenome]) -> list[str]:
    files = []
    for genome in genomes:
        sp = genome.info.species
        for rel, writer in ((f"genomes/{sp}.fa", write_genome_fasta),
                            (f"annotation/{sp}.gff3", write_gff3),
                            (f"proteomes/{sp}_pep.fa", write_proteome)):
            writer(genome, out / rel)
            files.append(rel)
    return files


def _write_reads(out: Path, prefix: str, settings: SimulationSettings, grammar: Grammar,
                 genomes: list[SpeciesGenome], truths: list[pd.DataFrame]
                 ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int], list[str]]:
    """Simulate and write every sample; returns the sample sheet, truth counts, totals, files."""
    writer = _SampleWriter(out, prefix, settings, grammar)
    # zlib releases the GIL: finished samples are compressed while the next one is simulated.
    with ThreadPoolExecutor(max_workers=2) as pool:
        writer.pool = pool
        for si, (genome, sp_truth) in enumerate(zip(genomes, truths, strict=True)):
            writer.species_samples(si, genome, sp_truth)
        for future in writer.pending:
            future.result()
    return (pd.DataFrame(writer.sample_rows), pd.concat(writer.count_tables, ignore_index=True),
            writer.totals, writer.files)


@dataclass
class _SampleWriter:
    """Simulates each sample, queues its FASTQ files for compression, keeps the sheets."""

    out: Path
    prefix: str
    settings: SimulationSettings
    grammar: Grammar
    pool: ThreadPoolExecutor | None = None
    pending: list[Future] = field(default_factory=list)
    sample_rows: list[dict] = field(default_factory=list)
    count_tables: list[pd.DataFrame] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def species_samples(self, si: int, genome: SpeciesGenome, truth: pd.DataFrame) -> None:
        settings = self.settings
        index = _GenomeIndex(genome)
        templates = RnaseqTemplates(index, truth["utr3_length"].to_numpy())
        for ai, (assay, reps, reads) in enumerate((
                ("rnaseq3p", settings.rnaseq_replicates, settings.rnaseq_reads),
                ("proseq", settings.proseq_replicates, settings.proseq_reads))):
            sizes = _library_sizes(_seed(settings, "reads", si, ai, 0), reads, reps)
            for rep in range(1, reps + 1):
                rng = _seed(settings, "reads", si, ai, rep)
                if assay == "rnaseq3p":
                    batch = simulate_rnaseq_sample(index, templates, truth, self.grammar,
                                                   settings, int(sizes[rep - 1]), rng)
                else:
                    batch = simulate_proseq_sample(index, truth, self.grammar, settings,
                                                   int(sizes[rep - 1]), rng)
                self._write(genome, index, assay, rep, batch)

    def _write(self, genome: SpeciesGenome, index: _GenomeIndex, assay: str, rep: int,
               batch: ReadBatch) -> None:
        sp = genome.info.species
        sample = f"{sp}_{assay}_{rep}"
        if batch.read2 is None or batch.qual2 is None:
            fastqs = [(f"reads/{sample}.fastq.gz", batch.read1, batch.qual1)]
        else:
            fastqs = [(f"reads/{sample}_R1.fastq.gz", batch.read1, batch.qual1),
                      (f"reads/{sample}_R2.fastq.gz", batch.read2, batch.qual2)]
        assert self.pool is not None
        for rel, codes, qual in fastqs:
            data = fastq_bytes(sample, batch.origins, genome.contig_names, codes, qual)
            self.pending.append(self.pool.submit(write_gzip, self.out / rel, data))
            self.files.append(rel)
        while len(self.pending) > 4:  # bound the memory held by queued files
            self.pending.pop(0).result()
        done = [f for f in self.pending if f.done()]
        for future in done:
            future.result()  # re-raise a failed write now
        self.pending = [f for f in self.pending if f not in done]
        self.totals[sample] = batch.n
        self.sample_rows.append({
            "sample": sample, "species": sp, "assay": assay, "replicate": rep,
            "fq1": f"{self.prefix}/{fastqs[0][0]}",
            "fq2": f"{self.prefix}/{fastqs[1][0]}" if len(fastqs) > 1 else ""})
        self.count_tables.append(pd.DataFrame({
            "sample": sample, "species": sp, "assay": assay, "replicate": rep,
            "gene_id": index.gene_ids, "reads": batch.gene_reads,
            "reads_usable": batch.gene_usable}))
        log.info("%s: %d reads", sample, batch.n)


def run(args: argparse.Namespace) -> int:
    settings = SimulationSettings(
        seed=args.seed,
        genes_per_species=args.genes_per_species,
        grammar=args.grammar,
        rnaseq_reads=args.rnaseq_reads,
        proseq_reads=args.proseq_reads,
        error_rate=args.error_rate,
    )
    summary = simulate(args.outdir, settings)
    fields = asdict(summary)
    fields.pop("files")
    fields.pop("reads")
    print("\t".join(f"{k}={v}" for k, v in fields.items()))
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    defaults = SimulationSettings()
    parser = subparsers.add_parser(
        "simulate",
        help="generate the demo dataset (four species, reads, orthogroups, known grammar)",
        description="Simulate genomes, annotations, OrthoFinder orthogroups, 3'-RNA-seq and "
                    "PRO-seq reads of four related species whose expression follows a regulatory "
                    "grammar (docs/grammar.md). Same seed and settings give identical files.",
    )
    parser.add_argument("--out-dir", dest="outdir", required=True, help="output directory")
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument("--genes-per-species", type=int, default=defaults.genes_per_species,
                        help="ancestral gene families, about the genes per species "
                             "(default %(default)s)")
    parser.add_argument("--grammar", default=None,
                        help="grammar YAML (default: the grammar shipped with plantt)")
    parser.add_argument("--rnaseq-reads", type=int, default=defaults.rnaseq_reads,
                        help="3'-RNA-seq reads per replicate (default %(default)s)")
    parser.add_argument("--proseq-reads", type=int, default=defaults.proseq_reads,
                        help="PRO-seq read pairs per replicate (default %(default)s)")
    parser.add_argument("--error-rate", type=float, default=defaults.error_rate,
                        help="sequencing error rate per base (default %(default)s)")
    parser.set_defaults(func=run)
