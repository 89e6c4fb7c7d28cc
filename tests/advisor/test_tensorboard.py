"""TensorBoard event files, written here with the writers the frameworks use, read back."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("tensorboard")

from torch.utils.tensorboard import SummaryWriter

import dropkit as dk
from dropkit.advisor import HistoryError

TRAIN = [1.0, 0.6, 0.4, 0.3, 0.25]
VAL = [1.1, 0.8, 0.7, 0.72, 0.8]


def test_an_event_file_of_per_epoch_scalars(tmp_path):
    with SummaryWriter(str(tmp_path)) as writer:
        for epoch, (train, val) in enumerate(zip(TRAIN, VAL, strict=True)):
            writer.add_scalar("Loss/train", train, epoch)
            writer.add_scalar("Loss/val", val, epoch)
            writer.add_scalar("Accuracy/val", 0.5 + 0.05 * epoch, epoch)
    (event,) = tmp_path.glob("events.out.tfevents.*")
    history = dk.load_history(event)
    assert history.train_loss == pytest.approx(TRAIN)
    assert history.val_loss == pytest.approx(VAL)
    assert history.val_acc == pytest.approx([0.5, 0.55, 0.6, 0.65, 0.7])
    assert dk.load_history(tmp_path).val_loss == pytest.approx(VAL)  # the folder works too


def test_step_level_training_is_averaged_between_evaluations(tmp_path):
    with SummaryWriter(str(tmp_path)) as writer:
        step = 0
        for epoch in range(4):
            for batch in range(5):
                step += 1
                writer.add_scalar("train_loss_step", 1.0 / (epoch + 1) + 0.01 * batch, step)
            writer.add_scalar("val_loss", 1.2 / (epoch + 1), step)
    history = dk.load_history(tmp_path)
    assert len(history) == 4
    assert history.train_loss[1] == pytest.approx(0.5 + 0.02)
    assert history.val_loss == pytest.approx([1.2 / (e + 1) for e in range(4)])


def test_lightning_layout_with_an_epoch_tag(tmp_path):
    # Lightning's TensorBoardLogger logs `epoch` beside every metric, at the global step.
    with SummaryWriter(str(tmp_path)) as writer:
        step = 0
        for epoch in range(6):
            for _ in range(3):
                step += 1
                writer.add_scalar("train_loss_step", 1.0 / (epoch + 1), step)
                writer.add_scalar("epoch", epoch, step)
            if epoch % 2 == 1:  # check_val_every_n_epoch=2
                writer.add_scalar("val_loss", 1.1 / (epoch + 1), step)
                writer.add_scalar("epoch", epoch, step)
    history = dk.load_history(tmp_path)
    assert history.epochs == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert history.train_loss == pytest.approx([1.0 / (e + 1) for e in range(6)])
    assert [math.isfinite(v) for v in history.val_loss] == [False, True] * 3


def test_keras_train_and_validation_folders(tmp_path):
    # Keras' TensorBoard callback: logs/train and logs/validation, tags epoch_loss, epoch_accuracy.
    for split, values in (("train", TRAIN), ("validation", VAL)):
        with SummaryWriter(str(tmp_path / "logs" / split)) as writer:
            for epoch, value in enumerate(values):
                writer.add_scalar("epoch_loss", value, epoch)
                writer.add_scalar("epoch_accuracy", 1 - value / 2, epoch)
    history = dk.load_history(tmp_path / "logs")
    assert history.train_loss == pytest.approx(TRAIN)
    assert history.val_loss == pytest.approx(VAL)
    assert history.val_acc == pytest.approx([1 - v / 2 for v in VAL])
    assert dk.diagnose(history).regime in dk.advisor.REGIMES


def test_several_runs_in_one_folder_must_be_named(tmp_path):
    for version in ("version_0", "version_1"):
        with SummaryWriter(str(tmp_path / version)) as writer:
            writer.add_scalar("val_loss", 1.0, 0)
    with pytest.raises(HistoryError, match="holds 2 TensorBoard runs"):
        dk.load_history(tmp_path)


def test_a_corrupt_event_file_is_one_error(tmp_path):
    path = tmp_path / "events.out.tfevents.123.host"
    path.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(HistoryError, match="TensorBoard") as error:
        dk.load_history(path)
    assert "\n" not in str(error.value)
