"""plantt.motifs: dinucleotide shuffles, contributions against shuffled references (the input
TF-MoDISco needs) and known motifs as MEME files."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import write_two_fold_inputs
from plantt.grammar import load_grammar
from plantt.models import build_model
from plantt.motifs import (
    dinucleotide_counts,
    dinucleotide_shuffle,
    shuffled_reference_contributions,
    word_pwm,
    write_grammar_meme,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=3, max_size=200), st.integers(0, 2**32 - 1))
def test_shuffle_keeps_every_dinucleotide_count_and_both_ends(letters, seed):
    codes = np.asarray(letters, dtype=np.uint8)
    shuffled = dinucleotide_shuffle(codes, np.random.default_rng(seed))
    assert shuffled.dtype == codes.dtype and shuffled.shape == codes.shape
    assert (dinucleotide_counts(shuffled) == dinucleotide_counts(codes)).all()
    assert shuffled[0] == codes[0] and shuffled[-1] == codes[-1]


def test_shuffle_rearranges_and_is_reproducible():
    codes = np.random.default_rng(0).integers(0, 4, 3000).astype(np.uint8)
    a = dinucleotide_shuffle(codes, np.random.default_rng(1))
    b = dinucleotide_shuffle(codes, np.random.default_rng(1))
    c = dinucleotide_shuffle(codes, np.random.default_rng(2))
    assert (a == b).all()
    assert (a != codes).mean() > 0.5 and (a != c).mean() > 0.5
    # every edge order is possible: the walks differ at the start, not only at the end
    assert (a[:100] != c[:100]).any()


@pytest.fixture(scope="module")
def tower_model():
    torch.manual_seed(0)
    model = build_model("plantt", "motif", seq_len=400).eval()
    with torch.no_grad():  # a stem bias below zero so that some detectors are off
        model.tower.stem_conv.bias.fill_(-0.5)
    return model


def test_contributions_are_complete_and_sit_on_the_present_base(tower_model):
    codes = np.random.default_rng(3).integers(0, 4, (5, 400)).astype(np.uint8)
    codes[:, 100:103] = 4  # masked bases
    result = shuffled_reference_contributions(tower_model, codes, n_references=4, seed=0)
    assert result.hypothetical.shape == result.actual.shape == (5, 4, 400)
    scale = np.abs(result.output - result.reference_output).max()
    assert scale > 0
    assert result.max_abs_delta < 1e-3 * max(1.0, scale)
    one_hot = np.eye(4, dtype=np.float32)[np.minimum(codes, 3)].transpose(0, 2, 1)
    known = codes < 4
    present = (result.actual * one_hot).sum(axis=1)
    np.testing.assert_allclose(present[known], result.actual.sum(axis=1)[known], rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose((result.hypothetical * one_hot).sum(axis=1)[known],
                               present[known], rtol=1e-5, atol=1e-7)
    # hypothetical contributions differ between bases where the model reads the sequence
    assert np.abs(np.diff(result.hypothetical, axis=1)).max() > 0


def test_a_sequence_gets_the_same_references_in_any_batch(tower_model):
    codes = np.random.default_rng(4).integers(0, 4, (6, 400)).astype(np.uint8)
    whole = shuffled_reference_contributions(tower_model, codes, n_references=3, seed=5,
                                             batch_size=6)
    again = shuffled_reference_contributions(tower_model, codes, n_references=3, seed=5,
                                             batch_size=18)
    np.testing.assert_allclose(whole.hypothetical, again.hypothetical, rtol=1e-5, atol=1e-6)
    other = shuffled_reference_contributions(tower_model, codes, n_references=3, seed=6)
    assert not np.allclose(whole.hypothetical, other.hypothetical)


def test_grammar_meme_file_is_read_back_and_matched_by_tomtom(tmp_path):
    from memelite import tomtom
    from memelite.io import read_meme

    grammar = load_grammar(None)
    path = tmp_path / "grammar.meme"
    names = write_grammar_meme(grammar, path)
    assert names == [m.name for m in grammar.motifs]
    motifs = read_meme(str(path))
    assert list(motifs) == names
    first = grammar.motifs[0]
    np.testing.assert_allclose(np.asarray(motifs[first.name]).T, word_pwm(first.sequence),
                               atol=1e-6)
    # a query made of the reverse complement of a motif's word is matched to that motif
    query = word_pwm(first.sequence[::-1].translate(str.maketrans("ACGT", "TGCA")), 0.9)
    targets = [np.asarray(m) for m in motifs.values()]
    with warnings.catch_warnings():  # nine targets: p-values only ranked here, not trusted
        warnings.filterwarnings("ignore", message=".*target motifs.*")
        p_values = tomtom([query.T], targets)[0]
    assert int(np.argmin(p_values[0])) == 0


def test_realistic_grammar_matrices_are_written_as_their_probabilities(tmp_path):
    """A grammar of matrix motifs (JASPAR ids and written-out matrices) gives a MEME file of
    those matrices, which the motif stage's TOMTOM reads (an empty matrix per motif once made
    the realistic demo's motif stage fail)."""
    from memelite.io import read_meme

    from plantt.grammar import realistic_grammar_path

    grammar = load_grammar(realistic_grammar_path())
    path = tmp_path / "grammar.meme"
    names = write_grammar_meme(grammar, path)
    motifs = read_meme(str(path))
    assert list(motifs) == names == [m.name for m in grammar.motifs]
    matrices = [m for m in grammar.motifs if m.matrix is not None]
    assert matrices
    for motif in matrices:
        written = np.asarray(motifs[motif.name]).T
        assert written.shape == (motif.matrix.width, 4)
        np.testing.assert_allclose(written, motif.matrix.probabilities, atol=1e-5)


