"""diagnose on synthetic histories of each regime, in accuracy and in loss."""

from __future__ import annotations

import json

import pytest

import dropkit as dk
from dropkit.advisor import REGIMES, Thresholds

OVERFIT_ACC = {
    "train_acc": [0.70, 0.85, 0.93, 0.97, 0.99, 1.00, 1.00, 1.00, 1.00],
    "val_acc": [0.68, 0.78, 0.82, 0.83, 0.82, 0.81, 0.80, 0.79, 0.78],
}
UNDERFIT_ACC = {
    "train_acc": [0.40, 0.52, 0.58, 0.60, 0.61, 0.61, 0.61, 0.61, 0.61],
    "val_acc": [0.40, 0.51, 0.57, 0.59, 0.60, 0.60, 0.60, 0.60, 0.60],
}
SWEET_ACC = {
    "train_acc": [0.70, 0.85, 0.92, 0.95, 0.96, 0.96, 0.96, 0.96, 0.96],
    "val_acc": [0.68, 0.82, 0.90, 0.93, 0.94, 0.94, 0.94, 0.94, 0.94],
}
IMPROVING_ACC = {
    "train_acc": [0.50, 0.60, 0.68, 0.74, 0.79, 0.83, 0.86, 0.89, 0.91],
    "val_acc": [0.50, 0.59, 0.67, 0.72, 0.77, 0.81, 0.84, 0.86, 0.88],
}
OVERFIT_LOSS = {
    "train_loss": [1.5, 0.9, 0.5, 0.3, 0.15, 0.08, 0.04, 0.02, 0.01],
    "val_loss": [1.55, 1.0, 0.75, 0.70, 0.72, 0.78, 0.85, 0.93, 1.02],
}
UNDERFIT_LOSS = {
    "train_loss": [2.30, 2.00, 1.85, 1.80, 1.79, 1.79, 1.79, 1.79, 1.79],
    "val_loss": [2.31, 2.02, 1.88, 1.83, 1.82, 1.82, 1.82, 1.82, 1.82],
}
SWEET_LOSS = {
    "train_loss": [2.3, 1.0, 0.5, 0.3, 0.25, 0.24, 0.24, 0.24, 0.24],
    "val_loss": [2.3, 1.0, 0.55, 0.33, 0.28, 0.27, 0.27, 0.27, 0.27],
}


@pytest.mark.parametrize(
    ("history", "regime", "metric"),
    [
        (OVERFIT_ACC, "overfitting", "accuracy"),
        (UNDERFIT_ACC, "underfitting", "accuracy"),
        (SWEET_ACC, "sweet_spot", "accuracy"),
        (IMPROVING_ACC, "still_improving", "accuracy"),
        (OVERFIT_LOSS, "overfitting", "loss"),
        (UNDERFIT_LOSS, "underfitting", "loss"),
        (SWEET_LOSS, "sweet_spot", "loss"),
    ],
)
def test_each_regime(history, regime, metric):
    diagnosis = dk.diagnose(history)
    assert diagnosis.regime == regime, str(diagnosis)
    assert diagnosis.metric == metric
    assert diagnosis.regime in REGIMES


def test_numbers_behind_an_overfitting_verdict():
    diagnosis = dk.diagnose(OVERFIT_ACC, current_p=0.2)
    assert diagnosis.final_train == 1.0
    assert diagnosis.final_val == 0.78
    assert diagnosis.best_val == 0.83
    assert diagnosis.best_epoch == 4.0  # the fourth row, epochs numbered from 1
    assert diagnosis.gap == pytest.approx(0.22)
    assert diagnosis.val_trend < 0  # validation getting worse
    assert diagnosis.gap_trend > 0
    assert "Raise the dropout rate" in diagnosis.advice


def test_loss_gap_is_relative_to_validation_loss():
    diagnosis = dk.diagnose(OVERFIT_LOSS)
    assert diagnosis.gap == pytest.approx((1.02 - 0.01) / 1.02)
    assert diagnosis.best_val == 0.70
    assert diagnosis.best_epoch == 4.0


