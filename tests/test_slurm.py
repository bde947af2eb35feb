"""profiles/slurm on a real SLURM cluster: one node on localhost (.ci/slurm-cluster.sh), with munge,
slurmdbd + MariaDB, slurmctld and slurmd, and a GPU declared without hardware.

The cluster test recomputes a small part of the local demo run (the Cohen's d labels and folds of one
assay) and trains one fold of one model through ``--workflow-profile profiles/slurm``, then checks
SLURM's own accounting records (the training job asked for a GPU, the others did not) and compares
every output with the local run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, run_snakemake

pytestmark = pytest.mark.slurm

PROFILE = REPO / "profiles" / "slurm"
CLUSTER_SCRIPT = REPO / ".ci" / "slurm-cluster.sh"
# Daemons and client commands the cluster needs (Debian: slurm-wlm, slurmdbd, munge, mariadb-server).
SLURM_TOOLS = ("munged", "mariadbd", "mariadb-install-db", "slurmdbd", "slurmctld", "slurmd",
               "sbatch", "sacct", "sacctmgr")
# Where Debian puts daemons: not on every user's PATH.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])

ASSAY, MODEL, FOLD = "rnaseq3p", "plantt", 0
FOLD_DIR = f"results/models/{ASSAY}/{MODEL}/fold_{FOLD}"
# Outputs recomputed on the cluster, all compared with the local run's.
RECOMPUTED = [f"results/labels/{ASSAY}.tsv", f"results/splits/{ASSAY}.tsv",
              f"results/splits/{ASSAY}.summary.tsv"]
TRAINED = [f"{FOLD_DIR}/{name}" for name in ("weights.pt", "model.json", "history.tsv",
                                              "predictions.tsv", "curves.png")]


def _require(*, daemons: bool) -> None:
    """Skip (outside CI) or fail (in CI, which must install everything) when a tool is missing."""
    missing = []
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        missing.append("snakemake-executor-plugin-slurm (pip install -e '.[cluster]')")
    if daemons:
        missing += [tool for tool in SLURM_TOOLS if shutil.which(tool, path=SEARCH_PATH) is None]
        if os.geteuid() != 0:
            missing.append("root (slurmd launches the jobs)")
    if missing:
        reason = (f"needs {', '.join(missing)}; install SLURM with 'bash .ci/slurm-cluster.sh install'"
                  if daemons else f"needs {', '.join(missing)}")
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide this test's tools (.ci/run): {reason}")
        pytest.skip(reason)


def _profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def _job_blocks(output: str) -> list[tuple[str, str]]:
    """(rule, resources line) of every job that Snakemake lists in a dry run."""
    blocks = re.split(r"^(?:local)?rule (\w+):$", output, flags=re.MULTILINE)
    jobs = []
    for rule, body in zip(blocks[1::2], blocks[2::2], strict=True):
        resources = re.search(r"^\s+resources: (.*)$", body, flags=re.MULTILINE)
        jobs.append((rule, resources.group(1) if resources else ""))
    return jobs


def test_dry_run_asks_for_a_gpu_for_training_jobs_only(tmp_path: Path) -> None:
    _require(daemons=False)
    shutil.copytree(REPO / "config", tmp_path / "config")
    proc = run_snakemake(tmp_path, "-n", "--workflow-profile", str(PROFILE), "all", "train_all",
                         "interpret_all", timeout=300)
    jobs = _job_blocks(proc.stdout)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    # 2 assays in the demo; the ridge baselines are fitted by their own CPU rules (train_kmer,
    # train_pwm)
    torch_models = [m for m in config["train"]["models"] if m not in ("kmer", "pwm")]
    n_train = 2 * len(torch_models) * config["splits"]["folds"]
    train = [res for rule, res in jobs if rule == "train_fold"]
    assert sum(rule == "train_kmer" for rule, _ in jobs) == 2 * config["splits"]["folds"]
    assert sum(rule == "train_pwm" for rule, _ in jobs) == 2 * config["splits"]["folds"]
    others = [(rule, res) for rule, res in jobs if rule != "train_fold"]
    assert len(train) == n_train
    assert len(others) > 100  # the whole demo, from simulation to interpretation
    gpu_resources = _profile()["set-resources"]["train_fold"]
    for res in train:
        for key in ("gpu", "cpus_per_gpu", "mem_mb"):
            assert f"{key}={gpu_resources[key]}" in res.split(", "), res
    for rule, res in others:
        assert "gpu" not in res, f"rule {rule} asks for a GPU: {res}"
    # every job says how much memory and time it needs (the rule's own value, computed from its
    # inputs in common.smk, or the profile's default)
    for rule, res in jobs:
        names = {item.split("=")[0] for item in res.split(", ")}
        assert {"mem_mb", "runtime"} <= names, f"rule {rule}: {res}"
    star = {res for rule, res in jobs if rule == "star_index"}
    assert all("mem_mb=4000" in res.split(", ") for res in star)  # demo genomes: the floor


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _clone_run(source: Path, dest: Path) -> None:
    """A copy of a finished run that Snakemake sees as up to date (modification times kept).

    The large folders are hard-linked: Snakemake removes a job's old outputs before running it,
    which unlinks the copy's names only. Logs and Snakemake's metadata, which are rewritten in
    place, are copied.
    """
    dest.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name in ("results", "resources"):
            shutil.copytree(entry, dest / entry.name, copy_function=_link_or_copy, symlinks=True)
        elif entry.is_dir():
            shutil.copytree(entry, dest / entry.name, symlinks=True,
                            ignore=shutil.ignore_patterns("slurm_logs", "locks"))
        else:
            shutil.copy2(entry, dest / entry.name)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A started one-node cluster: yields the environment for its client commands; stops it."""
    _require(daemons=True)
    root = tmp_path_factory.mktemp("slurm")
    start = subprocess.run(["bash", str(CLUSTER_SCRIPT), "start", str(root)], capture_output=True,
                           text=True, timeout=300)
    try:
        assert start.returncode == 0, f"the cluster did not start:\n{start.stdout}\n{start.stderr}"
        # As `source DIR/env` would (DIR/bin holds an srun that knows where slurm.conf is).
        yield {**os.environ, "SLURM_CONF": str(root / "etc" / "slurm.conf"),
               "PATH": os.pathsep.join([str(root / "bin"), os.environ.get("PATH", "")])}
    finally:
        stop = subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", str(root)],
                              capture_output=True, text=True, timeout=300)
        assert stop.returncode == 0, f"the cluster did not stop:\n{stop.stdout}\n{stop.stderr}"
        assert not (root / "pids").exists(), "daemons left running"


