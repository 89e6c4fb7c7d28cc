"""The demo's data, training loop and sweep, in a reduced size."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import dropkit as dk
from dropkit.demo import (
    Split,
    build_mlp,
    fit,
    load_digits_split,
    load_mnist1d,
    plan_sweep,
    run_sweep,
)


def test_mnist1d_shapes_and_global_state_untouched():
    pytest.importorskip("mnist1d")
    random.seed(5)
    np.random.seed(5)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    data = load_mnist1d(samples=200)
    assert data.x_train.shape == (160, 40) and data.x_val.shape == (40, 40)
    assert data.x_train.dtype == torch.float32 and data.classes == 10
    assert random.getstate() == python_state
    assert np.random.get_state()[1].tolist() == numpy_state[1].tolist()
    assert torch.equal(load_mnist1d(samples=200).x_train, data.x_train)
    with pytest.raises(ValueError, match="samples"):
        load_mnist1d(samples=0)


def test_digits_split_is_balanced_disjoint_and_seeded():
    split = load_digits_split(100, 300, seed=3)
    assert split.y_train.bincount().tolist() == [10] * 10
    assert all(29 <= count <= 31 for count in split.y_val.bincount().tolist())  # stratified
    assert torch.equal(load_digits_split(100, 300, seed=3).x_train, split.x_train)
    assert not torch.equal(load_digits_split(100, 300, seed=4).x_train, split.x_train)
    train_rows = {tuple(row.tolist()) for row in split.x_train}
    assert not any(tuple(row.tolist()) in train_rows for row in split.x_val)
    with pytest.raises(ValueError, match="train_size must be at least 10"):
        load_digits_split(5, 10)


def test_mlp_uses_dropkit_dropout():
    model = build_mlp(64, 10, 20, 0.4)
    layers = [m for m in model if isinstance(m, dk.Dropout)]
    assert len(layers) == 2 and all(m.p == 0.4 for m in layers)


def test_plan_pairs_every_arm_over_the_seeds():
    plans = plan_sweep([0.0, 0.2, 0.5], 100, [0, 1, 2])
    arms = sorted({(r.p, r.width, r.widened) for r in plans})
    assert arms == [
        (0.0, 100, False),
        (0.2, 100, False),
        (0.2, 125, True),
        (0.5, 100, False),
        (0.5, 200, True),
    ]
    assert sorted(r.seed for r in plans if r.p == 0.5 and r.widened) == [0, 1, 2]
    with pytest.raises(ValueError, match="seeds must name at least one seed"):
        plan_sweep([0.1], 10, [])


def test_fit_measures_every_k_epochs_and_the_last():
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    split = Split(x, y, x, y)
    seen = []
    records = fit(
        torch.nn.Linear(3, 2),
        split,
        epochs=5,
        batch_size=8,
        every=2,
        on_epoch=lambda epoch, record: seen.append(epoch),
    )
    assert [r["epoch"] for r in records] == [2.0, 4.0, 5.0] and seen == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="every"):
        fit(torch.nn.Linear(3, 2), split, epochs=1, every=0)


def test_sweep_is_deterministic_paired_and_leaves_the_global_rng_alone():
    pytest.importorskip("mnist1d")
    split = load_mnist1d(samples=300)
    torch.manual_seed(7)
    state = torch.random.get_rng_state()
    seen = []
    runs = run_sweep(
        split,
        [0.0, 0.5],
        width=16,
        epochs=3,
        seeds=[0, 1],
        on_epoch=lambda r, e, rec: seen.append((r.label, e)),
    )
    assert torch.equal(torch.random.get_rng_state(), state)
    assert [(r.p, r.width, r.seed) for r in runs] == [
        (0.0, 16, 0),
        (0.0, 16, 1),
        (0.5, 16, 0),
        (0.5, 16, 1),
        (0.5, 32, 0),
        (0.5, 32, 1),
    ]
    assert len(seen) == 6 * 3
    assert runs[0].records != runs[1].records  # seeds differ
    again = run_sweep(split, [0.0, 0.5], width=16, epochs=3, seeds=[0, 1])
    assert [r.records for r in again] == [r.records for r in runs]
