"""Every stage is reachable as a `plantt` subcommand with its own help."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import textwrap

import pytest

from plantt.cli import COMMANDS, build_parser, main

EXPECTED = ["simulate", "count", "orthologs", "windows", "labels", "splits", "encode",
            "proseq-bigwig", "pause-index", "train", "evaluate", "predict", "fit", "attribute", "ism",
            "edit", "variants", "import-weights", "legacy-input"]


def test_all_subcommands_registered() -> None:
    parser = build_parser()
    choices = next(a.choices for a in parser._actions if getattr(a, "choices", None))
    assert set(EXPECTED) <= set(choices)


def test_the_command_table_matches_what_the_modules_register() -> None:
    """`plantt --help` lists the commands from plantt.cli.COMMANDS without importing their
    modules: the table must name every subcommand each module registers, with its help."""
    registered = {}
    for module in dict.fromkeys(m for m, _ in COMMANDS.values()):
        parser = argparse.ArgumentParser()
        subparsers = parser.add_subparsers()
        importlib.import_module(module).register_cli(subparsers)
        for action in subparsers._choices_actions:
            registered[action.dest] = (module, action.help)
    assert registered == COMMANDS


@pytest.mark.parametrize(("argv", "absent"), [
    (["--help"], ["torch", "pandas", "sklearn", "plantt.windows"]),
    # data preparation needs no PyTorch (nor the other commands' modules)
    (["windows", "--help"], ["torch", "plantt.train", "plantt.simulate"]),
    (["labels", "--help"], ["torch", "plantt.windows"]),
])
def test_help_imports_only_what_the_command_needs(argv, absent) -> None:
    script = textwrap.dedent(f"""
        import sys
        from plantt.cli import main
        try:
            main({argv!r})
        except SystemExit:
            pass
        print("LOADED", [name for name in {absent!r} if name in sys.modules])
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage: plantt" in proc.stdout
    assert proc.stdout.strip().endswith("LOADED []"), proc.stdout[-500:]


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


def _subcommand_parser(name: str) -> argparse.ArgumentParser:
    """The full parser of one subcommand (plantt.cli only loads a command's options when run)."""
    module, _ = COMMANDS[name]
    parser = argparse.ArgumentParser()
    importlib.import_module(module).register_cli(parser.add_subparsers())
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[name]


def test_output_and_model_flags_mean_one_thing_in_every_command() -> None:
    """--out is a file, --out-dir a directory to write, --model a model directory to read; no
    command spells a directory --out or --outdir, or uses --model for anything else."""
    for name in COMMANDS:
        sub = _subcommand_parser(name)
        options = {opt: action for action in sub._actions for opt in action.option_strings}
        assert "--outdir" not in options, name
        if "--out" in options:
            text = (options["--out"].help or "").lower()
            assert not any(word in text for word in ("directory", "folder")), (name, text)
        if "--out-dir" in options:
            text = (options["--out-dir"].help or "").lower()
            assert any(word in text for word in ("directory", "folder")), (name, text)
        if "--model" in options:
            action = options["--model"]
            text = (action.help or "") + str(action.metavar or "")
            assert action.help != argparse.SUPPRESS, name
            assert any(word in text.lower() for word in ("directory", "model_dir")), (name, text)


def test_no_command_help_imports_pytorch_or_the_command_code() -> None:
    """`plantt COMMAND --help` of every command answers from the option tables alone (the model
    commands' code, PyTorch, captum and scikit-learn are imported when a command runs)."""
    heavy = ["torch", "sklearn", "captum", "plantt.cv", "plantt.ism", "plantt.models",
             "plantt.variants", "plantt.fit", "plantt.motifs"]
    script = textwrap.dedent(f"""
        import contextlib, io, sys
        from plantt.cli import COMMANDS, main
        for command in COMMANDS:
            with contextlib.redirect_stdout(io.StringIO()) as out:
                try:
                    main([command, "--help"])
                except SystemExit:
                    pass
            assert "usage: plantt " + command in out.getvalue(), command
            # help written for the command line, not the modules' reST
            for markup in ("``", ":func:", ":mod:", ":class:", ":data:"):
                assert markup not in out.getvalue(), (command, markup)
        print("LOADED", [name for name in {heavy!r} if name in sys.modules])
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("LOADED []"), proc.stdout[-500:]


def test_the_option_tables_repeat_the_modules_values() -> None:
    from plantt import editing, legacy, model_commands, tables, variants, windows

    layout = windows.DEFAULT_LAYOUT
    assert model_commands.LAYOUT_DEFAULTS == {"upstream": layout.upstream,
                                              "gene_part": layout.gene_part,
                                              "downstream": layout.downstream,
                                              "mask": layout.mask}
    assert tuple(model_commands.FIT_TASKS) == tuple(tables.TASKS)
    assert set(model_commands.EDIT_DIRECTIONS) == set(editing.DIRECTIONS)
    assert tuple(model_commands.VCF_FILTER_MODES) == tuple(variants.FILTER_MODES)
    assert model_commands.DEFAULT_MAX_REF_MISMATCH == variants.DEFAULT_MAX_REF_MISMATCH
    assert model_commands.LEGACY_SEQ_LEN == legacy.LEGACY_SEQ_LEN
    # every deferred entry point exists
    parser = argparse.ArgumentParser()
    model_commands.register_cli(parser.add_subparsers())
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        module, function = sub.get_default("func").__qualname__.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), function)), name
