"""``dropkit tune``: search dropout rates with Optuna, many workers sharing one study."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from typing import Any

from dropkit.cli._common import UsageError, positive, space
from dropkit.cli._errors import DEBUG_HINT

#: A failure of the user's objective or of the storage: one line, exit code 1.
FAILURE = 1
INTERRUPTED = 130


def add_parser(commands: Any) -> None:
    """Add the ``tune`` parser to ``commands``."""
    tune = commands.add_parser(
        "tune",
        help="search dropout rates with Optuna; many workers may share one study",
        description=(
            "Call TARGET (module:function or path/to/script.py:function) with a dict of rates "
            "drawn from --space and minimise (or --maximize) the score it returns. Start the same "
            "command on several machines with one --storage URL and --study NAME to share a study; "
            "--trials counts the study's finished trials, so a rerun continues where it stopped. "
            "With --seeds N the leaders are scored again with seeds 1..N-1 (the function gets "
            "seed= when it takes it) and the result names the rates the seeds cannot tell apart."
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
    tune.add_argument(
        "--study", default=None, help="study name (default: derived from the target and space)"
    )
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
    tune.add_argument(
        "--seeds",
        type=positive,
        default=1,
        help="seeds the leading rates are scored with (default 1)",
    )
    tune.add_argument(
        "--continue-on-error",
        action="store_true",
        help="record a failing trial as failed and go on (default: stop with exit code 1)",
    )
    tune.add_argument("--json", action="store_true", help="print the result as one JSON object")
    tune.add_argument(
        "--debug", action="store_true", help="show the traceback of a failing objective"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``dropkit tune``; returns the exit code."""
    try:
        return _run(args)
    except KeyboardInterrupt:
        return INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    from dropkit.advisor import tune
    from dropkit.advisor.target import load_target
    from dropkit.advisor.tuning import ObjectiveError, StorageError, storage_url

    space = dict(args.space)
    if len(space) != len(args.space):
        raise UsageError("each --space name may appear once")
    if args.timeout is not None and not args.timeout >= 0:
        raise UsageError(f"--timeout must be a number of seconds >= 0, got {args.timeout}")
    objective = load_target(args.target)
    _quiet_optuna()
    progress = _progress_to_stderr()
    try:
        result = tune(
            objective,
            space,
            storage=args.storage,
            study_name=args.study,
            n_trials=args.trials,
            timeout=args.timeout,
            direction="maximize" if args.maximize else "minimize",
            seed=args.seed,
            seeds=args.seeds,
            continue_on_error=args.continue_on_error,
        )
    except ObjectiveError as error:
        if args.debug:
            traceback.print_exception(error.error)
        hint = "" if args.debug else DEBUG_HINT
        print(f"dropkit tune: error in your code: {_one_line(error)}{hint}", file=sys.stderr)
        return FAILURE
    except StorageError as error:
        if args.debug:
            traceback.print_exception(error)
        print(f"dropkit tune: error: {_one_line(error)}", file=sys.stderr)
        return FAILURE
    finally:
        logging.getLogger("dropkit.tune").removeHandler(progress)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"study {result.study_name!r} in {storage_url(args.storage)}: {result}")
    return 0


def _progress_to_stderr() -> logging.Handler:
    """Show each trial on standard error (standard output stays for the result)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("dropkit tune: %(message)s"))
    logger = logging.getLogger("dropkit.tune")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler


def _quiet_optuna() -> None:
    """Optuna's own log lines (and tracebacks) would repeat what dropkit says in one line."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
