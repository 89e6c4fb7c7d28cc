"""The callbacks' shared recorder: hysteresis, one warning per change, the opt-in actions."""

from __future__ import annotations

import logging

import pytest
import torch

import dropkit as dk
from dropkit.advisor.history import History
from dropkit.advisor.recorder import DiagnosisRecorder
from tests.advisor.test_diagnosis import OVERFIT_LOSS as OVERFIT

IMPROVING = {
    "train_loss": [1.5, 1.2, 1.0, 0.85, 0.75, 0.67, 0.6, 0.55, 0.5],
    "val_loss": [1.55, 1.3, 1.1, 0.95, 0.85, 0.77, 0.7, 0.64, 0.59],
}


def feed(recorder, sequence, model=None):
    regimes = []
    for epoch, columns in enumerate(sequence):
        recorder.record(lambda c=columns: History.from_columns(c), epoch, model=model)
        regimes.append(recorder.regime)
    return regimes


def test_a_new_regime_must_persist_before_it_is_reported():
    recorder = DiagnosisRecorder(persist=2)
    sequence = [IMPROVING, OVERFIT, IMPROVING, OVERFIT, OVERFIT, OVERFIT]
    assert feed(recorder, sequence) == [
        "still_improving",
        "still_improving",  # one overfitting verdict is not enough
        "still_improving",
        "still_improving",
        "overfitting",  # the second in a row is
        "overfitting",
    ]
    assert [d.regime for d in recorder.diagnoses] == [
        "still_improving",
        "overfitting",
        "still_improving",
        "overfitting",
        "overfitting",
        "overfitting",
    ]
    assert [d.regime for d in recorder.changes] == ["still_improving", "overfitting"]


def test_divergence_is_reported_at_once():
    recorder = DiagnosisRecorder(persist=3)
    broken = {key: [*values[:-1], float("nan")] for key, values in IMPROVING.items()}
    assert feed(recorder, [IMPROVING, broken]) == ["still_improving", "diverged"]


def test_each_change_is_one_warning(caplog):
    recorder = DiagnosisRecorder(persist=1)
    with caplog.at_level(logging.INFO, logger="dropkit"):
        feed(recorder, [IMPROVING, IMPROVING, OVERFIT, OVERFIT])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[1].startswith("dropkit epoch 2: Overfitting")
    assert "above its best" in warnings[1]  # the evidence comes with the advice
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 4


def test_apply_rate_writes_the_suggested_rate_through_the_scheduler():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), dk.Dropout(0.1), torch.nn.Linear(4, 2))
    recorder = DiagnosisRecorder(current_p=0.1, persist=1, apply_rate=True)
    feed(recorder, [OVERFIT], model=model)
    assert model[1].p == pytest.approx(0.2)
    assert recorder.current_p == pytest.approx(0.2)
    feed(recorder, [OVERFIT], model=model)  # no change of regime: no second move
    assert model[1].p == pytest.approx(0.2)


def test_stop_on_overfitting_and_its_settings():
    recorder = DiagnosisRecorder(persist=1, stop_on=True)
    feed(recorder, [IMPROVING])
    assert not recorder.should_stop
    feed(recorder, [OVERFIT])
    assert recorder.should_stop
    assert not DiagnosisRecorder(stop_on=["diverged"], persist=1).should_stop
    with pytest.raises(ValueError, match="stop_on must name regimes among"):
        DiagnosisRecorder(stop_on=["overfit"])
    with pytest.raises(ValueError, match="apply_rate=True needs current_p"):
        DiagnosisRecorder(apply_rate=True)
    with pytest.raises(ValueError, match="persist must be an int >= 1"):
        DiagnosisRecorder(persist=0)
