"""Rules of thumb from the papers, as small functions."""

from __future__ import annotations

import math

from dropkit._validation import check_below_one, check_positive_int, check_probability


def interpolate(start_rate: float, end_rate: float, fraction: float) -> float:
    """The rate ``fraction`` of the way from ``start_rate`` to ``end_rate``: the one linear
    interpolation of rates (depth rules, schedules, policies), rounded to 12 decimals so that float
    error does not show (``0.1 * 3`` reads 0.3).

    Example:
        >>> from dropkit.rules import interpolate
        >>> interpolate(0.0, 0.1, 3 / 4), interpolate(0.3, 0.1, 0.5)
        (0.075, 0.2)
    """
    return round(start_rate + (end_rate - start_rate) * fraction, 12)


def depth_rates(max_rate: float, depth: int) -> list[float]:
    """Stochastic-depth rates rising linearly from 0.0 (first block) to ``max_rate`` (last block).

    The linear decay rule of Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016
    (https://arxiv.org/abs/1603.09382), Eq. 4, in the form vision transformers use it: block ``i``
    of ``depth`` gets ``max_rate * i / (depth - 1)``. Early blocks extract features every later
    block relies on, so they are dropped least. A single block (``depth == 1``) gets ``max_rate``,
    as the paper's ``l / L * p_L`` gives for ``L = 1``.

    Args:
        max_rate: the drop rate of the last block, in [0, 1].
        depth: the number of residual blocks, >= 1.

    Returns:
        ``depth`` floats.

    Example:
        >>> import dropkit as dk
        >>> dk.depth_rates(0.2, 5)
        [0.0, 0.05, 0.1, 0.15, 0.2]
    """
    max_rate = check_probability(max_rate, "max_rate")
    depth = check_positive_int(depth, "depth")
    if depth == 1:
        return [max_rate]
    return [interpolate(0.0, max_rate, index / (depth - 1)) for index in range(depth)]


def widen(width: int, p: float) -> int:
    """The layer width that keeps the expected number of active units under dropout rate ``p``.

    Srivastava et al. 2014 (https://jmlr.org/papers/v15/srivastava14a.html), Section A.4: if ``n``
    units are right without dropout, use about ``n / (1 - p)`` with it. Returns
    ``ceil(width / (1 - p))``.

    Args:
        width: the width without dropout, >= 1.
        p: the dropout rate, in [0, 1).

    Example:
        >>> import dropkit as dk
        >>> dk.widen(256, 0.5), dk.widen(100, 0.2), dk.widen(100, 0.0)
        (512, 125, 100)
    """
    width = check_positive_int(width, "width")
    p = check_below_one(p)
    # Rounding first keeps float error (100 / 0.8 = 125.00000000000001) from adding a unit.
    return math.ceil(round(width / (1.0 - p), 9))
