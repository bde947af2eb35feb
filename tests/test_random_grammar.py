"""benchmarks/random_grammar.py: grammars drawn from a seed, inside the ranges it promises."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO
from plantt.grammar import load_grammar
from plantt.simulate import SimulationSettings, simulate

SCRIPT = REPO / "benchmarks" / "random_grammar.py"


def _module():
    spec = importlib.util.spec_from_file_location("random_grammar", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


random_grammar = _module()


def test_the_same_seed_writes_the_same_file_and_another_seed_another(tmp_path):
    paths = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out = tmp_path / f"{name}.yaml"
        subprocess.run([sys.executable, str(SCRIPT), "--seed", str(seed), "--out", str(out)],
                       check=True, capture_output=True)
        paths.append(out)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("seed", range(40))
def test_drawn_grammars_stay_in_the_promised_ranges(seed, tmp_path):
    out = tmp_path / "grammar.yaml"
    random_grammar.write_grammar(random_grammar.draw_grammar(seed), out, seed)
    grammar = load_grammar(out)
    transcription, stability = grammar.processes
    assert 3 <= len(transcription.motifs) <= 6
    assert 2 <= len(stability.motifs) <= 5
    six_mers_seen: set[str] = set()
    for process in grammar.processes:
        assert 0.4 <= process.noise_sd_log2 <= 0.8
        for motif in process.motifs:
            assert 6 <= len(motif.sequence) <= 15
            assert not any(stop in motif.sequence for stop in ("TAA", "TAG", "TGA"))
            assert 0.5 <= abs(motif.effect_log2) <= 1.5
            assert motif.max_count in (1, 2)
            lo, hi = random_grammar.WINDOW_HALF[motif.anchor]
            assert lo <= motif.start < motif.end <= hi
            assert motif.end - motif.start >= len(motif.sequence) + 10
            mine = random_grammar._kmers(motif.sequence)
            assert not mine & six_mers_seen, f"{motif.name} shares a 6-mer with another motif"
            six_mers_seen |= mine


def test_a_drawn_grammar_is_simulated_and_its_motifs_occur(tmp_path):
    grammar_file = tmp_path / "grammar.yaml"
    random_grammar.write_grammar(random_grammar.draw_grammar(3), grammar_file, 3)
    out = tmp_path / "demo"
    simulate(out, SimulationSettings(seed=2, genes_per_species=60, grammar=str(grammar_file),
                                     rnaseq_reads=200, proseq_reads=200))
    truth = pd.read_csv(out / "truth.tsv", sep="\t")
    for motif in load_grammar(grammar_file).motifs:
        # Planted in a share of ancestral genes (docs/grammar.md): present in some, not all.
        present = (truth[motif.name] > 0).mean()
        assert 0.05 < present < 0.95, (motif.name, present)


@pytest.mark.parametrize("seed", [201, 7])
def test_realistic_grammars_hold_known_and_novel_matrices_in_their_ranges(tmp_path, seed):
    out = tmp_path / "g.yaml"
    subprocess.run([sys.executable, str(SCRIPT), "--realistic", "--seed", str(seed), "--out",
                    str(out)], check=True, capture_output=True)
    again = tmp_path / "again.yaml"
    random_grammar.write_grammar(random_grammar.draw_realistic_grammar(seed), again, seed)
    assert out.read_bytes() == again.read_bytes()
    grammar = load_grammar(out)
    transcription = grammar.transcription.motifs
    assert 10 <= len(transcription) <= 24 and 3 <= len(grammar.stability.motifs) <= 8
    known = [m for m in transcription if m.matrix.id.startswith("MA")]
    assert 0 < len(known) < len(transcription)  # database and novel motifs both
    assert len({m.matrix.id for m in known}) == len(known)
    effects = [abs(m.effect_log2) for m in grammar.motifs]
    assert all(0.1 <= e <= 1.3 for e in effects)
    assert all(0.8 <= m.min_score <= 0.9 and 20 <= m.edge_bp <= 120 for m in grammar.motifs)
    assert all(m.strand == "sense" for m in grammar.stability.motifs)
    assert 1.2 <= grammar.transcription.noise_sd_log2 <= 2.2
    assert 0.05 <= grammar.evolution.substitution_rate <= 0.12
    assert grammar.evolution.transposon_rate > 0 and grammar.evolution.annotation_offset_sd >= 10
    assert all(0.32 <= sp.gc <= 0.42 for sp in grammar.species.values())
