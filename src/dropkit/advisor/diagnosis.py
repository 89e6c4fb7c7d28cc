"""Read training curves and say what the dropout rate should do next.

The rules follow the usual practice for choosing a dropout rate (Srivastava et al., "Dropout: A
Simple Way to Prevent Neural Networks from Overfitting", JMLR 15, 2014,
https://jmlr.org/papers/v15/srivastava14a.html, Section 7): validation getting worse while training
improves means overfitting, so raise the rate; training that stalls at a poor level, close to
validation, means underfitting, so lower the rate, remove dropout or widen the layers. A loss that
becomes NaN or explodes is an optimisation problem, not a dropout one. Every trend is judged
against the curve's own epoch-to-epoch noise, never on a difference inside it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, cast, get_args

from dropkit._validation import check_choice, check_non_negative, check_positive_int
from dropkit._validation import check_probability as _check_probability
from dropkit.advisor.history import History, as_history
from dropkit.advisor.metrics import BOUNDED, default_metric, direction, metric_name, metrics_in
from dropkit.advisor.trends import MIN_NOISE_EPOCHS, noise_of, recent_noise, trend
from dropkit.results import Result

#: A verdict of :func:`diagnose` (a ``Literal`` type).
Regime = Literal[
    "overfitting",
    "underfitting",
    "sweet_spot",
    "still_improving",
    "insufficient_data",
    "diverged",
    "not_learning",
]
REGIMES: tuple[Regime, ...] = get_args(Regime)
#: Which way a metric is better: ``"min"`` (a loss) or ``"max"`` (an accuracy).
MetricMode = Literal["min", "max"]
MODES: tuple[MetricMode, ...] = get_args(MetricMode)


@dataclass(frozen=True)
class Thresholds(Result):
    """The numbers behind :func:`diagnose`'s verdicts; every one can be set.

    Bounded metrics (accuracy, F1, top-1 ...) are measured in absolute fractions; other metrics
    (losses, WER, perplexity) relative to their value, or, when they can be negative (a Gaussian
    NLL, R²), relative to the range the curves span.

    Args:
        min_epochs: fewer epochs with a validation value give ``insufficient_data``.
        window: epochs the validation trend is fitted over; ``None`` uses a third of the
            history, at least 4.
        gap_accuracy, gap_loss: training better than validation by more than this is a large gap
            (accuracy: train - val; loss: (val - train) / val).
        underfit_accuracy: a stalled training accuracy below this is poor training.
        underfit_loss: a stalled training loss above this fraction of its first value is poor
            training (it fell by less than half with the default).
        plateau_accuracy, plateau_loss: a validation change smaller than this over the window is
            a plateau, even when it is statistically clear.
        worse_accuracy, worse_loss: validation this far from its best (and beyond the noise) is
            getting worse.
        learning_accuracy, learning_loss: a curve that never improved on its first value by this
            much (and beyond the noise) did not learn.
        explode: a loss whose last two values are above its first value by this many times its
            scale (the first value or the improvement, whichever is larger) has diverged.
        significance: how many standard errors (of a fitted slope, or of the scatter between
            epochs) a change must exceed to count.
        patience: epochs validation must have stayed off its best before it counts as worse.
        step: how far ``suggested_p`` moves from ``current_p``.
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
    learning_accuracy: float = 0.02
    learning_loss: float = 0.02
    explode: float = 1.0
    significance: float = 2.5
    patience: int = 2
    step: float = 0.1
    max_p: float = 0.8

    def __post_init__(self) -> None:
        check_positive_int(self.min_epochs, "min_epochs")
        check_positive_int(self.patience, "patience")
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
            "learning_accuracy",
            "learning_loss",
            "explode",
            "significance",
        ):
            check_non_negative(getattr(self, name), name)
        for name in ("underfit_accuracy", "step", "max_p"):
            _check_probability(getattr(self, name), name)

    def __str__(self) -> str:
        changed = [
            f"{item.name}={getattr(self, item.name)}"
            for item in fields(self)
            if getattr(self, item.name) != item.default
        ]
        return (
            f"thresholds: {', '.join(changed)} (others default)"
            if changed
            else "default thresholds"
        )


