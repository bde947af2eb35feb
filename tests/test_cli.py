"""Every stage is reachable as a `plantt` subcommand with its own help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from plantt.cli import build_parser, main

EXPECTED = ["simulate", "count", "orthologs", "windows", "labels", "splits", "encode",
            "proseq-bigwig", "pause-index", "train", "evaluate", "predict", "fit", "attribute", "ism",
            "edit", "variants", "import-weights", "legacy-input"]


def test_all_subcommands_registered() -> None:
    parser = build_parser()
    choices = next(a.choices for a in parser._actions if getattr(a, "choices", None))
    assert set(EXPECTED) <= set(choices)


@pytest.mark.parametrize("command", EXPECTED)
def test_subcommand_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: plantt" in capsys.readouterr().out


def test_bad_input_is_a_clean_error(tmp_path) -> None:
    """An InputError reaches the user as one line naming the file, exit code 1, no traceback."""
    missing = tmp_path / "nothere.tsv"
    proc = subprocess.run([sys.executable, "-m", "plantt.cli", "splits", "--labels", str(missing),
                           "--out", str(tmp_path / "out.tsv")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert str(missing) in proc.stderr
    assert "Traceback" not in proc.stderr
