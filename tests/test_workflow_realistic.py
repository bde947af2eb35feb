"""The `small_data` recipe on realistic data, through the workflow's own rules.

The shipped demo is simulated from the realistic grammar (degenerate sites drawn from plant TF
matrices and from motifs in no database, many weak effects, indels and transposons between
orthologs, most of the variance outside the window: docs/grammar.md). Here it is simulated,
preprocessed with the real tools and one fold trained with the shipped config's recipe, next to
the k-mer ridge at the config's full grid (k 6-10, blocks of 250-750 bp, penalties 0.1-1e7, all
chosen on the validation pairs) on the same fold. What the realistic-data issue asks of the
recipe is asserted: at least half of the ceiling (the grammar's own score of the test pairs) and
at least the tuned k-mer ridge + 0.10.

A second realistic grammar, drawn by ``benchmarks/random_grammar.py --realistic --seed 201`` (the
seed fixed before any run; tests/data/grammar_realistic_201.yaml), is held to the margin over the
k-mer ridge and to 0.4 of its ceiling: the recipe does not reach the issue's half of the ceiling
there (benchmarks/README.md, "Realistic data").

Measured (2026-12-07, 2-core VM, CPU; identical on reruns): the realistic demo, proseq fold 0,
PlanTT 0.383, k-mer ridge 0.209, ceiling 0.599 (0.64 of it); the drawn grammar, rnaseq3p fold 0,
PlanTT 0.224, k-mer ridge 0.076, ceiling 0.463 (0.48 of it). One assay and one fold each keep the
suite short (about 3.5 minutes per case on 2 cores, a minute of it the simulation).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from scipy.stats import spearmanr

from conftest import REPO, copy_config, run_snakemake
from plantt.cv import grammar_values
from plantt.recipes import train_settings

FOLD = 0
KMER_MARGIN = 0.10
# (grammar, assay, share of the ceiling asserted): the 0.5 where the recipe reaches it
CASES = [("realistic", "proseq", 0.5),
         (str(REPO / "tests" / "data" / "grammar_realistic_201.yaml"), "rnaseq3p", 0.4)]


@pytest.fixture(scope="module")
def realistic_workdirs(tmp_path_factory: pytest.TempPathFactory):
    made: dict[tuple[str, str], Path] = {}

    def workdir(grammar: str, assay: str) -> Path:
        if (grammar, assay) not in made:
            path = tmp_path_factory.mktemp(Path(grammar).stem)
            copy_config(path, grammar)
            # only the assay trained here: the other's reads would be mapped for nothing
            sheet = path / "config" / "samples.tsv"
            samples = pd.read_csv(sheet, sep="\t", dtype=str, keep_default_na=False)
            samples[samples["assay"] == assay].to_csv(sheet, sep="\t", index=False)
            made[(grammar, assay)] = path
        return made[(grammar, assay)]

    return workdir


def test_the_shipped_demo_is_the_realistic_one() -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config["demo"] is True
    assert config["demo_settings"]["grammar"] == "realistic"
    assert config["train"]["recipe"] == "small_data"


@pytest.mark.parametrize(("grammar", "assay", "share"), CASES,
                         ids=["realistic_demo", "drawn_seed_201"])
def test_small_data_reaches_the_ceiling_share_and_beats_the_tuned_kmer_ridge(
        realistic_workdirs, grammar: str, assay: str, share: float) -> None:
    workdir = realistic_workdirs(grammar, assay)
    folders = {model: f"results/models/{assay}/{model}/fold_{FOLD}" for model in ("plantt", "kmer")}
    run_snakemake(workdir, *(f"{f}/predictions.tsv" for f in folders.values()),
                  "--set-threads", "train_fold=2", "train_kmer=2", timeout=3000)
    scores = {}
    for model, folder in folders.items():
        table = pd.read_csv(workdir / folder / "predictions.tsv", sep="\t",
                            dtype={"gene_a": str, "gene_b": str})
        scores[model] = float(spearmanr(table["prediction"], table["target"])[0])
    # the ceiling: the simulated grammar's own difference of each test pair
    truth = pd.read_csv(workdir / "resources/demo/truth.tsv", sep="\t", dtype={"gene_id": str})
    grammar_value = grammar_values(truth, assay)
    difference = (grammar_value.reindex(table["gene_a"]).to_numpy()
                  - grammar_value.reindex(table["gene_b"]).to_numpy())
    scores["ceiling"] = float(spearmanr(difference, table["target"])[0])
    assert 0.3 < scores["ceiling"] < 0.8, scores  # realistic: most variance outside the window
    assert scores["plantt"] >= share * scores["ceiling"], scores
    assert scores["plantt"] >= scores["kmer"] + KMER_MARGIN, scores
    # the k-mer ridge was tuned over the config's whole grid, on the validation pairs
    kmer_grid = yaml.safe_load((workdir / "config/config.yaml").read_text())["train"]["kmer"]
    selection = pd.read_csv(workdir / folders["kmer"] / "selection.tsv", sep="\t")
    assert set(selection["k"]) == set(kmer_grid["ks"])
    assert set(selection["block_length"]) == set(kmer_grid["block_lengths"])
    # and PlanTT with the config's recipe: known matrices and k-mers as detectors, fitted readout
    recipe = train_settings(yaml.safe_load((workdir / "config/config.yaml").read_text())["train"],
                            "plantt")
    model = json.loads((workdir / folders["plantt"] / "model.json").read_text())
    assert model["preset"] == recipe["preset"]
    assert len(model["provenance"]["seeded_matrices"]) == recipe["seed_stem_matrices"]
    assert model["provenance"]["readout_fit"]
