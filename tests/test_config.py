"""The workflow config: unknown keys are refused with the closest known key named, and text from
``snakemake --config`` is read as the number, boolean or null the schema asks for."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SCHEMAS
from plantt.config import coerce_to_schema, unknown_keys

SCHEMA = yaml.safe_load((SCHEMAS / "config.schema.yaml").read_text())
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_the_shipped_config_has_only_known_keys():
    assert unknown_keys(CONFIG, SCHEMA) == []


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.__setitem__("spilts", c.pop("splits")),
     "unknown key 'spilts': did you mean 'splits'?"),
    (lambda c: c["motifs"].__setitem__("refrences", 3),
     "unknown key 'motifs.refrences': did you mean 'motifs.references'?"),
    (lambda c: c["train"]["kmer"].__setitem__("zz", [6]),
     "unknown key 'train.kmer.zz': 'train.kmer' has only ks, block_lengths, block_length, alphas"),
    (lambda c: c["proseq"]["metagene"].__setitem__("bin_sizes", 5),
     "unknown key 'proseq.metagene.bin_sizes': did you mean 'proseq.metagene.bin_size'?"),
])
def test_a_misspelled_key_is_named_with_the_closest_known_one(change, message):
    config = copy.deepcopy(CONFIG)
    change(config)
    found = unknown_keys(config, SCHEMA)
    assert [str(u) for u in found] == [message]


def test_open_sections_stay_open():
    """train.settings takes any TrainSettings field (checked by the training job itself)."""
    config = copy.deepcopy(CONFIG)
    config["train"]["settings"]["any_field"] = 1
    assert unknown_keys(config, SCHEMA) == []


def test_command_line_text_becomes_what_the_schema_expects():
    given = {"splits": {"folds": "3", "seed": "x", "validation_fraction": "0.2"},
             "motifs": {"folds": ["0", "2"], "max_genes_per_fold": "null", "meme": "null",
                        "enabled": "false"},
             "demo_settings": {"grammar": "1"}}
    coerced = coerce_to_schema(given, SCHEMA)
    assert coerced["splits"] == {"folds": 3, "seed": "x", "validation_fraction": 0.2}
    # the schema then rejects "x"; a string-or-null key keeps its text ("null" may be a file name)
    assert coerced["motifs"] == {"folds": [0, 2], "max_genes_per_fold": None, "meme": "null",
                                 "enabled": False}
    assert coerced["demo_settings"] == {"grammar": "1"}
    assert coerce_to_schema(CONFIG, SCHEMA) == CONFIG


def test_the_workflow_stops_on_a_misspelled_key_before_any_job(tmp_path: Path) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    base = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", str(REPO / "Snakefile"),
            "-d", str(tmp_path)]
    proc = subprocess.run([*base, "--config", 'spilts={"folds": 3}'], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "unknown key 'spilts': did you mean 'splits'?" in proc.stdout + proc.stderr
    assert "rule " not in proc.stdout
    # a nested number on the command line is read as one (it used to fail the schema as text)
    proc = subprocess.run([*base, "--config", 'splits={"folds": 3}'], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "cv_splits" in proc.stdout
    # the workflow's default profile is found beside the Snakefile from any directory
    assert f"workflow specific profile {REPO / 'profiles/default'}" in proc.stderr


def test_every_profile_limits_job_starts_per_five_seconds() -> None:
    # the default 100/1s leaves one more 1-s timer per finished job in Snakemake 9's scheduler
    # (profiles/default/config.yaml): every profile of this workflow sets the same rate per 5 s
    for name in ("default", "local", "slurm"):
        profile = yaml.safe_load((REPO / "profiles" / name / "config.yaml").read_text())
        assert profile["max-jobs-per-timespan"] == "500/5s", name


def test_tool_threads_come_from_the_profile_and_are_capped_by_cores(tmp_path: Path) -> None:
    """STAR, cutadapt and samtools take the threads of the job: the profile's set-threads, lowered
    to --cores where that is smaller."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    bam = "results/star/medicago_rnaseq3p_1/medicago_rnaseq3p_1.bam.csi"

    def planned_threads(*options: str) -> dict[str, int]:
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s",
                               str(REPO / "Snakefile"), "-d", str(tmp_path), bam, *options],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        # (the target first: --set-threads takes every value up to the next option)
        threads, rule = {}, None
        for line in (proc.stdout + proc.stderr).splitlines():
            if line.startswith("rule "):
                rule = line.split()[1].rstrip(":")
            elif line.strip().startswith("threads:") and rule:
                threads[rule] = int(line.split(":")[1])
        return threads

    local = ["--workflow-profile", str(REPO / "profiles/local")]
    wide = planned_threads("--cores", "16", *local)
    assert {rule: wide.get(rule) for rule in ("star_index", "star_align", "trim_single_end",
                                              "samtools_index")} == {
        "star_index": 8, "star_align": 8, "trim_single_end": 4, "samtools_index": 4}
    narrow = planned_threads("--cores", "2", *local)
    assert narrow["star_align"] == 2 and narrow["trim_single_end"] == 2
    chosen = planned_threads("--cores", "16", *local, "--set-threads", "star_align=3")
    assert chosen["star_align"] == 3
