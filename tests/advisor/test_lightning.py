"""The Lightning callback in short real Trainer runs, and the metrics.csv those runs write."""

from __future__ import annotations

import logging
import math

import pytest
import torch

pl = pytest.importorskip("pytorch_lightning")

import dropkit as dk  # noqa: E402
from dropkit.advisor import LightningCallback  # noqa: E402


class Module(pl.LightningModule):
    def __init__(self, on_step: bool = False) -> None:
        super().__init__()
        self.on_step = on_step
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.ReLU(), dk.Dropout(0.2), torch.nn.Linear(16, 2)
        )

    def step(self, batch, name):
        x, y = batch
        logits = self.net(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        training = name == "train" and self.on_step
        self.log(f"{name}_loss", loss, on_step=training, on_epoch=not training)
        accuracy = (logits.argmax(1) == y).float().mean()
        self.log(f"{name}_acc", accuracy, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, index):
        return self.step(batch, "train")

    def validation_step(self, batch, index):
        self.step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


def loader(seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=generator)
    y = (x[:, 0] > 0).long()
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)


def fit(tmp_path, callbacks, module, epochs, **settings):
    torch.manual_seed(0)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
        callbacks=callbacks,
        **settings,
    )
    trainer.fit(module, loader(0), loader(1))
    return trainer


def test_lightning_run_records_history_and_diagnoses(tmp_path):
    callback = LightningCallback(current_p=0.2)
    fit(tmp_path, [callback], Module(), 4, logger=False)
    assert len(callback.records) == 4
    history = callback.history
    assert history is not None
    assert history.epochs == [0.0, 1.0, 2.0, 3.0]
    assert set(history.available()) == {"train_loss", "val_loss", "train_acc", "val_acc"}
    assert len(callback.diagnoses) == 4
    assert callback.diagnoses[-1].metric == "accuracy"
    assert callback.diagnoses[-1].regime != "insufficient_data"
    assert callback.diagnoses[-1].current_p == 0.2


def test_validation_every_third_epoch_and_step_means(tmp_path):
    callback = LightningCallback(current_p=0.2, metric="loss")
    logger = pl.loggers.CSVLogger(str(tmp_path), name="logs")
    steps = []

    class Batches(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            steps.append([])

        def on_train_batch_end(self, trainer, module, outputs, batch, index):
            steps[-1].append(float(outputs["loss"]))

    settings = {"logger": logger, "check_val_every_n_epoch": 3}
    fit(tmp_path, [Batches(), callback], Module(on_step=True), 6, **settings)
    history = callback.history
    assert history is not None and len(history) == 6
    # Validation ran after epochs 2 and 5 only: no stale values in between.
    assert [math.isfinite(v) for v in history.val_loss] == [False, False, True] * 2
    # Logged per step only: the epoch's value is the mean of its four batches, not the last.
    assert callback.records[0]["train_loss"] == pytest.approx(sum(steps[0]) / 4)
    assert all(math.isfinite(v) for v in history.train_loss)
    # The verdict went to the trainer's logger; the file it wrote reads back as a folder.
    written = dk.load_history(tmp_path / "logs" / "version_0")
    assert [i for i, v in enumerate(written.val_loss) if math.isfinite(v)] == [2, 5]
    assert written.val_loss[5] == pytest.approx(history.val_loss[5])
    assert (tmp_path / "logs" / "version_0" / "metrics.csv").read_text().count("dropkit/regime")


def test_advice_passes_the_default_logging_level(tmp_path, caplog):
    # No caplog.at_level: the "dropkit" logger keeps Python's default level, WARNING.
    callback = LightningCallback(current_p=0.2, persist=1)
    fit(tmp_path, [callback], Module(), 4, logger=False)
    assert callback.changes
    shown = [r for r in caplog.records if r.name == "dropkit" and "dropkit epoch" in r.getMessage()]
    assert len(shown) == len(callback.changes)
    assert all(record.levelno == logging.WARNING for record in shown)
