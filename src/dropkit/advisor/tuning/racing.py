"""Noise-aware choice among candidates: successive halving over seeds and paired intervals.

Every candidate is scored with seed 0 during the search. Then the leaders are re-evaluated: at
rung ``k`` (seed ``k``) only the best ``ceil(n / 2**k)`` candidates by their mean over the seeds so
far (at least :data:`MIN_FINALISTS`) get one more evaluation, so ``seeds=3`` over ``n`` candidates
costs about ``1.75 n`` evaluations instead of ``3 n``. The finalists hold every seed; the best is
the one with the best mean, and the runners-up are the finalists whose paired difference from it
(same seeds) has a 95% Student-t interval that contains zero: the data cannot tell them apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: Candidates evaluated on every seed, when that many exist.
MIN_FINALISTS = 3
CONFIDENCE = 0.95


@dataclass
class Candidate:
    """One set of rates and its scores.

    Attributes:
        number: the number of the trial that drew it.
        rates: ``{name: p}``.
        values: ``{seed: score}``.

    Example:
        >>> from dropkit.advisor.tuning import Candidate
        >>> candidate = Candidate(4, {"head": 0.3}, {0: 0.50, 1: 0.54, 2: 0.52})
        >>> round(candidate.mean, 3), [round(end, 3) for end in candidate.interval]
        (0.52, [0.47, 0.57])
    """

    number: int
    rates: dict[str, float]
    values: dict[int, float] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        """The mean score over its seeds."""
        return sum(self.values.values()) / len(self.values)

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% Student-t confidence interval of the mean, ``None`` with one seed."""
        return mean_interval(list(self.values.values()))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        interval = self.interval
        return {
            "trial": self.number,
            "rates": dict(self.rates),
            "mean": self.mean,
            "interval": list(interval) if interval else None,
            "values": {str(seed): value for seed, value in sorted(self.values.items())},
        }


def t_quantile(probability: float, df: int) -> float:
    """The ``probability`` quantile (above 0.5) of Student's t with ``df`` >= 1 degrees of freedom.

    Bisection on the closed-form distribution for whole ``df`` (Abramowitz and Stegun 26.7.3-4).

    Example:
        >>> round(t_quantile(0.975, 4), 3)
        2.776
    """
    if not 0.5 <= probability < 1.0 or df < 1:
        raise ValueError(f"need 0.5 <= probability < 1 and df >= 1, got {probability}, {df}")
    target = 2.0 * probability - 1.0  # P(|T| <= t)
    low, high = 0.0, 1.0
    while _central(high, df) < target:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if _central(middle, df) < target:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2.0


def mean_interval(values: list[float]) -> tuple[float, float] | None:
    """The 95% Student-t confidence interval of the mean of ``values``; ``None`` for one value."""
    count = len(values)
    if count < 2:
        return None
    mean = sum(values) / count
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (count - 1))
    half = t_quantile((1.0 + CONFIDENCE) / 2.0, count - 1) * spread / math.sqrt(count)
    return (mean - half, mean + half)


def rung_sizes(candidates: int, seeds: int) -> list[int]:
    """How many candidates are evaluated with each seed: all with seed 0, then halving."""
    sizes = [candidates]
    for rung in range(1, seeds):
        wanted = max(min(candidates, MIN_FINALISTS), math.ceil(candidates / 2**rung))
        sizes.append(min(sizes[-1], wanted))
    return sizes


def next_evaluations(
    candidates: list[Candidate], seeds: int, maximize: bool
) -> tuple[list[Candidate], list[tuple[Candidate, int]]]:
    """The current leaders and the ``(candidate, seed)`` evaluations the next rung still lacks.

    The second list is empty once the finalists (the first list) hold every seed.
    """
    sign = -1.0 if maximize else 1.0
    sizes = rung_sizes(len(candidates), seeds)
    leaders = sorted(candidates, key=lambda c: c.number)
    for rung in range(1, seeds):

        def rank(candidate: Candidate, rung: int = rung) -> tuple[float, int]:
            scores = [candidate.values[seed] for seed in range(rung)]
            return (sign * sum(scores) / rung, candidate.number)

        leaders = sorted(leaders, key=rank)[: sizes[rung]]
        missing = [(c, rung) for c in leaders if rung not in c.values]
        if missing:
            return leaders, missing
    return leaders, []


def choose(
    finalists: list[Candidate], seeds: int, maximize: bool
) -> tuple[Candidate, list[Candidate]]:
    """The best finalist (on seeds ``0..seeds-1``) and those not distinguishable from it."""
    trimmed = [
        Candidate(c.number, c.rates, {s: c.values[s] for s in range(seeds)}) for c in finalists
    ]
    sign = -1.0 if maximize else 1.0
    ordered = sorted(trimmed, key=lambda c: (sign * c.mean, c.number))
    best = ordered[0]
    runners_up = []
    for other in ordered[1:]:
        differences = [other.values[s] - best.values[s] for s in range(seeds)]
        interval = mean_interval(differences)
        if interval is not None and interval[0] <= 0.0 <= interval[1]:
            runners_up.append(other)
    return best, runners_up


def _central(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` degrees of freedom (whole number)."""
    theta = math.atan(t / math.sqrt(df))
    sine, cosine = math.sin(theta), math.cos(theta)
    if df % 2 == 1:
        total, term = 0.0, cosine
        for k in range(1, (df - 1) // 2 + 1):
            if k > 1:
                term *= cosine * cosine * (2 * k - 2) / (2 * k - 1)
            total += term
        return 2.0 / math.pi * (theta + sine * total) if df > 1 else 2.0 * theta / math.pi
    total, term = 1.0, 1.0
    for k in range(1, df // 2):
        term *= cosine * cosine * (2 * k - 1) / (2 * k)
        total += term
    return sine * total
