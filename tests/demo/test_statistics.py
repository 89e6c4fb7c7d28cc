"""Student-t quantiles and intervals against tabulated values and constructed samples."""

from __future__ import annotations

import math

import pytest

from dropkit.demo.statistics import mean_interval, paired_interval, t_quantile

# Two-sided 95% and 99% critical values of Student's t (standard tables).
TABLE = {
    (1, 0.975): 12.706,
    (2, 0.975): 4.303,
    (4, 0.975): 2.776,
    (9, 0.975): 2.262,
    (30, 0.975): 2.042,
    (2, 0.995): 9.925,
    (10, 0.995): 3.169,
    (1000, 0.975): 1.962,
}


@pytest.mark.parametrize(("df", "probability"), sorted(TABLE))
def test_t_quantile_matches_tables(df, probability):
    assert t_quantile(probability, df) == pytest.approx(TABLE[df, probability], abs=1e-3)
    assert t_quantile(1 - probability, df) == pytest.approx(-TABLE[df, probability], abs=1e-3)


def test_mean_interval_by_hand():
    interval = mean_interval([1.0, 2.0, 3.0, 4.0])
    half = 3.182 * math.sqrt((5 / 3) / 4)  # t(0.975, df=3) = 3.182
    assert interval.mean == 2.5
    assert interval.half_width == pytest.approx(half, rel=1e-3)
    assert interval.excludes(0.0) and not interval.excludes(2.0)


def test_single_value_has_no_interval():
    interval = mean_interval([0.7])
    assert interval.mean == 0.7 and math.isnan(interval.low) and not interval.excludes(0.0)
    assert interval.to_dict()["low"] is None


def test_pairing_removes_the_seed_effect():
    # Seeds move both arms together; the difference is a constant 0.01.
    first = [0.50, 0.70, 0.90]
    second = [0.49, 0.69, 0.89]
    assert paired_interval(first, second).excludes(0.0)
    assert not mean_interval(first).excludes(mean_interval(second).mean)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="probability must lie in"):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="df must be positive, got 0"):
        t_quantile(0.9, 0)
    with pytest.raises(ValueError, match="values must not be empty"):
        mean_interval([])
    with pytest.raises(ValueError, match="paired arms need as many values each, got 2 and 3"):
        paired_interval([1.0, 2.0], [1.0, 2.0, 3.0])
