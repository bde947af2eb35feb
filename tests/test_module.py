"""The workflow used as a Snakemake module from another directory (`module` + `use rule *`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO, copy_config

USING_SNAKEFILE = """configfile: "config/config.yaml"


module plantt:
    snakefile:
        "{snakefile}"
    config:
        config


use rule * from plantt as plantt_*
"""


def test_the_workflow_runs_as_a_module_of_another_workflow(tmp_path: Path) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "Snakefile").write_text(USING_SNAKEFILE.format(snakefile=REPO / "Snakefile"))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rules = re.findall(r"^rule (\w+):$", proc.stdout, flags=re.MULTILINE)
    assert rules and all(rule.startswith("plantt_") for rule in rules)
    # the whole chain, from the demo's simulation to the trained, interpreted models
    for needed in ("plantt_simulate_demo", "plantt_star_align", "plantt_train_fold",
                   "plantt_replicate_concordance", "plantt_interpret_ism"):
        assert needed in rules, needed
    # outputs are relative to the using workflow's directory
    assert re.search(r"^    output: resources/demo/", proc.stdout, flags=re.MULTILINE)


GIT_MODULE_SNAKEFILE = """import os

configfile: "config/config.yaml"


module plantt:
    snakefile:
        gitfile(repo_path="{repo}", path="plantt-workflow/Snakefile", ref="main")
    config:
        config


use rule * from plantt as plantt_*

print("PLANTT_PACKAGE=" + os.environ.get("PLANTT_PACKAGE", ""))
"""


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org",
                    "-c", "init.defaultBranch=main", *args],
                   cwd=cwd, check=True, capture_output=True, text=True)


def test_script_rules_run_from_a_module_fetched_from_git(tmp_path: Path) -> None:
    """A module fetched from git (gitfile, as github(...) but offline) has no clone on disk:
    Snakemake runs its scripts from the source cache, so a script may import nothing beside it, and
    the jobs import the installed package. The demo's first job (a script rule) must run, and the
    package's source for --use-conda environments is this repository at the module's revision."""
    # a repository holding this working tree (committed or not) in a folder, as a group's git host
    # might (Snakemake 9's gitfile() cannot include files from a top-level Snakefile: it joins the
    # folder "" as "/"; github() strips that)
    repository = tmp_path / "repository"
    source = repository / "plantt-workflow"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in files:
        if (REPO / name).is_file() and not name.startswith(("tests/", "benchmarks/")):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    _git("init", "-q", cwd=repository)
    _git("add", "-A", cwd=repository)
    _git("commit", "-q", "-m", "release", cwd=repository)

    user = tmp_path / "analysis"
    copy_config(user)  # the easy grammar: the quicker simulation is enough to run a script rule
    (user / "Snakefile").write_text(GIT_MODULE_SNAKEFILE.format(repo=repository))
    target = "resources/demo/species.tsv"
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", target],
                          cwd=user, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "plantt_simulate_demo" in proc.stdout + proc.stderr
    assert (user / target).is_file()
    assert (user / "resources/demo/genomes").is_dir()
    package = f"git+file://{repository.resolve().as_posix()}@main#subdirectory=plantt-workflow"
    assert f"PLANTT_PACKAGE={package}" in proc.stdout

    # what envs/*.post-deploy.sh does in a new --use-conda environment, here into a folder
    scripts = sorted((REPO / "envs").glob("*.post-deploy.sh"))
    assert {path.name for path in scripts} >= {f"{env}.post-deploy.sh" for env in
                                               ("plantt", "pytorch", "deeptools", "motifs")}
    assert len({path.read_text() for path in scripts}) == 1
    env = {**os.environ, "PLANTT_PACKAGE": package,
           "PIP_TARGET": str(tmp_path / "env"), "PATH": f"{Path(sys.executable).parent}"
           f"{os.pathsep}{os.environ['PATH']}", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    deploy = subprocess.run(["bash", str(scripts[0])], env=env, capture_output=True, text=True,
                            timeout=600)
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    assert (tmp_path / "env/plantt/rule_script.py").is_file()
    assert not (tmp_path / "env/torch").exists()  # --no-deps: the environment file has them


def test_package_source_names_the_repository_and_revision_the_workflow_came_from() -> None:
    from types import SimpleNamespace

    from plantt.rule_script import package_source

    github = SimpleNamespace(host="github.com", repo="lab/plantt-workflow", ref="v0.1.0",
                             path="workflow/rules")
    assert package_source(github) == "git+https://github.com/lab/plantt-workflow@v0.1.0"
    nested = SimpleNamespace(host="gitlab.com", repo="lab/tools", ref="abc123",
                             path="pipelines/plantt/workflow/rules")
    assert package_source(nested) == ("git+https://gitlab.com/lab/tools@abc123"
                                      "#subdirectory=pipelines/plantt")
    local_git = SimpleNamespace(repo_path="/data/repo", ref="main", path="workflow/rules")
    assert package_source(local_git) == "git+file:///data/repo@main"
    assert package_source(SimpleNamespace(path="/home/me/plantt-workflow/workflow/rules")) is None
    assert package_source(SimpleNamespace(host="github.com", repo="a/b", ref=None,
                                          path="workflow/rules")) is None
