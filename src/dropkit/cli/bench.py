"""``dropkit bench``: run the repository's benchmark (``benchmarks/bench.py``).

The benchmark is part of dropkit's source repository, not of the installed package: it loads its
peers from wheel files and may set thread counts, which a library must never do. From a clone (an
editable install), ``dropkit bench ARGS`` runs the script's ``main(ARGS)``, the same as
``python benchmarks/bench.py ARGS``, with a bad argument reported in one line (exit 2).
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from dropkit.cli._common import UsageError


def add_parser(commands: Any) -> None:
    """Add the ``bench`` parser to ``commands`` (its arguments go to the benchmark)."""
    commands.add_parser(
        "bench",
        help="time dropkit's ops against their peers (arguments go to benchmarks/bench.py)",
        description=(
            "Run the repository's benchmark; every argument after 'bench' is passed to it "
            "(try 'dropkit bench --help')."
        ),
        add_help=False,
    )


def benchmark_script() -> Path | None:
    """``benchmarks/bench.py`` of the source tree this dropkit was installed from, if present."""
    import dropkit

    script = Path(dropkit.__file__).resolve().parents[2] / "benchmarks" / "bench.py"
    return script if script.is_file() else None


def run(args: argparse.Namespace) -> int:
    """Run ``dropkit bench`` with no arguments."""
    return run_arguments([])


def run_arguments(arguments: list[str]) -> int:
    """Run the benchmark with ``arguments``; returns its exit code."""
    script = benchmark_script()
    if script is None:
        raise UsageError(
            "the benchmark lives in dropkit's source repository (benchmarks/bench.py); "
            "run it from a clone"
        )
    spec = importlib.util.spec_from_file_location("dropkit_benchmark", script)
    if spec is None or spec.loader is None:
        raise UsageError(f"{script} cannot be loaded")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    with _one_line_usage_errors():
        return int(benchmark.main(arguments) or 0)


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