@pytest.mark.parametrize(
    ("history", "current_p", "expected"),
    [
        (OVERFIT_ACC, 0.2, 0.3),
        (OVERFIT_ACC, 0.75, 0.8),  # capped at max_p
        (UNDERFIT_ACC, 0.5, 0.4),
        (UNDERFIT_ACC, 0.05, 0.0),
        (SWEET_ACC, 0.2, 0.25),
        (IMPROVING_ACC, 0.3, 0.3),
    ],
)
def test_suggested_p_moves_in_the_advised_direction(history, current_p, expected):
    assert dk.diagnose(history, current_p=current_p).suggested_p == pytest.approx(expected)


def test_advice_words_follow_the_practice():
    assert "Lower the dropout rate or remove dropout" in dk.diagnose(UNDERFIT_ACC).advice
    assert "widen the layers" in dk.diagnose(UNDERFIT_ACC).advice
    assert "longer training" in dk.diagnose(SWEET_ACC).advice
    assert "Train longer" in dk.diagnose(IMPROVING_ACC).advice


def test_no_suggestion_without_current_p():
    assert dk.diagnose(OVERFIT_ACC).suggested_p is None


def test_thresholds_are_settable():
    # The sweet-spot history has a 2-point gap; a stricter gap threshold calls it overfitting.
    assert dk.diagnose(SWEET_ACC).regime == "sweet_spot"
    strict = Thresholds(gap_accuracy=0.01)
    assert dk.diagnose(SWEET_ACC, thresholds=strict).regime == "overfitting"
    lenient = Thresholds(underfit_accuracy=0.5)
    assert dk.diagnose(UNDERFIT_ACC, thresholds=lenient).regime == "sweet_spot"
    assert dk.diagnose(OVERFIT_ACC, current_p=0.2, thresholds=Thresholds(step=0.2)).suggested_p == (
        pytest.approx(0.4)
    )


def test_metric_choice_and_default():
    both = {**OVERFIT_ACC, **{k: v for k, v in UNDERFIT_LOSS.items()}}
    assert dk.diagnose(both).metric == "accuracy"
    assert dk.diagnose(both, metric="loss").regime == "underfitting"
    with pytest.raises(ValueError, match="metric must be one of 'loss', 'accuracy', got 'f1'"):
        dk.diagnose(both, metric="f1")


def test_insufficient_data():
    short = {"train_acc": [0.5, 0.9], "val_acc": [0.5, 0.7]}
    diagnosis = dk.diagnose(short, current_p=0.3)
    assert diagnosis.regime == "insufficient_data"
    assert "at least 3" in diagnosis.advice
    assert diagnosis.suggested_p == 0.3
    no_val = {"train_loss": [1.0, 0.8, 0.6, 0.5]}
    diagnosis = dk.diagnose(no_val)
    assert diagnosis.regime == "insufficient_data"
    assert "val_loss" in diagnosis.advice


def test_accepts_records_and_dataframe_like():
    records = [
        {"epoch": e, "train_acc": t, "val_acc": v}
        for e, (t, v) in enumerate(zip(*OVERFIT_ACC.values(), strict=True), 1)
    ]
    assert dk.diagnose(records).regime == "overfitting"

    class Frame:  # the two methods of a pandas DataFrame diagnose uses
        columns = ("train_acc", "val_acc")

        def to_dict(self, orient):
            assert orient == "list"
            return dict(OVERFIT_ACC)

    assert dk.diagnose(Frame()).regime == "overfitting"


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"current_p must be a probability in \[0, 1\], got 1.5"):
        dk.diagnose(OVERFIT_ACC, current_p=1.5)
    with pytest.raises(ValueError, match="must be a History"):
        dk.diagnose(42)
    with pytest.raises(ValueError, match="min_epochs must be an int >= 1"):
        Thresholds(min_epochs=0)
    with pytest.raises(ValueError, match="gap_accuracy must be a finite number >= 0"):
        Thresholds(gap_accuracy=-0.1)


def test_to_dict_is_json():
    data = dk.diagnose(OVERFIT_ACC, current_p=0.1).to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["regime"] == "overfitting"
    assert data["suggested_p"] == pytest.approx(0.2)
    assert data["thresholds"]["gap_accuracy"] == 0.05
    short = dk.diagnose({"train_acc": [0.5], "val_acc": [0.4]}).to_dict()
    assert short["gap"] is None
    json.dumps(short, allow_nan=False)


def test_str_reads_as_words():
    text = str(dk.diagnose(OVERFIT_ACC, current_p=0.1))
    assert text.startswith("regime: overfitting")
    assert "suggested p: 0.1 -> 0.2" in text
