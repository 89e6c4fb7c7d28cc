"""The ``dropkit`` command: demo, diagnose, tune, check, bench.

Parses arguments, calls the library, prints. Bad input of any kind ends with one line on standard
error and exit code 2; nothing a user wrote is overwritten unless asked (``--force``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, NoReturn

DEFAULT_REPORT = Path("dropkit-report")
DEFAULT_RATES = "0,0.1,0.2,0.3,0.5,0.7"
USAGE_ERROR = 2


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the usage stays in ``--help``)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"rates must be comma-separated numbers such as 0,0.2,0.5, got {text!r}"
        ) from None
    if not rates or any(not 0.0 <= rate < 1.0 for rate in rates):
        raise argparse.ArgumentTypeError(f"rates must lie in [0, 1), got {text!r}")
    return sorted(set(rates))


def _space(text: str) -> tuple[str, tuple[float, float]]:
    name, sep, bounds = text.partition("=")
    low, colon, high = bounds.partition(":")
    try:
        if not sep or not colon or not name:
            raise ValueError
        pair = (float(low), float(high))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a space is name=low:high such as head=0.1:0.5, got {text!r}"
        ) from None
    if not (0.0 <= pair[0] <= pair[1] <= 1.0):
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= low <= high <= 1")
    return name, pair


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a rate is a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate must lie in [0, 1], got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(
        prog="dropkit",
        description="Dropout regularization for PyTorch: the dropout doctor and tools.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

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
        type=_rates,
        default=_rates(DEFAULT_RATES),
        help=f"comma-separated rates (default {DEFAULT_RATES})",
    )
    demo.add_argument("--epochs", type=_positive, default=60, help="epochs per run (default 60)")
    demo.add_argument(
        "--train-size", type=_positive, default=100, help="training images (default 100)"
    )
    demo.add_argument(
        "--val-size", type=_positive, default=600, help="validation images (default 600)"
    )
    demo.add_argument(
        "--width", type=_positive, default=256, help="hidden width without dropout (default 256)"
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
        "--p", type=_probability, default=None, help="the dropout rate used, for a suggested rate"
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
        type=_space,
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
        type=_positive,
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

    check = commands.add_parser(
        "check",
        help="check a model for dropout bugs (dk.check)",
        description=(
            "TARGET (module:function or path/to/script.py:function) is called with no arguments "
            "and returns (model, example_inputs); dk.check runs on them. Exit code 0 when clean, "
            "1 when something was found."
        ),
    )
    check.add_argument("target", help="module:function or path/to/script.py:function")
    check.add_argument("--json", action="store_true", help="print the findings as a JSON list")

    commands.add_parser(
        "bench",
        help="time dropkit's ops against their peers (arguments go to the benchmark)",
        description=(
            "Run the benchmark; every argument after 'bench' is passed to it "
            "(try 'dropkit bench --help')."
        ),
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dropkit`` command; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        return _guard("bench", lambda: run_bench(arguments[1:]))
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except UsageError as error:
        print(f"dropkit: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    if args.command is None:
        parser.print_help()
        return USAGE_ERROR
    handler = {"demo": run_demo, "diagnose": run_diagnose, "tune": run_tune, "check": run_check}
    return _guard(args.command, lambda: handler[args.command](args))


def _guard(command: str, call: Any) -> int:
    try:
        return int(call())
    except KeyboardInterrupt:
        print(f"dropkit {command}: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ValueError, OSError, ImportError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"dropkit {command}: error: {message}", file=sys.stderr)
        return USAGE_ERROR


def run_demo(args: argparse.Namespace) -> int:
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


def run_diagnose(args: argparse.Namespace) -> int:
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


def run_tune(args: argparse.Namespace) -> int:
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


def run_check(args: argparse.Namespace) -> int:
    check = _find_check()
    from dropkit.advisor.target import load_target

    factory = load_target(args.target)
    try:
        built = factory()
    except Exception as error:
        raise UsageError(f"{args.target} failed: {type(error).__name__}: {error}") from error
    if not (isinstance(built, tuple) and len(built) == 2):
        raise UsageError(
            f"{args.target} must return (model, example_inputs), got {type(built).__name__}"
        )
    model, example_inputs = built
    report = check(model, example_inputs)
    findings = list(report)
    if args.json:
        print(json.dumps([_finding_dict(finding) for finding in findings]))
    elif not findings:
        print(f"{args.target}: no dropout problems found")
    else:
        print(f"{args.target}: {len(findings)} finding(s)")
        for finding in findings:
            name = getattr(finding, "name", None)
            print(
                f"- {getattr(finding, 'kind', 'finding')}"
                + (f" at {name}" if name else "")
                + f": {finding}"
            )
    return 1 if findings else 0


def _find_check() -> Any:
    import dropkit

    check = getattr(dropkit, "check", None)
    if check is None:
        raise UsageError(
            "dropkit check needs dk.check, which this installation of dropkit does not have"
        )
    return check


def _finding_dict(finding: Any) -> dict[str, Any]:
    if is_dataclass(finding) and not isinstance(finding, type):
        return asdict(finding)
    return {key: getattr(finding, key, None) for key in ("kind", "name", "message", "advice")}


def run_bench(arguments: list[str]) -> int:
    try:
        bench = importlib.import_module("dropkit.bench")
    except ModuleNotFoundError as error:
        if error.name in ("dropkit.bench", "dropkit"):
            raise UsageError("the benchmark is not part of this installation of dropkit") from error
        raise
    bench_main = getattr(bench, "main", None)
    if bench_main is None:
        raise UsageError("dropkit.bench has no main(argv) to run")
    result = bench_main(arguments)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
