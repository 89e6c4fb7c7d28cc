"""The dropout doctor: read training histories, diagnose them, and tune rates.

Knows numbers, not tensors. ``optuna`` (for :func:`tune`), ``transformers`` and
``pytorch_lightning`` (for the callbacks) are imported only when used.

Callbacks that record the history and log a diagnosis every epoch:
``dropkit.advisor.HuggingFaceCallback`` (a ``transformers.TrainerCallback``) and
``dropkit.advisor.LightningCallback`` (a PyTorch Lightning ``Callback``).
"""

from __future__ import annotations

from typing import Any

from dropkit.advisor.diagnosis import REGIMES, Diagnosis, MetricMode, Regime, Thresholds, diagnose
from dropkit.advisor.history import History, HistoryError
from dropkit.advisor.logfiles import load_history
from dropkit.advisor.tuning import TuneResult, tune

# The callbacks subclass classes of optional packages, so they are attributes loaded on first use
# and not in ``__all__``: ``from dropkit.advisor import *`` works without those packages.

__all__ = [
    "REGIMES",
    "Diagnosis",
    "History",
    "HistoryError",
    "MetricMode",
    "Regime",
    "Thresholds",
    "TuneResult",
    "diagnose",
    "load_history",
    "tune",
]


def __getattr__(name: str) -> Any:
    if name == "HuggingFaceCallback":
        from dropkit.advisor.huggingface import HuggingFaceCallback

        return HuggingFaceCallback
    if name == "LightningCallback":
        from dropkit.advisor.lightning import LightningCallback

        return LightningCallback
    raise AttributeError(f"module 'dropkit.advisor' has no attribute {name!r}")
