"""``dropkit bench``: time dropkit's ops against their peers."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from dropkit.cli._common import UsageError


def add_parser(commands: Any) -> None:
    """Add the ``bench`` parser to ``commands`` (its arguments go to the benchmark)."""
    commands.add_parser(
        "bench",
        help="time dropkit's ops against their peers (arguments go to the benchmark)",
        description=(
            "Run the benchmark; every argument after 'bench' is passed to it "
            "(try 'dropkit bench --help')."
        ),
        add_help=False,
    )


def run(args: argparse.Namespace) -> int:
    """Run ``dropkit bench`` with no arguments."""
    return run_arguments([])


def run_arguments(arguments: list[str]) -> int:
    """Run the benchmark with ``arguments``; returns the exit code."""
    try:
        bench = importlib.import_module("dropkit.bench")
    except ModuleNotFoundError as error:
        if error.name in ("dropkit.bench", "dropkit"):
            raise UsageError("the benchmark is not part of this installation of dropkit") from error
        raise
    bench_main = getattr(bench, "main", None)
    if bench_main is None:
        raise UsageError("dropkit.bench has no main(argv) to run")
    with _one_line_usage_errors():
        result = bench_main(arguments)
    return int(result or 0)


@contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    """While the benchmark parses its arguments, a bad one is a UsageError (one line, exit 2)."""

    def error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
        raise UsageError(f"{message} (see 'dropkit bench --help')")

    original = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = error  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original  # type: ignore[method-assign]
