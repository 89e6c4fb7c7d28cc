"""Figures of training histories and of a rate sweep, drawn with matplotlib into image files.

The figures are built on ``matplotlib.figure.Figure`` directly (no pyplot, no global state, no
display needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dropkit._deprecation import renamed_arguments
from dropkit.advisor.compare import RateResult
from dropkit.advisor.diagnosis import Diagnosis
from dropkit.advisor.history import FRACTIONS, History, as_history

TRAIN_STYLE = {"color": "#1f77b4", "linestyle": "-", "label": "train"}
VAL_STYLE = {"color": "#d62728", "linestyle": "-", "label": "validation"}
GROUP_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")


def _figure(rows: int, columns: int, size: tuple[float, float]) -> tuple[Any, Any]:
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("figures need matplotlib: pip install 'dropkit[cli]'") from error
    figure = Figure(figsize=size, layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def _finite(epochs: Sequence[float], values: Sequence[float]) -> tuple[list[float], list[float]]:
    pairs = [(e, v) for e, v in zip(epochs, values, strict=False) if math.isfinite(v)]
    return [e for e, _ in pairs], [v for _, v in pairs]


def plot_history(
    history: Any,
    path: str | Path,
    *,
    title: str | None = None,
    diagnosis: Diagnosis | None = None,
    overwrite: bool = False,
) -> Path:
    """Draw a history's curves (train and validation) into an image file, the best epoch marked.

    One panel per metric: the diagnosed one first (with ``diagnosis``), then the loss and the
    accuracy when logged. Each panel marks the best validation epoch; a panel whose positive
    values span more than a decade gets a logarithmic axis; epochs where a value was NaN or
    infinite are marked with a cross at the top of the panel.

    Args:
        history: a :class:`~dropkit.advisor.History` or anything :func:`~dropkit.diagnose` accepts.
        path: the image to write (its suffix picks the format: ``.png``, ``.svg``, ``.pdf``).
        title: a title above the figure.
        diagnosis: a :class:`~dropkit.Diagnosis` of the history: its metric is drawn first, its
            regime is shown in the title.
        overwrite: replace an existing file; without it an existing name is refused. The file is
            written aside and moved into place, never through a symbolic link.

    Example:
        >>> import pathlib, tempfile
        >>> from dropkit.report import plot_history
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "curves.png"
        >>> history = {"train_loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.8, 0.9]}
        >>> plot_history(history, path).exists()
        True
    """
    from dropkit._files import write_file
    from dropkit.advisor.metrics import direction

    data = as_history(history)
    metrics = [diagnosis.metric.replace("accuracy", "acc")] if diagnosis is not None else []
    for metric in ("loss", "acc", *(key.split("_", 1)[1] for key in data.available())):
        if metric not in metrics and (
            f"val_{metric}" in data.available() or f"train_{metric}" in data.available()
        ):
            metrics.append(metric)
    metrics = metrics[:3] or ["loss"]
    figure, axes = _figure(1, len(metrics), (4.6 * len(metrics), 3.4))
    for ax, metric in zip(axes[0], metrics, strict=False):
        mode = diagnosis.mode if diagnosis is not None and metrics[0] == metric else None
        _draw_metric(ax, data, metric, mode or direction(metric) or "min")
    words = diagnosis.regime.replace("_", " ") if diagnosis is not None else None
    heading = title or ""
    if words and words not in heading:
        heading = f"{heading}: {words}" if heading else words
    if heading:
        figure.suptitle(heading)
    target = Path(path)
    suffix = target.suffix.lstrip(".").lower() or "png"
    return write_file(
        target,
        lambda scratch: figure.savefig(scratch, dpi=100, format=suffix),
        overwrite=overwrite,
    )


def _draw_metric(ax: Any, history: History, metric: str, mode: str) -> None:
    label = "accuracy" if metric == "acc" else metric
    finite_values: list[float] = []
    for split, style in (("train", TRAIN_STYLE), ("val", VAL_STYLE)):
        values = history.series(f"{split}_{metric}")
        if not values:
            continue
        epochs, finite = _finite(history.epochs, values)
        sparse = len(finite) < 0.8 * len(history) or len(finite) <= 12
        ax.plot(epochs, finite, marker="o" if sparse else None, markersize=3, **style)
        finite_values += finite
        broken = [e for e, v in zip(history.epochs, values, strict=False) if math.isinf(v)]
        if broken:
            ax.plot(
                broken,
                [1.0] * len(broken),
                "x",
                color=style["color"],
                clip_on=False,
                transform=ax.get_xaxis_transform(),
                label=f"{split} not finite",
            )
        if split == "val" and finite:
            pick = min if mode == "min" else max
            best_value = pick(finite)
            best_epoch = epochs[finite.index(best_value)]
            ax.axvline(best_epoch, color="grey", linestyle=":", linewidth=1)
            ax.plot(
                [best_epoch],
                [best_value],
                "*",
                color=style["color"],
                markersize=11,
                label=f"best {best_value:.4g} (epoch {best_epoch:g})",
            )
    positive = [v for v in finite_values if v > 0]
    if positive and len(positive) == len(finite_values) and max(positive) > 10 * min(positive):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


@renamed_arguments("plot_curves", kind="metric")
def plot_curves(
    results: Sequence[RateResult], path: str | Path, *, metric: str = "accuracy"
) -> Path:
    """Train and validation curves of every run: one panel per rate, one row per group.

    Args:
        results: the runs, as :func:`~dropkit.advisor.compare.compare_rates` returns them.
        path: the image to write.
        metric: the metric to draw, named as for :func:`~dropkit.diagnose` (``"accuracy"``,
            ``"loss"``, or any other the histories hold). ``kind``, its old name, still works for
            one release with a ``FutureWarning``.

    Example:
        >>> import pathlib, tempfile
        >>> from dropkit.advisor.compare import compare_rates
        >>> from dropkit.report import plot_curves
        >>> history = {"train_loss": [1.0, 0.6, 0.5], "val_loss": [1.1, 0.9, 0.95]}
        >>> runs = compare_rates([{"p": 0.0, "history": history}, {"p": 0.3, "history": history}])
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "curves.png"
        >>> plot_curves(runs, path, metric="loss").exists()
        True
    """
    from dropkit.advisor.metrics import metric_name

    if not isinstance(metric, str):
        raise TypeError(f"metric must be a metric name such as 'accuracy', got {metric!r}")
    series = metric_name(metric)
    drawn = {f"{split}_{series}" for split in ("train", "val")}
    if not any(drawn & set(result.history.available()) for result in results):
        raise ValueError(f"metric {metric!r} is not in any of the histories")
    kind = series
    groups = list(dict.fromkeys(result.group for result in results))
    rates = sorted({result.p for result in results})
    figure, axes = _figure(
        len(groups), len(rates), (2.6 * len(rates) + 0.6, 2.4 * len(groups) + 0.6)
    )
    for row, group in enumerate(groups):
        for column, rate in enumerate(rates):
            ax = axes[row][column]
            match = [r for r in results if r.group == group and r.p == rate]
            if not match:
                ax.set_axis_off()
                continue
            result = match[0]
            _draw_pair(ax, result.history, kind)
            width = f", width {result.width}" if result.width else ""
            ax.set_title(f"p={rate:g} {group}{width}", fontsize=9)
            if kind in FRACTIONS:
                ax.set_ylim(max(0.0, _lowest(results, kind) - 0.02), 1.01)
            if row == len(groups) - 1:
                ax.set_xlabel("epoch")
            if column == 0:
                ax.set_ylabel("accuracy" if kind == "acc" else kind)
    axes[0][0].legend(fontsize=8)
    path = Path(path)
    figure.savefig(path, dpi=100)
    return path


def plot_rates(results: Sequence[RateResult], path: str | Path) -> Path:
    """The generalization gap and the validation score against the rate, one line per group."""
    figure, axes = _figure(1, 2, (10.0, 3.6))
    gap_ax, score_ax = axes[0]
    groups = list(dict.fromkeys(result.group for result in results))
    uses_accuracy = all("val_acc" in r.history.available() for r in results)
    for index, group in enumerate(groups):
        members = sorted((r for r in results if r.group == group), key=lambda r: r.p)
        rates = [r.p for r in members]
        color = GROUP_COLORS[index % len(GROUP_COLORS)]
        gap_ax.plot(rates, [r.gap for r in members], marker="o", color=color, label=group)
        score = [r.score if uses_accuracy else -r.score for r in members]
        score_ax.plot(rates, score, marker="o", color=color, label=group)
    gap_ax.axhline(0.0, color="grey", linewidth=0.8)
    gap_ax.set_xlabel("dropout rate p")
    gap_ax.set_ylabel("train - validation accuracy" if uses_accuracy else "val - train loss")
    gap_ax.set_title("generalization gap (final epoch)")
    score_ax.set_xlabel("dropout rate p")
    score_ax.set_ylabel("validation accuracy" if uses_accuracy else "validation loss")
    score_ax.set_title("validation (mean of the last epochs)")
    for ax in (gap_ax, score_ax):
        ax.legend()
        ax.grid(alpha=0.3)
    path = Path(path)
    figure.savefig(path, dpi=110)
    return path


def _draw_pair(ax: Any, history: History, kind: str) -> None:
    for split, style in (("train", TRAIN_STYLE), ("val", VAL_STYLE)):
        values = history.series(f"{split}_{kind}")
        if values:
            epochs, finite = _finite(history.epochs, values)
            ax.plot(epochs, finite, **style)
    ax.grid(alpha=0.3)


def _lowest(results: Sequence[RateResult], kind: str) -> float:
    values = [
        v
        for r in results
        for name in (f"train_{kind}", f"val_{kind}")
        for v in r.history.series(name)[len(r.history) // 4 :]
        if math.isfinite(v)
    ]
    return min(values) if values else 0.0