def test_word_pwm_rejects_what_is_not_a_base():
    with pytest.raises(ValueError, match="'N' at 3"):
        word_pwm("ACNT")


def test_benjamini_hochberg_matches_the_definition():
    from plantt.motifs import benjamini_hochberg

    p = np.array([0.01, 0.04, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.0533, 0.0533, 0.5
    np.testing.assert_allclose(benjamini_hochberg(p), [0.04, 0.05333333, 0.05333333, 0.5])


def test_trim_keeps_the_informative_core():
    from plantt.motifs import trim_bounds

    cwm = np.zeros((20, 4))
    cwm[8:12, 0] = [0.5, 1.0, 0.9, 0.4]
    assert trim_bounds(cwm, 0.3, 0) == (8, 12)
    assert trim_bounds(cwm, 0.3, 2) == (6, 14)
    assert trim_bounds(cwm, 0.6, 0) == (9, 11)


def test_modisco_finds_planted_motifs_with_their_sign_region_and_name():
    """Contributions made by hand (no model): a word that raises the score in one region, one
    that lowers it in another, background noise. TF-MoDISco must find both, TOMTOM must name
    them among decoy motifs, and their seqlets must lie in the planted regions."""
    from plantt.motifs import DiscoverySettings, discover_patterns, match_patterns, seqlet_table

    rng = np.random.default_rng(0)
    n, length = 200, 400
    raise_word, lower_word = "GATCCGTAAGCT", "TTTACCAGGA"
    codes = rng.integers(0, 4, (n, length)).astype(np.uint8)
    hypothetical = rng.normal(0.0, 0.01, (n, 4, length))
    for row in range(n):
        for word, (lo, hi), effect in ((raise_word, (40, 180), 1.0), (lower_word, (250, 380), -1.0)):
            start = int(rng.integers(lo, hi - len(word)))
            word_codes = np.array(["ACGT".index(b) for b in word])
            codes[row, start:start + len(word)] = word_codes
            hypothetical[row, :, start:start + len(word)] += effect * (
                np.eye(4)[word_codes].T - 0.25)
    patterns = discover_patterns(codes, hypothetical, DiscoverySettings())
    decoys = {f"decoy_{i}": word_pwm("".join(rng.choice(list("ACGT"), 10)), 0.9).T
              for i in range(30)}
    known = {"raise": word_pwm(raise_word).T, "lower": word_pwm(lower_word).T, **decoys}
    matches = match_patterns(patterns, known, max_q=0.05)
    best = matches.groupby("pattern").head(1).set_index("pattern")
    by_id = {p.id: p for p in patterns}
    for motif, sign, (lo, hi) in (("raise", 1, (40, 180)), ("lower", -1, (250, 380))):
        hits = [by_id[pid] for pid, row in best.iterrows() if row["motif"] == motif]
        assert hits, (motif, best)
        top = max(hits, key=lambda p: p.n_seqlets)
        assert top.sign == sign
        inside = ((top.seqlets["start"] >= lo - 5) & (top.seqlets["end"] <= hi + 5)).mean()
        assert inside >= 0.7, (motif, inside)
    assert not best["motif"].str.startswith("decoy").any()
    genes = pd.DataFrame({"fold": 0, "species": "sp", "gene_id": [f"g{i}" for i in range(n)]})
    seqlets = seqlet_table(patterns, genes)
    assert len(seqlets) == sum(p.n_seqlets for p in patterns)
    first = patterns[0].seqlets.iloc[0]
    assert seqlets.iloc[0]["gene_id"] == f"g{first['example']}"
    assert (seqlets["end"] - seqlets["start"] > 0).all()


def _tiny_cv(tmp_path, length=80, n_genes=12):
    from plantt.models import save_model

    codes = np.random.default_rng(10).integers(0, 4, (n_genes, length)).astype(np.uint8)
    write_two_fold_inputs(tmp_path, codes)
    models = {}
    for fold in (0, 1):
        torch.manual_seed(fold)
        models[fold] = tmp_path / "models" / f"fold_{fold}"
        save_model(models[fold], build_model("plantt", "motif", seq_len=length).eval())
    return codes, models


def test_cv_contributions_explain_each_fold_with_its_own_model(tmp_path):
    from plantt.ism import load_plantt
    from plantt.motifs import cv_contributions

    codes, models = _tiny_cv(tmp_path)
    cv = cv_contributions(models, tmp_path / "encoded.npy", tmp_path / "genes.tsv",
                          tmp_path / "splits.tsv", max_genes_per_fold=4, n_references=3, seed=2)
    assert cv.genes["fold"].tolist() == [0] * 4 + [1] * 4
    assert cv.hypothetical.shape == (8, 4, codes.shape[1])
    assert (cv.codes == codes[cv.genes["row"].to_numpy()]).all()
    assert (cv.summary["max_abs_delta"] < 1e-4).all()
    fold_1 = cv.genes["fold"].to_numpy() == 1
    assert set(cv.genes.loc[fold_1, "gene_id"]) <= {f"g{i}" for i in range(6, 12)}
    direct = shuffled_reference_contributions(load_plantt(models[1]), cv.codes[fold_1],
                                              n_references=3, seed=2)
    # each fold's genes go through one call, so they get the same references as here
    np.testing.assert_allclose(cv.hypothetical[fold_1], direct.hypothetical, rtol=1e-5,
                               atol=1e-7)
    fold_0 = shuffled_reference_contributions(load_plantt(models[0]), cv.codes[fold_1],
                                              n_references=3, seed=2)
    assert not np.allclose(cv.hypothetical[fold_1], fold_0.hypothetical)


def test_motifs_command_names_what_is_wrong(tmp_path, capsys):
    from plantt.cli import main

    codes, models = _tiny_cv(tmp_path)
    common = ["--codes", str(tmp_path / "encoded.npy"), "--genes", str(tmp_path / "genes.tsv"),
              "--splits", str(tmp_path / "splits.tsv"), "--out-dir", str(tmp_path / "out")]
    assert main(["motifs", "--models", str(tmp_path), *common]) == 1
    assert "no fold_<k> model directories" in capsys.readouterr().err
    assert main(["motifs", "--models", str(tmp_path / "models"), "--folds", "0", "3",
                 *common]) == 1
    assert "fold(s) [3]" in capsys.readouterr().err
    bad = tmp_path / "bad.meme"
    bad.write_text("not a motif file\n")
    assert main(["motifs", "--models", str(tmp_path / "models"), "--meme", str(bad),
                 *common]) == 1
    assert "bad.meme" in capsys.readouterr().err


def test_decoys_keep_width_and_columns_and_are_never_reported():
    from plantt.motifs import Pattern, column_shuffled_decoys, match_patterns

    known = {"gbox": word_pwm("CCACGTGGCA").T, "tata": word_pwm("CTATAAATACC").T}
    decoys = column_shuffled_decoys(known, 4, seed=1)
    assert len(decoys) == 8
    for name, matrix in decoys.items():
        original = known[name.split(":")[1]]
        assert matrix.shape == original.shape
        # the same columns (up to reverse complement), in another order
        key = sorted(map(tuple, np.round(np.maximum(original, original[::-1]).T, 6)))
        assert sorted(map(tuple, np.round(np.maximum(matrix, matrix[::-1]).T, 6))) == key

    def pattern(pid, ppm):
        return Pattern(pid, 1, ppm, ppm, ppm, pd.DataFrame(columns=["example", "start", "end",
                                                                    "revcomp"]))

    decoy_name, decoy = next(iter(decoys.items()))
    queries = [pattern("gbox_like", word_pwm("CCACGTGGCA", 0.9)), pattern("a_decoy", decoy.T)]
    matches = match_patterns(queries, known, max_q=0.05, decoys_per_motif=4, seed=1)
    assert not matches["motif"].str.startswith("decoy").any()
    assert matches.loc[matches["pattern"] == "gbox_like", "motif"].iloc[0] == "gbox"
    assert "a_decoy" not in set(matches["pattern"])


def test_null_threshold_passes_the_planted_windows_and_nothing_from_chance():
    from plantt.motifs import null_seqlet_threshold, window_sums

    rng = np.random.default_rng(3)
    n, length, window = 200, 500, 15
    real = rng.normal(0.0, 0.01, (n, length))
    real[rng.random((n, length)) < 0.6] = 0.0  # a ReLU model leaves most positions at zero
    planted = rng.choice(n, 30, replace=False)
    for row in planted:
        real[row, 200:210] += 0.5
    null = rng.normal(0.0, 0.01, (100, length))
    null[rng.random(null.shape) < 0.6] = 0.0
    cut = null_seqlet_threshold(real, null, window, 0.2)
    assert cut.fdr <= 0.2 and cut.n_windows == n * (length - window + 1)
    # every window holding a whole planted block passes; chance never reaches the threshold
    assert window_sums(real[planted], window)[:, 195:201].min() >= cut.threshold
    assert cut.threshold > np.quantile(np.abs(window_sums(null, window)), 0.99)
    # windows that overlap a planted block, and at most the false share on top of them
    planted_windows = len(planted) * (10 + window - 1)
    assert planted_windows < cut.passing_fraction * cut.n_windows <= planted_windows / (1 - 0.2) * 1.5
    # a null as strong as the data admits nothing
    same = null_seqlet_threshold(null, null, window, 0.2)
    assert same.passing_fraction == 0.0 and same.threshold == float("inf")
    with pytest.raises(ValueError, match="shorter than the window"):
        null_seqlet_threshold(real[:, :10], null[:, :10], window, 0.2)


def _sparse_planted_contributions(rng, n, length, words, faint_word=None):
    """Codes and hypothetical contributions that are exactly zero but at the planted words (as a
    ReLU model's DeepLift is), and optionally faint copies of ``faint_word`` anywhere."""
    codes = rng.integers(0, 4, (n, length)).astype(np.uint8)
    hypothetical = np.zeros((n, 4, length))
    for row in range(n):
        for word, (lo, hi), effect in words:
            start = int(rng.integers(lo, hi - len(word)))
            word_codes = np.array(["ACGT".index(b) for b in word])
            codes[row, start:start + len(word)] = word_codes
            hypothetical[row, :, start:start + len(word)] += effect * (
                np.eye(4)[word_codes].T - 0.25)
        if faint_word is not None:
            start = int(rng.integers(0, length - len(faint_word)))
            word_codes = np.array(["ACGT".index(b) for b in faint_word])
            codes[row, start:start + len(faint_word)] = word_codes
            hypothetical[row, :, start:start + len(faint_word)] += rng.uniform(0.03, 0.07) * (
                np.eye(4)[word_codes].T - 0.25)
    return codes, hypothetical


def test_modisco_with_the_shuffled_null_keeps_faint_chance_copies_out():
    """Sparse contributions: a word with a strong effect in its region, faint copies of it
    anywhere (what a model gives chance resemblances). With the null (contributions that hold only
    faint copies), the pattern's seqlets are the planted instances; a null as strong as the data
    yields no pattern at all."""
    from plantt.motifs import DiscoverySettings, discover_patterns, match_patterns

    rng = np.random.default_rng(1)
    word = "GATCCGTAAGCT"
    region = (150, 300)
    codes, hypothetical = _sparse_planted_contributions(rng, 300, 400, [(word, region, 1.0)],
                                                        faint_word=word)
    null_codes, null_hyp = _sparse_planted_contributions(rng, 60, 400, [], faint_word=word)
    null_actual = (null_hyp * np.eye(5)[null_codes][:, :, :4].transpose(0, 2, 1)).sum(axis=1)
    patterns = discover_patterns(codes, hypothetical, DiscoverySettings(), null_actual)
    matches = match_patterns(patterns, {"word": word_pwm(word).T,
                                        **{f"decoy_{i}": word_pwm("".join(rng.choice(
                                            list("ACGT"), 12)), 0.9).T for i in range(20)}})
    hits = [p for p in patterns if p.id in set(matches.loc[matches["motif"] == "word",
                                                           "pattern"])]
    assert hits and all(p.sign == 1 for p in hits)
    seqlets = pd.concat([p.seqlets for p in hits])
    centre = (seqlets["start"] + seqlets["end"]) / 2
    assert ((centre >= region[0]) & (centre < region[1])).mean() >= 0.85
    strong_null = (hypothetical * np.eye(5)[codes][:, :, :4].transpose(0, 2, 1)).sum(axis=1)
    assert discover_patterns(codes, hypothetical, DiscoverySettings(), strong_null) == []


def _recovery_tables(grammar):
    from plantt.attribution import grammar_window_regions

    regions = {name: (lo, hi) for name, lo, hi in grammar_window_regions(grammar)}
    patterns, seqlets, matches = [], [], []

    def add(pid, sign, motif, q, inside, outside):
        lo, hi = regions[motif]
        patterns.append({"pattern": pid, "sign": sign})
        for i in range(inside + outside):
            centre = (lo + hi) // 2 if i < inside else (hi + 200 if hi + 200 < 3000 else lo - 200)
            seqlets.append({"pattern": pid, "start": centre - 5, "end": centre + 5,
                            "revcomp": False})
        matches.append({"pattern": pid, "motif": motif, "p_value": q / 10, "q_value": q,
                        "offset": 0, "orientation": "+"})

    add("pos_0", 1, "gbox_like", 1e-4, 8, 2)      # recovered
    add("pos_1", 1, "tata_like", 1e-4, 5, 5)      # only half in its region
    add("pos_2", 1, "silencer_like", 1e-4, 10, 0)  # wrong sign: the silencer lowers expression
    add("pos_3", 1, "tcp_like", 0.2, 10, 0)       # not a significant match
    add("neg_0", -1, "are_like", 1e-3, 3, 7)      # a weaker candidate for are_like ...
    add("neg_1", -1, "are_like", 1e-3, 9, 1)      # ... and the one that recovers it
    # neg_1 also resembles puf_like, but its best match is are_like: it does not count for puf
    matches.append({"pattern": "neg_1", "motif": "puf_like", "p_value": 1e-3, "q_value": 1e-2,
                    "offset": 0, "orientation": "+"})
    return pd.DataFrame(patterns), pd.DataFrame(matches), pd.DataFrame(seqlets)


def test_planted_motif_recovery_needs_the_best_match_the_sign_and_the_region():
    from plantt.motifs import RECOVERY_COLUMNS, planted_motif_recovery

    grammar = load_grammar(None)
    patterns, matches, seqlets = _recovery_tables(grammar)
    table = planted_motif_recovery(patterns, matches, seqlets, grammar).set_index("motif")
    assert list(table.reset_index().columns) == RECOVERY_COLUMNS
    assert table.index.tolist() == [m.name for p in grammar.processes for m in p.motifs]
    assert table.loc["gbox_like", "recovered"] and table.loc["gbox_like", "pattern"] == "pos_0"
    assert table.loc["gbox_like", "fraction_in_region"] == pytest.approx(0.8)
    assert not table.loc["tata_like", "recovered"]
    assert table.loc["tata_like", "fraction_in_region"] == pytest.approx(0.5)
    assert not table.loc["silencer_like", "recovered"]
    assert table.loc["silencer_like", "sign"] == -1
    assert table.loc["silencer_like", "pattern_sign"] == 1
    assert table.loc["tcp_like", "pattern"] == "" and not table.loc["tcp_like", "recovered"]
    assert table.loc["are_like", "pattern"] == "neg_1" and table.loc["are_like", "recovered"]
    assert table.loc["puf_like", "pattern"] == ""
    assert table["recovered"].sum() == 2
    stricter = planted_motif_recovery(patterns, matches, seqlets, grammar,
                                      min_fraction_in_region=0.85).set_index("motif")
    assert not stricter.loc["gbox_like", "recovered"] and stricter.loc["are_like", "recovered"]
    only = planted_motif_recovery(patterns, matches, seqlets, grammar, ["stability"])
    assert set(only["process"]) == {"stability"}


def test_motifs_command_writes_every_output_even_without_patterns(tmp_path):
    from plantt.cli import main
    from plantt.motifs import RECOVERY_COLUMNS

    codes, models = _tiny_cv(tmp_path)
    out = tmp_path / "out"
    assert main(["motifs", "--models", str(tmp_path / "models"), "--codes",
                 str(tmp_path / "encoded.npy"), "--genes", str(tmp_path / "genes.tsv"),
                 "--splits", str(tmp_path / "splits.tsv"), "--out-dir", str(out),
                 "--max-genes-per-fold", "0", "--references", "2", "--null-genes-per-fold", "3",
                 "--upstream", "20", "--gene-part", "20", "--downstream", "20"]) == 0
    for name in ("patterns.tsv", "matches.tsv", "seqlets.tsv", "recovery.tsv", "modisco.h5",
                 "patterns.png", "contributions_summary.tsv", "grammar.meme"):
        assert (out / name).stat().st_size > 0, name
    summary = pd.read_csv(out / "contributions_summary.tsv", sep="\t")
    assert summary["n_genes"].tolist() == [6, 6] and summary["n_null_sequences"].tolist() == [3, 3]
    recovery = pd.read_csv(out / "recovery.tsv", sep="\t")
    assert list(recovery.columns) == RECOVERY_COLUMNS
    assert main(["motifs", "--models", str(tmp_path / "models"), "--codes",
                 str(tmp_path / "encoded.npy"), "--genes", str(tmp_path / "genes.tsv"),
                 "--splits", str(tmp_path / "splits.tsv"), "--out-dir", str(tmp_path / "denovo"),
                 "--references", "2", "--no-match", "--upstream", "20", "--gene-part", "20",
                 "--downstream", "20"]) == 0
    assert pd.read_csv(tmp_path / "denovo" / "recovery.tsv", sep="\t").empty
    assert pd.read_csv(tmp_path / "denovo" / "matches.tsv", sep="\t").empty
    assert not (tmp_path / "denovo" / "grammar.meme").exists()


def test_jaspar_matrices_name_a_pattern_by_its_factor():
    """A pattern shaped like a JASPAR plant matrix is matched to that matrix first, on the strand
    it lies on, and the match names the factor."""
    from plantt.jaspar import load_jaspar
    from plantt.motifs import Pattern, jaspar_motifs, match_patterns

    database = jaspar_motifs("JASPAR2024", "CORE", "plants")
    assert len(database) == len(load_jaspar("JASPAR2024", "CORE", "plants")) > 500
    abf1 = next(m for m in load_jaspar("JASPAR2024", "CORE", "plants") if m.name == "ABF1")
    key = f"{abf1.id} ABF1"
    assert database[key].shape == (4, abf1.width)
    np.testing.assert_allclose(database[key].sum(axis=0), 1.0)

    def pattern(pid, ppm):
        return Pattern(pid, 1, ppm, ppm, ppm, pd.DataFrame(columns=["example", "start", "end",
                                                                    "revcomp"]))

    # the matrix on the other strand, a little flattened, as a pattern would come out of seqlets
    reverse = 0.8 * abf1.probabilities[::-1, ::-1] + 0.05
    matches = match_patterns([pattern("abf1_like", reverse)], database, max_q=0.05)
    best = matches.drop_duplicates("pattern").set_index("pattern")
    assert best.loc["abf1_like", "motif"] == key
    assert best.loc["abf1_like", "orientation"] == "-"
    # other G-box factors match too, after it
    assert matches["motif"].str.contains("ABF|ABI5|GBF|bZIP", regex=True).sum() > 1


def test_motifs_command_names_patterns_from_jaspar_beside_the_grammar(tmp_path):
    """--jaspar writes database_matches.tsv (and the pattern table's database_match) beside the
    grammar's matches; without --meme or --grammar the database is the known set itself."""
    from plantt.cli import main
    from plantt.motifs import MATCH_COLUMNS

    _tiny_cv(tmp_path)
    common = ["--models", str(tmp_path / "models"), "--codes", str(tmp_path / "encoded.npy"),
              "--genes", str(tmp_path / "genes.tsv"), "--splits", str(tmp_path / "splits.tsv"),
              "--references", "2", "--upstream", "20", "--gene-part", "20", "--downstream", "20",
              "--jaspar", "JASPAR2024", "CORE", "plants"]
    assert main(["motifs", *common, "--grammar", "default", "--out-dir",
                 str(tmp_path / "both")]) == 0
    assert (tmp_path / "both" / "grammar.meme").is_file()
    database = pd.read_csv(tmp_path / "both" / "database_matches.tsv", sep="\t")
    assert list(database.columns) == MATCH_COLUMNS
    patterns = pd.read_csv(tmp_path / "both" / "patterns.tsv", sep="\t")
    assert {"best_match", "database_match", "database_q_value"} <= set(patterns.columns)
    assert main(["motifs", *common, "--out-dir", str(tmp_path / "database")]) == 0
    assert not (tmp_path / "database" / "grammar.meme").exists()
    assert (pd.read_csv(tmp_path / "database" / "matches.tsv", sep="\t").shape
            == pd.read_csv(tmp_path / "database" / "database_matches.tsv", sep="\t").shape)
    assert main(["motifs", *common[:-4], "--jaspar", "JASPAR1999", "CORE", "plants",
                 "--out-dir", str(tmp_path / "bad")]) == 1
