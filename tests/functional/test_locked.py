"""Locked (variational) dropout: one mask per sequence over all time steps."""

from __future__ import annotations

import pytest
import torch

from dropkit.functional import locked_dropout
from tests.helpers import FLOAT_DTYPES, assert_fraction, generator


def test_mask_is_constant_over_time_and_differs_between_sequences() -> None:
    x = torch.ones(64, 12, 32)
    y = locked_dropout(x, 0.4, generator=generator(0))
    assert torch.equal(y, y[:, :1].expand_as(y))
    assert not torch.equal(y[0], y[1])
    assert_fraction((y[:, 0] == 0).double().mean().item(), 0.4, 64 * 32)
    assert y.unique().tolist() == [0.0, torch.tensor(1 / 0.6).item()]


def test_time_first_layout() -> None:
    x = torch.ones(12, 64, 32)
    y = locked_dropout(x, 0.5, batch_first=False, generator=generator(1))
    assert torch.equal(y, y[:1].expand_as(y))
    assert not torch.equal(y[:, 0], y[:, 1])


def test_extra_feature_dims_and_two_dim_input() -> None:
    y = locked_dropout(torch.ones(4, 6, 3, 5), 0.5, generator=generator(2))
    assert torch.equal(y, y[:, :1].expand_as(y))
    z = locked_dropout(torch.ones(50, 7), 0.5, generator=generator(3))
    assert torch.equal(z, z[:, :1].expand_as(z))  # one decision per sequence


def test_eval_zero_and_one() -> None:
    x = torch.randn(2, 3, 4)
    assert locked_dropout(x, 0.5, training=False) is x
    assert locked_dropout(x, 0.0) is x
    assert torch.equal(locked_dropout(x, 1.0), torch.zeros(2, 3, 4))


def test_gradcheck() -> None:
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: locked_dropout(t, 0.5, generator=generator(4)), (x,))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dtypes(dtype: torch.dtype) -> None:
    y = locked_dropout(torch.ones(8, 3, 16, dtype=dtype), 0.5, generator=generator(5))
    assert y.dtype == dtype
    assert set(y.unique().tolist()) == {0.0, 2.0}  # dropped, or scaled by 1 / (1 - 0.5)
    assert torch.equal(y, y[:, :1].expand_as(y))  # one mask for every time step


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"input must have at least 2 dimensions \(N, T, \*\)"):
        locked_dropout(torch.ones(5), 0.5)
    with pytest.raises(TypeError, match="batch_first must be a bool, got 1"):
        locked_dropout(torch.ones(2, 3), 0.5, batch_first=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got -1"):
        locked_dropout(torch.ones(2, 3), -1)
