"""Figures of a sweep over seeds: curves with bands, and numbers against the rate with error bars.

Built on ``matplotlib.figure.Figure`` directly (no pyplot, no global state, no display needed).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dropkit.advisor.compare import RateSummary, Recommendation
from dropkit.demo.statistics import mean_interval

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def new_figure(rows: int, columns: int, size: tuple[float, float]) -> tuple[Any, Any]:
    """A constrained-layout matplotlib figure and its grid of axes (always 2-D)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("figures need matplotlib: pip install 'dropkit[cli]'") from error
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.subplots(rows, columns, squeeze=False)


def band(
    arm: RateSummary, series: str
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Epochs, mean, low and high of a series over an arm's seeds (a t-interval per epoch)."""
    histories = [run.history for run in arm.runs]
    length = min(len(h) for h in histories)
    epochs = list(histories[0].epochs[:length])
    mean, low, high = [], [], []
    for index in range(length):
        values = [h.series(series)[index] for h in histories if h.series(series)]
        values = [v for v in values if math.isfinite(v)]
        if not values:
            values = [math.nan]
        interval = mean_interval(values, arm.score.confidence)
        spread = interval.half_width if math.isfinite(interval.low) else 0.0
        mean.append(interval.mean)
        low.append(interval.mean - spread)
        high.append(interval.mean + spread)
    return epochs, mean, low, high


def plot_bands(recommendation: Recommendation, path: str | Path) -> Path:
    """Validation accuracy and loss of every arm against the epoch: means with interval bands.

    Training curves are drawn dashed. One panel per group and metric (accuracy, loss).
    """
    arms = recommendation.arms
    groups = list(dict.fromkeys(arm.group for arm in arms))
    series = {"accuracy": "acc", "loss": "loss"}  # the doctor's names and their series
    metrics = [
        name
        for name, key in series.items()
        if any(f"val_{key}" in a.runs[0].history.available() for a in arms)
    ]
    figure, axes = new_figure(len(metrics), len(groups), (5.0 * len(groups), 3.4 * len(metrics)))
    rates = sorted({arm.p for arm in arms})
    for column, group in enumerate(groups):
        for row, metric in enumerate(metrics):
            ax = axes[row][column]
            for arm in (a for a in arms if a.group == group):
                color = COLORS[rates.index(arm.p) % len(COLORS)]
                epochs, mean, low, high = band(arm, f"val_{series[metric]}")
                ax.plot(epochs, mean, color=color, label=arm.label)
                ax.fill_between(epochs, low, high, color=color, alpha=0.2, linewidth=0)
                epochs, mean, _, _ = band(arm, f"train_{series[metric]}")
                ax.plot(epochs, mean, color=color, linestyle="--", linewidth=0.8)
            ax.set_title(f"{group or 'runs'}: {metric}", fontsize=10)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            if row == 0:
                ax.legend(fontsize=7)
    figure.suptitle("held-out (solid, band: confidence interval over seeds) and training (dashed)")
    figure.savefig(Path(path), dpi=100, format="png")
    return Path(path)


def plot_intervals(recommendation: Recommendation, path: str | Path) -> Path:
    """Final validation accuracy, loss and generalization gap against the rate, with error bars."""
    arms = recommendation.arms
    groups = list(dict.fromkeys(arm.group for arm in arms))
    figure, axes = new_figure(1, 3, (13.0, 3.6))
    panels = (
        ("accuracy", "held-out accuracy"),
        ("nll", "held-out loss (NLL)"),
        ("gap", "train - held-out accuracy"),
    )
    for ax, (name, title) in zip(axes[0], panels, strict=True):
        for index, group in enumerate(groups):
            members = sorted((a for a in arms if a.group == group), key=lambda a: a.p)
            intervals = [getattr(a, name) for a in members]
            errors = [i.half_width if math.isfinite(i.low) else 0.0 for i in intervals]
            shift = 0.004 * (index - (len(groups) - 1) / 2)
            ax.errorbar(
                [a.p + shift for a in members],
                [i.mean for i in intervals],
                yerr=errors,
                marker="o",
                capsize=3,
                color=COLORS[index % len(COLORS)],
                label=group or "runs",
            )
        ax.set_xlabel("dropout rate p")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    level = f"{recommendation.confidence:.0%}"
    figure.suptitle(f"means over seeds, error bars: {level} Student-t intervals")
    figure.savefig(Path(path), dpi=100, format="png")
    return Path(path)
