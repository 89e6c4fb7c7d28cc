"""Read training curves and say what the dropout rate should do next.

The rules follow the usual practice for choosing a dropout rate (Srivastava et al., "Dropout: A
Simple Way to Prevent Neural Networks from Overfitting", JMLR 15, 2014,
https://jmlr.org/papers/v15/srivastava14a.html, Section 7): training much better than validation
while validation gets worse means overfitting, so raise the rate; poor training means underfitting,
so lower the rate, remove dropout or widen the layers; good training with a validation plateau is
the sweet spot, where a little more dropout may still help validation at the cost of longer
training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from dropkit._validation import check_choice, check_non_negative, check_positive_int
from dropkit._validation import check_probability as _check_probability
from dropkit.advisor.history import History, as_history, iter_pairs

REGIMES = ("overfitting", "underfitting", "sweet_spot", "still_improving", "insufficient_data")
METRICS = ("loss", "accuracy")


@dataclass(frozen=True)
class Thresholds:
    """The numbers behind :func:`diagnose`'s verdicts; every one can be set.

    Accuracy measures are absolute (fractions); loss measures are relative to the loss itself, so
    they do not depend on its scale.

    Args:
        min_epochs: fewer epochs with both a training and a validation value give
            ``insufficient_data``.
        window: epochs the trends are fitted over (least squares); ``None`` uses a third of the
            history, at least 3.
        gap_accuracy: train accuracy above validation accuracy by more than this is a large gap.
        gap_loss: ``(val_loss - train_loss) / val_loss`` above this is a large gap.
        underfit_accuracy: final training accuracy below this is poor training.
        underfit_loss: final training loss above this fraction of the first is poor training (the
            loss fell by less than half with the default).
        plateau_accuracy: validation accuracy rising less than this over the window is a plateau.
        plateau_loss: validation loss falling less than this fraction over the window is a plateau.
        worse_accuracy: final validation accuracy this far below its best is getting worse.
        worse_loss: final validation loss this fraction above its best is getting worse.
        step: how far ``suggested_p`` moves from ``current_p`` (half of it in the sweet spot).
        max_p: ``suggested_p`` never goes above this.

    Example:
        >>> from dropkit.advisor import Thresholds
        >>> Thresholds(gap_accuracy=0.1).gap_accuracy
        0.1
    """

    min_epochs: int = 3
    window: int | None = None
    gap_accuracy: float = 0.05
    gap_loss: float = 0.25
    underfit_accuracy: float = 0.9
    underfit_loss: float = 0.5
    plateau_accuracy: float = 0.005
    plateau_loss: float = 0.02
    worse_accuracy: float = 0.01
    worse_loss: float = 0.05
    step: float = 0.1
    max_p: float = 0.8

    def __post_init__(self) -> None:
        check_positive_int(self.min_epochs, "min_epochs")
        if self.window is not None:
            check_positive_int(self.window, "window")
        for name in (
            "gap_accuracy",
            "gap_loss",
            "underfit_loss",
            "plateau_accuracy",
            "plateau_loss",
            "worse_accuracy",
            "worse_loss",
        ):
            check_non_negative(getattr(self, name), name)
        for name in ("underfit_accuracy", "step", "max_p"):
            _check_probability(getattr(self, name), name)


@dataclass
class Diagnosis:
    """What the curves say: the regime, the numbers behind it, and advice in words.

    Attributes:
        regime: one of ``overfitting``, ``underfitting``, ``sweet_spot``, ``still_improving``,
            ``insufficient_data``.
        metric: ``"accuracy"`` or ``"loss"``, the series the verdict was read from.
        epochs: the number of epochs with both a training and a validation value.
        final_train, final_val: the last values of the metric.
        best_val: the best validation value (highest accuracy or lowest loss).
        best_epoch: the epoch of ``best_val`` (as the history numbers it).
        gap: how much better training is than validation at the end (accuracy: train - val;
            loss: (val - train) / val). Positive means training is better.
        gap_trend: change of the gap over the trend window (positive: widening).
        val_trend: improvement of validation over the window (positive: getting better; loss as a
            fraction of its value).
        train_trend: improvement of training over the window, likewise.
        advice: what to do, in words.
        current_p: the rate the history was trained with, when given.
        suggested_p: ``current_p`` moved in the advised direction (``None`` without ``current_p``).
        thresholds: the :class:`Thresholds` used.
    """

    regime: str
    metric: str
    epochs: int
    advice: str
    final_train: float = math.nan
    final_val: float = math.nan
    best_val: float = math.nan
    best_epoch: float = math.nan
    gap: float = math.nan
    gap_trend: float = math.nan
    val_trend: float = math.nan
    train_trend: float = math.nan
    current_p: float | None = None
    suggested_p: float | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``nan`` becomes ``None``)."""
        data = asdict(self)
        return {key: _plain(value) for key, value in data.items()}

    def __str__(self) -> str:
        lines = [f"regime: {self.regime.replace('_', ' ')} (read from {self.metric})"]
        if self.epochs:
            lines.append(
                f"final train {self.metric} {self.final_train:.4g}, validation "
                f"{self.final_val:.4g}; best validation {self.best_val:.4g} at epoch "
                f"{self.best_epoch:g}"
            )
            lines.append(
                f"gap {self.gap:+.4g} (trend {self.gap_trend:+.3g}), validation trend "
                f"{self.val_trend:+.3g}"
            )
        lines.append(self.advice)
        if self.suggested_p is not None:
            lines.append(f"suggested p: {self.current_p:g} -> {self.suggested_p:g}")
        return "\n".join(lines)


