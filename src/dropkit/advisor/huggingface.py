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
    """Diagnose the Trainer's history after each evaluation; report changes, optionally act.

    Pass it to ``transformers.Trainer(callbacks=[...])`` with evaluations (``eval_strategy="epoch"``
    or ``"steps"``). After each evaluation it reads ``state.log_history`` (each evaluation paired
    with the training loss logged around it, as :func:`~dropkit.load_history` reads a
    ``trainer_state.json``), diagnoses it and settles the verdict (see
    :class:`~dropkit.advisor.recorder.DiagnosisRecorder`: hysteresis, a WARNING on the
    ``dropkit`` logger once per change, and the opt-in actions: ``apply_rate`` writes the rate into
    the Trainer's model, ``stop_on`` sets ``control.should_training_stop``).

    Args:
        current_p: the model's dropout rate, for ``suggested_p``.
        metric, mode, thresholds, persist, apply_rate, stop_on: as for
            :class:`~dropkit.advisor.recorder.DiagnosisRecorder`. ``metric`` can be any evaluation
            metric of ``compute_metrics`` (``"f1"``, ``"wer"`` ...); by default the loss.

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
            model=kwargs.get("model"),
        )
        if self.should_stop:
            control.should_training_stop = True
