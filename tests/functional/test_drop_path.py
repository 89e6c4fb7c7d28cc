"""Stochastic depth: whole samples or the whole batch."""

from __future__ import annotations

import pytest
import torch

from dropkit.functional import drop_path
from tests.helpers import assert_fraction, generator


def test_row_mode_drops_whole_samples_at_rate_p() -> None:
    x = torch.ones(20000, 3, 4)
    y = drop_path(x, 0.2, generator=generator(1))
    rows = y.flatten(1)
    assert torch.equal(rows, rows[:, :1].expand_as(rows))
    assert_fraction((rows[:, 0] == 0).double().mean().item(), 0.2, 20000)
    assert set(rows.unique().tolist()) == {0.0, 1.25}


def test_batch_mode_drops_the_whole_batch_at_rate_p() -> None:
    gen = generator(2)
    outcomes = []
    for _ in range(3000):
        y = drop_path(torch.ones(5, 2), 0.3, mode="batch", generator=gen)
        assert torch.equal(y, torch.full_like(y, y[0, 0].item()))
        outcomes.append(y[0, 0].item() == 0)
    assert_fraction(sum(outcomes) / len(outcomes), 0.3, len(outcomes))


def test_gradcheck_both_modes() -> None:
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    for mode in ("row", "batch"):
        assert torch.autograd.gradcheck(
            lambda t, mode=mode: drop_path(t, 0.5, mode=mode, generator=generator(3)), (x,)
        )


def test_one_dimensional_input_and_eval() -> None:
    x = torch.ones(1000)
    y = drop_path(x, 0.5, generator=generator(4))
    assert_fraction((y == 0).double().mean().item(), 0.5, 1000)
    assert drop_path(x, 0.5, training=False) is x


def test_errors() -> None:
    with pytest.raises(ValueError, match="mode must be one of 'row', 'batch', got 'sample'"):
        drop_path(torch.ones(2, 2), 0.1, mode="sample")
    with pytest.raises(ValueError, match=r"input must have at least 1 dimensions \(N, \*\), got 0"):
        drop_path(torch.tensor(1.0), 0.1)
