"""The evidence suite: experiments E1-E10, each over three seeds with paired arms.

Each experiment is a function ``(quick: bool) -> Finding``: it states its settings, measures an
effect with a confidence interval, and checks it against an acceptance criterion. ``quick=True``
runs a tiny version (seconds) for tests: its numbers check the plumbing, not the claim.
Experiments use only dropkit's public API for the methods they exercise.
"""

from __future__ import annotations

from collections.abc import Callable

from dropkit.demo.experiments.base import Finding, Line, Panel
from dropkit.demo.experiments.mechanics import (
    correlated_maps,
    expected_depth,
    geometric_mean,
    variance_shift,
)
from dropkit.demo.experiments.mnist1d import (
    dropblock,
    early_dropout,
    generalisation_gap,
    targeted_pruning,
)
from dropkit.demo.experiments.uncertainty import concrete_rates, mc_spread

#: The experiments by name, in order.
EXPERIMENTS: dict[str, Callable[[bool], Finding]] = {
    "E1": generalisation_gap,
    "E2": geometric_mean,
    "E3": dropblock,
    "E4": correlated_maps,
    "E5": variance_shift,
    "E6": targeted_pruning,
    "E7": expected_depth,
    "E8": mc_spread,
    "E9": concrete_rates,
    "E10": early_dropout,
}

__all__ = ["EXPERIMENTS", "Finding", "Line", "Panel", "run_experiment"]


def run_experiment(name: str, *, quick: bool = False) -> Finding:
    """Run one experiment by name (``"E1"`` ... ``"E10"``, case-insensitive).

    Example:
        >>> from dropkit.demo.experiments import run_experiment
        >>> finding = run_experiment("E7", quick=True)
        >>> finding.name, finding.verdict in ("PASS", "FAIL")
        ('E7', True)
    """
    key = name.upper()
    if key not in EXPERIMENTS:
        raise ValueError(f"name must be one of {', '.join(EXPERIMENTS)}, got {name!r}")
    return EXPERIMENTS[key](quick)
