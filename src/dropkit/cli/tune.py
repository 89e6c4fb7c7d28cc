"""``dropkit tune``: search dropout rates with Optuna, many workers sharing one study."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dropkit.cli._common import UsageError, positive, space


def add_parser(commands: Any) -> None:
    """Add the ``tune`` parser to ``commands``."""
    tune = commands.add_parser(
        "tune",
        help="search dropout rates with Optuna; many workers may share one study",
        description=(
            "Call TARGET (module:function or path/to/script.py:function) with a dict of rates "
            "drawn from --space and minimise (or --maximize) the score it returns. Start the same "
            "command on several machines with one --storage URL and --study NAME to share a study; "
            "--trials counts the study's finished trials, so a rerun continues where it stopped."
        ),
    )
    tune.add_argument("target", help="module:function or path/to/script.py:function")
    tune.add_argument(
        "--space",
        type=space,
        action="append",
        required=True,
        metavar="NAME=LOW:HIGH",
        help="a rate to tune and its range; repeat for several",
    )
    tune.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL or SQLite file (default sqlite:///dropkit-tune.db)",
    )
    tune.add_argument("--study", default=None, help="study name (default 'dropkit')")
    tune.add_argument(
        "--trials",
        type=positive,
        default=20,
        help="finished trials the study should hold (default 20)",
    )
    tune.add_argument(
        "--timeout", type=float, default=None, help="stop starting trials after this many seconds"
    )
    tune.add_argument(
        "--maximize", action="store_true", help="the score is to be maximised (an accuracy)"
    )
    tune.add_argument("--seed", type=int, default=None, help="seed of the sampler")
    tune.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run ``dropkit tune``; returns the exit code."""
    from dropkit.advisor import tune
    from dropkit.advisor.target import load_target
    from dropkit.advisor.tuning import storage_url

    space = dict(args.space)
    if len(space) != len(args.space):
        raise UsageError("each --space name may appear once")
    objective = load_target(args.target)
    result = tune(
        objective,
        space,
        storage=args.storage,
        study_name=args.study,
        n_trials=args.trials,
        timeout=args.timeout,
        direction="maximize" if args.maximize else "minimize",
        seed=args.seed,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "best_rates": result.best_rates,
                    "best_value": result.best_value,
                    "finished": result.finished,
                    "ran": result.ran,
                    "study": result.study.study_name,
                }
            )
        )
    else:
        print(f"study {result.study.study_name!r} in {storage_url(args.storage)}: {result}")
    return 0