@dataclass(frozen=True)
class Diagnosis(Result):
    """What the curves say: the regime, the numbers behind it, and advice in words.

    Attributes:
        regime: one of :data:`REGIMES`.
        metric: the metric the verdict was read from (``"accuracy"``, ``"loss"``, ``"f1"`` ...).
        epochs: the number of epochs with a validation value.
        advice: what to do, in words.
        final_train, final_val: the last values of the metric.
        best_val: the best validation value; ``best_epoch`` its epoch (as the history numbers it).
        gap: how much better training is than validation at the end (bounded metrics: the
            difference; losses: (val - train) / val; positive: training is better).
        gap_trend: change of the gap over the trend window (positive: widening).
        val_trend, train_trend: improvement over the trend window (positive: better), in the
            units of ``gap``.
        current_p: the rate the history was trained with, when given.
        suggested_p: the advised rate (``None`` without ``current_p``); it moves only when the
            evidence says so, and ``reason`` says why it moved or stayed.
        mode: ``"min"`` or ``"max"``, the metric's better direction.
        noise: the validation curve's epoch-to-epoch scatter (a standard deviation).
        epochs_since_best: validation epochs logged after the best one.
        evidence: the numbers the verdict rests on, one sentence each.
        reason: why ``suggested_p`` is what it is.
        thresholds: the :class:`Thresholds` used.
    """

    regime: Regime
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
    mode: MetricMode = "min"
    noise: float = math.nan
    epochs_since_best: int = 0
    evidence: list[str] = field(default_factory=list)
    reason: str = ""
    thresholds: Thresholds = field(default_factory=Thresholds)

    def __str__(self) -> str:
        lines = [f"regime: {self.regime.replace('_', ' ')} (read from {self.metric})"]
        lines += [f"- {sentence}" for sentence in self.evidence]
        lines.append(self.advice)
        if self.suggested_p is not None:
            lines.append(f"suggested p: {self.current_p:g} -> {self.suggested_p:g} ({self.reason})")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Units:
    """How changes of one metric are measured: ``fraction`` (absolute), ``relative`` (to the
    value) or ``range`` (to the span of the curves)."""

    kind: str
    span: float
    label: str

    def size(self, delta: float, reference: float) -> float:
        if self.kind == "fraction":
            return delta
        if self.kind == "relative":
            return delta / max(abs(reference), 1e-12)
        return delta / self.span

    def words(self, delta: float, reference: float) -> str:
        if self.kind == "fraction":
            return f"{abs(delta) * 100:.1f} points"
        if self.kind == "relative":
            return f"{abs(self.size(delta, reference)):.0%}"
        return f"{abs(delta):.3g}"

    def pick(self, accuracy: float, loss: float) -> float:
        return accuracy if self.kind == "fraction" else loss


