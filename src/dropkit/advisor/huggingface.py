"""A Hugging Face Trainer callback that keeps the training history and diagnoses it each epoch.

Importing this module needs ``transformers`` (``pip install 'dropkit[hf]'``).
"""

from __future__ import annotations

from typing import Any

try:
    from transformers import TrainerCallback
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "dropkit.advisor.HuggingFaceCallback needs transformers: pip install 'dropkit[hf]'"
    ) from error

from dropkit.advisor.history import trainer_log_history
from dropkit.advisor.recorder import DiagnosisRecorder


class HuggingFaceCallback(DiagnosisRecorder, TrainerCallback):
    """Record the Trainer's history; log a :func:`~dropkit.diagnose` verdict after each evaluation.

    Pass it to ``transformers.Trainer(callbacks=[...])`` with an evaluation every epoch
    (``eval_strategy="epoch"``). After each evaluation it reads ``state.log_history`` (training
    losses paired with the evaluation that follows them, as :func:`~dropkit.load_history` reads a
    ``trainer_state.json``), diagnoses it, logs the verdict on the ``dropkit`` logger and keeps it.

    Args:
        current_p: the model's dropout rate, for ``suggested_p``.
        metric: ``"loss"`` or ``"accuracy"`` (needs an ``eval_accuracy`` from ``compute_metrics``
            and a training accuracy, which the Trainer does not log), ``None`` to choose.
        thresholds: :class:`~dropkit.advisor.Thresholds` for the verdicts.

    Attributes:
        history: the latest :class:`~dropkit.advisor.History` (``None`` before the first
            evaluation).
        diagnoses: one :class:`~dropkit.Diagnosis` per evaluation.

    Example:
        >>> from dropkit.advisor import HuggingFaceCallback
        >>> callback = HuggingFaceCallback(current_p=0.1)
        >>> callback.diagnoses
        []
    """

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.record(
            lambda: trainer_log_history(state.log_history, source="Trainer log_history"),
            state.epoch or 0.0,
        )
