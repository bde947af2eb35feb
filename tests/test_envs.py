"""The conda environments the rules name: every one exists and pins its packages, and every rule whose
script imports PyTorch (directly, through the package, or through the `plantt` subcommand it runs)
uses an environment that has it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO
from plantt.cli import COMMANDS

RULES = REPO / "workflow" / "rules"
TORCH_ENVS = {"pytorch.yaml", "motifs.yaml"}


def _rules() -> dict[str, dict[str, str]]:
    """rule name -> {"conda": env file name, "script": script file name} (where the rule has it)."""
    rules: dict[str, dict[str, str]] = {}
    for smk in sorted(RULES.glob("*.smk")):
        rule = None
        lines = smk.read_text().splitlines()
        for k, line in enumerate(lines):
            found = re.match(r"^rule (\w+):", line)
            if found:
                rule = found.group(1)
                rules[rule] = {}
            elif rule and line.strip() in ("conda:", "script:"):
                value = lines[k + 1].strip().strip('"')
                rules[rule][line.strip()[:-1]] = Path(value).name
    return rules


def test_every_environment_exists_and_pins_its_packages() -> None:
    rules = _rules()
    assert len(rules) > 30
    used = {info["conda"] for info in rules.values() if "conda" in info}
    assert len(used) == len({*used} & {p.name for p in (REPO / "envs").glob("*.yaml")})
    for name in used:
        env = yaml.safe_load((REPO / "envs" / name).read_text())
        assert "nodefaults" in env["channels"], name
        for dependency in env["dependencies"]:
            if isinstance(dependency, dict):  # pip: [...]
                assert all("==" in d for d in dependency["pip"]), (name, dependency)
            elif not dependency.startswith("pip "):
                assert re.fullmatch(r"[\w.-]+ =[\w.]+", dependency), (name, dependency)
    plantt = yaml.safe_load((REPO / "envs" / "plantt.yaml").read_text())["dependencies"]
    assert not any(str(d).startswith(("pytorch", "captum")) for d in plantt)


def test_rules_importing_torch_have_it_and_the_others_do_not_need_it() -> None:
    rules = {name: info for name, info in _rules().items() if "script" in info and "conda" in info}
    imports = {}
    for name, info in rules.items():
        text = (REPO / "workflow" / "scripts" / info["script"]).read_text()
        modules = set(re.findall(r"^(?:from|import) (plantt[\w.]*)", text, flags=re.MULTILINE))
        modules |= {COMMANDS[command][0]
                    for command in re.findall(r'run_plantt\(\["([\w-]+)"', text)}
        imports[name] = sorted(modules)
    # one process, PyTorch made unimportable: which scripts' plantt imports still load?
    probe = """
import importlib, json, sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "captum"):
            raise ImportError("blocked " + name)
sys.meta_path.insert(0, Blocked())
result = {}
for rule, modules in json.loads(sys.argv[1]).items():
    try:
        for module in modules:
            importlib.import_module(module)
        result[rule] = True
    except ImportError:
        result[rule] = False
print(json.dumps(result))
"""
    proc = subprocess.run([sys.executable, "-c", probe, json.dumps(imports)],
                          capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    loads_without_torch = json.loads(proc.stdout)
    # (a module that imports torch only inside a function is not caught here: those rules may
    # use the PyTorch environment without failing this test)
    for name, info in rules.items():
        if not loads_without_torch[name]:
            assert info["conda"] in TORCH_ENVS, f"rule {name} imports torch, env {info['conda']}"
    assert sum(not ok for ok in loads_without_torch.values()) >= 5  # training, interpretation
