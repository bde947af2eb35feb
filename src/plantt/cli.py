"""The ``plantt`` command: one subcommand per stage, each defined next to the code it runs.

Each module listed in :data:`COMMAND_MODULES` exposes ``register_cli(subparsers)``, which adds its
subcommand(s) and sets ``func`` on the parser to a callable taking the parsed arguments.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from plantt import __version__
from plantt.allocator import retain_freed_memory
from plantt.io import InputError, setup_logging

COMMAND_MODULES = [
    "plantt.simulate",
    "plantt.quantify",
    "plantt.orthologs",
    "plantt.windows",
    "plantt.labels",
    "plantt.splits",
    "plantt.dataset",
    "plantt.proseq",
    "plantt.cv",
    "plantt.predict",
    "plantt.fit",
    "plantt.attribution",
    "plantt.motifs",
    "plantt.ism",
    "plantt.editing",
    "plantt.variants",
    "plantt.legacy",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plantt",
        description="PlanTT: contrastive models of gene expression from ortholog pairs.",
    )
    parser.add_argument("--version", action="version", version=f"plantt {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register_cli(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging()
    retain_freed_memory()
    try:
        result = args.func(args)
    except InputError as err:
        print(f"plantt {args.command}: error: {err}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