def diagnose(
    history: Any,
    *,
    current_p: float | None = None,
    metric: str | None = None,
    mode: MetricMode | None = None,
    thresholds: Thresholds | None = None,
) -> Diagnosis:
    """Say whether training curves show overfitting, underfitting, the sweet spot, or trouble.

    The verdict follows Srivastava et al., JMLR 2014 (https://jmlr.org/papers/v15/srivastava14a.html)
    and the common practice around it, checked in this order:

    1. ``diverged``: a value became NaN or infinite, or the loss rose above its first value.
       Advice is about the optimiser; the rate is left alone.
    2. ``insufficient_data``: no validation series, or fewer than ``min_epochs`` epochs with one.
    3. ``not_learning``: neither curve ever improved on its first value beyond the noise.
    4. ``overfitting``: validation worse than its best, beyond the noise, for ``patience`` epochs
       while training does not get worse (if it does, the run is ``diverged``); or validation flat
       with training much better (a large gap). Raise the rate.
    5. ``still_improving``: validation's fitted slope over the window is above ``significance``
       standard errors. Keep training, whatever the gap.
    6. ``underfitting``: validation flat, training stalled at a poor level close to validation,
       or validation better than training by a large margin (too much dropout). Lower the rate.
    7. ``sweet_spot``: validation flat, a small gap, good training. Keep the rate.

    The noise is the scatter of a curve around its local trend (from second differences, robust
    to a few outliers); a slope counts when it exceeds ``significance`` standard errors, a drop
    from the best when it exceeds ``significance`` times the noise of the mean it is read from.

    Args:
        history: a :class:`~dropkit.advisor.History` (what :func:`load_history` returns), a list of
            per-epoch dicts, or a mapping of columns (a DataFrame works).
        current_p: the dropout rate the history was trained with; enables ``suggested_p``.
        metric: ``"loss"``, ``"accuracy"`` or any metric of the history (``"f1"``, ``"wer"``,
            ``"top1"``, ``"eval_f1"`` ...). By default accuracy when training and validation
            accuracy were logged, else the loss, else the first validation metric of known
            direction.
        mode: ``"min"`` or ``"max"``: which way is better, for metrics not in
            :data:`dropkit.advisor.metrics.DIRECTIONS`.
        thresholds: a :class:`~dropkit.advisor.Thresholds` to change the defaults.

    Returns:
        A :class:`Diagnosis`.

    Raises:
        ValueError: the metric is not in the history, or its direction is unknown without
            ``mode``.

    Example:
        >>> import dropkit as dk
        >>> history = {"train_acc": [0.7, 0.9, 0.97, 0.99, 1.0, 1.0],
        ...            "val_acc": [0.68, 0.80, 0.83, 0.82, 0.80, 0.79]}
        >>> d = dk.diagnose(history, current_p=0.1)
        >>> d.regime, d.suggested_p, round(d.gap, 2)
        ('overfitting', 0.2, 0.21)
    """
    if thresholds is not None and not isinstance(thresholds, Thresholds):
        raise TypeError(
            f"thresholds must be a dropkit.advisor.Thresholds, got {thresholds!r} "
            f"({type(thresholds).__name__})"
        )
    if metric is not None and not isinstance(metric, str):
        raise TypeError(f"metric must be a str, got {metric!r} ({type(metric).__name__})")
    limits = thresholds if thresholds is not None else Thresholds()
    if current_p is not None:
        current_p = _check_probability(current_p, "current_p")
    if mode is not None:
        check_choice(mode, "mode", MODES)
    data = as_history(history)
    name = metric_name(metric) if metric is not None else default_metric(data)
    if name is None:
        found = ", ".join(data.available()) or "nothing"
        return _verdict(
            "insufficient_data",
            "loss",
            mode or "min",
            0,
            "No validation series: overfitting and underfitting cannot be told apart without "
            f"held-out data (found: {found}). Log a validation loss (val_loss) or metric "
            "and diagnose again.",
            current_p,
            limits,
        )
    if metric is not None and not data.series(f"val_{name}") and not data.series(f"train_{name}"):
        raise ValueError(
            f"metric {metric!r} is not in {data.source}: it holds "
            f"{', '.join(metrics_in(data)) or 'no validation metric'}"
        )
    better = mode or cast("MetricMode | None", direction(name))
    if better is None:
        raise ValueError(
            f"metric {name!r} has no known direction: pass mode='min' (lower is better) or "
            "mode='max'"
        )
    return _Reading(data, name, better, current_p, limits).diagnosis()