def _sacct(job_ids: list[str], env: dict) -> pd.DataFrame:
    fields = ["JobIDRaw", "JobName", "Comment", "State", "ReqTRES", "AllocTRES"]
    proc = subprocess.run(["sacct", "-X", "--parsable2", "--noheader", "-j", ",".join(job_ids),
                           "-o", ",".join(fields)], capture_output=True, text=True, env=env,
                          check=True)
    rows = [line.split("|") for line in proc.stdout.splitlines() if line]
    return pd.DataFrame(rows, columns=fields).set_index("JobIDRaw")


def _tres(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(",") if item)


@pytest.mark.workflow
def test_demo_fold_trains_through_slurm(demo_workdir: Path, slurm_cluster: dict,
                                        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # The cluster recomputes one assay's labels and folds and trains one fold; the local copy of the
    # demo run trains the same fold for comparison.
    cluster_run, local_run = tmp_path / "cluster", tmp_path / "local"
    _clone_run(demo_workdir, cluster_run)
    _clone_run(demo_workdir, local_run)
    for rel in RECOMPUTED:
        (cluster_run / rel).unlink()
    for run in (cluster_run, local_run):
        shutil.rmtree(run / FOLD_DIR, ignore_errors=True)
    targets = [RECOMPUTED[1], TRAINED[3]]
    # Both runs train for one epoch (the demo's 4 take minutes on 2 cores) on 2 threads (CPU
    # training is deterministic for a given seed and thread count; a SLURM job's Snakemake would
    # otherwise use the profile's 4 threads where the machine has them).
    one_epoch = tmp_path / "one_epoch.yaml"
    one_epoch.write_text("train:\n  model_settings:\n    plantt:\n      max_epochs: 1\n")
    # (Options taking several values: after the targets.)
    same_training = ["--configfile", str(one_epoch), "--set-threads", "train_fold=2"]

    # The cluster run, under `timeout -s INT`: one SIGINT makes Snakemake scancel its jobs and exit.
    # (--foreground: otherwise timeout signals its whole process group too, and the second SIGINT
    # interrupts Snakemake's scancel, leaving the jobs running.) Status checks start after 2 s
    # instead of the profile's 40.
    log = tmp_path / "snakemake.slurm.log"
    cmd = ["timeout", "--foreground", "-s", "INT", "-k", "60", "900",
           sys.executable, "-m", "snakemake", *targets,
           "-s", str(REPO / "Snakefile"), "-d", str(cluster_run), "--workflow-profile", str(PROFILE),
           "--slurm-init-seconds-before-status-checks", "2", "--show-failed-logs", *same_training]
    with log.open("w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=slurm_cluster,
                              timeout=1000)
    text = log.read_text()
    assert proc.returncode == 0, f"snakemake on SLURM failed ({proc.returncode}):\n{text[-8000:]}"

    # Every job went through sbatch, once (no retry, no duplicate): labels, folds, training.
    submitted = re.findall(r"^Job (\d+) has been submitted with SLURM jobid (\d+) .*$", text,
                           flags=re.MULTILINE)
    with capsys.disabled():  # into the CI log, also when the test passes
        print("\nSLURM submissions (from the Snakemake log):")
        print("\n".join(line for line in text.splitlines() if "submitted with SLURM jobid" in line))
    assert len(submitted) == 3 and len({job for job, _ in submitted}) == 3, text[-8000:]
    slurm_ids = [slurm_id for _, slurm_id in submitted]
    records = _sacct(slurm_ids, slurm_cluster)
    assert sorted(records.index) == sorted(slurm_ids)
    assert (records["State"] == "COMPLETED").all(), records
    assert records["JobName"].str.startswith(_profile()["slurm-jobname-prefix"] + "_").all()

    # SLURM's accounting: the training job asked for and got the profile's GPU, CPUs and memory;
    # the others (default resources) no GPU.
    profile = _profile()
    gpu_res = profile["set-resources"]["train_fold"]
    is_train = records["Comment"].str.startswith("rule_train_fold_")
    assert is_train.sum() == 1, records
    train = records[is_train].iloc[0]
    assert _tres(train["ReqTRES"]).get("gres/gpu") == str(gpu_res["gpu"])
    alloc = _tres(train["AllocTRES"])
    assert alloc.get("gres/gpu") == str(gpu_res["gpu"])
    assert alloc["cpu"] == str(gpu_res["cpus_per_gpu"] * gpu_res["gpu"])
    assert alloc["mem"] == f"{gpu_res['mem_mb']}M"
    for job_id, row in records[~is_train].iterrows():
        assert row["Comment"].startswith(("rule_cohens_d_labels_", "rule_cv_splits_")), row
        assert "gpu" not in row["ReqTRES"] + row["AllocTRES"], (job_id, row)
        assert _tres(row["AllocTRES"])["mem"] == f"{profile['default-resources']['mem_mb']}M"

    # The training job saw a GPU request (require_gpu) and, with no GPU on this node, used the
    # CPU fallback that the demo's config allows.
    train_log = (cluster_run / f"logs/train/{ASSAY}.{MODEL}.fold_{FOLD}.log").read_text()
    assert "no GPU visible: training on the CPU (allow_cpu_fallback is set)" in train_log

    # The outputs match the local run's: labels and folds byte for byte, the fold's predictions and
    # weights exactly.
    for rel in RECOMPUTED:
        assert (cluster_run / rel).read_bytes() == (demo_workdir / rel).read_bytes(), rel
    run_snakemake(local_run, *targets, *same_training)
    for rel in TRAINED:
        assert (cluster_run / rel).stat().st_size > 0, rel
    cluster_pred = pd.read_csv(cluster_run / TRAINED[3], sep="\t")
    local_pred = pd.read_csv(local_run / TRAINED[3], sep="\t")
    assert len(cluster_pred) > 100
    pd.testing.assert_frame_equal(cluster_pred, local_pred)
    _assert_same_weights(cluster_run / TRAINED[0], local_run / TRAINED[0])


def _assert_same_weights(a: Path, b: Path) -> None:
    import torch

    state_a = torch.load(a, map_location="cpu", weights_only=True)
    state_b = torch.load(b, map_location="cpu", weights_only=True)
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
