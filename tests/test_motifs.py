"""plantt.motifs: dinucleotide shuffles, contributions against shuffled references (the input
TF-MoDISco needs) and known motifs as MEME files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_word_pwm_rejects_what_is_not_a_base():
    with pytest.raises(ValueError, match="'N' at 3"):
        word_pwm("ACNT")
