"""A PyTorch Lightning callback that keeps the training history and diagnoses it each epoch.

Importing this module needs PyTorch Lightning (``pip install 'dropkit[lightning]'``); the
``pytorch_lightning`` package is used when present, else ``lightning.pytorch``.
"""

from __future__ import annotations

import importlib
import math
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

from dropkit.advisor.diagnosis import Thresholds
from dropkit.advisor.history import History
from dropkit.advisor.recorder import DiagnosisRecorder


class LightningCallback(DiagnosisRecorder, Callback):
    """Record the logged metrics each epoch and log a :func:`~dropkit.diagnose` verdict.

    At the end of every training epoch it takes ``trainer.callback_metrics`` (what the module
    logged with ``self.log(...)``: names such as ``train_loss``, ``val_loss``, ``val_acc``, the
    ones :func:`~dropkit.load_history` knows), appends them as one epoch, diagnoses the history so
    far, logs the verdict on the ``dropkit`` logger and keeps it. Log epoch-level values
    (``on_epoch=True``) for meaningful curves.

    Args:
        current_p: the model's dropout rate, for ``suggested_p``.
        metric: ``"loss"`` or ``"accuracy"``, ``None`` to choose.
        thresholds: :class:`~dropkit.advisor.Thresholds` for the verdicts.

    Attributes:
        records: one dict of metric values per epoch.
        history: the latest :class:`~dropkit.advisor.History`.
        diagnoses: one :class:`~dropkit.Diagnosis` per epoch.

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
        thresholds: Thresholds | None = None,
    ) -> None:
        super().__init__(current_p, metric=metric, thresholds=thresholds)
        self.records: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if getattr(trainer, "sanity_checking", False):
            return
        row: dict[str, float] = {"epoch": float(trainer.current_epoch)}
        for name, value in trainer.callback_metrics.items():
            number = float(value.item() if hasattr(value, "item") else value)
            if math.isfinite(number):
                row[name] = number
        self.records.append(row)
        self.record(
            lambda: History.from_records(self.records, source="Lightning metrics"),
            trainer.current_epoch,
        )
