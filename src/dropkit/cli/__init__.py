"""The ``dropkit`` command: one module per subcommand.

Each subcommand module has ``add_parser(commands)``, which adds its parser, and ``run(args)``, which
returns the exit code. This module parses, dispatches and turns errors into one line: bad input of
any kind ends with one line on standard error and exit code 2; nothing a user wrote is overwritten
unless asked (``--force``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from dropkit.cli._common import USAGE_ERROR, Parser, UsageError

#: The subcommands, in the order ``--help`` lists them; each is ``dropkit.cli.<name>``.
SUBCOMMANDS = ("demo", "diagnose", "tune", "check", "bench", "evidence")

__all__ = ["USAGE_ERROR", "UsageError", "build_parser", "main"]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"dropkit.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = Parser(
        prog="dropkit",
        description="Dropout regularization for PyTorch: the dropout doctor and tools.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in SUBCOMMANDS:
        _module(name).add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dropkit`` command; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        bench = _module("bench")
        return _guard("bench", lambda: bench.run_arguments(arguments[1:]))
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except UsageError as error:
        print(f"dropkit: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    if args.command is None:
        parser.print_help()
        return USAGE_ERROR
    run = _module(args.command).run
    return _guard(args.command, lambda: run(args))


def _guard(command: str, call: Callable[[], int]) -> int:
    try:
        return int(call())
    except KeyboardInterrupt:
        print(f"dropkit {command}: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ValueError, OSError, ImportError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"dropkit {command}: error: {message}", file=sys.stderr)
        return USAGE_ERROR
