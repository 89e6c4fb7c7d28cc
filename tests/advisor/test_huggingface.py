"""The Hugging Face callback in a real Trainer run, and the trainer_state.json it writes."""

from __future__ import annotations

import json
import logging

import pytest
import torch

transformers = pytest.importorskip("transformers")

import dropkit as dk  # noqa: E402
from dropkit.advisor import HuggingFaceCallback  # noqa: E402
from tests.advisor.test_diagnosis import OVERFIT_LOSS  # noqa: E402


class TinyClassifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.ReLU(), dk.Dropout(0.1), torch.nn.Linear(16, 2)
        )

    def forward(self, inputs, labels=None):
        logits = self.net(inputs)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits}


class Points(torch.utils.data.Dataset):
    def __init__(self, count: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(count, 4, generator=generator)
        self.y = (self.x[:, 0] + self.x[:, 1] > 0).long()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index):
        return {"inputs": self.x[index], "labels": self.y[index]}


def accuracy(prediction):
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def test_trainer_run_records_history_and_writes_a_readable_state(tmp_path, caplog):
    epochs = 3
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=epochs,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=64,
        eval_strategy="epoch",
        logging_strategy="epoch",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    callback = HuggingFaceCallback(current_p=0.1)
    trainer = transformers.Trainer(
        model=TinyClassifier(),
        args=args,
        train_dataset=Points(64, 0),
        eval_dataset=Points(64, 1),
        compute_metrics=accuracy,
        callbacks=[callback],
    )
    with caplog.at_level(logging.INFO, logger="dropkit"):
        trainer.train()
    assert len(callback.diagnoses) == epochs
    history = callback.history
    assert history is not None and len(history) == epochs
    assert history.epochs == [1.0, 2.0, 3.0]
    assert all(v > 0 for v in history.train_loss + history.val_loss)
    assert all(0.0 <= v <= 1.0 for v in history.val_acc)
    # Two epochs cannot show a trend, three can.
    assert callback.diagnoses[1].regime == "insufficient_data"
    assert callback.diagnoses[-1].regime != "insufficient_data"
    assert callback.diagnoses[-1].metric == "loss"
    infos = [r for r in caplog.records if r.levelno == logging.INFO and "dropkit epoch" in r.msg]
    assert len(infos) == epochs  # every verdict at INFO, changes also at WARNING
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(callback.changes) <= 1

    trainer.save_state()
    state_path = tmp_path / "trainer_state.json"
    loaded = dk.load_history(state_path)
    assert loaded.epochs == history.epochs
    assert loaded.val_loss == history.val_loss
    assert loaded.train_loss == pytest.approx(history.train_loss)
    logged = [
        e["eval_loss"]
        for e in json.loads(state_path.read_text())["log_history"]
        if "eval_loss" in e
    ]
    assert loaded.val_loss == logged
    assert dk.diagnose(loaded, current_p=0.1).regime == callback.diagnoses[-1].regime


def test_stop_and_apply_rate_on_a_settled_overfitting_verdict():
    # The Trainer's own state and control objects, fed an overfitting log one evaluation at a time.
    model = TinyClassifier()
    callback = HuggingFaceCallback(current_p=0.1, persist=2, apply_rate=True, stop_on=True)
    state = transformers.TrainerState()
    control = transformers.TrainerControl()
    train, val = OVERFIT_LOSS["train_loss"], OVERFIT_LOSS["val_loss"]
    stopped_at = None
    for epoch, (loss, eval_loss) in enumerate(zip(train, val, strict=True), start=1):
        state.log_history.append({"epoch": epoch, "loss": loss, "step": 10 * epoch})
        state.log_history.append({"epoch": epoch, "eval_loss": eval_loss, "step": 10 * epoch})
        state.epoch = float(epoch)
        callback.on_evaluate(None, state, control, model=model)
        if control.should_training_stop and stopped_at is None:
            stopped_at = epoch
    regimes = [d.regime for d in callback.diagnoses]
    first = regimes.index("overfitting")
    assert stopped_at == first + 2  # the verdict had to persist for two evaluations
    assert model.net[2].p == pytest.approx(0.2)  # and the rate was raised once, through the model
