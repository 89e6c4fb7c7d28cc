"""Realistic training curves, written here, with the verdict an expert gives each.

Every curve is a smooth shape plus seeded Gaussian noise of a realistic size, so the verdicts are
tested against noise as it shows in real logs. ``CASES`` lists (name, history, expected regime,
expected direction of ``suggested_p``: +1 up, 0 unchanged, -1 down).
"""

from __future__ import annotations

import math

import numpy as np

EPOCHS = 30


SEED_OFFSET = 0  # other offsets draw other noise: a robustness check outside the unit tests


def _noisy(values, scale, seed):
    generator = np.random.default_rng(seed + SEED_OFFSET)
    return [float(v) for v in np.asarray(values) + generator.normal(0.0, scale, len(values))]


def _epochs(count=EPOCHS):
    return np.arange(count, dtype=float)


def noisy_overfitting():
    e = _epochs()
    train = 2.0 * np.exp(-e / 6) + 0.05
    val = 0.55 + 1.5 * np.exp(-e / 4) + 0.0009 * np.maximum(e - 8, 0) ** 2
    return {"train_loss": _noisy(train, 0.01, 1), "val_loss": _noisy(val, 0.015, 2)}


def noisy_overfitting_accuracy():
    e = _epochs()
    train = 1.0 - 0.5 * np.exp(-e / 4)
    val = 0.85 - 0.35 * np.exp(-e / 3) - 0.003 * np.maximum(e - 9, 0)
    return {"train_acc": _noisy(train, 0.004, 3), "val_acc": _noisy(val, 0.006, 4)}


def noisy_plateau():
    e = _epochs()
    train = 0.30 + 1.7 * np.exp(-e / 4)
    val = 0.34 + 1.7 * np.exp(-e / 4)
    return {"train_loss": _noisy(train, 0.006, 5), "val_loss": _noisy(val, 0.015, 6)}


def large_noise_flat_validation():
    e = _epochs()
    train = 0.45 + 0.6 * np.exp(-e / 5)
    val = 0.50 + 0.6 * np.exp(-e / 5)
    return {"train_loss": _noisy(train, 0.01, 7), "val_loss": _noisy(val, 0.03, 8)}


def noisy_still_improving():
    e = _epochs()
    train = 1.6 * np.exp(-e / 25) + 0.2
    val = 1.6 * np.exp(-e / 30) + 0.3
    return {"train_loss": _noisy(train, 0.01, 9), "val_loss": _noisy(val, 0.015, 10)}


def widening_gap_still_improving():
    # Reproduction 1 of the issue, longer: training races ahead, validation still improves.
    e = _epochs(12)
    train = 1.0 * np.exp(-e / 2.5)
    val = 0.45 + 0.65 * np.exp(-e / 6)
    return {"train_loss": _noisy(train, 0.003, 11), "val_loss": _noisy(val, 0.004, 12)}


def late_divergence():
    history = noisy_plateau()
    history["train_loss"] = history["train_loss"][:24] + [math.nan] * 6
    history["val_loss"] = history["val_loss"][:24] + [math.nan] * 6
    return history


def exploding_loss():
    e = _epochs()
    train = np.where(e < 18, 1.5 * np.exp(-e / 5) + 0.2, 0.3 * np.exp((e - 17) / 2))
    val = train + 0.1
    return {"train_loss": _noisy(train, 0.01, 13), "val_loss": _noisy(val, 0.01, 14)}


def lr_decay_steps():
    # Step decay at epochs 10 and 20; each drop followed by a plateau; the last one is long.
    e = _epochs(36)
    base = 0.9 + 0.8 * np.exp(-e / 2)
    steps = 0.25 * (e >= 10) + 0.12 * (e >= 20)
    train = base - steps - 0.3
    val = base - steps - 0.27
    return {"train_loss": _noisy(train, 0.006, 15), "val_loss": _noisy(val, 0.01, 16)}


