"""Terminal output of a rate sweep: live progress and the table of results.

Uses rich when it is installed and the output is a terminal; plain lines otherwise (logs, pipes,
CI), so the same information always arrives.
"""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

from dropkit.advisor.compare import RateSummary, Recommendation
from dropkit.demo.statistics import Interval

HEADER = ("p", "group", "width", "seeds", "val acc", "val loss", "gap", "verdict")


def _rich_available() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def _is_terminal(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


class SweepProgress:
    """Live progress of a sweep of training runs: a rich progress bar, or one plain line per run.

    Use as a context manager; call :meth:`update` after every epoch of every run.

    Args:
        runs: the number of runs.
        epochs: epochs per run.
        stream: where to write (standard output by default).
        rich: ``None`` uses rich when installed and ``stream`` is a terminal.

    Example:
        >>> import io
        >>> from dropkit.report import SweepProgress
        >>> out = io.StringIO()
        >>> with SweepProgress(1, 2, stream=out) as progress:
        ...     progress.update("p=0.1 plain", 1, {"val_acc": 0.5})
        ...     progress.update("p=0.1 plain", 2, {"val_acc": 0.75, "train_acc": 1.0})
        >>> print(out.getvalue().strip())
        [1/1] p=0.1 plain: epoch 2/2, train acc 100.0%, val acc 75.0%
    """

    def __init__(
        self, runs: int, epochs: int, *, stream: TextIO | None = None, rich: bool | None = None
    ) -> None:
        self.runs = runs
        self.epochs = epochs
        self.stream = stream if stream is not None else sys.stdout
        self.use_rich = (_rich_available() and _is_terminal(self.stream)) if rich is None else rich
        self.done = 0
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> SweepProgress:
        if self.use_rich:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} epochs"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("starting", total=self.runs * self.epochs)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None

    def update(self, label: str, epoch: int, record: dict[str, float]) -> None:
        """Report that run ``label`` finished ``epoch`` with the numbers in ``record``."""
        if epoch == self.epochs:
            self.done += 1
        summary = _summary(record)
        if self._progress is not None:
            self._progress.update(
                self._task,
                advance=1,
                description=f"[{min(self.done + 1, self.runs)}/{self.runs}] {label} {summary}",
            )
            return
        if epoch == self.epochs:
            print(
                f"[{self.done}/{self.runs}] {label}: epoch {epoch}/{self.epochs}, {summary}",
                file=self.stream,
                flush=True,
            )


def _summary(record: dict[str, float]) -> str:
    parts = []
    for key, name in (("train_acc", "train acc"), ("val_acc", "val acc")):
        if key in record and math.isfinite(record[key]):
            parts.append(f"{name} {record[key]:.1%}")
    return ", ".join(parts)


def _mean_text(interval: Interval, form: str) -> str:
    """``mean ± half-width`` in ``form`` (a format spec such as ``.1%``), ``-`` when undefined."""
    if not math.isfinite(interval.mean):
        return "-"
    if not math.isfinite(interval.low):
        return format(interval.mean, form)
    return f"{interval.mean:{form}} ± {interval.half_width:{form}}"


def table_row(arm: RateSummary, recommendation: Recommendation) -> tuple[str, ...]:
    """One arm's cells of the table (see :data:`HEADER`)."""
    return (
        f"{arm.p:g}",
        arm.group or "-",
        str(arm.width) if arm.width else "-",
        str(len(arm.runs)),
        _mean_text(arm.accuracy, ".1%"),
        _mean_text(arm.nll, ".3f"),
        _mean_text(arm.gap, ".1%"),
        recommendation.verdict(arm),
    )


def format_table(recommendation: Recommendation) -> str:
    """The arms of a sweep as a plain-text table: means ± confidence half-widths over seeds.

    The best arm is marked with ``*``; "tied" arms are not distinguishable from it.

    Example:
        >>> from dropkit.advisor.compare import compare_rates, recommend
        >>> from dropkit.report import format_table
        >>> runs = compare_rates([
        ...     {"p": p, "group": "plain", "width": 8, "seed": s,
        ...      "history": [{"train_acc": 0.9, "val_acc": v, "val_loss": 1 - v}]}
        ...     for p, values in ((0.0, [0.6, 0.62, 0.61]), (0.2, [0.7, 0.73, 0.71]))
        ...     for s, v in enumerate(values)])
        >>> print(format_table(recommend(runs)))
          p    group  width  seeds  val acc       val loss       gap           verdict
          0    plain  8      3      61.0% ± 2.5%  0.390 ± 0.025  29.0% ± 2.5%  worse
        * 0.2  plain  8      3      71.3% ± 3.8%  0.287 ± 0.038  18.7% ± 3.8%  best
    """
    arms = recommendation.arms
    rows = [table_row(arm, recommendation) for arm in arms]
    widths = [max(len(text) for text in column) for column in zip(HEADER, *rows, strict=False)]
    lines = ["  " + "  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=False)).rstrip()]
    for arm, row in zip(arms, rows, strict=False):
        mark = "* " if arm is recommendation.best else "  "
        lines.append(
            mark + "  ".join(t.ljust(w) for t, w in zip(row, widths, strict=False)).rstrip()
        )
    return "\n".join(lines)


def print_table(
    recommendation: Recommendation,
    *,
    stream: TextIO | None = None,
    rich: bool | None = None,
) -> None:
    """Print the table of arms: with rich when available and writing to a terminal, else plain."""
    out = stream if stream is not None else sys.stdout
    use_rich = (_rich_available() and _is_terminal(out)) if rich is None else rich
    if not use_rich:
        print(format_table(recommendation), file=out)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dropout rate sweep: mean ± confidence half-width over seeds (* best)")
    for name in HEADER:
        table.add_column(name, justify="left" if name in ("group", "verdict") else "right")
    for arm in recommendation.arms:
        style = "bold green" if arm is recommendation.best else None
        row = list(table_row(arm, recommendation))
        if arm is recommendation.best:
            row[0] = f"* {row[0]}"
        table.add_row(*row, style=style)
    Console(file=out, width=None if _is_terminal(out) else 120).print(table)
