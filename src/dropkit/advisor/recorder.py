"""What the training callbacks share: diagnose the history so far, settle the verdict, act on it.

A verdict changes only when the evidence persists (hysteresis): a new regime must be diagnosed at
``persist`` evaluations in a row before it replaces the current one (``diverged`` counts at
once). Each change is logged once at WARNING on the ``dropkit`` logger, so a default run shows
it (``insufficient_data`` is not worth a warning); every diagnosis is logged at INFO. Two
actions are opt-in: ``apply_rate`` writes the suggested rate into the model through
:class:`~dropkit.DropoutScheduler`, and ``stop_on`` ends training on the named regimes (by
default ``overfitting`` and ``diverged``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from dropkit._validation import check_positive_int
from dropkit.advisor.diagnosis import REGIMES, Diagnosis, MetricMode, Thresholds, diagnose
from dropkit.advisor.history import History, HistoryError

logger = logging.getLogger("dropkit")

#: The regimes ``stop_on=True`` stops training on.
STOP_REGIMES = ("overfitting", "diverged")


class DiagnosisRecorder:
    """Holds the diagnosis settings, the verdicts and the actions of a training callback.

    Args:
        current_p: the model's dropout rate, for ``suggested_p``.
        metric: the metric to read (``"loss"``, ``"accuracy"``, ``"f1"`` ...); ``None`` to choose.
        mode: ``"min"`` or ``"max"`` for a metric of unknown direction.
        thresholds: :class:`~dropkit.advisor.Thresholds` for the verdicts.
        persist: evaluations in a row a new regime needs before it is reported.
        apply_rate: write ``suggested_p`` into the model when a settled verdict moves it (needs
            ``current_p``).
        stop_on: ``True`` to stop training on ``overfitting`` or ``diverged``, or the regimes to
            stop on; ``False`` (default) never stops.

    Attributes:
        history: the latest :class:`~dropkit.advisor.History`.
        diagnoses: every :class:`~dropkit.Diagnosis`, one per evaluation.
        regime: the settled regime (``None`` before the first verdict).
        changes: the diagnoses at which the settled regime changed.
        should_stop: whether the settled regime is one to stop on.

    Example:
        >>> from dropkit.advisor.history import History
        >>> recorder = DiagnosisRecorder(current_p=0.1)
        >>> rows = [{"epoch": e, "train_loss": 1 / (e + 1), "val_loss": 1.0} for e in range(5)]
        >>> recorder.record(lambda: History.from_records(rows), epoch=4).regime
        'overfitting'
    """

    def __init__(
        self,
        current_p: float | None = None,
        *,
        metric: str | None = None,
        mode: MetricMode | None = None,
        thresholds: Thresholds | None = None,
        persist: int = 2,
        apply_rate: bool = False,
        stop_on: bool | Iterable[str] = False,
    ) -> None:
        super().__init__()
        self.current_p = current_p
        self.metric = metric
        self.mode = mode
        self.thresholds = thresholds
        self.persist = check_positive_int(persist, "persist")
        if apply_rate and current_p is None:
            raise ValueError("apply_rate=True needs current_p, the rate the model trains with")
        self.apply_rate = apply_rate
        self.stop_regimes = _stop_regimes(stop_on)
        self.history: History | None = None
        self.diagnoses: list[Diagnosis] = []
        self.changes: list[Diagnosis] = []
        self.regime: str | None = None
        self._pending: tuple[str, int] | None = None

    @property
    def should_stop(self) -> bool:
        """Whether training should stop: the settled regime is one of ``stop_on``."""
        return self.regime in self.stop_regimes

    def record(
        self, build_history: Callable[[], History], epoch: float, model: Any = None
    ) -> Diagnosis | None:
        """Build the history, diagnose it, settle and log the verdict, act on a change.

        Returns the diagnosis, or ``None`` while the history has nothing to read.
        """
        try:
            self.history = build_history()
        except HistoryError as error:
            logger.info("dropkit: no diagnosis yet (%s)", error)
            return None
        diagnosis = diagnose(
            self.history,
            current_p=self.current_p,
            metric=self.metric,
            mode=self.mode,
            thresholds=self.thresholds,
        )
        self.diagnoses.append(diagnosis)
        logger.info("dropkit epoch %g: %s", epoch, diagnosis.advice)
        if self._settle(diagnosis.regime) and diagnosis.regime != "insufficient_data":
            self.changes.append(diagnosis)
            evidence = "; ".join(diagnosis.evidence)
            logger.warning(
                "dropkit epoch %g: %s%s",
                epoch,
                diagnosis.advice,
                f" ({evidence})" if evidence else "",
            )
            if self.apply_rate and model is not None:
                self._apply(diagnosis, model)
        return diagnosis

    def regime_code(self) -> float:
        """The settled regime as a number (its index in ``REGIMES``) for metric loggers."""
        return float(REGIMES.index(self.regime)) if self.regime is not None else -1.0

    def _settle(self, regime: str) -> bool:
        """Whether ``regime`` becomes the settled verdict now (a change)."""
        if regime == self.regime:
            self._pending = None
            return False
        immediate = regime == "diverged" or self.regime in (None, "insufficient_data")
        count = self._pending[1] + 1 if self._pending and self._pending[0] == regime else 1
        if immediate or count >= self.persist:
            self.regime, self._pending = regime, None
            return True
        self._pending = (regime, count)
        return False

    def _apply(self, diagnosis: Diagnosis, model: Any) -> None:
        target = diagnosis.suggested_p
        if target is None or self.current_p is None or abs(target - self.current_p) < 1e-12:
            return
        from dropkit.model.schedules import DropoutScheduler, constant

        scheduler = DropoutScheduler(model, constant(target))
        logger.warning(
            "dropkit: dropout rate %g -> %g on %d site(s) (%s)",
            self.current_p,
            target,
            len(scheduler.sites),
            diagnosis.reason,
        )
        self.current_p = target


def _stop_regimes(stop_on: bool | Iterable[str]) -> tuple[str, ...]:
    if stop_on is True:
        return STOP_REGIMES
    if stop_on is False:
        return ()
    regimes = tuple(stop_on)
    unknown = [regime for regime in regimes if regime not in REGIMES]
    if unknown:
        raise ValueError(f"stop_on must name regimes among {', '.join(REGIMES)}, got {unknown}")
    return regimes
