"""``dropkit evidence``: run the evidence experiments E1-E10 and write figures, table and page."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from dropkit.cli._common import UsageError

DEFAULT_FOLDER = Path("dropkit-evidence")


def add_parser(commands: Any) -> None:
    """Add the ``evidence`` parser to ``commands``."""
    from dropkit.demo.experiments import EXPERIMENTS

    evidence = commands.add_parser(
        "evidence",
        help="run the evidence experiments (E1-E10) and write a table, figures and a page",
        description=(
            "Run experiments that test what is claimed of dropout (E1-E10; all by default), each "
            "over three seeds with paired arms. Each writes a figure and a row of the results "
            "table: the effect, its 95% interval, the acceptance criterion and PASS or FAIL. "
            "Files: evidence-eN.png, results.md, results.json and index.html in --out. "
            "--quick runs tiny versions in seconds: they check the plumbing, not the claims."
        ),
    )
    evidence.add_argument(
        "names", nargs="*", metavar="NAME", help=f"experiments to run ({', '.join(EXPERIMENTS)})"
    )
    evidence.add_argument(
        "--out", type=Path, default=DEFAULT_FOLDER, help=f"folder (default ./{DEFAULT_FOLDER})"
    )
    evidence.add_argument("--quick", action="store_true", help="tiny settings, for tests")
    evidence.add_argument("--force", action="store_true", help="replace files already in --out")


def run(args: argparse.Namespace) -> int:
    """Run ``dropkit evidence``; returns the exit code."""
    from dropkit.demo.experiments import EXPERIMENTS, run_experiment
    from dropkit.report.evidence import check_evidence_folder, estimate_text, write_evidence

    names = [name.upper() for name in args.names] or list(EXPERIMENTS)
    unknown = [name for name in names if name not in EXPERIMENTS]
    if unknown:
        raise UsageError(f"unknown experiment {unknown[0]!r}; choose from {', '.join(EXPERIMENTS)}")
    names = list(dict.fromkeys(names))
    try:  # before any experiment: an output that cannot be written fails now
        check_evidence_folder(args.out, names, overwrite=args.force)
    except FileExistsError as error:
        raise UsageError(f"{error}; pass --force to replace it or choose another --out") from None
    mode = "quick" if args.quick else "full"
    findings = []
    for index, name in enumerate(names, start=1):
        start = time.perf_counter()
        with running(f"[{index}/{len(names)}] {name} ({mode}) running"):
            finding = run_experiment(name, quick=args.quick)
        findings.append(finding)
        print(
            f"[{index}/{len(names)}] {name} {finding.verdict}: {finding.effect} = "
            f"{estimate_text(finding)} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    written = write_evidence(args.out, findings, mode=mode, overwrite=args.force)
    passed = sum(f.passed for f in findings)
    print(f"{passed}/{len(findings)} passed; page: {written[-1]}")
    sys.stdout.flush()
    return 0


def running(text: str) -> contextlib.AbstractContextManager[object]:
    """A spinner with ``text`` on standard error while the block runs, when that is a terminal.

    Standard output keeps only the results; without ``rich`` (the ``cli`` extra) nothing is shown.
    """
    try:
        from rich.console import Console
    except ImportError:
        return contextlib.nullcontext()
    console = Console(stderr=True)
    if not console.is_terminal:
        return contextlib.nullcontext()
    return console.status(text)
