"""Logs written by the tools themselves (a Lightning CSVLogger run, a Trainer's state, a
SummaryWriter, a Keras CSVLogger appended twice), kept in ``corpus/``, with the verdict each gets.

How they were made: ``lightning_overfitting`` is a 8-256-256-2 MLP with dropout 0.1 trained 40
epochs on 96 noisy points; ``lightning_underfitting`` a 8-4-2 network with dropout 0.5 on an XOR
of two inputs; ``trainer_evaluating_often`` a Trainer run with ``eval_steps=8`` and
``logging_steps=20``; ``tensorboard_diverged`` and ``keras_appended`` write curves of the corpus in
those formats (the second Keras run overfits).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest

import dropkit as dk

CORPUS = Path(__file__).parent / "corpus"


@pytest.mark.parametrize(
    ("folder", "regime", "direction"),
    [
        ("lightning_overfitting", "overfitting", +1),
        ("lightning_underfitting", "underfitting", -1),
        ("trainer_evaluating_often", "still_improving", 0),
        ("keras_appended", "overfitting", +1),
    ],
)
def test_verdicts_on_logs_the_tools_wrote(folder, regime, direction):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the appended Keras file warns about its two runs
        history = dk.load_history(CORPUS / folder)
    diagnosis = dk.diagnose(history, current_p=0.3)
    assert diagnosis.regime == regime, str(diagnosis)
    moved = diagnosis.suggested_p - 0.3
    assert (moved > 1e-9) - (moved < -1e-9) == direction


def test_the_lightning_run_reads_as_epochs_with_step_means():
    history = dk.load_history(CORPUS / "lightning_overfitting")
    assert len(history) == 40 and history.epochs[:2] == [0.0, 1.0]
    assert set(history.available()) == {"train_loss", "val_loss", "train_acc", "val_acc"}
    assert history.train_acc[-1] == 1.0 and history.val_loss[-1] > 3 * min(history.val_loss)


def test_the_trainer_state_pairs_every_evaluation():
    history = dk.load_history(CORPUS / "trainer_evaluating_often" / "trainer_state.json")
    assert len(history) == 24
    paired = sum(math.isfinite(v) for v in history.train_loss)
    assert paired >= 20  # all but the evaluations before the first training log


@pytest.mark.skipif(
    not __import__("importlib").util.find_spec("tensorboard"), reason="needs tensorboard"
)
def test_the_tensorboard_run_diverged():
    diagnosis = dk.diagnose(dk.load_history(CORPUS / "tensorboard_diverged"), current_p=0.3)
    assert diagnosis.regime == "diverged" and diagnosis.suggested_p == 0.3
    assert "from epoch 24 on" in diagnosis.evidence[0]


def test_the_keras_file_holds_two_runs():
    runs = dk.load_history(CORPUS / "keras_appended" / "training.log", run="all")
    assert [len(run) for run in runs] == [8, 25]
    assert dk.diagnose(runs[0]).regime == "still_improving"
