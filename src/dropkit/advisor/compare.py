"""Compare training runs made at different dropout rates and pick one."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dropkit.advisor.diagnosis import Diagnosis, Thresholds, diagnose
from dropkit.advisor.history import History, as_history


@dataclass
class RateResult:
    """One run of a rate sweep, read: its history, diagnosis and final numbers.

    Attributes:
        p: the dropout rate of the run.
        group: a label for the family of runs (``"plain"``, ``"widened"`` ...).
        width: the hidden width, when known.
        history: the run's :class:`~dropkit.advisor.History`.
        diagnosis: :func:`~dropkit.diagnose` of it, with ``current_p=p``.
        score: the run's validation score: mean validation accuracy over the last fifth of the
            epochs (at least one), or minus the mean validation loss without accuracy.
    """

    p: float
    group: str
    width: int | None
    history: History
    diagnosis: Diagnosis
    score: float

    def final(self, series: str) -> float:
        """The last finite value of a series (``nan`` when never logged)."""
        values = [v for v in self.history.series(series) if math.isfinite(v)]
        return values[-1] if values else math.nan

    @property
    def gap(self) -> float:
        """Final training accuracy minus final validation accuracy (or val - train loss)."""
        if math.isfinite(self.final("train_acc")) and math.isfinite(self.final("val_acc")):
            return self.final("train_acc") - self.final("val_acc")
        return self.final("val_loss") - self.final("train_loss")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        numbers = {
            name: self.final(name) for name in ("train_loss", "train_acc", "val_loss", "val_acc")
        }
        return {
            "p": self.p,
            "group": self.group,
            "width": self.width,
            **{k: (v if math.isfinite(v) else None) for k, v in numbers.items()},
            "gap": self.gap if math.isfinite(self.gap) else None,
            "score": self.score,
            "regime": self.diagnosis.regime,
            "suggested_p": self.diagnosis.suggested_p,
        }


def compare_rates(
    runs: Sequence[Mapping[str, Any]], *, thresholds: Thresholds | None = None
) -> list[RateResult]:
    """Read each run of a sweep: ``{"p": ..., "history": ..., "group": ..., "width": ...}``.

    ``history`` is anything :func:`~dropkit.diagnose` accepts (a list of per-epoch dicts ...).

    Example:
        >>> from dropkit.advisor.compare import compare_rates, recommend
        >>> flat = [{"train_acc": 1.0, "val_acc": 0.8}] * 5
        >>> better = [{"train_acc": 0.93, "val_acc": 0.9}] * 5
        >>> results = compare_rates([{"p": 0.0, "history": flat}, {"p": 0.3, "history": better}])
        >>> [r.diagnosis.regime for r in results], recommend(results).p
        (['overfitting', 'sweet_spot'], 0.3)
    """
    results = []
    for run in runs:
        p = float(run["p"])
        history = as_history(run["history"], source=f"run p={p:g}")
        results.append(
            RateResult(
                p=p,
                group=str(run.get("group", "")),
                width=run.get("width"),
                history=history,
                diagnosis=diagnose(history, current_p=p, thresholds=thresholds),
                score=_score(history),
            )
        )
    return results


def recommend(results: Sequence[RateResult]) -> RateResult:
    """The run with the best validation score; ties go to the lower rate, then the narrower."""
    if not results:
        raise ValueError("no runs to recommend from")
    return max(results, key=lambda r: (round(r.score, 9), -r.p, -(r.width or 0)))


def _score(history: History) -> float:
    if "val_acc" in history.available():
        values, sign = history.val_acc, 1.0
    elif "val_loss" in history.available():
        values, sign = history.val_loss, -1.0
    else:
        return -math.inf
    finite = [v for v in values if math.isfinite(v)]
    tail = finite[-max(1, len(finite) // 5) :]
    return sign * sum(tail) / len(tail)
