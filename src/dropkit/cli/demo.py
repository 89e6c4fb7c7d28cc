"""``dropkit demo``: sweep dropout rates on a small MLP and write an HTML report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dropkit.cli._common import UsageError, positive, rates

DEFAULT_REPORT = Path("dropkit-report")
DEFAULT_RATES = "0,0.1,0.2,0.3,0.5,0.7"


def add_parser(commands: Any) -> None:
    """Add the ``demo`` parser to ``commands``."""
    demo = commands.add_parser(
        "demo",
        help="sweep dropout rates on an MLP for scikit-learn's digits and write an HTML report",
        description=(
            "Train an over-parameterised MLP on a small subset of scikit-learn's digits at each "
            "dropout rate, with and without the width rule (dk.widen), print a table, recommend "
            "a rate, and write an HTML report with figures. Without --out the report goes to "
            "./dropkit-report, a folder the demo owns: each run replaces the report files it "
            "wrote there before. With --out, existing report files are kept unless --force."
        ),
    )
    demo.add_argument(
        "--out", type=Path, default=None, help="report folder (default ./dropkit-report)"
    )
    demo.add_argument("--force", action="store_true", help="replace report files already in --out")
    demo.add_argument(
        "--rates",
        type=rates,
        default=rates(DEFAULT_RATES),
        help=f"comma-separated rates (default {DEFAULT_RATES})",
    )
    demo.add_argument("--epochs", type=positive, default=60, help="epochs per run (default 60)")
    demo.add_argument(
        "--train-size", type=positive, default=100, help="training images (default 100)"
    )
    demo.add_argument(
        "--val-size", type=positive, default=600, help="validation images (default 600)"
    )
    demo.add_argument(
        "--width", type=positive, default=256, help="hidden width without dropout (default 256)"
    )
    demo.add_argument(
        "--seed", type=int, default=0, help="seed of the split and the models (default 0)"
    )
    demo.add_argument(
        "--no-widen", action="store_true", help="skip the runs widened by the width rule"
    )
    demo.add_argument(
        "--json", action="store_true", help="print the results as JSON instead of a table"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``dropkit demo``; returns the exit code."""
    from dropkit.advisor.compare import compare_rates, recommend
    from dropkit.demo import load_digits_split, run_sweep
    from dropkit.report import SweepProgress, owns_folder, print_table, write_report
    from dropkit.report.html import existing_files

    folder = args.out if args.out is not None else DEFAULT_REPORT
    owned_default = args.out is None and owns_folder(folder)
    overwrite = args.force or owned_default
    clashes = existing_files(folder)
    if clashes and not overwrite:
        raise UsageError(
            f"{clashes[0]} already exists; pass --force to replace it or choose another --out"
        )
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} exists and is not a folder")
    from dropkit.rules import widen

    split = load_digits_split(args.train_size, args.val_size, seed=args.seed)
    # With --json, standard output carries the JSON alone; progress goes to standard error.
    stream = sys.stderr if args.json else sys.stdout
    print(
        f"dropkit demo: MLP with 2 hidden layers of {args.width} on {args.train_size} digits "
        f"(validation {args.val_size}), {args.epochs} epochs per rate",
        file=stream,
        flush=True,
    )
    widened = 0 if args.no_widen else sum(widen(args.width, p) != args.width for p in args.rates)
    with SweepProgress(len(args.rates) + widened, args.epochs, stream=stream) as progress:
        runs = run_sweep(
            split,
            args.rates,
            width=args.width,
            epochs=args.epochs,
            seed=args.seed,
            with_width_rule=not args.no_widen,
            on_epoch=lambda run, epoch, record: progress.update(run.label, epoch, record),
        )
    results = compare_rates(
        [
            {
                "p": run.p,
                "group": "widened" if run.widened else "plain",
                "width": run.width,
                "history": run.records,
            }
            for run in runs
        ]
    )
    best = recommend(results)
    settings = {
        "data": f"scikit-learn digits, {args.train_size} training, {args.val_size} validation",
        "model": f"MLP 64-{args.width}-{args.width}-10, ReLU, dk.Dropout(p) after each hidden",
        "width rule": "off" if args.no_widen else "widened runs use dk.widen(width, p)",
        "training": f"Adam lr 1e-3, batch 25, {args.epochs} epochs, seed {args.seed}",
        "measured": "train and validation sets after each epoch, dropout off",
    }
    written = write_report(folder, results, best, settings=settings, overwrite=overwrite)
    baseline = next((r for r in results if r.p == 0.0 and r.group == "plain"), None)
    if args.json:
        print(
            json.dumps(
                {
                    "recommended": best.to_dict(),
                    "runs": [r.to_dict() for r in results],
                    "report": str(written[-1]),
                },
                allow_nan=False,
            )
        )
        return 0
    print_table(results, best)
    versus = (
        f" ({baseline.score:.1%} without dropout)"
        if baseline is not None and baseline is not best
        else ""
    )
    rule = (
        f"with the width rule (width {best.width})"
        if best.group == "widened"
        else f"at width {best.width}"
    )
    print(
        f"recommended: p = {best.p:g} {rule}: validation accuracy {best.score:.1%} "
        f"over the last epochs{versus}"
    )
    print(f"report: {written[-1]}")
    return 0
