"""A PyTorch Lightning callback that keeps the training history and diagnoses it each epoch.

Importing this module needs PyTorch Lightning (``pip install 'dropkit[lightning]'``); the
``pytorch_lightning`` package is used when present, else ``lightning.pytorch``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable
from typing import Any

try:
    Callback: Any = importlib.import_module("pytorch_lightning").Callback
except ImportError:  # pragma: no cover - depends on the environment
    try:
        Callback = importlib.import_module("lightning.pytorch").Callback
    except ImportError as error:
        raise ImportError(
            "dropkit.advisor.LightningCallback needs PyTorch Lightning: "
            "pip install 'dropkit[lightning]'"
        ) from error

from dropkit.advisor.diagnosis import MetricMode, Thresholds
from dropkit.advisor.history import History, parse_column
from dropkit.advisor.recorder import DiagnosisRecorder


class LightningCallback(DiagnosisRecorder, Callback):
    """Record the logged metrics each epoch, diagnose them, report changes, optionally act.

    At the end of every training epoch it takes what the module logged with ``self.log(...)``
    (``trainer.callback_metrics``; names such as ``train_loss``, ``val_loss``, ``val_acc``,
    ``val_f1``, the ones :func:`~dropkit.load_history` reads) as one epoch:

    - validation values only when validation ran in that epoch (with
      ``check_val_every_n_epoch=3`` the other epochs have none, not a stale repeat);
    - values logged per step only (``on_step=True, on_epoch=False``) averaged over the epoch's
      batches, not the last batch's value; epoch aggregates (``on_epoch=True``) as logged.

    It then diagnoses the history so far (see :class:`~dropkit.advisor.recorder.DiagnosisRecorder`
    for the hysteresis, the WARNING once per change, and the opt-in actions), and sends the settled
    regime (its index in ``REGIMES``) and the suggested rate to the trainer's loggers as
    ``dropkit/regime`` and ``dropkit/suggested_p``.

    Args:
        current_p: the model's dropout rate, for ``suggested_p``.
        metric, mode, thresholds, persist, apply_rate, stop_on: as for
            :class:`~dropkit.advisor.recorder.DiagnosisRecorder`; with ``apply_rate`` the rate is
            written into the LightningModule, with ``stop_on`` the trainer stops.

    Attributes:
        records: one dict of metric values per epoch.
        history: the latest :class:`~dropkit.advisor.History`.
        diagnoses: one :class:`~dropkit.Diagnosis` per epoch with a history to read.

    Example:
        >>> from dropkit.advisor import LightningCallback
        >>> LightningCallback(current_p=0.2).records
        []
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
        super().__init__(
            current_p,
            metric=metric,
            mode=mode,
            thresholds=thresholds,
            persist=persist,
            apply_rate=apply_rate,
            stop_on=stop_on,
        )
        self.records: list[dict[str, float]] = []
        self._validated = False
        self._steps: dict[str, list[float]] = {}

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._validated = False
        self._steps = {}

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        for name, value in trainer.callback_metrics.items():
            parsed = parse_column(name)
            number = _number(value)
            if parsed is not None and parsed.split == "train" and number is not None:
                self._steps.setdefault(name, []).append(number)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not getattr(trainer, "sanity_checking", False):
            self._validated = True

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if getattr(trainer, "sanity_checking", False):
            return
        row: dict[str, float] = {"epoch": float(trainer.current_epoch)}
        for name, value in trainer.callback_metrics.items():
            parsed = parse_column(name)
            number = _number(value)
            if parsed is None or number is None:
                continue
            if parsed.split != "train" and not self._validated:
                continue  # a value left from an earlier validation
            steps = self._steps.get(name)
            if steps and steps[-1] == number:  # logged per step: the epoch's mean, not the last
                number = sum(steps) / len(steps)
            row[name] = number
        self.records.append(row)
        diagnosis = self.record(
            lambda: History.from_records(self.records, source="Lightning metrics"),
            trainer.current_epoch,
            model=pl_module,
        )
        if diagnosis is not None:
            metrics = {"dropkit/regime": self.regime_code()}
            if diagnosis.suggested_p is not None:
                metrics["dropkit/suggested_p"] = diagnosis.suggested_p
            for destination in getattr(trainer, "loggers", []):
                destination.log_metrics(metrics, step=trainer.global_step)
        if self.should_stop:
            trainer.should_stop = True


def _number(value: Any) -> float | None:
    try:
        number = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return number if math.isfinite(number) else math.inf
