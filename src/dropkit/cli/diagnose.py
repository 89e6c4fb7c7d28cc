"""``dropkit diagnose``: the dropout doctor on a training history file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dropkit.cli._common import UsageError, probability


def add_parser(commands: Any) -> None:
    """Add the ``diagnose`` parser to ``commands``."""
    diagnose = commands.add_parser(
        "diagnose",
        help="diagnose a training history file (CSV, JSON, trainer_state.json, Lightning, Keras)",
        description=(
            "Say whether a training history shows overfitting, underfitting or the sweet spot, "
            "and what to change."
        ),
    )
    diagnose.add_argument("path", type=Path, help="the history file")
    diagnose.add_argument(
        "--p", type=probability, default=None, help="the dropout rate used, for a suggested rate"
    )
    diagnose.add_argument(
        "--metric",
        choices=("accuracy", "loss"),
        default=None,
        help="read accuracy or loss (default: accuracy when logged)",
    )
    diagnose.add_argument("--json", action="store_true", help="print one JSON object")
    diagnose.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="FILE",
        help="also draw the curves into FILE (.png, .svg, .pdf)",
    )
    diagnose.add_argument("--force", action="store_true", help="replace FILE if it exists")


def run(args: argparse.Namespace) -> int:
    """Run ``dropkit diagnose``; returns the exit code."""
    from dropkit.advisor import diagnose, load_history

    if args.plot is not None and args.plot.exists() and not args.force:
        raise UsageError(f"{args.plot} already exists; pass --force to replace it")
    history = load_history(args.path)
    diagnosis = diagnose(history, current_p=args.p, metric=args.metric)
    if args.plot is not None:
        from dropkit.report import plot_history

        plot_history(
            history, args.plot, title=f"{args.path.name}: {diagnosis.regime.replace('_', ' ')}"
        )
    if args.json:
        data = diagnosis.to_dict()
        data["source"] = str(args.path)
        print(json.dumps(data, allow_nan=False))
    else:
        print(f"{args.path}: {len(history)} epochs")
        print(diagnosis)
        if args.plot is not None:
            print(f"plot: {args.plot}")
    return 0
