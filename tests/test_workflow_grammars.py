"""PlanTT's demo recipe on grammars other than the default one (tests/data/grammar_*.yaml).

The recipe (the ``motif`` preset, detectors seeded from the fold's k-mer ridge) must learn whatever
grammar the data hold, not the default grammar's motifs or regions. Each extra grammar is
simulated, preprocessed with the real tools and trained through the workflow's own rules; PlanTT's
test Spearman must beat a ridge on 6-mer counts (the issue's reference baseline) on the same fold
by 0.05. One assay per grammar and one fold keep the suite short: the far grammar (motifs of 6-15
bases up to the window's ends, weaker effects, more noise) on 3'-RNA-seq, the dense one on
PRO-seq.

Measured on fold 0 (2026-12-01, 3 epochs; see benchmarks/README.md): grammar_far rnaseq3p
PlanTT 0.67 against 0.57 for the 6-mer ridge (0.60 for the k-mer baseline at its defaults);
grammar_dense proseq 0.59 against 0.47.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import spearmanr

from conftest import REPO, run_snakemake, six_mer_ridge_spearman

FOLD = 0
MARGIN = 0.05
CASES = [("grammar_far.yaml", "rnaseq3p"), ("grammar_dense.yaml", "proseq")]


@pytest.mark.parametrize(("grammar", "assay"), CASES)
def test_plantt_beats_a_six_mer_ridge_on_another_grammar(tmp_path: Path, grammar: str,
                                                         assay: str) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    grammar_path = REPO / "tests" / "data" / grammar
    config_file = tmp_path / "config" / "config.yaml"
    text = config_file.read_text()
    assert text.count("\n  grammar: null\n") == 1
    config_file.write_text(text.replace("\n  grammar: null\n", f"\n  grammar: {grammar_path}\n"))
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
    assert model["preset"] == "motif" and len(model["provenance"]["seeded_kmers"]) == 96
