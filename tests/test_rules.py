"""depth_rates and widen."""

from __future__ import annotations

import itertools

import pytest

import dropkit as dk


def test_depth_rates_linear_from_zero_to_max() -> None:
    assert dk.depth_rates(0.2, 5) == [0.0, 0.05, 0.1, 0.15, 0.2]
    rates = dk.depth_rates(0.5, 54)
    assert rates[0] == 0.0 and rates[-1] == 0.5 and len(rates) == 54
    steps = [b - a for a, b in itertools.pairwise(rates)]
    assert max(steps) - min(steps) < 1e-9
    assert dk.depth_rates(0.3, 1) == [0.3]
    assert dk.depth_rates(0.0, 3) == [0.0, 0.0, 0.0]


def test_depth_rates_expected_depth_matches_the_paper() -> None:
    # Huang et al.: with survival 1 -> 0.5 over L blocks the expected depth is (3L - 1) / 4,
    # for their rule p_l = l / L * p_L over blocks l = 1..L.
    depth = 54
    paper_rates = [index / depth * 0.5 for index in range(1, depth + 1)]
    assert sum(1 - rate for rate in paper_rates) == pytest.approx((3 * depth - 1) / 4)
    # the 0-based rule here reaches the same last rate and spans it evenly
    assert dk.depth_rates(0.5, depth)[-1] == paper_rates[-1]


def test_depth_rates_errors() -> None:
    with pytest.raises(ValueError, match=r"max_rate must be a probability in \[0, 1\], got 1.2"):
        dk.depth_rates(1.2, 3)
    with pytest.raises(ValueError, match="depth must be an int >= 1, got 0"):
        dk.depth_rates(0.1, 0)
    with pytest.raises(TypeError, match="depth must be an int >= 1, got 2.5"):
        dk.depth_rates(0.1, 2.5)  # type: ignore[arg-type]


def test_widen() -> None:
    assert dk.widen(256, 0.5) == 512
    assert dk.widen(100, 0.2) == 125
    assert dk.widen(100, 0.8) == 500
    assert dk.widen(100, 0.1) == 112
    assert dk.widen(7, 0.0) == 7
    assert dk.widen(1, 0.3) == 2


def test_widen_errors() -> None:
    with pytest.raises(ValueError, match="p must be below 1, got 1.0"):
        dk.widen(10, 1.0)
    with pytest.raises(ValueError, match="width must be an int >= 1, got 0"):
        dk.widen(0, 0.5)