def heavy_dropout_validation_above_training():
    e = _epochs()
    train = 0.71 - 0.4 * np.exp(-e / 3)
    val = 0.80 - 0.4 * np.exp(-e / 3)
    return {"train_acc": _noisy(train, 0.005, 17), "val_acc": _noisy(val, 0.005, 18)}


def poor_training_accuracy():
    e = _epochs()
    train = 0.62 - 0.4 * np.exp(-e / 3)
    val = 0.60 - 0.4 * np.exp(-e / 3)
    return {"train_acc": _noisy(train, 0.004, 19), "val_acc": _noisy(val, 0.005, 20)}


def not_learning():
    return {
        "train_loss": _noisy([2.303] * 20, 0.002, 21),
        "val_loss": _noisy([2.303] * 20, 0.002, 22),
    }


def validation_only_overfitting():
    e = _epochs()
    val = 0.6 + 1.2 * np.exp(-e / 3) + 0.0012 * np.maximum(e - 8, 0) ** 2
    return {"val_loss": _noisy(val, 0.01, 23)}


def validation_only_improving_f1():
    e = _epochs(15)
    val = 0.9 - 0.5 * np.exp(-e / 8)
    return {"eval_f1": _noisy(val, 0.004, 24)}


def wer_overfitting():
    e = _epochs(25)
    train = 0.08 + 0.6 * np.exp(-e / 4)
    val = 0.20 + 0.55 * np.exp(-e / 4) + 0.0006 * np.maximum(e - 8, 0) ** 2
    return {"train_wer": _noisy(train, 0.003, 25), "val_wer": _noisy(val, 0.005, 26)}


def negative_nll_overfitting():
    # A Gaussian negative log-likelihood: values below zero.
    e = _epochs()
    train = -3.0 + 2.0 * np.exp(-e / 5)
    val = -1.8 + 1.0 * np.exp(-e / 4) + 0.002 * np.maximum(e - 8, 0) ** 2
    return {"train_loss": _noisy(train, 0.02, 27), "val_loss": _noisy(val, 0.03, 28)}


def sweet_spot_accuracy():
    e = _epochs()
    train = 0.97 - 0.5 * np.exp(-e / 4)
    val = 0.945 - 0.5 * np.exp(-e / 4)
    return {"train_acc": _noisy(train, 0.003, 29), "val_acc": _noisy(val, 0.004, 30)}


def build_cases():
    """The corpus: (name, history, regime, direction of suggested_p)."""
    return [
        ("noisy overfitting (loss)", noisy_overfitting(), "overfitting", +1),
        ("noisy overfitting (accuracy)", noisy_overfitting_accuracy(), "overfitting", +1),
        ("noisy plateau", noisy_plateau(), "sweet_spot", 0),
        ("large noise, flat validation", large_noise_flat_validation(), "sweet_spot", 0),
        ("noisy, still improving", noisy_still_improving(), "still_improving", 0),
        (
            "widening gap, validation improving",
            widening_gap_still_improving(),
            "still_improving",
            0,
        ),
        ("late divergence to NaN", late_divergence(), "diverged", 0),
        ("exploding loss", exploding_loss(), "diverged", 0),
        ("learning-rate decay steps", lr_decay_steps(), "sweet_spot", 0),
        (
            "heavy dropout: validation above training",
            heavy_dropout_validation_above_training(),
            "underfitting",
            -1,
        ),
        ("poor training accuracy", poor_training_accuracy(), "underfitting", -1),
        ("not learning", not_learning(), "not_learning", 0),
        ("validation only, overfitting", validation_only_overfitting(), "overfitting", +1),
        ("validation only, F1 improving", validation_only_improving_f1(), "still_improving", 0),
        ("word error rate, overfitting", wer_overfitting(), "overfitting", +1),
        ("negative NLL, overfitting", negative_nll_overfitting(), "overfitting", +1),
        ("sweet spot (accuracy)", sweet_spot_accuracy(), "sweet_spot", 0),
    ]


CASES = build_cases()
