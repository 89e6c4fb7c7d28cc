"""``dropkit bench``: run the repository's benchmark (``benchmarks/bench.py``).

The benchmark is part of dropkit's source repository, not of the installed package: it loads its
peers from wheel files and may set thread counts, which a library must never do. From a clone (an
editable install), ``dropkit bench ARGS`` runs ``python benchmarks/bench.py ARGS``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

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
    return subprocess.run([sys.executable, str(script), *arguments], check=False).returncode
