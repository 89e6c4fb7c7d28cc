"""The demo's data split and training sweep, in a reduced size."""

from __future__ import annotations

import pytest
import torch

import dropkit as dk
from dropkit.demo import build_mlp, load_digits_split, run_sweep

pytest.importorskip("sklearn")


def test_split_is_balanced_disjoint_and_seeded():
    split = load_digits_split(100, 300, seed=3)
    assert split.x_train.shape == (100, 64) and split.x_val.shape == (300, 64)
    assert split.y_train.bincount().tolist() == [10] * 10
    assert float(split.x_train.min()) >= 0.0 and float(split.x_train.max()) <= 1.0
    train_rows = {tuple(row.tolist()) for row in split.x_train}
    assert not any(tuple(row.tolist()) in train_rows for row in split.x_val[:100])
    again = load_digits_split(100, 300, seed=3)
    assert torch.equal(again.x_train, split.x_train)
    other = load_digits_split(100, 300, seed=4)
    assert not torch.equal(other.x_train, split.x_train)


def test_split_errors():
    with pytest.raises(ValueError, match="train_size must be at least 10"):
        load_digits_split(5, 10)
    with pytest.raises(ValueError, match="must be at most 1797"):
        load_digits_split(1000, 1000)


def test_mlp_uses_dropkit_dropout():
    model = build_mlp(64, 10, 20, 0.4)
    layers = [m for m in model if isinstance(m, dk.Dropout)]
    assert len(layers) == 2 and all(m.p == 0.4 for m in layers)


def test_sweep_trains_plain_and_widened_runs_that_learn():
    split = load_digits_split(60, 200)
    seen = []
    runs = run_sweep(
        split, [0.0, 0.5], width=64, epochs=20, on_epoch=lambda r, e, rec: seen.append((r.label, e))
    )
    assert [(r.p, r.width, r.widened) for r in runs] == [
        (0.0, 64, False),
        (0.5, 64, False),
        (0.5, 128, True),
    ]
    assert len(seen) == 3 * 20
    for run in runs:
        assert [r["epoch"] for r in run.records] == [float(e) for e in range(1, 21)]
        # Chance is 10%: every run learns, and training fits better than it started.
        assert run.records[-1]["val_acc"] > 0.5
        assert run.records[-1]["train_loss"] < run.records[0]["train_loss"]
    # Same seed, same rate and width: identical runs.
    again = run_sweep(split, [0.5], width=32, epochs=2, with_width_rule=False)
    first = run_sweep(split, [0.5], width=32, epochs=2, with_width_rule=False)
    assert again[0].records == first[0].records