def diagnose(
    history: Any,
    *,
    current_p: float | None = None,
    metric: str | None = None,
    thresholds: Thresholds | None = None,
) -> Diagnosis:
    """Say whether training curves show overfitting, underfitting or the sweet spot.

    The verdict follows Srivastava et al., JMLR 2014 (https://jmlr.org/papers/v15/srivastava14a.html)
    and the common practice around it, checked in this order:

    1. ``insufficient_data``: no validation or training series, or fewer than ``min_epochs``.
    2. ``overfitting``: a large gap (training much better than validation) while validation is
       worse than its best, on a plateau, or the gap widens. Raise the rate.
    3. ``still_improving``: validation still improves over the trend window. Keep training.
    4. ``underfitting``: training itself is poor (accuracy below ``underfit_accuracy``, or a loss
       that fell by less than half) and has stopped improving. Lower the rate, remove dropout or
       widen the layers.
    5. ``sweet_spot``: good training, validation on a plateau, small gap. A little more dropout may
       still help validation, at the cost of longer training.

    Args:
        history: a :class:`~dropkit.advisor.History` (what :func:`load_history` returns), a list of
            per-epoch dicts, or a mapping of columns (a DataFrame works).
        current_p: the dropout rate the history was trained with; enables ``suggested_p``.
        metric: ``"accuracy"`` or ``"loss"``; by default accuracy when both training and validation
            accuracy were logged, else loss.
        thresholds: a :class:`~dropkit.advisor.Thresholds` to change the defaults.

    Returns:
        A :class:`Diagnosis`.

    Example:
        >>> import dropkit as dk
        >>> history = {"train_acc": [0.7, 0.9, 0.97, 0.99, 1.0, 1.0],
        ...            "val_acc": [0.68, 0.80, 0.83, 0.82, 0.80, 0.79]}
        >>> d = dk.diagnose(history, current_p=0.1)
        >>> d.regime, d.suggested_p, round(d.gap, 2)
        ('overfitting', 0.2, 0.21)
    """
    limits = thresholds if thresholds is not None else Thresholds()
    if current_p is not None:
        current_p = _check_probability(current_p, "current_p")
    data = as_history(history)
    available = data.available()
    if metric is None:
        metric = "accuracy" if {"train_acc", "val_acc"} <= set(available) else "loss"
    check_choice(metric, "metric", METRICS)
    suffix = "acc" if metric == "accuracy" else "loss"
    train_name, val_name = f"train_{suffix}", f"val_{suffix}"
    missing = [name for name in (train_name, val_name) if name not in available]
    if missing:
        return _insufficient(
            metric,
            0,
            f"The history has no {' or '.join(missing)} series, so the {metric} curves cannot be "
            f"compared (found: {', '.join(available) or 'nothing'}).",
            current_p,
            limits,
        )
    rows = list(iter_pairs(data.series(train_name), data.series(val_name)))
    if len(rows) < limits.min_epochs:
        return _insufficient(
            metric,
            len(rows),
            f"Only {len(rows)} epoch(s) with both training and validation {metric}; at least "
            f"{limits.min_epochs} are needed to read a trend. Train longer and diagnose again.",
            current_p,
            limits,
        )
    return _read_curves(data, rows, metric, current_p, limits)


