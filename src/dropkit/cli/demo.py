"""``dropkit demo``: sweep dropout rates over seeds on an MLP for MNIST-1D; write an HTML report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dropkit.cli._common import UsageError, positive, rates

DEFAULT_REPORT = Path("dropkit-report")
DEFAULT_RATES = "0,0.2,0.5"
DEFAULTS = {"epochs": 30, "width": 128, "seeds": 3}
LEARNING_RATE, BATCH, EVERY = 3e-3, 100, 2


def add_parser(commands: Any) -> None:
    """Add the ``demo`` parser to ``commands``."""
    demo = commands.add_parser(
        "demo",
        help="sweep dropout rates over seeds on an MLP for MNIST-1D and write an HTML report",
        description=(
            "Train an MLP 40-W-W-10 on MNIST-1D (Greydanus and Kobak 2024; 4000 training and "
            "1000 test sequences, generated offline) at each dropout rate, with and without the "
            "width rule (dk.widen), over several seeds. Prints per rate the mean and a 95% "
            "confidence interval of test accuracy, test NLL and the gap, recommends a rate with "
            "the rates noise cannot tell apart from it, and writes an HTML report with figures. "
            "Without --out the report goes to ./dropkit-report, a folder the demo owns: each run "
            "replaces the report files it wrote there before. With --out, existing report files "
            "are kept unless --force."
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
    for name, text in (
        ("epochs", "epochs per run"),
        ("width", "hidden width without dropout"),
        ("seeds", "seeds per arm (0, 1, ...)"),
    ):
        demo.add_argument(
            f"--{name}",
            type=positive,
            default=DEFAULTS[name],
            help=f"{text} (default {DEFAULTS[name]})",
        )
    demo.add_argument(
        "--data",
        choices=("mnist1d", "digits"),
        default="mnist1d",
        help="mnist1d (default), or scikit-learn's digits (100 training, 600 held out)",
    )
    demo.add_argument(
        "--metric",
        choices=("loss", "accuracy"),
        default="loss",
        help="what the recommendation compares: held-out NLL (default; tells rates apart with "
        "few seeds) or held-out accuracy",
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
    from dropkit.demo import load_digits_split, load_mnist1d, plan_sweep, run_sweep
    from dropkit.report import SweepProgress, owns_folder, print_table, write_report
    from dropkit.report.html import check_report_folder

    folder = args.out if args.out is not None else DEFAULT_REPORT
    overwrite = args.force or (args.out is None and owns_folder(folder))
    try:  # before any training: a report that cannot be written fails now, not in minutes
        check_report_folder(folder, overwrite=overwrite)
    except FileExistsError as error:
        raise UsageError(f"{error}; pass --force to replace it or choose another --out") from None
    seeds = list(range(args.seeds))
    if args.data == "mnist1d":
        split, name = load_mnist1d(), "MNIST-1D, 4000 training, 1000 test"
    else:
        split, name = load_digits_split(100, 600), "scikit-learn digits, 100 training, 600 held out"
    # Progress goes to standard error: standard output carries the results (with --json, alone).
    stream = sys.stderr
    plans = plan_sweep(args.rates, args.width, seeds, with_width_rule=not args.no_widen)
    print(
        f"dropkit demo: MLP {split.features}-{args.width}-{args.width}-{split.classes} on {name}; "
        f"{len(plans)} runs ({len(plans) // len(seeds)} arms x {len(seeds)} seeds), "
        f"{args.epochs} epochs each",
        file=stream,
        flush=True,
    )
    with SweepProgress(len(plans), args.epochs, stream=stream) as progress:
        runs = run_sweep(
            split,
            args.rates,
            width=args.width,
            epochs=args.epochs,
            lr=LEARNING_RATE,
            batch_size=BATCH,
            every=EVERY,
            seeds=seeds,
            with_width_rule=not args.no_widen,
            on_epoch=lambda run, epoch, record: progress.update(run.label, epoch, record),
        )
    results = compare_rates(
        [
            {
                "p": run.p,
                "group": "widened" if run.widened else "plain",
                "width": run.width,
                "seed": run.seed,
                "history": run.records,
            }
            for run in runs
        ],
        metric=args.metric,
    )
    recommendation = recommend(results)
    settings = {
        "data": name,
        "model": f"MLP {split.features}-W-W-{split.classes}, ReLU, dk.Dropout(p) after each hidden",
        "width": f"{args.width}; "
        + ("off" if args.no_widen else "widened runs use dk.widen(width, p)"),
        "training": f"Adam lr {LEARNING_RATE:g}, batch {BATCH}, {args.epochs} epochs",
        "seeds": ", ".join(map(str, seeds)) + " (initialisation, batch order, dropout masks)",
        "measured": f"both sets every {EVERY} epochs and at the end, dropout off; "
        f"score: mean held-out {'NLL' if args.metric == 'loss' else 'accuracy'} over the last "
        "fifth of the measurements, compared by paired 95% t-intervals over seeds",
    }
    written = write_report(folder, recommendation, settings=settings, overwrite=overwrite)
    if args.json:
        data = {**recommendation.to_dict(), "report": str(written[-1])}
        print(json.dumps(data, allow_nan=False))
        return 0
    print_table(recommendation)
    print(recommendation.sentence)
    print(f"report: {written[-1]}")
    return 0
