"""``dropkit diagnose``: the dropout doctor on a training log (a file or a folder)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from dropkit.cli._common import UsageError, probability


def column(text: str) -> tuple[str, str]:
    """``KEY=NAME``: a series key (``val_loss``) and the raw column that holds it."""
    key, sep, name = text.partition("=")
    if not sep or not key.strip() or not name.strip():
        raise argparse.ArgumentTypeError(
            f"a column is KEY=NAME such as val_loss=validation_epoch_average, got {text!r}"
        )
    return key.strip(), name.strip()


def add_parser(commands: Any) -> None:
    """Add the ``diagnose`` parser to ``commands``."""
    diagnose = commands.add_parser(
        "diagnose",
        help="diagnose a training log (CSV, JSON, trainer_state.json, TensorBoard, or a folder)",
        description=(
            "Say whether a training log shows overfitting, underfitting, the sweet spot, a run "
            "still improving, diverged or not learning, with the numbers behind the verdict and "
            "what to do with the dropout rate."
        ),
    )
    diagnose.add_argument(
        "path",
        type=Path,
        help="the log: a CSV/JSON file, trainer_state.json, a TensorBoard event file, or a "
        "folder holding one (lightning_logs/version_0, a Trainer output folder)",
    )
    diagnose.add_argument(
        "--p", type=probability, default=None, help="the dropout rate used, for a suggested rate"
    )
    diagnose.add_argument(
        "--metric",
        default=None,
        metavar="NAME",
        help="the metric to read: loss, accuracy, f1, wer, top1 ... (default: accuracy when "
        "logged for training and validation, else the loss)",
    )
    diagnose.add_argument(
        "--mode",
        choices=("min", "max"),
        default=None,
        help="which way is better, for a metric without a known direction",
    )
    diagnose.add_argument(
        "--column",
        type=column,
        action="append",
        default=[],
        metavar="KEY=NAME",
        help="read series KEY (train_loss, val_f1 ...) from column NAME; repeat as needed",
    )
    diagnose.add_argument(
        "--run",
        choices=("last", "all"),
        default="last",
        help="a log holding several runs (an appended Keras CSV): diagnose the last, or each",
    )
    diagnose.add_argument("--json", action="store_true", help="print one JSON object")
    diagnose.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="FILE",
        help="also draw the curves into FILE (.png, .svg, .pdf), the best epoch marked",
    )
    diagnose.add_argument("--force", action="store_true", help="replace FILE if it exists")


def run(args: argparse.Namespace) -> int:
    """Run ``dropkit diagnose``; returns the exit code."""
    from dropkit._files import ensure_writable_folder
    from dropkit.advisor import diagnose, load_history

    if args.plot is not None:
        if args.plot.is_dir():
            raise UsageError(f"{args.plot} is a folder; --plot needs a file name")
        if (args.plot.exists() or args.plot.is_symlink()) and not args.force:
            raise UsageError(f"{args.plot} already exists; pass --force to replace it")
        ensure_writable_folder(args.plot.parent)
    columns = dict(args.column)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_history(args.path, columns=columns or None, run=args.run)
    for warning in caught:
        print(f"dropkit diagnose: warning: {warning.message}", file=sys.stderr)
    histories = loaded if isinstance(loaded, list) else [loaded]
    reports = []
    for history in histories:
        diagnosis = diagnose(history, current_p=args.p, metric=args.metric, mode=args.mode)
        data = diagnosis.to_dict()
        data["source"] = history.source
        data["series"] = history.available()
        reports.append(data)
        if not args.json:
            print(history)
            print(diagnosis)
    if args.plot is not None:
        from dropkit.report import plot_history

        plot_history(
            histories[-1],
            args.plot,
            title=args.path.name,
            diagnosis=diagnosis,
            overwrite=args.force,
        )
        reports[-1]["plot"] = str(args.plot)
        if not args.json:
            print(f"plot: {args.plot}")
    if args.json:
        print(json.dumps(reports[0] if args.run == "last" else reports, allow_nan=False))
    return 0
