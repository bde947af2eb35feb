"""Tests of the grammar file format (plantt.grammar): coordinates, scanning and validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from plantt.annotation import Gene
from plantt.encoding import encode, reverse_complement
from plantt.grammar import (
    count_gene_motifs,
    count_occurrences,
    default_grammar_path,
    load_grammar,
    parse_grammar,
    region_interval,
)
from plantt.io import InputError

# ---------------------------------------------------------------------------- default grammar


def test_default_grammar_is_learnable_by_design() -> None:
    grammar = load_grammar()
    assert Path(grammar.source) == default_grammar_path()
    for process in grammar.processes:
        assert 3 <= len(process.motifs) <= 5
        for motif in process.motifs:
            assert 8 <= len(motif.sequence) <= 12
            assert 1 <= abs(motif.effect_log2) <= 2
            # inside PlanTT's window, away from the 3 masked bases at TSS and TTS
            if motif.anchor == "tss":
                assert -1000 <= motif.start and motif.end <= 500
            else:
                assert -500 <= motif.start and motif.end <= 1000
            assert not (motif.start < 3 and motif.end > -3)
    assert grammar.proseq.pause_strength["pisum"] == 0
    assert all(grammar.proseq.pause_strength[s] > 0 for s in ("medicago", "vicia", "lathyrus"))
    names = [m.name for m in grammar.motifs]
    assert len(set(names)) == len(names)


def test_gene_body_motifs_have_no_stop_codon() -> None:
    """Motifs inside coding sequence would be broken by the stop-codon fix-up otherwise."""
    for motif in load_grammar().motifs:
        inside_gene = (motif.anchor == "tss" and motif.end > 0) or \
            (motif.anchor == "tts" and motif.start < 0)
        if inside_gene:
            for stop in ("TAA", "TAG", "TGA"):
                assert stop not in motif.sequence, motif.name


# ---------------------------------------------------------------------------- coordinates


@pytest.mark.parametrize(("anchor", "strand", "start", "end", "expected"), [
    # gene spans [100, 200): plus-strand TSS base 100, TTS base 199
    ("tss", "+", -10, 0, (90, 100)),
    ("tss", "+", 0, 5, (100, 105)),
    ("tts", "+", -5, 0, (195, 200)),
    ("tts", "+", 0, 10, (200, 210)),
    # minus strand: TSS base 199, TTS base 100
    ("tss", "-", -10, 0, (200, 210)),
    ("tss", "-", 0, 5, (195, 200)),
    ("tts", "-", -5, 0, (100, 105)),
    ("tts", "-", 0, 10, (90, 100)),
])
def test_region_interval(anchor, strand, start, end, expected) -> None:
    assert region_interval(anchor, start, end, 100, 200, strand) == expected


def test_count_occurrences_overlapping_and_n() -> None:
    assert count_occurrences(encode("AAAAA"), encode("AA")) == 4
    assert count_occurrences(encode("ACGNACGT"), encode("ACGT")) == 1
    assert count_occurrences(encode("ACGTACGT"), encode("ACGTACGTA")) == 0


def test_n_never_matches_a_motif() -> None:
    # motifs are ACGT only, so a region of Ns holds no occurrence
    assert count_occurrences(encode("N" * 20), encode("ACGT")) == 0


def _grammar_with(motifs: list[dict], stability: list[dict] | None = None):
    return parse_grammar({"transcription": {"motifs": motifs},
                          "stability": {"motifs": stability or []}}, "g.yaml")


def test_count_gene_motifs_on_both_strands() -> None:
    word = "GATTACAGG"
    grammar = _grammar_with(
        [{"name": "m", "sequence": word, "anchor": "tss", "start": -50, "end": 0,
          "effect_log2": 1.0, "max_count": 2}],
        [{"name": "s", "sequence": "CCCTTTGGG", "anchor": "tts", "start": 0, "end": 30,
          "effect_log2": -1.0}])
    rng = np.random.default_rng(0)
    contig = list(rng.choice(list("ACGT"), size=1000))
    # plus gene [300, 600): motif 20 bp upstream of the TSS, stability motif just past the end
    contig[280:289] = word
    contig[600:609] = "CCCTTTGGG"
    # minus gene [700, 900): motif on the minus strand just upstream (genomically after 900)
    contig[910:919] = reverse_complement(word)
    # same word on the plus strand near the minus gene must not count (wrong strand)
    contig[930:939] = word
    codes = encode("".join(contig))
    plus = Gene("p", "c", 300, 600, "+")
    minus = Gene("m", "c", 700, 900, "-")
    counts_plus = count_gene_motifs(codes, plus, grammar.motifs)
    counts_minus = count_gene_motifs(codes, minus, grammar.motifs)
    assert counts_plus["m"] == 1 and counts_plus["s"] == 1
    assert counts_minus["m"] == 1
    # a motif straddling the region edge does not count
    edge = _grammar_with([{"name": "m", "sequence": word, "anchor": "tss", "start": -25,
                           "end": -12, "effect_log2": 1.0}])
    assert count_gene_motifs(codes, plus, edge.motifs)["m"] == 0


def test_grammar_log2_caps_at_max_count() -> None:
    grammar = _grammar_with([
        {"name": "a", "sequence": "ACGTACGT", "anchor": "tss", "start": -100, "end": 0,
         "effect_log2": 1.5, "max_count": 2},
        {"name": "b", "sequence": "TTGGCCAA", "anchor": "tss", "start": -100, "end": 0,
         "effect_log2": -1.0},
    ])
    process = grammar.transcription
    assert process.grammar_log2({"a": 5, "b": 3}) == pytest.approx(2 * 1.5 - 1.0)
    assert process.grammar_log2({"a": 1, "b": 0}) == pytest.approx(1.5)
    assert process.grammar_log2({}) == 0


def test_partial_grammar_keeps_defaults(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({
        "transcription": {"baseline_log2": 2, "motifs": [
            {"name": "x", "sequence": "acgtacgtac", "anchor": "tss", "start": -200, "end": -50,
             "effect_log2": 1}]},
        "stability": {},
        "proseq": {"pause_strength": 3},
    }))
    grammar = load_grammar(path)
    assert grammar.transcription.motifs[0].sequence == "ACGTACGTAC"
    assert grammar.stability.motifs == ()
    assert grammar.proseq.pause_strength == {s: 3.0 for s in
                                             ("medicago", "vicia", "pisum", "lathyrus")}
    assert grammar.evolution.substitution_rate > 0


# ---------------------------------------------------------------------------- validation


GOOD_MOTIF = {"name": "m1", "sequence": "ACGTACGTAC", "anchor": "tss", "start": -300, "end": 0,
              "effect_log2": 1.0, "max_count": 1}


def _document(**motif_changes) -> dict:
    motif = {**GOOD_MOTIF, **motif_changes}
    return {"transcription": {"baseline_log2": 1, "noise_sd_log2": 0.2, "motifs": [motif]},
            "stability": {"motifs": []}}


@pytest.mark.parametrize(("document", "key", "words"), [
    (_document(anchor="tes"), "transcription.motifs[0].anchor", "unknown anchor"),
    (_document(sequence="ACGTNACG"), "transcription.motifs[0].sequence", "A, C, G, T"),
    (_document(start=0, end=0), "transcription.motifs[0]", "smaller than end"),
    (_document(start=10, end=-10), "transcription.motifs[0]", "smaller than end"),
    (_document(start=-5, end=0), "transcription.motifs[0]", "shorter than the motif"),
    (_document(start=-5000), "transcription.motifs[0].start", ">= -1000"),
    (_document(effect_log2="big"), "transcription.motifs[0].effect_log2", "number"),
    (_document(max_count=0), "transcription.motifs[0].max_count", ">= 1"),
    (_document(name="1bad"), "transcription.motifs[0].name", "letters"),
    (_document(name="abundance"), "transcription.motifs[0].name", "reserved"),
    (_document(colour="red"), "transcription.motifs[0]", "unknown key"),
    ({"transcription": {"motifs": []}}, "stability", "missing section"),
    ({**_document(), "stabilty": {}}, "<top level>", "unknown key"),
    ({**_document(), "evolution": {"motif_gain_probability": 1.5}},
     "evolution.motif_gain_probability", "<= 1"),
    ({**_document(), "proseq": {"pause_strength": {"soja": 2}}}, "proseq.pause_strength",
     "unknown key"),
    ({**_document(), "proseq": {"dispersion": -1}}, "proseq.dispersion", ">= 0"),
    ({**_document(), "rnaseq": {"utr3_min": 300, "utr3_max": 100}}, "rnaseq", "utr3_min"),
    ({"transcription": {"motifs": [GOOD_MOTIF]}, "stability": {"motifs": [GOOD_MOTIF]}},
     "motifs", "unique"),
    ({"transcription": {"noise_sd_log2": -1}, "stability": {}},
     "transcription.noise_sd_log2", ">= 0"),
])
def test_validation_names_file_and_key(tmp_path: Path, document, key, words) -> None:
    path = tmp_path / "grammar.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(InputError) as info:
        load_grammar(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert f"{key}:" in message
    assert words in message


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_grammar(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("transcription: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_grammar(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(InputError, match="expected a mapping"):
        load_grammar(scalar)


# ---------------------------------------------------------------------------- matrices and realism


MATRIX = [[0.85, 0.05, 0.05, 0.05], [0.05, 0.05, 0.85, 0.05], [0.05, 0.85, 0.05, 0.05],
          [0.05, 0.05, 0.05, 0.85], [0.85, 0.05, 0.05, 0.05], [0.05, 0.05, 0.85, 0.05],
          [0.05, 0.05, 0.05, 0.85], [0.05, 0.85, 0.05, 0.05]]  # consensus AGCTAGTC


def test_matrix_motif_counts_degenerate_sites_on_either_strand() -> None:
    sense_only = _grammar_with([{"name": "m", "matrix": MATRIX, "anchor": "tss", "start": -200,
                                 "end": 0, "effect_log2": 1.0, "max_count": 3,
                                 "min_score": 0.8}])
    either = _grammar_with([{"name": "m", "matrix": MATRIX, "anchor": "tss", "start": -200,
                             "end": 0, "effect_log2": 1.0, "max_count": 3, "min_score": 0.8,
                             "strand": "either"}])
    motif = either.motifs[0]
    assert motif.matrix is not None and motif.matrix.consensus == "AGCTAGTC"
    contig = list("T" * 1000)
    degenerate = "AGCTAGTA"  # one mismatch at the last position: still above 0.8
    assert motif.matrix.relative_scores(encode(degenerate))[0] >= 0.8
    contig[150:158] = degenerate
    contig[250:258] = reverse_complement("AGCTAGTC")  # the consensus on the antisense strand
    contig[290:298] = "ACCTCGTA"  # three mismatches: below the threshold
    assert motif.matrix.relative_scores(encode("ACCTCGTA"))[0] < 0.8
    codes = encode("".join(contig))
    gene = Gene("g", "c", 300, 700, "+")
    assert count_gene_motifs(codes, gene, sense_only.motifs)["m"] == 1
    assert count_gene_motifs(codes, gene, either.motifs)["m"] == 2


def test_soft_edges_weight_sites_by_distance() -> None:
    grammar = _grammar_with([{"name": "m", "sequence": "GATTACAGG", "anchor": "tss",
                              "start": -100, "end": -50, "effect_log2": 1.0, "max_count": 5,
                              "edge_bp": 20}])
    motif = grammar.motifs[0]
    assert motif.margin == 60
    weights = motif.site_weights(np.array([-80, -50 - 9 + 20, -100 - 40, -100 - 61]), -100, -50)
    assert weights[0] == pytest.approx(1.0)
    assert weights[1] == pytest.approx(np.exp(-0.5))  # 20 bp beyond the end: one SD
    assert weights[2] == pytest.approx(np.exp(-2.0))
    assert weights[3] == 0.0  # beyond 3 SD: not scanned
    contig = list("C" * 1000)
    contig[500 - 80:500 - 80 + 9] = "GATTACAGG"  # inside
    contig[500 - 50 + 11:500 - 50 + 20] = "GATTACAGG"  # ends 20 bp past the region's end
    codes = encode("".join(contig))
    value = count_gene_motifs(codes, Gene("g", "c", 500, 800, "+"), grammar.motifs)["m"]
    assert value == pytest.approx(1.0 + np.exp(-0.5), abs=1e-5)


def test_jaspar_motifs_and_species_section() -> None:
    grammar = _grammar_with([{"name": "gbox", "jaspar": "MA0570", "anchor": "tss",
                              "start": -500, "end": 0, "effect_log2": 1.0}])
    motif = grammar.motifs[0]
    assert motif.matrix.id == "MA0570.3" and motif.matrix.name == "ABF1"
    assert motif.min_score == 0.85 and motif.label.startswith("MA0570.3:")
    parsed = parse_grammar({"transcription": {"motifs": []}, "stability": {},
                            "species": {"vicia": {"gc": 0.4, "trans_offset_log2": 0.5}}})
    assert parsed.species["vicia"].gc == 0.4 and parsed.species["vicia"].trans_offset_log2 == 0.5
    assert parsed.species["pisum"].gc is None


@pytest.mark.parametrize(("changes", "key", "words"), [
    ({"jaspar": "MA9999.1"}, "transcription.motifs[0].jaspar", "has no matrix MA9999.1"),
    ({"jaspar": "G-box"}, "transcription.motifs[0].jaspar", "JASPAR matrix id"),
    ({"matrix": [[1, 0, 0]] * 6}, "transcription.motifs[0].matrix", "four numbers"),
    ({"matrix": [[0, 0, 0, 0]] * 6}, "transcription.motifs[0].matrix[0]", "positive weight"),
    ({"min_score": 0.8}, "transcription.motifs[0].min_score", "for matrices"),
    ({"strand": "minus"}, "transcription.motifs[0].strand", "sense or either"),
])
def test_matrix_validation(tmp_path: Path, changes, key, words) -> None:
    motif = {**GOOD_MOTIF, **changes}
    if "jaspar" in changes or "matrix" in changes:
        motif.pop("sequence")
    path = tmp_path / "grammar.yaml"
    path.write_text(yaml.safe_dump({"transcription": {"motifs": [motif]}, "stability": {}}))
    with pytest.raises(InputError) as info:
        load_grammar(path)
    assert f"{key}:" in str(info.value) and words in str(info.value)


def test_two_motif_kinds_at_once_are_refused(tmp_path: Path) -> None:
    motif = {**GOOD_MOTIF, "jaspar": "MA0570.3"}
    with pytest.raises(InputError, match="exactly one of sequence"):
        parse_grammar({"transcription": {"motifs": [motif]}, "stability": {}}, "g.yaml")


def test_realistic_grammar_loads_with_known_and_novel_motifs() -> None:
    from plantt.grammar import realistic_grammar_path

    grammar = load_grammar(realistic_grammar_path())
    known = [m for m in grammar.motifs if m.matrix is not None and m.matrix.id.startswith("MA")]
    novel = [m for m in grammar.motifs if m.matrix is not None and not m.matrix.id.startswith("MA")]
    assert len(known) >= 10 and len(novel) >= 4
    effects = np.abs([m.effect_log2 for m in grammar.motifs])
    assert (effects < 0.5).sum() > 2 * (effects >= 0.8).sum() > 0  # many weak, a few strong
    assert grammar.evolution.transposon_rate > 0 and grammar.evolution.annotation_offset_sd > 0
    assert len({sp.gc for sp in grammar.species.values()}) == 4