class _Reading:
    """One metric of one history, read in "goodness" (higher is better)."""

    def __init__(
        self,
        data: History,
        name: str,
        mode: MetricMode,
        current_p: float | None,
        limits: Thresholds,
    ) -> None:
        self.data, self.name, self.mode, self.limits = data, name, mode, limits
        self.current_p = current_p
        self.label = "accuracy" if name == "acc" else name
        self.sign = 1.0 if mode == "max" else -1.0
        self.train_raw = data.series(f"train_{name}")
        self.val_raw = data.series(f"val_{name}")
        rows = [i for i, v in enumerate(self.val_raw) if math.isfinite(v)]
        self.rows = rows
        self.epochs = [data.epochs[i] for i in rows]
        self.val = [self.sign * self.val_raw[i] for i in rows]
        train_rows = [i for i, v in enumerate(self.train_raw) if math.isfinite(v)]
        self.train_epochs = [data.epochs[i] for i in train_rows]
        self.train = [self.sign * self.train_raw[i] for i in train_rows]
        values = [abs(v) for v in self.val + self.train]
        if name in BOUNDED:
            kind = "fraction"
        elif values and all(self.sign * v > 0 for v in self.val + self.train):
            kind = "relative"
        else:
            kind = "range"
        span = max((max(c) - min(c) for c in (self.val, self.train) if c), default=0.0)
        self.units = _Units(kind, max(span, 1e-12, 1e-9 * max(values, default=0.0)), self.label)

    def diagnosis(self) -> Diagnosis:
        diverged = self._diverged()
        if diverged is not None:
            return diverged
        count = len(self.val)
        if count < self.limits.min_epochs:
            return self._short(count)
        return self._judge()

    # -- the checks, in order -------------------------------------------------------------------

    def _diverged(self) -> Diagnosis | None:
        names = [f"train_{self.name}", f"val_{self.name}", "train_loss", "val_loss"]
        for key in dict.fromkeys(names):
            values = self.data.series(key)
            bad = next((i for i, v in enumerate(values) if math.isinf(v)), None)
            if bad is not None:
                split = "training" if key.startswith("train") else "validation"
                what = key.split("_", 1)[1].replace("acc", "accuracy")
                evidence = [
                    f"{split} {what} is not finite (NaN or infinite) from epoch "
                    f"{self.data.epochs[bad]:g} on"
                ]
                return self._diverged_verdict(evidence)
        for key in dict.fromkeys(
            [f"train_{self.name}", f"val_{self.name}"] if self.mode == "min" else []
        ):
            values = [v for v in self.data.series(key) if math.isfinite(v)]
            if len(values) < 3:
                continue
            first, best, last = values[0], min(values), values[-1]
            scale = max(abs(first), first - best, 1e-12)
            noise = noise_of(values)
            if (
                min(values[-2:]) > first + self.limits.explode * scale
                and last - best > self.limits.significance * noise
            ):
                split = "training" if key.startswith("train") else "validation"
                evidence = [
                    f"{split} {self.label} rose to {last:.4g}, above its first value {first:.4g} "
                    f"(best {best:.4g}): the loss is exploding"
                ]
                return self._diverged_verdict(evidence)
        return None

    def _diverged_verdict(self, evidence: list[str], rising: bool = False) -> Diagnosis:
        cause = (
            "training itself is getting worse"
            if rising
            else "the optimisation broke down, which dropout does not cause"
        )
        advice = (
            f"Diverged: {cause}. Lower the learning rate or add warm-up, clip gradients "
            "(torch.nn.utils.clip_grad_norm_), check the data and the loss for invalid values, "
            "and with mixed precision check the loss scaling; leave the dropout rate as it is "
            "until training is stable."
        )
        diagnosis = self._base("diverged", advice, "divergence is an optimiser problem")
        return replace(diagnosis, evidence=evidence)

    def _short(self, count: int) -> Diagnosis:
        advice = (
            f"Only {count} epoch(s) with a validation {self.label}; at least "
            f"{self.limits.min_epochs} are needed to read a trend. Train longer (or validate "
            "more often) and diagnose again."
        )
        return _verdict(
            "insufficient_data", self.label, self.mode, count, advice, self.current_p, self.limits
        )

    def _judge(self) -> Diagnosis:
        limits, units = self.limits, self.units
        val, epochs = self.val, self.epochs
        count = len(val)
        noise = max(recent_noise(val), self._floor(val))
        best = max(range(count), key=lambda i: (val[i], -i))
        since = count - 1 - best
        window = min(count, limits.window or max(4, count // 3))
        val_change, val_t = trend(val[-window:], noise)
        start = epochs[-window]
        train_tail = [t for e, t in zip(self.train_epochs, self.train, strict=False) if e >= start]
        train_noise = max(recent_noise(self.train), self._floor(self.train)) if self.train else 0.0
        train_change, train_t = trend(train_tail, train_noise) if train_tail else (math.nan, 0.0)
        gaps = self._gaps()
        gap = gaps[-1] if gaps else math.nan
        gap_change = trend(gaps[-window:], 0.0)[0] if len(gaps) >= 2 else math.nan
        reference = self.sign * val[best]
        start_value = self.sign * val[-window]
        values = {
            "final_val": self.sign * val[-1],
            "best_val": reference,
            "best_epoch": epochs[best],
            "final_train": self.sign * self.train[-1] if self.train else math.nan,
            "gap": gap,
            "gap_trend": gap_change,
            "val_trend": units.size(val_change, start_value),
            "train_trend": units.size(train_change, start_value) if self.train else math.nan,
            "noise": noise,
            "epochs_since_best": since,
        }
        flat_words = (
            f"validation {self.label} flat over the last {window} epochs (fitted change: "
            f"{self._change(val_change, start_value)}; "
            + (
                f"noise ±{noise:.2g} per epoch)"
                if count >= MIN_NOISE_EPOCHS
                else "too few epochs to measure noise)"
            )
        )
        # 3. not learning: neither curve ever improved on its first value.
        gap_limit = units.pick(limits.gap_accuracy, limits.gap_loss)
        fitted = (math.isfinite(gap) and gap > gap_limit) or (
            units.kind == "fraction" and bool(self.train) and not self._poor_training()
        )
        if (
            not fitted
            and not self._learned(val, noise)
            and not (self.train and self._learned(self.train, 0))
        ):
            return self._not_learning(values)
        # 4a. validation worse than its best, beyond the noise, for `patience` epochs.
        drop_words = self._worse(val, best, since, noise)
        if drop_words is not None:
            evidence = [drop_words]
            if self.train:
                after = [
                    t
                    for e, t in zip(self.train_epochs, self.train, strict=False)
                    if e >= epochs[best]
                ]
                change, t = trend(after, train_noise) if len(after) >= 2 else (0.0, 0.0)
                direction_words = _moved(
                    units.size(change, self.sign * after[0]) if after else 0.0,
                    units.pick(limits.plateau_accuracy, limits.plateau_loss),
                )
                evidence.append(
                    f"training {self.label} {direction_words} since then "
                    f"({self._change(change, self.sign * after[0])})"
                    if len(after) >= 2
                    else "no training values since then"
                )
                worse_training = t < -limits.significance and units.size(
                    -change, self.sign * after[0]
                ) > units.pick(limits.plateau_accuracy, limits.plateau_loss)
                if worse_training:
                    return self._with(self._diverged_verdict(evidence, rising=True), values)
            return self._overfitting(values, evidence, "degrading")
        gap_words = self._gap_words(gap, gap_change)
        # 5. still improving: validation's slope is clear of the noise and of practical size.
        plateau = units.pick(limits.plateau_accuracy, limits.plateau_loss)
        improving = val_t > limits.significance and units.size(val_change, start_value) > plateau
        how = f"slope {val_t:.1f} standard errors from zero"
        if count < MIN_NOISE_EPOCHS and since == 0 and count > limits.patience:
            # Too short for a noise estimate: still improving if the last epochs still gain.
            recent = val[-1] - val[-1 - limits.patience]
            if units.size(recent, self.sign * val[-1 - limits.patience]) > plateau:
                improving, how = True, "best at the last epoch, too few epochs to measure noise"
        if improving:
            evidence = [
                f"validation {self.label} {self._change(val_change, start_value)} over "
                f"the last {window} epochs ({how}); best {reference:.4g} at epoch "
                f"{epochs[best]:g}"
            ]
            if gap_words:
                evidence.append(gap_words)
            return self._still_improving(values, evidence, gap > gap_limit)
        # 6. a plateau: the gap and the level of training decide. A curve that is neither clearly
        # improving nor clearly flat (a few epochs, still moving) is not called overfitting.
        flat = since >= limits.patience or abs(units.size(val_change, start_value)) <= plateau
        if not flat:
            flat_words = (
                f"validation {self.label} moved over the last {window} epochs (fitted change: "
                f"{self._change(val_change, start_value)}), but not clearly beyond its noise"
            )
        evidence = [flat_words]
        if gap_words:
            evidence.append(gap_words)
        if math.isfinite(gap) and gap > gap_limit and flat:
            return self._overfitting(values, evidence, "gap")
        train_stalled = not (
            train_t > limits.significance
            and units.size(train_change, reference)
            > units.pick(limits.plateau_accuracy, limits.plateau_loss)
        )
        inverted = math.isfinite(gap) and gap < -gap_limit
        if self.train and (inverted or (train_stalled and self._poor_training())):
            return self._underfitting(values, evidence, inverted)
        if not self.train:
            evidence.append("no training curve, so the gap cannot be read")
        return self._sweet_spot(values, evidence)

    # -- measures ------------------------------------------------------------------------------

    def _floor(self, values: list[float]) -> float:
        if not values:
            return 0.0
        if self.units.kind == "fraction":
            return 1e-3
        if self.units.kind == "relative":
            return 1e-3 * abs(statistics.median(values))
        return 1e-3 * self.units.span

    def _learned(self, values: list[float], noise: float) -> bool:
        noise = max(noise, noise_of(values), self._floor(values))
        gain = max(values) - values[0]
        needed = self.units.pick(self.limits.learning_accuracy, self.limits.learning_loss)
        chance = math.sqrt(2 * math.log(len(values))) + self.limits.significance
        return gain > chance * noise and self.units.size(gain, self.sign * values[0]) > needed

    def _worse(self, val: list[float], best: int, since: int, noise: float) -> str | None:
        """Validation worse than its best beyond the noise, in words; ``None`` when it is not.

        Two tests, either suffices: the mean of the last epochs below the best by more than the
        noise allows (the best of n noisy epochs sits about sqrt(2 ln n) noise above the curve
        by chance), or, with at least four epochs after the best, their fitted slope pointing
        away from it by more than ``significance`` standard errors.
        """
        limits = self.limits
        if since < limits.patience:
            return None
        recent = min(3, since)
        drop = val[best] - sum(val[-recent:]) / recent
        reference = self.sign * val[best]
        if self.units.size(drop, reference) <= self.units.pick(
            limits.worse_accuracy, limits.worse_loss
        ):
            return None
        needed = noise * (
            math.sqrt(2 * math.log(len(val))) + limits.significance / math.sqrt(recent)
        )
        slope_t = trend(val[best + 1 :], noise)[1] if since >= 4 else 0.0
        if drop <= needed and slope_t >= -limits.significance:
            return None
        side = "below" if self.mode == "max" else "above"
        if len(val) < MIN_NOISE_EPOCHS:
            measure = "too few epochs to measure the noise"
        else:
            measure = f"the drop is {drop / noise:.1f} times the epoch-to-epoch noise"
            if since >= 4:
                measure += f", fitted slope {-slope_t:.1f} standard errors away from it"
        return (
            f"validation {self.label} {self.units.words(drop, reference)} {side} its best "
            f"({reference:.4g} at epoch {self.epochs[best]:g}) over the last {recent} epochs, "
            f"off its best for {since} epochs ({measure})"
        )

    def _change(self, change: float, reference: float) -> str:
        """A change in goodness, in the metric's own words: "fell by 12%", "rose by 3.1 points"."""
        verb = "rose" if (change >= 0) == (self.mode == "max") else "fell"
        return f"{verb} by {self.units.words(change, reference)}"

    def _gaps(self) -> list[float]:
        train = dict(zip(self.train_epochs, self.train, strict=False))
        gaps = []
        for epoch, value in zip(self.epochs, self.val, strict=False):
            if epoch in train:
                gaps.append(self.units.size(train[epoch] - value, self.sign * value))
        return gaps

    def _gap_words(self, gap: float, change: float) -> str:
        if not math.isfinite(gap):
            return ""
        if self.units.kind == "fraction":
            amount = f"{abs(gap) * 100:.1f} points"
        elif self.units.kind == "relative":
            amount = f"{abs(gap):.0%} of the validation {self.label}"
        else:
            amount = f"{abs(gap):.0%} of the curves' range"
        side = "better" if gap >= 0 else "worse"
        trend = ""
        if math.isfinite(change) and abs(change) > 1e-12:
            trend = f", {'widening' if change > 0 else 'narrowing'} by {abs(change):.2g}"
        return f"training {side} than validation by {amount}{trend}"

    def _poor_training(self) -> bool:
        final = self.sign * self.train[-1]
        if self.units.kind == "fraction":
            level = final if self.mode == "max" else 1.0 - final
            return level < self.limits.underfit_accuracy
        if self.units.kind == "relative" and self.mode == "min":
            return final > self.limits.underfit_loss * (self.sign * self.train[0])
        return False

    # -- verdicts ------------------------------------------------------------------------------

    def _base(self, regime: Regime, advice: str, reason: str) -> Diagnosis:
        return Diagnosis(
            regime=regime,
            metric=self.label,
            epochs=len(self.val),
            advice=advice,
            current_p=self.current_p,
            suggested_p=self.current_p,
            mode=self.mode,
            reason=reason,
            thresholds=self.limits,
        )

    def _with(self, diagnosis: Diagnosis, values: dict[str, Any]) -> Diagnosis:
        return replace(diagnosis, **values)

    def _move(self, diagnosis: Diagnosis, sign: float) -> Diagnosis:
        if self.current_p is not None:
            moved = self.current_p + sign * self.limits.step
            moved = min(max(moved, 0.0), max(self.limits.max_p, self.current_p))
            return replace(diagnosis, suggested_p=round(moved, 4))
        return diagnosis

    def _overfitting(self, values: dict[str, Any], evidence: list[str], why: str) -> Diagnosis:
        best = f"epoch {values['best_epoch']:g}"
        if why == "degrading":
            words = "validation got worse beyond its noise while training did not"
        else:
            words = "validation stopped improving while training is far better"
        advice = (
            f"Overfitting: {words}. Raise the dropout rate (or add other regularization), and "
            f"keep the checkpoint of {best}, the best validation so far."
        )
        reason = f"more dropout, since {words}"
        diagnosis = self._with(self._base("overfitting", advice, reason), values)
        return self._move(replace(diagnosis, evidence=evidence), +1.0)

    def _underfitting(
        self, values: dict[str, Any], evidence: list[str], inverted: bool
    ) -> Diagnosis:
        if inverted:
            words = "validation is better than training by a wide margin and both have stalled"
        else:
            words = (
                f"training stalled at a poor level (final training {self.label} "
                f"{values['final_train']:.4g}) close to validation"
            )
        evidence = [*evidence, words]
        advice = (
            f"Underfitting: {words}. Lower the dropout rate or remove dropout, or widen the "
            "layers (about 1 / (1 - p) times the width without dropout)."
        )
        diagnosis = self._with(
            self._base("underfitting", advice, f"less dropout, since {words}"), values
        )
        return self._move(replace(diagnosis, evidence=evidence), -1.0)

    def _still_improving(
        self, values: dict[str, Any], evidence: list[str], large_gap: bool
    ) -> Diagnosis:
        extra = (
            " The gap is already large: if validation flattens while it widens, raise the rate."
            if large_gap
            else ""
        )
        advice = f"Still improving: validation is still getting better. Train longer.{extra}"
        reason = "unchanged: validation still improves, so the rate is not limiting it yet"
        diagnosis = self._with(self._base("still_improving", advice, reason), values)
        return replace(diagnosis, evidence=evidence)

    def _sweet_spot(self, values: dict[str, Any], evidence: list[str]) -> Diagnosis:
        advice = (
            "Sweet spot: validation has levelled off without getting worse and training is not "
            f"held back. Keep this rate and the checkpoint of epoch {values['best_epoch']:g}; "
            "more dropout would only pay with longer training."
        )
        reason = "unchanged: neither overfitting nor underfitting shows"
        diagnosis = self._with(self._base("sweet_spot", advice, reason), values)
        return replace(diagnosis, evidence=evidence)

    def _not_learning(self, values: dict[str, Any]) -> Diagnosis:
        parts = []
        for split, curve in (("training", self.train), ("validation", self.val)):
            if curve:
                first = self.sign * curve[0]
                gain = self.units.words(max(curve) - curve[0], first)
                parts.append(
                    f"{split} {self.label} improved on its first value ({first:.4g}) by only {gain}"
                )
        advice = (
            "Not learning: neither curve moves. Check the learning rate (too low, or so high "
            "that nothing is learned), that the labels match the inputs, that the loss is the "
            "right one and that gradients reach the weights; dropout is not the first suspect."
        )
        diagnosis = self._with(
            self._base("not_learning", advice, "unchanged: fix learning first"), values
        )
        return replace(diagnosis, evidence=parts)


def _verdict(
    regime: Regime,
    metric: str,
    mode: MetricMode,
    count: int,
    advice: str,
    current_p: float | None,
    limits: Thresholds,
) -> Diagnosis:
    return Diagnosis(
        regime=regime,
        metric=metric,
        epochs=count,
        advice=advice,
        current_p=current_p,
        suggested_p=current_p,
        mode=mode,
        reason="unchanged: not enough evidence",
        thresholds=limits,
    )


def _moved(size: float, plateau: float) -> str:
    if size > plateau:
        return "still improving"
    if size < -plateau:
        return "getting worse too"
    return "about flat"
