"""The Lightning callback in a short real Trainer run."""

from __future__ import annotations

import pytest
import torch

pl = pytest.importorskip("pytorch_lightning")

import dropkit as dk  # noqa: E402
from dropkit.advisor import LightningCallback  # noqa: E402


class Module(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.ReLU(), dk.Dropout(0.2), torch.nn.Linear(16, 2)
        )

    def step(self, batch, name):
        x, y = batch
        logits = self.net(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        self.log(f"{name}_loss", loss, on_step=False, on_epoch=True)
        self.log(
            f"{name}_acc", (logits.argmax(1) == y).float().mean(), on_step=False, on_epoch=True
        )
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


def test_lightning_run_records_history_and_diagnoses(tmp_path):
    torch.manual_seed(0)
    callback = LightningCallback(current_p=0.2)
    trainer = pl.Trainer(
        max_epochs=4,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
        callbacks=[callback],
    )
    trainer.fit(Module(), loader(0), loader(1))
    assert len(callback.records) == 4
    history = callback.history
    assert history is not None
    assert history.epochs == [0.0, 1.0, 2.0, 3.0]
    assert set(history.available()) == {"train_loss", "val_loss", "train_acc", "val_acc"}
    assert len(callback.diagnoses) == 4
    assert callback.diagnoses[-1].metric == "accuracy"
    assert callback.diagnoses[-1].regime != "insufficient_data"
    assert callback.diagnoses[-1].current_p == 0.2
