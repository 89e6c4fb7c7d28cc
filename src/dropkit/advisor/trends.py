"""Trends judged against a curve's own noise: the scatter between epochs, and fitted slopes.

Example:
    >>> from dropkit.advisor.trends import noise_of, trend
    >>> curve = [1.0, 0.8, 0.7, 0.64, 0.6, 0.58, 0.57, 0.565]
    >>> round(noise_of(curve), 4) < 0.01
    True
    >>> change, t = trend([0.50, 0.52, 0.51, 0.55, 0.56, 0.58], noise=0.01)
    >>> round(change, 3), t > 2.5
    (0.08, True)
"""

from __future__ import annotations

import math
import statistics

#: Values a curve needs before its noise is estimated (fewer: changes are read at face value).
MIN_NOISE_EPOCHS = 6


def noise_of(values: list[float]) -> float:
    """The scatter of a curve around its local trend, a standard deviation.

    The local trend is a quadratic fitted to each five consecutive epochs (a Savitzky-Golay
    smoother), so a curve's bend is not taken for noise; for independent noise of deviation
    sigma the residual at the centre has deviation sqrt(18/35) sigma. Shorter curves use second
    differences (deviation sqrt(6) sigma). The absolute residuals are averaged without the
    largest tenth (a learning-rate step or a spike is not noise); for Gaussian noise that
    trimmed mean is 0.657 deviations. The estimate is raised by 1 / sqrt(m) of itself (m
    residuals), so that a short curve's lucky low estimate does not make noise look like a
    trend. Below ``MIN_NOISE_EPOCHS`` values a curve's bend cannot be told from its noise: the
    noise is then taken as zero, and only the practical thresholds judge the changes.
    """
    count = len(values)
    if count < MIN_NOISE_EPOCHS:
        return 0.0
    if count >= 5:
        residuals = [
            (
                3 * values[i - 2]
                - 12 * values[i - 1]
                + 18 * values[i]
                - 12 * values[i + 1]
                + 3 * values[i + 2]
            )
            / 35
            for i in range(2, count - 2)
        ]
        deviation = math.sqrt(18 / 35)
    else:
        residuals = [values[i + 1] - 2 * values[i] + values[i - 1] for i in range(1, count - 1)]
        deviation = math.sqrt(6)
    kept = sorted(abs(r) for r in residuals)[: max(1, math.ceil(0.9 * len(residuals)))]
    estimate = sum(kept) / len(kept) / 0.6574 / deviation
    return estimate * (1 + 1 / math.sqrt(len(residuals)))


def recent_noise(values: list[float]) -> float:
    """The noise of the later half of a curve (at least its last 12 values), where the verdict
    is read: the first epochs of a run are often far noisier."""
    return noise_of(values[-max(12, len(values) // 2) :])


def trend(values: list[float], noise: float) -> tuple[float, float]:
    """The fitted change from the first to the last value, and its slope in standard errors.

    The line is the least-squares fit over the epochs (:func:`statistics.linear_regression`); the
    standard error uses the larger of its residual scatter and ``noise``.
    """
    count = len(values)
    if count < 2:
        return 0.0, 0.0
    slope, intercept = statistics.linear_regression(range(count), values)
    sxx = count * (count * count - 1) / 12  # the sum of squared deviations of 0, 1, ..., count-1
    residual = 0.0
    if count > 2:
        squares = math.fsum((y - intercept - slope * x) ** 2 for x, y in enumerate(values))
        residual = math.sqrt(squares / (count - 2))
    error = max(residual, noise) / math.sqrt(sxx)
    if error <= 0:
        return slope * (count - 1), math.copysign(math.inf, slope) if slope else 0.0
    return slope * (count - 1), slope / error
