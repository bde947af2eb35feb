"""The published PlanTT-CNN through the workflow (target ``published_all``) and into the report.

The released weights and example (CC BY-NC) are never part of the repository: the tests that need
them read ``../shared/plantt_published/`` next to the repository and are skipped when it is absent.
The run is kept to about a minute on one thread: two records (the published example as promoter and
terminator, and a copy with both halves shuffled), ISM within 20 bp of the junction of one record,
and one edit inside a 40-base window.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, SHARED, run_snakemake

PUBLISHED = SHARED / "plantt_published"
WEIGHTS = PUBLISHED / "planttcnn.pt"
EXAMPLE = PUBLISHED / "example_seq.txt"
PUBLISHED_SUM = 1226.256  # the published summed embedding of example + example (raw rank sign)
FLANK = 20
JUNCTION = 1500

needs_weights = pytest.mark.skipif(
    not (WEIGHTS.is_file() and EXAMPLE.is_file()),
    reason=f"published PlanTT-CNN weights not found at {PUBLISHED} (CC BY-NC, never in the repo; "
           "put models/planttcnn.pt and example_seq.txt of the PlanTT repository there)")

pytestmark = pytest.mark.workflow


def shuffled(seq: str, seed: int) -> str:
    return "".join(np.random.default_rng(seed).permutation(list(seq)))


def published_config(weights: Path) -> str:
    """The section as `snakemake --config` text: its numbers reach the workflow as strings."""
    section = {
        "weights": str(weights), "promoter": "inputs/promoter.fa",
        "terminator": "inputs/terminator.fa", "ism": ["example"], "ism_flank": FLANK,
        "edit_budget": 1, "edit_protect": [f"0-{JUNCTION - FLANK}", f"{JUNCTION + FLANK}-3000"],
    }
    return "published=" + json.dumps(section)


@pytest.fixture(scope="module")
def records() -> dict[str, tuple[str, str]]:
    """(promoter, terminator) of each input record."""
    example = EXAMPLE.read_text().strip()
    return {"example": (example, example),
            "shuffled": (shuffled(example, 1), shuffled(example, 2))}


@pytest.fixture(scope="module")
def published_run(tmp_path_factory: pytest.TempPathFactory,
                  records: dict[str, tuple[str, str]]) -> Path:
    """A work directory after `snakemake published_all` and `--report report.zip` (1 core)."""
    workdir = tmp_path_factory.mktemp("published")
    shutil.copytree(REPO / "config", workdir / "config")
    inputs = workdir / "inputs"
    inputs.mkdir()
    for i, role in enumerate(("promoter", "terminator")):
        (inputs / f"{role}.fa").write_text("".join(f">{name}\n{halves[i]}\n"
                                                   for name, halves in records.items()))
    # targets first: --config takes every value up to the next option
    run_snakemake(workdir, "published_all", "--cores", "1", "--config",
                  published_config(WEIGHTS), timeout=900)
    run_snakemake(workdir, "--report", str(workdir / "report.zip"), "published_all", "--cores",
                  "1", "--config", published_config(WEIGHTS), timeout=300)
    return workdir


def read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False)


@needs_weights
def test_predictions_equal_plantt_predict(published_run: Path,
                                          records: dict[str, tuple[str, str]],
                                          tmp_path: Path) -> None:
    from plantt.cli import main

    predictions = read_tsv(published_run / "results/published/predictions.tsv")
    scores = read_tsv(published_run / "results/published/scores.tsv").set_index("id")
    # no pairs configured: every record against the first one
    assert predictions[["id_a", "id_b"]].values.tolist() == [["shuffled", "example"]]
    row = predictions.iloc[0]

    # the same pair, built here from the raw halves, through `plantt predict`
    (tmp_path / "a.fa").write_text(">shuffled\n" + "".join(records["shuffled"]) + "\n")
    (tmp_path / "b.fa").write_text(">example\n" + "".join(records["example"]) + "\n")
    direct = tmp_path / "direct.tsv"
    assert main(["predict", "--model", str(published_run / "results/published/model"),
                 "--fasta-a", str(tmp_path / "a.fa"), "--fasta-b", str(tmp_path / "b.fa"),
                 "--out", str(direct)]) == 0
    expected = read_tsv(direct)["prediction"].iloc[0]
    assert abs(expected) > 1.0  # a real contrast
    assert row["prediction"] == pytest.approx(expected, rel=1e-5, abs=1e-3)

    # signs: house convention, and the published (rank) sign alongside
    assert row["more_expressed"] == ("shuffled" if row["prediction"] > 0 else "example")
    assert row["published_prediction"] == pytest.approx(-row["prediction"], rel=1e-7)
    assert row["prediction"] == pytest.approx(
        scores.loc["shuffled", "score"] - scores.loc["example", "score"], abs=1e-2)
    assert scores.loc["example", "published_score"] == pytest.approx(PUBLISHED_SUM, abs=5e-3)
    assert scores["published_score"].tolist() == pytest.approx((-scores["score"]).tolist())


@needs_weights
def test_ism_scores_the_junction_flank_and_marks_the_junction(published_run: Path) -> None:
    import torch

    from plantt.encoding import encode
    from plantt.ism import load_scorer, sequence_scores

    base = published_run / "results/published/ism/example"
    ism = read_tsv(base / "ism.tsv")
    assert sorted(set(ism["position"])) == list(range(JUNCTION - FLANK, JUNCTION + FLANK))
    assert len(ism) == 3 * 2 * FLANK and set(ism["gene"]) == {"example"}
    for name in ("heatmap.png", "zoom.png"):
        assert (base / name).read_bytes()[:4] == b"\x89PNG"
    # the strongest substitution, rescored with full tower passes
    best = ism.loc[ism["effect"].abs().idxmax()]
    inputs = (published_run / "results/published/inputs.fa").read_text().split("\n")
    codes = encode(inputs[inputs.index(">example") + 1])
    mutant = codes.copy()
    mutant[int(best["position"])] = "ACGT".index(best["alt"])
    torch.set_num_threads(1)
    model = load_scorer(published_run / "results/published/model")
    ref, mut = sequence_scores(model, np.stack([codes, mutant]), batch_size=1)
    assert best["effect"] == pytest.approx(mut - ref, abs=2e-2)


@needs_weights
def test_edit_stays_outside_the_protected_ranges(published_run: Path) -> None:
    edits = read_tsv(published_run / "results/published/edit/example.tsv")
    assert len(edits) == 1
    assert JUNCTION - FLANK <= edits["position"].iloc[0] < JUNCTION + FLANK
    assert edits["step_effect"].iloc[0] > 0  # direction up


@needs_weights
def test_report_holds_the_published_predictions_and_ism(published_run: Path) -> None:
    with zipfile.ZipFile(published_run / "report.zip") as report:
        names = report.namelist()
        by_name = {Path(n).name: n for n in names}
        for expected in ("predictions.tsv", "scores.tsv", "predictions.png", "ism.tsv",
                         "heatmap.png", "zoom.png", "example.tsv"):
            assert expected in by_name, names
        table = report.read(by_name["predictions.tsv"]).decode()
        html = report.read(by_name["report.html"]).decode(errors="replace")
    assert table == (published_run / "results/published/predictions.tsv").read_text()
    assert "Published PlanTT-CNN" in html
    assert "junction (index 1500)" in html  # the ISM caption, rendered


def test_default_config_plans_no_published_job(tmp_path: Path) -> None:
    """Without published.weights the demo's plan is unchanged: no published_* job."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    proc = run_snakemake(tmp_path, "-n", timeout=300)
    plan = proc.stdout + proc.stderr
    assert "simulate_demo" in plan and "interpret_ism" in plan
    assert "published_" not in plan


def test_published_all_without_weights_is_a_clear_error(tmp_path: Path) -> None:
    """Asking for the stage while it is off names the missing key instead of doing nothing."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
           "--cores", "1", "-n", "published_all"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "published.weights" in proc.stdout + proc.stderr
