"""The demo through the workflow's training, evaluation and interpretation rules.

The ``demo_trained`` fixture (conftest.py) trains PlanTT, the Washburn classifier, the shuffled-label
control and the k-mer baseline on every fold of the demo's rnaseq3p assay with the demo's settings
(PlanTT with the motif preset and seeded detectors), evaluates them and interprets PlanTT, all with
``snakemake``. What is asserted here is what the demo's grammar makes possible: the model learns
sequence -> expression better than a 6-mer ridge on the same folds, the classifier learns the sign,
and PlanTT attributes its predictions to the bases where the simulator planted its motifs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import (
    DEMO_TRAIN_ASSAY,
    DEMO_TRAIN_CONFIG,
    demo_trained_targets,
    recovered_motifs,
    run_snakemake,
    six_mer_ridge_spearman,
)
from plantt.attribution import (
    ASSAY_PROCESSES,
    attribution_peak_enrichment,
    grammar_window_regions,
    motif_occurrence_mask,
)
from plantt.ism import load_plantt
from plantt.windows import DEFAULT_LAYOUT

ASSAY = DEMO_TRAIN_ASSAY
FOLDS = 5

# Measured on this demo (motif preset with a fitted readout, 1 epoch, Washburn 1, seeds from config;
# identical across runs on CPU):
# see the tests' docstrings and benchmarks/README.md. The margins are the models issue's goals.
MIN_SPEARMAN_MARGIN = 0.5
SIX_MER_MARGIN = 0.05
MIN_SPEARMAN = 0.80
MIN_WASHBURN_AUROC = 0.75
MODELS = {"plantt", "washburn", "plantt_shuffled", "kmer"}


def demo_kmer_grid() -> dict:
    import yaml

    config = yaml.safe_load((Path(__file__).parents[1] / "config/config.yaml").read_text())
    return config["train"]["kmer"]


def per_fold(workdir: Path) -> pd.DataFrame:
    return pd.read_csv(workdir / f"results/metrics/{ASSAY}/metrics_per_fold.tsv", sep="\t")


def test_plantt_beats_a_six_mer_ridge_and_the_shuffled_control(demo_trained: Path) -> None:
    """PlanTT's mean test Spearman over the five folds is at least the 6-mer ridge's + 0.05 on
    the same folds, and at least 0.80; the shuffled-label control learns nothing."""
    table = per_fold(demo_trained)
    # the simulator's grammar joins the models in the demo: the ceiling
    assert set(table["model"]) == MODELS | {"grammar"}
    for model in MODELS | {"grammar"}:
        assert sorted(table.loc[table["model"] == model, "fold"]) == list(range(FOLDS))
    mean = table.groupby("model")["spearman"].mean()
    assert mean["grammar"] > mean["plantt"] - 0.02, mean.to_dict()
    ridge = float(np.mean([six_mer_ridge_spearman(demo_trained, ASSAY, f) for f in range(FOLDS)]))
    assert mean["plantt"] >= ridge + SIX_MER_MARGIN, {**mean.to_dict(), "six_mer": ridge}
    assert mean["plantt"] >= MIN_SPEARMAN, mean.to_dict()
    assert mean["plantt"] - mean["plantt_shuffled"] >= MIN_SPEARMAN_MARGIN, mean.to_dict()
    auroc = table.groupby("model")["auroc"].mean()
    assert auroc["plantt"] > auroc["plantt_shuffled"] + 0.3, auroc.to_dict()


def test_washburn_classifier_learns_the_sign(demo_trained: Path) -> None:
    table = per_fold(demo_trained)
    washburn = table[table["model"] == "washburn"]
    assert washburn["auroc"].mean() >= MIN_WASHBURN_AUROC, washburn["auroc"].to_dict()
    assert (washburn["balanced_accuracy"] > 0.6).all()  # both classes predicted, not one


def test_kmer_baseline_learns_the_grammar_on_every_fold(demo_trained: Path) -> None:
    """The k-mer ridge (k and alpha chosen on each fold's validation pairs) is the baseline the
    CNN has to beat. Measured on this demo: test Spearman 0.85 on fold 0 (k = 8 chosen; 0.77 with
    k = 6 alone), against 0.03 for the shuffled-label control."""
    table = per_fold(demo_trained)
    kmer = table[table["model"] == "kmer"].set_index("fold")
    shuffled = table[table["model"] == "plantt_shuffled"].set_index("fold")
    assert (kmer["spearman"] > 0.6).all(), kmer["spearman"].to_dict()
    assert (kmer["spearman"] > shuffled["spearman"] + 0.4).all()
    assert (kmer["auroc"] > 0.8).all(), kmer["auroc"].to_dict()
    for fold in range(FOLDS):
        folder = demo_trained / f"results/models/{ASSAY}/kmer/fold_{fold}"
        selection = pd.read_csv(folder / "selection.tsv", sep="\t")
        assert int(selection["chosen"].sum()) == 1
        # every k and block length of the config's grid was fitted, whichever was chosen
        grid = demo_kmer_grid()
        assert set(selection["k"]) == set(grid["ks"])
        assert set(selection["block_length"]) == set(grid["block_lengths"])


def test_motif_attribution_table_has_every_motif_of_the_assay(demo_trained: Path) -> None:
    """One row per motif the assay depends on, plus the pooled row; the ratios are measured and
    written (the >= 3x goal per motif is asserted in the test below)."""
    table = pd.read_csv(demo_trained / f"results/interpret/{ASSAY}/motif_attribution.tsv",
                        sep="\t")
    from plantt.grammar import load_grammar

    expected = [m.name for p in load_grammar(None).processes if p.name in ASSAY_PROCESSES[ASSAY]
                for m in p.motifs]
    assert list(table["motif"]) == [*expected, "all"]
    seen = table[(table["motif"] != "all") & (table["n_occurrences"] > 0)]
    assert len(seen) >= len(expected) - 2  # weak motifs may be absent from 10 genes per fold
    assert (seen["ratio"] > 0).all() and np.isfinite(seen["ratio"]).all()


def test_every_fold_was_trained_with_the_configured_settings(demo_trained: Path) -> None:
    import yaml

    from plantt.recipes import train_settings

    train = yaml.safe_load((demo_trained / "config/config.yaml").read_text())["train"]
    # the recipe's settings per kind: the shuffled control is a PlanTT model and trains as one
    expected = {kind: train_settings(train, kind) for kind in ("plantt", "washburn")}
    differing = {key for key in expected["washburn"]
                 if expected["washburn"][key] != expected["plantt"].get(key)}
    assert differing  # so that the test tells the kinds apart
    for model in ("plantt", "plantt_shuffled", "washburn"):
        kind = "washburn" if model == "washburn" else "plantt"
        for fold in range(FOLDS):
            folder = demo_trained / f"results/models/{ASSAY}/{model}/fold_{fold}"
            history = pd.read_csv(folder / "history.tsv", sep="\t")
            # the fitted readout kept as a candidate is recorded as epoch 0
            kept = expected[kind].get("fit_readout") and expected[kind].get("keep_fitted_readout")
            assert len(history) == expected[kind]["max_epochs"] + bool(kept), (model, fold)
            info = json.loads((folder / "model.json").read_text())
            used = info["provenance"]["train_settings"]
            for key, value in expected[kind].items():
                value = list(value) if isinstance(value, list | tuple) else value
                recorded = used[key]
                recorded = list(recorded) if isinstance(recorded, list | tuple) else recorded
                assert recorded == value, (model, fold, key)
            # the fitted readout is recorded where it was asked for, and only there
            assert bool(info["provenance"]["readout_fit"]) == bool(expected[kind].get(
                "fit_readout", False)), (model, fold)
            assert (folder / "curves.png").stat().st_size > 1000
            assert not list(folder.glob("*checkpoint*"))  # removed after a finished run
            log = (demo_trained / f"logs/train/{ASSAY}.{model}.fold_{fold}.log").read_text()
            assert "cpu" in log and "seed" in log
    predictions = pd.read_csv(demo_trained / f"results/metrics/{ASSAY}/predictions.tsv", sep="\t")
    splits = pd.read_csv(demo_trained / f"results/splits/{ASSAY}.tsv", sep="\t")
    # every test pair of every fold is predicted once per model (the kmer baseline too)
    n_test = int((splits["set"] == "test").sum())
    assert (predictions.groupby("model").size() == n_test).all()
    summary = pd.read_csv(demo_trained / f"results/metrics/{ASSAY}/metrics_summary.tsv", sep="\t")
    spearman = summary[(summary["model"] == "plantt") & (summary["metric"] == "spearman")]
    assert int(spearman["n_folds"].iloc[0]) == FOLDS and spearman["sd"].iloc[0] > 0


def test_trained_models_are_antisymmetric(demo_trained: Path) -> None:
    codes = np.load(demo_trained / "results/windows/encoded.npy", mmap_mode="r")
    rows = np.random.default_rng(0).choice(codes.shape[0], 16, replace=False)
    a = torch.from_numpy(np.array(codes[rows[:8]]))
    b = torch.from_numpy(np.array(codes[rows[8:]]))
    from plantt.encoding import soft_one_hot

    for fold in (0, 3):
        model = load_plantt(demo_trained / f"results/models/{ASSAY}/plantt/fold_{fold}")
        with torch.inference_mode():
            xa, xb = soft_one_hot(a), soft_one_hot(b)
            ab, ba, aa = model(xa, xb), model(xb, xa), model(xa, xa)
        assert ab.abs().max() > 1e-3  # a trained model does tell sequences apart
        torch.testing.assert_close(ab, -ba, atol=1e-5, rtol=0)
        torch.testing.assert_close(aa, torch.zeros_like(aa), atol=1e-6, rtol=0)


def test_attribution_peaks_where_the_grammar_planted_its_motifs(demo_trained: Path) -> None:
    """The motifs the assay depends on carry the attribution.

    Measured on the full demo (motif preset, fitted readout, 1 epoch, 2026-12-04): every one of the
    nine motifs 99-203x the attribution elsewhere at its occurrences (pooled 136x; proseq's five
    transcription motifs 187-334x). The compact preset of before reached 4.7x pooled, and ime_like,
    silencer_like, stab_cds_like and cu_rich_like stayed at ~0.6-1.3x.
    """
    base = demo_trained / f"results/interpret/{ASSAY}"
    masked = DEFAULT_LAYOUT.masked_indices()
    processes = ASSAY_PROCESSES[ASSAY]
    # the mean |attribution| profile over the test genes of every fold vs the grammar's regions
    profile = pd.read_csv(base / "attribution_profile.tsv", sep="\t")
    regions = grammar_window_regions(processes=processes)
    by_region = attribution_peak_enrichment(profile, regions, exclude=masked)
    assert by_region["ratio"] > 1.4, by_region
    # (The share of the profile's top positions inside the regions is no longer asserted: the
    # regions cover 71% of the window, and with the small_data recipe's coarse readout bins and
    # known-matrix detectors that share sat at chance, 0.70 against 0.71, on 2026-12-07, while
    # the occurrences themselves held 64x the attribution elsewhere. The checks below, motif
    # occurrence by occurrence, are the sharp ones.)
    # gene by gene: the bases of the motif occurrences themselves, against every other base
    genes = np.load(base / "attribution_genes.npz")
    values = np.abs(genes["contribution"])
    occurrences = motif_occurrence_mask(genes["codes"], processes=processes)
    by_occurrence = attribution_peak_enrichment(values, occurrences, exclude=masked)
    assert by_occurrence["ratio"] > 3.0, by_occurrence
    assert by_occurrence["top_fraction_inside"] > 8 * by_occurrence["inside_fraction"]
    # per motif (the table the workflow writes): the models issue's goal, >= 3x for every motif
    table = pd.read_csv(base / "motif_attribution.tsv", sep="\t")
    per_motif = table[(table["motif"] != "all") & (table["n_occurrences"] > 0)]
    per_motif = per_motif.set_index("motif")["ratio"]
    assert len(per_motif) >= 7, per_motif.to_dict()
    assert (per_motif >= 3.0).all(), per_motif.to_dict()
    pooled = float(table.loc[table["motif"] == "all", "ratio"].iloc[0])
    assert pooled == pytest.approx(by_occurrence["ratio"], rel=1e-5)  # %.6g in the TSV


def test_motif_discovery_recovers_the_planted_motifs_and_not_from_the_control(
        demo_trained: Path) -> None:
    """TF-MoDISco on the fold models' shuffled-reference contributions (rule discover_motifs):
    at least 8 of the 9 planted motifs matched by a pattern (TOMTOM q < 0.05 against the grammar's
    MEME file) with their sign and >= 70% of its seqlets in their region; the shuffled-label
    control's contributions give no pattern that matches a planted motif. With the config's
    settings (60 genes per fold, 3 references) measured 9 of 9, 88-100% of the seqlets in the
    region (100 genes and 5 references: 9 of 9, 85-100%); the control: no pattern at all
    (benchmarks/README.md)."""
    import h5py

    from plantt.grammar import load_grammar

    grammar = load_grammar(None)
    processes = ASSAY_PROCESSES[ASSAY]
    base = demo_trained / f"results/motifs/{ASSAY}"
    found = recovered_motifs(base / "plantt", grammar, processes)
    assert len(found) >= 8, found
    patterns = pd.read_csv(base / "plantt/patterns.tsv", sep="\t")
    assert set(patterns["sign"]) == {-1, 1}
    for pattern in patterns["pattern"]:
        assert (base / f"plantt/logos/{pattern}.png").stat().st_size > 1000
    with h5py.File(base / "plantt/modisco.h5") as h5:
        stored = sum(len(h5[group]) for group in ("pos_patterns", "neg_patterns") if group in h5)
    assert stored == len(patterns)
    summary = pd.read_csv(base / "plantt/contributions_summary.tsv", sep="\t")
    assert summary["fold"].tolist() == list(range(FOLDS))
    assert (summary["n_genes"] == 60).all() and (summary["n_references"] == 3).all()
    assert (summary["max_abs_delta"] < 1e-3).all()
    control = pd.read_csv(base / "plantt_shuffled/matches.tsv", sep="\t")
    planted = {m.name for p in grammar.processes for m in p.motifs}
    assert not set(control["motif"]) & planted, control
    assert recovered_motifs(base / "plantt_shuffled", grammar, processes) == set()


def test_report_includes_training_and_interpretation(demo_trained: Path) -> None:
    report = demo_trained / "report.html"
    run_snakemake(demo_trained, "--report", str(report), *demo_trained_targets(),
                  "--config", DEMO_TRAIN_CONFIG)
    text = report.read_text(errors="replace")
    assert report.stat().st_size > 10_000
    for expected in ("Model performance", "Interpretation", "Training", "Motifs"):
        assert expected in text
