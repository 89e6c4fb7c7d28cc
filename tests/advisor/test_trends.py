"""Trend fits against numpy's least squares, and the noise floor of their standard error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dropkit.advisor.trends import trend


@pytest.mark.parametrize("count", [3, 7, 30])
def test_trend_is_the_least_squares_slope_in_standard_errors(count: int) -> None:
    rng = np.random.default_rng(count)
    epochs = np.arange(count)
    values = 0.8 - 0.01 * epochs + rng.normal(0, 0.02, count)
    slope, intercept = np.polyfit(epochs, values, 1)
    scatter = math.sqrt(((values - intercept - slope * epochs) ** 2).sum() / (count - 2))
    error = scatter / math.sqrt(((epochs - epochs.mean()) ** 2).sum())
    change, t = trend(values.tolist(), noise=0.0)
    assert change == pytest.approx(slope * (count - 1), rel=1e-9)
    assert t == pytest.approx(slope / error, rel=1e-9)


def test_noise_larger_than_the_scatter_sets_the_standard_error() -> None:
    values = [1.0, 1.1, 1.2, 1.3]  # a perfect line: no scatter at all
    change, t = trend(values, noise=0.1)
    assert change == pytest.approx(0.3)
    assert t == pytest.approx(0.1 / (0.1 / math.sqrt(5)))  # sum of squared deviations of 0..3: 5
    assert trend(values, noise=0.0)[1] > 1e6  # only rounding error is left as scatter
    assert trend([0.0, 1.0], noise=0.0) == (1.0, math.inf)  # two points: no scatter to measure
    assert trend([2.0, 2.0, 2.0], noise=0.0) == (0.0, 0.0)
    assert trend([5.0], noise=1.0) == (0.0, 0.0)
