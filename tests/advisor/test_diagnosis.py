"""diagnose on synthetic histories of each regime, in accuracy and in loss."""

from __future__ import annotations

import json
import math

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
        (SWEET_ACC, 0.2, 0.2),  # the evidence asks for no change
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
    with pytest.raises(ValueError, match="metric 'f1' is not in history: it holds loss, acc"):
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


# -- the reproductions of issue 10, as regression tests ----------------------------------------


def test_widening_gap_with_validation_still_improving_is_not_overfitting():
    history = {
        "train_loss": [1, 0.6, 0.35, 0.2, 0.12, 0.08],
        "val_loss": [1.1, 0.9, 0.75, 0.65, 0.58, 0.53],
    }
    diagnosis = dk.diagnose(history, current_p=0.1)
    assert diagnosis.regime == "still_improving", str(diagnosis)
    assert diagnosis.suggested_p == 0.1
    assert "Overfitting" not in str(diagnosis)
    assert "gap is already large" in diagnosis.advice


def test_validation_degrading_gets_its_own_verdict_with_numbers():
    history = {
        "train_loss": [1.5, 1.44, 1.35, 1.33, 1.31, 1.27, 1.25, 1.22, 1.17, 1.16],
        "val_loss": [1.49, 1.37, 1.33, 1.37, 1.36, 1.43, 1.44, 1.48, 1.51, 1.49],
    }
    diagnosis = dk.diagnose(history, current_p=0.1)
    assert diagnosis.regime == "overfitting", str(diagnosis)
    assert diagnosis.best_epoch == 3 and diagnosis.epochs_since_best == 7
    assert "12% above its best (1.33 at epoch 3)" in diagnosis.evidence[0]
    assert diagnosis.suggested_p == pytest.approx(0.2)


def test_poor_training_with_validation_peaked_and_falling_is_not_the_sweet_spot():
    history = {
        "train_acc": [0.35, 0.42, 0.47, 0.51, 0.54, 0.57, 0.59, 0.61, 0.62, 0.63],
        "val_acc": [0.36, 0.43, 0.47, 0.49, 0.48, 0.46, 0.45, 0.43, 0.42, 0.41],
    }
    diagnosis = dk.diagnose(history, current_p=0.1)
    assert diagnosis.regime == "overfitting", str(diagnosis)
    assert "7.0 points below its best" in diagnosis.evidence[0]


def test_a_model_that_learns_nothing_is_not_learning():
    flat = {"train_loss": [2.303, 2.302, 2.304, 2.303, 2.302, 2.303], "val_loss": [2.303] * 6}
    diagnosis = dk.diagnose(flat, current_p=0.5)
    assert diagnosis.regime == "not_learning"
    assert diagnosis.suggested_p == 0.5 and "learning rate" in diagnosis.advice


@pytest.mark.parametrize("bad", [math.nan, math.inf, "nan"])
def test_a_run_that_diverges_is_diagnosed_as_diverged(bad):
    history = {
        "train_loss": [2.0, 1.5, 1.2, 1.0, 0.9, bad, bad],
        "val_loss": [2.1, 1.6, 1.3, 1.1, 1.0, bad, bad],
    }
    diagnosis = dk.diagnose(history, current_p=0.3)
    assert diagnosis.regime == "diverged"
    assert diagnosis.suggested_p == 0.3  # the rate is left alone
    assert "not finite (NaN or infinite) from epoch 6" in diagnosis.evidence[0]
    assert "learning rate" in diagnosis.advice and "clip gradients" in diagnosis.advice


def test_an_exploding_loss_is_diverged():
    history = {
        "train_loss": [2.0, 1.2, 0.8, 0.7, 1.5, 5.0, 9.0],
        "val_loss": [2.1, 1.3, 0.9, 0.8, 1.6, 5.2, 9.5],
    }
    diagnosis = dk.diagnose(history, current_p=0.3)
    assert diagnosis.regime == "diverged"
    assert "exploding" in diagnosis.evidence[0]


