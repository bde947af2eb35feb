"""PlanTT's demo recipe on grammars other than the default one (tests/data/grammar_*.yaml).

The recipe (the ``motif`` preset, detectors seeded from the fold's k-mer ridge) must learn whatever
grammar the data hold, not the default grammar's motifs or regions. Each extra grammar is
simulated, preprocessed with the real tools and trained through the workflow's own rules; PlanTT's
test Spearman must beat a ridge on 6-mer counts (the issue's reference baseline) on the same fold
by 0.05. One assay and one fold keep the suite short: the far grammar (motifs of 6-15 bases up to
the window's ends, weaker effects, more noise) on 3'-RNA-seq. (The dense grammar,
tests/data/grammar_dense.yaml, on PRO-seq was a second case until the realistic grammars'
tests, tests/test_workflow_realistic.py, took its place and its minutes of the suite.)

Measured on fold 0 (2026-12-04, the demo's recipe: fitted readout, seeds of k = 6, 8, 10, 1 epoch;
see benchmarks/README.md): grammar_far rnaseq3p PlanTT 0.71 against 0.57 for the 6-mer ridge (0.60
for the k-mer baseline at its defaults); grammar_dense proseq 0.63 against 0.47.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from scipy.stats import spearmanr

from conftest import REPO, copy_config, run_snakemake, six_mer_ridge_spearman
from plantt.recipes import train_settings

FOLD = 0
MARGIN = 0.05
CASES = [("grammar_far.yaml", "rnaseq3p")]


@pytest.fixture(scope="module")
def grammar_workdirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One demo directory per extra grammar, simulated on first use and shared by the tests."""
    made: dict[str, Path] = {}

    def workdir(grammar: str) -> Path:
        if grammar not in made:
            path = tmp_path_factory.mktemp(grammar.removesuffix(".yaml"))
            copy_config(path, REPO / "tests" / "data" / grammar)
            # Only the assay this grammar is trained on: the others' reads would be mapped and
            # counted for nothing but their labels, which join the shared fold assignment.
            sheet = path / "config" / "samples.tsv"
            samples = pd.read_csv(sheet, sep="\t", dtype=str, keep_default_na=False)
            samples = samples[samples["assay"] == dict(CASES)[grammar]]
            samples.to_csv(sheet, sep="\t", index=False)
            made[grammar] = path
        return made[grammar]

    return workdir


@pytest.mark.parametrize(("grammar", "assay"), CASES)
def test_plantt_beats_a_six_mer_ridge_on_another_grammar(grammar_workdirs, grammar: str,
                                                         assay: str) -> None:
    tmp_path = grammar_workdirs(grammar)
    grammar_path = REPO / "tests" / "data" / grammar
    folder = f"results/models/{assay}/plantt/fold_{FOLD}"
    run_snakemake(tmp_path, f"{folder}/predictions.tsv", "--set-threads", "train_fold=2",
                  timeout=3000)
    # the grammar the data were simulated from is the one asked for
    used = (tmp_path / "resources/demo/grammar.yaml").read_text()
    assert used == grammar_path.read_text()
    predictions = pd.read_csv(tmp_path / f"{folder}/predictions.tsv", sep="\t")
    plantt = float(spearmanr(predictions["prediction"], predictions["target"])[0])
    ridge = six_mer_ridge_spearman(tmp_path, assay, FOLD)
    assert plantt >= ridge + MARGIN, {"plantt": plantt, "six_mer_ridge": ridge}
    model = json.loads((tmp_path / f"{folder}/model.json").read_text())
    # trained with the config's recipe: its tower, its known matrices, k-mers in the rest
    recipe = train_settings(yaml.safe_load((tmp_path / "config/config.yaml").read_text())["train"],
                            "plantt")
    assert model["preset"] == recipe["preset"]
    provenance = model["provenance"]
    assert len(provenance["seeded_matrices"]) == recipe["seed_stem_matrices"]
    assert 0 < len(provenance["seeded_kmers"]) <= recipe["seed_stem_kmers"] * len(
        recipe["seed_stem_ks"])


def test_motif_discovery_recovers_another_grammar(grammar_workdirs) -> None:
    """Motif discovery (rule discover_motifs) on the far grammar (7 motifs of 6-15 bases, from
    the window's upstream end to its downstream end): at least 6 of its 7 motifs (8 of 9 is the
    issue's bar on the default grammar) recovered with their sign, >= 70% of the seqlets in their
    regions. One fold, its model, 200 of its test genes and 3 references, to keep the suite short
    (measured: 7 of 7, 82-100% of the seqlets in the region; every fold with 100 genes each and 5
    references: 7 of 7, benchmarks/README.md). The shuffled-label control's emptiness is checked
    on the demo (test_workflow_training.py)."""
    from conftest import recovered_motifs
    from plantt.attribution import ASSAY_PROCESSES
    from plantt.grammar import load_grammar

    grammar_file = "grammar_far.yaml"
    workdir = grammar_workdirs(grammar_file)
    assay = "rnaseq3p"
    base = f"results/motifs/{assay}"
    # a second config file, merged key by key over config/config.yaml
    one_fold = workdir / "motifs_one_fold.yaml"
    one_fold.write_text(f"motifs:\n  folds: [{FOLD}]\n  max_genes_per_fold: 200\n"
                        "  references: 3\n")
    run_snakemake(workdir, f"{base}/plantt/recovery.tsv",
                  "--set-threads", "train_fold=2", "--configfile", str(one_fold), timeout=3000)
    grammar = load_grammar(REPO / "tests" / "data" / grammar_file)
    processes = ASSAY_PROCESSES[assay]
    found = recovered_motifs(workdir / base / "plantt", grammar, processes)
    assert len(found) >= 6, found
    summary = pd.read_csv(workdir / base / "plantt/contributions_summary.tsv", sep="\t")
    assert summary["fold"].tolist() == [FOLD] and summary["n_genes"].tolist() == [200]
