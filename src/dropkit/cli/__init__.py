"""The ``dropkit`` command: one module per subcommand.

Each subcommand module has ``add_parser(commands)``, which adds its parser, and ``run(args)``, which
returns the exit code. This module parses, dispatches and turns every error into one line on
standard error, for every subcommand alike (``dropkit.cli._errors`` has the full mapping):

- 0: success; 1: a finding of ``dropkit check``, a failure in the user's own code (named, with
  the exception), an environment fault (disk full, permission denied while writing, a database
  unreachable, a package missing) or an internal error of dropkit;
- 2: bad input (a bad argument, a missing or unreadable input file, an unknown format);
- 130: interrupted with Ctrl-C, nothing printed (the process ends right after its exit handlers);
- 141: standard output closed by its reader (``dropkit diagnose f | head -1``), nothing printed;
  0 when that happens while printing the help.

No traceback is shown unless ``--debug`` is given (``dropkit --debug COMMAND ...`` or
``dropkit COMMAND ... --debug``). Nothing a user wrote is overwritten unless asked (``--force``).

A subcommand raises :class:`UsageError` for bad input, calls the user's code through
:func:`call_user` (its exceptions become :class:`UserCodeError`, named), and raises
:class:`EnvironmentFault` (``from`` the original error) for a fault of the environment that is no
``OSError``; everything else is mapped here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from dropkit.cli._common import (
    FAILURE,
    INTERRUPTED,
    USAGE_ERROR,
    EnvironmentFault,
    Parser,
    UsageError,
    UserCodeError,
    call_user,
)
from dropkit.cli._errors import report
from dropkit.cli._process import CommandProcess

#: The subcommands, in the order ``--help`` lists them; each is ``dropkit.cli.<name>``.
SUBCOMMANDS = ("demo", "diagnose", "tune", "check", "bench", "evidence")
DEBUG_HELP = "show the traceback of an error"

__all__ = [
    "USAGE_ERROR",
    "EnvironmentFault",
    "UsageError",
    "UserCodeError",
    "build_parser",
    "call_user",
    "main",
]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"dropkit.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (each also takes ``--debug``)."""
    parser = Parser(
        prog="dropkit",
        description="Dropout regularization for PyTorch: the dropout doctor and tools.",
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in SUBCOMMANDS:
        _module(name).add_parser(commands)
    for name, subparser in commands.choices.items():
        if name != "bench" and "--debug" not in subparser._option_string_actions:
            subparser.add_argument(
                "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP
            )
    return parser


@dataclass
class _Run:
    """What the error report needs to know: the subcommand, --debug, and whether help is shown."""

    debug: bool
    command: str | None = None
    helping: bool = True  # until the arguments are parsed (argparse prints the help meanwhile)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dropkit`` command; returns the exit code.

    Called without ``argv`` (the installed ``dropkit`` command, ``python -m dropkit.cli``) it also
    keeps the process quiet after Ctrl-C and a closed standard output; called with ``argv`` from
    Python it only returns the exit code.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    process = CommandProcess() if argv is None else None
    state = _Run(debug="--debug" in arguments)
    try:
        code = _dispatch(arguments, state)
    except SystemExit as exit_request:
        code = _exit_code(exit_request)
    except BaseException as error:
        if process is not None and isinstance(error, KeyboardInterrupt):
            process.quiet()
        code = report(error, state.command, debug=state.debug, helping=state.helping)
    if process is not None:
        failure = process.flush_output()
        if failure is not None and code == 0:  # else the first failure (or Ctrl-C) is the one told
            code = report(failure, state.command, debug=False, helping=state.helping)
        if code == INTERRUPTED:
            process.exit_interrupted(code)
    return code


def _dispatch(arguments: list[str], state: _Run) -> int:
    position = next((i for i, word in enumerate(arguments) if not word.startswith("-")), None)
    leading = arguments[:position] if position is not None else []
    if position is not None and arguments[position] == "bench" and set(leading) <= {"--debug"}:
        state.command = "bench"
        rest = arguments[position + 1 :]
        state.helping = "-h" in rest or "--help" in rest
        state.debug = "--debug" in arguments[:position] or "--debug" in rest
        bench = _module("bench")
        return int(bench.run_arguments([word for word in rest if word != "--debug"]))
    parser = build_parser()
    args = parser.parse_args(arguments)
    state.debug = bool(getattr(args, "debug", False))
    state.helping = False
    if args.command is None:
        parser.print_help()
        return USAGE_ERROR
    state.command = args.command
    return int(_module(args.command).run(args))


def _exit_code(exit_request: SystemExit) -> int:
    """The code of ``sys.exit(value)``: None is 0, a number itself, a message is printed (1)."""
    value = exit_request.code
    if value is None or isinstance(value, int):
        return int(value or 0)
    print(value, file=sys.stderr)
    return FAILURE
