"""Compare training runs made at different dropout rates and seeds, and pick a rate, noise-aware.

Runs at the same rate, group and width but different seeds form an *arm*; arms are compared by
paired Student-t intervals over their shared seeds, so a recommendation says which rates the noise
cannot tell apart, and says so plainly when dropout makes no significant difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dropkit._validation import check_probability, real_number
from dropkit.advisor.diagnosis import Diagnosis, Thresholds, diagnose
from dropkit.advisor.history import History, as_history
from dropkit.demo.statistics import Interval, mean_interval, paired_interval
from dropkit.results import Result, to_plain


@dataclass(frozen=True)
class RateResult(Result):
    """One run of a rate sweep, read: its history, diagnosis and final numbers.

    Attributes:
        p: the dropout rate of the run.
        group: a label for the family of runs (``"plain"``, ``"widened"`` ...).
        width: the hidden width, when known.
        seed: the run's seed, when known (runs of one seed are paired across rates).
        history: the run's :class:`~dropkit.advisor.History`.
        diagnosis: :func:`~dropkit.diagnose` of it, with ``current_p=p``.
        score: the run's validation score (higher is better): mean validation accuracy over
            the last fifth of the epochs (at least one), or minus the mean validation loss
            (see ``metric`` of :func:`compare_rates`).
    """

    p: float
    group: str
    width: int | None
    seed: int | None
    history: History
    diagnosis: Diagnosis
    score: float
    metric: str = "accuracy"

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
        data = {
            "p": self.p,
            "group": self.group,
            "width": self.width,
            "seed": self.seed,
            **numbers,
            "gap": self.gap,
            "score": self.score,
            "regime": self.diagnosis.regime,
            "suggested_p": self.diagnosis.suggested_p,
        }
        return dict(to_plain(data))

    def __str__(self) -> str:
        group = f" {self.group}" if self.group else ""
        seed = f", seed {self.seed}" if self.seed is not None else ""
        regime = self.diagnosis.regime.replace("_", " ")
        return f"p={self.p:g}{group}{seed}: score {self.score:.4g} ({self.metric}), {regime}"


def compare_rates(
    runs: Sequence[Mapping[str, Any]],
    *,
    thresholds: Thresholds | None = None,
    metric: str = "accuracy",
) -> list[RateResult]:
    """Read each run of a sweep: ``{"p", "history"}`` and optionally ``"group", "width", "seed"``.

    ``history`` is anything :func:`~dropkit.diagnose` accepts (a list of per-epoch dicts ...).
    ``metric`` picks the score: ``"accuracy"`` (mean validation accuracy over the last fifth of
    the epochs; minus the loss when no accuracy was logged) or ``"loss"`` (minus the mean
    validation loss over the last fifth: for a classifier the NLL, a proper score that tells
    rates apart with fewer seeds than accuracy).

    Example:
        >>> from dropkit.advisor.compare import compare_rates, recommend
        >>> flat = [{"train_acc": 1.0, "val_acc": 0.8}] * 5
        >>> better = [{"train_acc": 0.93, "val_acc": 0.9}] * 5
        >>> results = compare_rates([{"p": 0.0, "history": flat}, {"p": 0.3, "history": better}])
        >>> [r.diagnosis.regime for r in results], recommend(results).best.p
        (['overfitting', 'sweet_spot'], 0.3)
    """
    if metric not in ("accuracy", "loss"):
        raise ValueError(f"metric must be 'accuracy' or 'loss', got {metric!r}")
    if isinstance(runs, (str, Mapping)) or not isinstance(runs, Sequence):
        raise TypeError(f"runs must be a list of dicts, got {type(runs).__name__}")
    results = []
    for index, run in enumerate(runs):
        if not isinstance(run, Mapping) or "p" not in run or "history" not in run:
            raise ValueError(
                f"runs[{index}] must be a dict with 'p' and 'history', got {_short(run)}"
            )
        p = check_probability(run["p"], f"runs[{index}]['p']")
        history = as_history(run["history"], source=f"run p={p:g}")
        results.append(
            RateResult(
                p=p,
                group=str(run.get("group", "")),
                width=run.get("width"),
                seed=run.get("seed"),
                history=history,
                diagnosis=diagnose(history, current_p=p, thresholds=thresholds),
                score=_score(history, metric),
                metric=metric,
            )
        )
    return results


def _score(history: History, metric: str) -> float:
    if metric == "accuracy" and "val_acc" in history.available():
        values, sign = history.val_acc, 1.0
    elif "val_loss" in history.available():
        values, sign = history.val_loss, -1.0
    else:
        return -math.inf
    finite = [v for v in values if math.isfinite(v)]
    tail = finite[-max(1, len(finite) // 5) :]
    return sign * sum(tail) / len(tail)


@dataclass(frozen=True)
class RateSummary(Result):
    """One arm of a sweep (a rate, a group and a width) over its seeds.

    Attributes:
        p: the dropout rate.
        group: the family of runs (``"plain"``, ``"widened"`` ...).
        width: the hidden width, when known.
        runs: the arm's runs, one per seed, in seed order.
        score: the runs' validation scores (see :class:`RateResult`): mean and interval.
        accuracy: final validation accuracy (``nan`` interval when not logged).
        nll: final validation loss (the NLL for a classifier).
        gap: final generalization gap (train - validation accuracy).
    """

    p: float
    group: str
    width: int | None
    runs: list[RateResult]
    score: Interval
    accuracy: Interval
    nll: Interval
    gap: Interval

    @property
    def label(self) -> str:
        width = f", width {self.width}" if self.width else ""
        group = f" {self.group}" if self.group else ""
        return f"p={self.p:g}{group}{width}"

    @property
    def seeds(self) -> list[int | None]:
        return [run.seed for run in self.runs]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        data = {
            "p": self.p,
            "group": self.group,
            "width": self.width,
            "seeds": self.seeds,
            "score": self.score.to_dict(),
            "val_acc": self.accuracy.to_dict(),
            "val_loss": self.nll.to_dict(),
            "gap": self.gap.to_dict(),
        }
        return dict(to_plain(data))

    def __str__(self) -> str:
        return f"{self.label}: {_score_text(self)} over {len(self.runs)} runs"


@dataclass(frozen=True)
class Recommendation(Result):
    """A noise-aware choice among the arms of a sweep.

    Attributes:
        arms: every arm of the sweep, in the sweep's order.
        best: the arm with the highest mean score (ties: lower rate, then narrower).
        tied: the arms not statistically distinguishable from ``best`` (``best`` first): the
            paired interval of their score minus the best's, over shared seeds, contains 0.
        baseline: the arm without dropout (p = 0, the first group), when the sweep has one.
        differences: label -> paired interval of (arm score - best score).
        confidence: the intervals' confidence level (1 - alpha).
    """

    arms: list[RateSummary]
    best: RateSummary
    tied: list[RateSummary]
    baseline: RateSummary | None
    differences: dict[str, Interval]
    confidence: float

    @property
    def tested(self) -> bool:
        """Whether the arms share at least two seeds, so that differences could be tested."""
        return all(math.isfinite(d.low) for d in self.differences.values())

    @property
    def dropout_matters(self) -> bool:
        """Whether the arm without dropout is significantly worse than the best."""
        return (
            self.tested
            and self.baseline is not None
            and self.baseline is not self.best
            and all(arm is not self.baseline for arm in self.tied)
        )

    def verdict(self, arm: RateSummary) -> str:
        """``"best"``, ``"tied"`` (not distinguishable from the best), ``"worse"``, or
        ``"untested"`` when the sweep has too few seeds to tell."""
        if arm is self.best:
            return "best"
        if not self.tested:
            return "untested"
        return "tied" if any(arm is other for other in self.tied) else "worse"

    @property
    def sentence(self) -> str:
        """The recommendation in plain words."""
        level = f"{self.confidence:.0%}"
        best = self.best
        head = f"best: {best.label}, {_score_text(best)}"
        if not self.tested:
            return (
                f"{head}. With fewer than two seeds per rate the differences cannot be told from "
                "noise; run more seeds."
            )
        others = [arm.label for arm in self.tied if arm is not best]
        tied = (
            f"; not distinguishable from it at {level}: {', '.join(others)}"
            if others
            else f"; every other arm is worse at {level}"
        )
        if self.baseline is None:
            return head + tied + "."
        if self.baseline is best or not self.dropout_matters:
            return (
                f"{head}{tied}. Dropout makes no significant difference here: without dropout "
                f"the score is within the noise of the best ({level} paired interval over seeds)."
            )
        loss = self.differences[self.baseline.label]
        what = "held-out loss is higher" if best.runs[0].metric == "loss" else "score is lower"
        return (
            f"{head}{tied}. Without dropout the {what} by {-loss.mean:.3g} "
            f"({level} interval {-loss.high:.3g} to {-loss.low:.3g})."
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        data = {
            "arms": [arm.to_dict() for arm in self.arms],
            "best": self.best.label,
            "tied": [arm.label for arm in self.tied],
            "baseline": self.baseline.label if self.baseline is not None else None,
            "dropout_matters": self.dropout_matters,
            "differences": {label: d.to_dict() for label, d in self.differences.items()},
            "confidence": self.confidence,
            "sentence": self.sentence,
        }
        return dict(to_plain(data))

    def __str__(self) -> str:
        return self.sentence


def summarize(results: Sequence[RateResult], *, confidence: float = 0.95) -> list[RateSummary]:
    """Group runs into arms (rate, group, width) and give each its means and intervals.

    Example:
        >>> from dropkit.advisor.compare import compare_rates, summarize
        >>> runs = compare_rates([
        ...     {"p": 0.5, "seed": s, "history": [{"train_acc": 0.9, "val_acc": v}]}
        ...     for s, v in enumerate([0.70, 0.72, 0.74])])
        >>> arm, = summarize(runs)
        >>> arm.label, round(arm.accuracy.mean, 2), arm.accuracy.count
        ('p=0.5', 0.72, 3)
    """
    arms: dict[tuple[float, str, int | None], list[RateResult]] = {}
    for result in results:
        arms.setdefault((result.p, result.group, result.width), []).append(result)
    summaries = []
    for (p, group, width), runs in arms.items():
        runs = sorted(runs, key=lambda r: (r.seed is None, r.seed or 0))

        def interval(values: list[float]) -> Interval:
            finite = [v for v in values if math.isfinite(v)]
            if not finite:
                return Interval(math.nan, math.nan, math.nan, 0, confidence)
            return mean_interval(finite, confidence)

        summaries.append(
            RateSummary(
                p=p,
                group=group,
                width=width,
                runs=runs,
                score=interval([r.score for r in runs]),
                accuracy=interval([r.final("val_acc") for r in runs]),
                nll=interval([r.final("val_loss") for r in runs]),
                gap=interval([r.gap for r in runs]),
            )
        )
    return summaries


def recommend(results: Sequence[RateResult], *, alpha: float = 0.05) -> Recommendation:
    """Pick the best arm and the arms that noise cannot tell apart from it.

    Each arm's score (mean validation accuracy over the last epochs, per seed) is compared to the
    best arm's with a paired Student-t interval over the seeds both share, at confidence
    ``1 - alpha``; an interval that contains 0 means "not distinguishable".

    Example:
        >>> from dropkit.advisor.compare import compare_rates, recommend
        >>> def runs(p, values):
        ...     return [{"p": p, "seed": s, "history": [{"val_acc": v}]}
        ...             for s, v in enumerate(values)]
        >>> same = compare_rates(runs(0.0, [0.80, 0.70, 0.75]) + runs(0.5, [0.81, 0.69, 0.76]))
        >>> recommend(same).dropout_matters
        False
        >>> apart = compare_rates(runs(0.0, [0.60, 0.62, 0.61]) + runs(0.5, [0.70, 0.73, 0.71]))
        >>> choice = recommend(apart)
        >>> choice.best.p, [arm.p for arm in choice.tied], choice.dropout_matters
        (0.5, [0.5], True)
    """
    alpha = real_number(alpha, "alpha", "a float in (0, 1)")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if not results:
        raise ValueError("no runs to recommend from")
    confidence = 1.0 - alpha
    arms = summarize(results, confidence=confidence)
    best = max(arms, key=lambda a: (round(a.score.mean, 9), -a.p, -(a.width or 0)))
    differences: dict[str, Interval] = {}
    tied = [best]
    for arm in arms:
        if arm is best:
            continue
        mine = {r.seed: r.score for r in arm.runs}
        theirs = {r.seed: r.score for r in best.runs}
        shared = [seed for seed in mine if seed in theirs]
        difference = (
            paired_interval([mine[s] for s in shared], [theirs[s] for s in shared], confidence)
            if shared
            else Interval(math.nan, math.nan, math.nan, 0, confidence)
        )
        differences[arm.label] = difference
        if not difference.excludes(0.0):
            tied.append(arm)
    groups = list(dict.fromkeys(arm.group for arm in arms))
    baseline = next((a for a in arms if a.p == 0.0 and a.group == groups[0]), None)
    return Recommendation(arms, best, tied, baseline, differences, confidence)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _score_text(arm: RateSummary) -> str:
    score = arm.score
    spread = f" ± {score.half_width:.2g}" if math.isfinite(score.low) else ""
    if arm.runs[0].metric == "loss":
        return f"held-out loss {-score.mean:.4g}{spread} (last epochs)"
    return f"score {score.mean:.4g}{spread} (held-out accuracy, last epochs)"
