"""What the training callbacks share: diagnose the history so far, keep the verdict, log it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from dropkit.advisor.diagnosis import Diagnosis, Thresholds, diagnose
from dropkit.advisor.history import History, HistoryError

logger = logging.getLogger("dropkit")


class DiagnosisRecorder:
    """Holds the diagnosis settings and the verdicts of a training callback.

    Args:
        current_p: the model's dropout rate, for ``suggested_p``.
        metric: ``"loss"`` or ``"accuracy"``, ``None`` to choose.
        thresholds: :class:`~dropkit.advisor.Thresholds` for the verdicts.

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
        thresholds: Thresholds | None = None,
    ) -> None:
        super().__init__()
        self.current_p = current_p
        self.metric = metric
        self.thresholds = thresholds
        self.history: History | None = None
        self.diagnoses: list[Diagnosis] = []

    def record(self, build_history: Callable[[], History], epoch: float) -> Diagnosis | None:
        """Build the history, diagnose it, keep and log the verdict; None while there is none."""
        try:
            self.history = build_history()
        except HistoryError as error:
            logger.info("dropkit: no diagnosis yet (%s)", error)
            return None
        diagnosis = diagnose(
            self.history, current_p=self.current_p, metric=self.metric, thresholds=self.thresholds
        )
        self.diagnoses.append(diagnosis)
        logger.info("dropkit epoch %g: %s", epoch, diagnosis.advice)
        return diagnosis
