"""Small-sample statistics for comparing training runs over seeds: Student-t intervals.

Runs repeated over a few seeds give a handful of numbers per arm; a mean alone hides how much of a
difference is noise. These helpers give the mean with a Student-t confidence interval, and the
interval of a *paired* difference (arms trained with the same seeds), without scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Interval", "mean_interval", "paired_interval", "t_quantile"]


@dataclass(frozen=True)
class Interval:
    """A mean and its two-sided confidence interval.

    Attributes:
        mean: the sample mean.
        low: the lower end of the interval (``nan`` with fewer than two values).
        high: the upper end.
        count: the number of values.
        confidence: the confidence level, e.g. 0.95.
    """

    mean: float
    low: float
    high: float
    count: int
    confidence: float

    @property
    def half_width(self) -> float:
        """Half the interval's width (``nan`` when undefined)."""
        return (self.high - self.low) / 2.0

    def excludes(self, value: float) -> bool:
        """Whether ``value`` lies outside the interval (False when the interval is undefined)."""
        return math.isfinite(self.low) and not self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (undefined ends become ``None``)."""
        return {
            key: (value if math.isfinite(value) else None)
            for key, value in (("mean", self.mean), ("low", self.low), ("high", self.high))
        } | {"count": self.count, "confidence": self.confidence}


def t_quantile(probability: float, df: float) -> float:
    """The ``probability`` quantile of Student's t distribution with ``df`` degrees of freedom.

    Computed by bisection on the distribution function, itself the regularised incomplete beta
    function evaluated by its continued fraction.

    Example:
        >>> from dropkit.demo.statistics import t_quantile
        >>> round(t_quantile(0.975, 2), 3), round(t_quantile(0.975, 10), 3)
        (4.303, 2.228)
    """
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must lie in (0, 1), got {probability}")
    if not df > 0:
        raise ValueError(f"df must be positive, got {df}")
    if probability < 0.5:
        return -t_quantile(1.0 - probability, df)
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < probability:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if _t_cdf(middle, df) < probability:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2.0


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The mean of ``values`` and its Student-t confidence interval.

    Example:
        >>> from dropkit.demo.statistics import mean_interval
        >>> interval = mean_interval([0.70, 0.72, 0.74])
        >>> round(interval.mean, 4), round(interval.half_width, 4)
        (0.72, 0.0497)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    data = [float(v) for v in values]
    if not data:
        raise ValueError("values must not be empty")
    mean = sum(data) / len(data)
    if len(data) < 2:
        return Interval(mean, math.nan, math.nan, len(data), confidence)
    variance = sum((v - mean) ** 2 for v in data) / (len(data) - 1)
    half = t_quantile(0.5 + confidence / 2.0, len(data) - 1) * math.sqrt(variance / len(data))
    return Interval(mean, mean - half, mean + half, len(data), confidence)


def paired_interval(
    first: Sequence[float], second: Sequence[float], confidence: float = 0.95
) -> Interval:
    """The mean of ``first[i] - second[i]`` and its paired Student-t confidence interval.

    Pairs are runs that share a seed (same data order, same initialisation where the shapes
    allow), so the seed's own effect cancels in each difference.

    Example:
        >>> from dropkit.demo.statistics import paired_interval
        >>> difference = paired_interval([0.75, 0.70, 0.72], [0.70, 0.66, 0.69])
        >>> round(difference.mean, 3), difference.excludes(0.0)
        (0.04, True)
    """
    if len(first) != len(second):
        raise ValueError(
            f"paired arms need as many values each, got {len(first)} and {len(second)}"
        )
    return mean_interval([a - b for a, b in zip(first, second, strict=True)], confidence)


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result
