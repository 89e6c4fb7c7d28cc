"""What an evidence experiment returns: its effect, its criterion and its figure's data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from dropkit.demo.statistics import Interval, mean_interval

__all__ = ["Finding", "Line", "Panel", "band_over_seeds", "interval_dict"]


@dataclass
class Line:
    """One line of a panel: ``y`` against ``x``, with an optional band ``low``..``high``.

    ``kind`` is ``"line"``, ``"errorbar"`` (the band drawn as error bars) or ``"bar"``.
    """

    label: str
    x: list[float]
    y: list[float]
    low: list[float] | None = None
    high: list[float] | None = None
    kind: str = "line"


@dataclass
class Panel:
    """One panel of an experiment's figure."""

    title: str
    xlabel: str
    ylabel: str
    lines: list[Line] = field(default_factory=list)
    log_x: bool = False
    log_y: bool = False


@dataclass
class Finding:
    """The result of one evidence experiment: a row of the results table and a figure's data.

    Attributes:
        name: the experiment's short name (``"E1"`` ...).
        title: what the experiment shows, in a few words.
        effect: what ``estimate`` measures, in words (with its unit).
        estimate: the effect's mean over seeds and its confidence interval.
        criterion: the acceptance criterion, in words.
        passed: whether the run met the criterion.
        reference: the published numbers the result can be compared with.
        settings: every setting of the run (data, model, training, seeds, quick or full).
        numbers: further measured numbers (name -> mean, low, high).
        panels: the figure's data.
    """

    name: str
    title: str
    effect: str
    estimate: Interval
    criterion: str
    passed: bool
    reference: str
    settings: dict[str, Any]
    numbers: dict[str, Any] = field(default_factory=dict)
    panels: list[Panel] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers become ``None``)."""
        data = {
            "name": self.name,
            "title": self.title,
            "effect": self.effect,
            "estimate": self.estimate.to_dict(),
            "criterion": self.criterion,
            "verdict": self.verdict,
            "reference": self.reference,
            "settings": self.settings,
            "numbers": self.numbers,
            "panels": [asdict(panel) for panel in self.panels],
        }
        return _finite(data)


def interval_dict(values: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """``mean_interval(values).to_dict()``: the mean and interval of some measured numbers."""
    return mean_interval(values, confidence).to_dict()


def band_over_seeds(
    label: str, x: Sequence[float], per_seed: Sequence[Sequence[float]], kind: str = "line"
) -> Line:
    """A line of the mean over seeds at every x, with its 95% Student-t interval as the band."""
    means, lows, highs = [], [], []
    for values in zip(*per_seed, strict=True):
        interval = mean_interval(values)
        spread = interval.half_width if math.isfinite(interval.low) else 0.0
        means.append(interval.mean)
        lows.append(interval.mean - spread)
        highs.append(interval.mean + spread)
    return Line(label, [float(v) for v in x], means, lows, highs, kind)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