def _read_curves(
    data: History,
    rows: list[tuple[int, float, float]],
    metric: str,
    current_p: float | None,
    limits: Thresholds,
) -> Diagnosis:
    # Work in "goodness" (higher is better) so one set of rules serves both metrics.
    sign = 1.0 if metric == "accuracy" else -1.0
    train = [sign * t for _, t, _ in rows]
    val = [sign * v for _, _, v in rows]
    epochs = [data.epochs[index] for index, _, _ in rows]
    count = len(rows)
    window = limits.window or max(3, count // 3)
    window = min(window, count)
    best_index = max(range(count), key=lambda i: (val[i], -i))
    final_train, final_val, best_val = sign * train[-1], sign * val[-1], sign * val[best_index]
    if metric == "accuracy":
        gaps = [t - v for t, v in zip(train, val, strict=False)]
        scale = 1.0
        gap_limit, plateau, worse = (
            limits.gap_accuracy,
            limits.plateau_accuracy,
            limits.worse_accuracy,
        )
    else:
        gaps = [(-v + t) / max(-v, 1e-12) for t, v in zip(train, val, strict=False)]
        scale = max(abs(val[-window]), 1e-12)
        gap_limit, plateau, worse = limits.gap_loss, limits.plateau_loss, limits.worse_loss
    gap = gaps[-1]
    gap_trend = _change(gaps[-window:])
    val_trend = _change(val[-window:]) / scale
    train_trend = _change(train[-window:]) / (
        1.0 if metric == "accuracy" else max(abs(train[-window]), 1e-12)
    )
    if metric == "accuracy":
        worse_by = val[best_index] - val[-1]
        poor_training = final_train < limits.underfit_accuracy
    else:
        worse_by = (val[best_index] - val[-1]) / max(abs(val[best_index]), 1e-12)
        poor_training = -train[-1] > limits.underfit_loss * -train[0]
    getting_worse = worse_by > worse
    large_gap = gap > gap_limit
    val_improving = val_trend > plateau
    train_improving = train_trend > plateau

    if large_gap and (getting_worse or not val_improving or gap_trend > plateau):
        regime = "overfitting"
    elif val_improving:
        regime = "still_improving"
    elif poor_training and not train_improving:
        regime = "underfitting"
    else:
        regime = "sweet_spot"
    advice = _advice(regime, metric, gap, final_train, epochs[best_index], large_gap)
    return Diagnosis(
        regime=regime,
        metric=metric,
        epochs=count,
        advice=advice,
        final_train=final_train,
        final_val=final_val,
        best_val=best_val,
        best_epoch=epochs[best_index],
        gap=gap,
        gap_trend=gap_trend,
        val_trend=val_trend,
        train_trend=train_trend,
        current_p=current_p,
        suggested_p=_suggest(regime, current_p, limits),
        thresholds=limits,
    )


def _advice(
    regime: str, metric: str, gap: float, final_train: float, best_epoch: float, large_gap: bool
) -> str:
    gap_words = f"{gap:.1%}" if metric == "accuracy" else f"{gap:.0%} of the validation loss"
    if regime == "overfitting":
        return (
            f"Overfitting: training is much better than validation (gap {gap_words}) and "
            f"validation stopped improving (best at epoch {best_epoch:g}). Raise the dropout "
            "rate, or stop at the best epoch."
        )
    if regime == "underfitting":
        level = f"{final_train:.1%}" if metric == "accuracy" else f"{final_train:.4g}"
        return (
            f"Underfitting: training itself is poor (final training {metric} {level}) and no "
            "longer improving. Lower the dropout rate or remove dropout, or widen the layers "
            "(about 1 / (1 - p) times the width without dropout)."
        )
    if regime == "still_improving":
        extra = " The gap is already large: watch it." if large_gap else ""
        return f"Still improving: validation is still getting better. Train longer.{extra}"
    return (
        "Sweet spot: training is good and validation has reached a plateau with a small gap. "
        "A little more dropout may still help validation, at the cost of longer training."
    )


def _suggest(regime: str, current_p: float | None, limits: Thresholds) -> float | None:
    if current_p is None:
        return None
    if regime == "overfitting":
        moved = max(current_p, min(current_p + limits.step, limits.max_p))
    elif regime == "underfitting":
        moved = max(current_p - limits.step, 0.0)
    elif regime == "sweet_spot":
        moved = max(current_p, min(current_p + limits.step / 2, limits.max_p))
    else:
        moved = current_p
    return round(moved, 4)


def _insufficient(
    metric: str, count: int, advice: str, current_p: float | None, limits: Thresholds
) -> Diagnosis:
    return Diagnosis(
        regime="insufficient_data",
        metric=metric,
        epochs=count,
        advice=advice,
        current_p=current_p,
        suggested_p=current_p,
        thresholds=limits,
    )


def _change(values: list[float]) -> float:
    """Least-squares slope times the span: the fitted change from the first to the last value."""
    count = len(values)
    if count < 2:
        return 0.0
    mean_x = (count - 1) / 2
    mean_y = sum(values) / count
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    den = sum((x - mean_x) ** 2 for x in range(count))
    return num / den * (count - 1)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value