def test_negative_losses_give_a_sane_gap():
    history = {
        "train_loss": [-0.5, -1.2, -1.8, -2.2, -2.5, -2.7, -2.85, -2.95],
        "val_loss": [-0.4, -1.0, -1.4, -1.6, -1.65, -1.6, -1.5, -1.4],
    }
    diagnosis = dk.diagnose(history, current_p=0.3)
    assert diagnosis.regime == "overfitting"
    assert 0 < diagnosis.gap < 1  # a share of the curves' range, not of a value near zero
    assert "validation loss 0.15 above its best (-1.65 at epoch 5)" in diagnosis.evidence[0]
    assert "%" not in str(diagnosis)


def test_without_validation_the_advice_is_to_log_one_not_to_train_longer():
    diagnosis = dk.diagnose({"train_loss": [1.0, 0.8, 0.6, 0.5, 0.45]}, current_p=0.3)
    assert diagnosis.regime == "insufficient_data"
    assert "Train longer" not in diagnosis.advice
    assert "No validation series" in diagnosis.advice and "val_loss" in diagnosis.advice


# -- any metric, with its direction ----------------------------------------------------------


def test_any_metric_with_a_known_direction():
    wer = {"train_wer": [0.5, 0.3, 0.2, 0.15, 0.12, 0.1, 0.09, 0.08]}
    wer["eval_wer"] = [0.52, 0.35, 0.27, 0.25, 0.26, 0.28, 0.30, 0.32]
    diagnosis = dk.diagnose(wer, metric="wer", current_p=0.1)
    assert (diagnosis.regime, diagnosis.mode, diagnosis.metric) == ("overfitting", "min", "wer")
    assert diagnosis.best_val == 0.25
    f1 = {"eval_f1": [0.5, 0.6, 0.66, 0.7, 0.73, 0.75, 0.77]}
    assert dk.diagnose(f1).regime == "still_improving"  # validation only, found by default
    assert dk.diagnose(f1, metric="eval_f1").mode == "max"


def test_mode_sets_the_direction_of_other_metrics():
    history = {"val_score": [1.0, 2.0, 3.0, 3.5, 3.3, 3.0, 2.6, 2.2]}
    with pytest.raises(ValueError, match="metric 'score' has no known direction: pass mode='min'"):
        dk.diagnose(history, metric="score")
    assert dk.diagnose(history, metric="score", mode="max").regime == "overfitting"
    assert dk.diagnose(history, metric="score", mode="min").regime != "overfitting"
    with pytest.raises(ValueError, match="mode must be one of 'min', 'max', got 'up'"):
        dk.diagnose(history, metric="score", mode="up")


def test_direction_table():
    from dropkit.advisor.metrics import DIRECTIONS, direction

    assert DIRECTIONS["loss"] == "min" and DIRECTIONS["top1"] == "max"
    assert [direction(m) for m in ("mae", "r2", "rouge_l", "seg_loss", "macro_f1")] == [
        "min",
        "max",
        "max",
        "min",
        "max",
    ]


def test_noise_alone_never_moves_the_rate():
    # A flat validation curve with large noise: no trend, no move, whatever the seed.
    import numpy as np

    for seed in range(30):
        curve = 0.45 + 0.6 * np.exp(-np.arange(25) / 4)
        noise = np.random.default_rng(seed).normal(0, 0.03, 25)
        history = {"train_loss": list(curve), "val_loss": list(curve + 0.05 + noise)}
        diagnosis = dk.diagnose(history, current_p=0.3)
        assert diagnosis.suggested_p == 0.3, (seed, str(diagnosis))


def test_arguments_of_the_wrong_type_are_named_with_their_value():
    history = {"train_loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.7, 0.6]}
    with pytest.raises(
        TypeError, match=r"thresholds must be a dropkit.advisor.Thresholds, got 3 \(int\)"
    ):
        dk.diagnose(history, thresholds=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"thresholds must be .*, got \{'min_epochs': 2\} \(dict\)"):
        dk.diagnose(history, thresholds={"min_epochs": 2})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"metric must be a str, got 3 \(int\)"):
        dk.diagnose(history, metric=3)  # type: ignore[arg-type]
