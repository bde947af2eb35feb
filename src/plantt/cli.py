"""The ``plantt`` command: one subcommand per stage, each defined next to the code it runs.

Each module listed in :data:`COMMAND_MODULES` exposes ``register_cli(subparsers)``, which adds its
subcommand(s) and sets ``func`` on the parser to a callable taking the parsed arguments. The
commands that train, run or explain models are declared in :mod:`plantt.model_commands`, which
imports none of their code, so that their ``--help`` needs no PyTorch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from plantt import __version__
from plantt.allocator import retain_freed_memory
from plantt.io import InputError, setup_logging
from plantt.progress import set_quiet

# Every subcommand, the module that defines it and its one-line help. `plantt --help` lists them
# from this table, and `plantt COMMAND ...` imports only COMMAND's module: importing them all (and
# with them PyTorch, scikit-learn, captum) took 5 s before anything was printed.
# tests/test_cli.py checks that the table matches what the modules register.
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("plantt.simulate",
                 "generate the demo dataset (four species, reads, orthogroups, known grammar)"),
    "count": ("plantt.quantify", "count reads per gene in a BAM file"),
    "orthologs": ("plantt.orthologs", "single-copy ortholog pairs from OrthoFinder orthogroups"),
    "windows": ("plantt.windows", "sequence windows around each gene's TSS and TTS"),
    "labels": ("plantt.labels", "Cohen's d between the genes of each ortholog pair"),
    "splits": ("plantt.splits", "orthogroup-guided cross-validation folds"),
    "encode": ("plantt.dataset", "encode windows FASTAs into one memory-mappable array"),
    "proseq-bigwig": ("plantt.proseq",
                      "PRO-seq polymerase (RNA 3' end) CPM bigWigs, one per strand"),
    "pause-index": ("plantt.proseq", "PRO-seq pause index per gene (PEPPRO-style pause window)"),
    "train": ("plantt.model_commands", "train one cross-validation fold and predict its test pairs"),
    "evaluate": ("plantt.model_commands",
                 "metrics per fold and mean ± SD across folds from predictions tables"),
    "predict": ("plantt.model_commands",
                "predict expression differences of pairs, or expression of sequences"),
    "fit": ("plantt.model_commands", "train and cross-validate models on a table of your own sequences"),
    "attribute": ("plantt.model_commands", "DeepLift attributions of PlanTT's expression estimate"),
    "motifs": ("plantt.model_commands", "TF-MoDISco patterns of the fold models, matched to known motifs"),
    "ism": ("plantt.model_commands",
            "in-silico mutagenesis: predicted effect of every single-base substitution"),
    "edit": ("plantt.model_commands",
             "hill-climbing single-base edits that raise or lower predicted expression"),
    "variants": ("plantt.model_commands",
                 "predicted expression effect of VCF variants through gene windows"),
    "legacy-input": ("plantt.model_commands",
                     "build 3000-base inputs (1500 promoter + 1500 terminator) for the imported "
                     "published model; optionally score them"),
    "import-weights": ("plantt.model_commands", "turn the published PlanTT-CNN weights (planttcnn.pt) "
                                        "into a plantt model directory"),
}
COMMAND_MODULES = list(dict.fromkeys(module for module, _ in COMMANDS.values()))


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (its first argument that is not an option)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--threads":  # the main parser's only option with a value
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``plantt`` parser: the module of ``command`` registers its subcommands in full, every
    other subcommand is listed by name and help only (``None``: all of them in full)."""
    parser = argparse.ArgumentParser(
        prog="plantt",
        description="PlanTT: contrastive models of gene expression from ortholog pairs.",
    )
    parser.add_argument("--version", action="version", version=f"plantt {__version__}")
    # before the command: `plantt -q ism ...`
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help="log debugging detail as well")
    loudness.add_argument("-q", "--quiet", action="store_true",
                          help="log warnings and errors only, no progress bars or lines")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for PyTorch and the numerical libraries (default: "
                             "PyTorch's own choice, usually every core)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    if command is None:
        for name in COMMAND_MODULES:
            importlib.import_module(name).register_cli(subparsers)
        return parser
    full = COMMANDS[command][0] if command in COMMANDS else None
    for name, (module, help_text) in COMMANDS.items():
        if module == full:
            if name == command:
                importlib.import_module(module).register_cli(subparsers)
            # (the module's other subcommands came with it)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def apply_threads(threads: int) -> None:
    """Limit PyTorch (when a command uses it) and the BLAS/OpenMP pools to ``threads``."""
    import os

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ["PLANTT_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_of(argv)
    parser = build_parser(command if command in COMMANDS else "")
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(level=logging.DEBUG if args.verbose else
                  logging.WARNING if args.quiet else logging.INFO)
    set_quiet(args.quiet)
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        apply_threads(args.threads)
    retain_freed_memory()
    try:
        result = args.func(args)
    except InputError as err:
        print(f"plantt {args.command}: error: {err}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
