"""Spatial dropout: whole channels."""

from __future__ import annotations

import pytest
import torch

from dropkit.functional import spatial_dropout
from tests.helpers import FLOAT_DTYPES, assert_fraction, generator


@pytest.mark.parametrize("shape", [(200, 50, 9), (100, 50, 4, 5), (50, 40, 2, 3, 4)])
def test_whole_channels_dropped_at_rate_p(shape: tuple[int, ...]) -> None:
    x = torch.ones(shape)
    y = spatial_dropout(x, 0.3, generator=generator(1))
    maps = y.flatten(2)
    assert torch.equal(maps, maps[..., :1].expand_as(maps)), "a channel was dropped in part"
    assert_fraction((maps[..., 0] == 0).double().mean().item(), 0.3, shape[0] * shape[1])
    assert set(maps.unique().tolist()) == {0.0, torch.tensor(1 / 0.7).item()}


def test_channels_of_one_sample_are_independent() -> None:
    y = spatial_dropout(torch.ones(1, 4000, 3, 3), 0.5, generator=generator(2))
    assert_fraction((y[0, :, 0, 0] == 0).double().mean().item(), 0.5, 4000)


def test_gradcheck() -> None:
    x = torch.randn(3, 4, 5, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: spatial_dropout(t, 0.5, generator=generator(3)), (x,))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dtypes(dtype: torch.dtype) -> None:
    y = spatial_dropout(torch.ones(4, 8, 3, 3, dtype=dtype), 0.5, generator=generator(4))
    assert y.dtype == dtype
    assert set(y.unique().tolist()) == {0.0, 2.0}  # dropped, or scaled by 1 / (1 - 0.5)
    maps = y.flatten(2)
    assert torch.equal(maps, maps[..., :1].expand_as(maps))  # whole channels


def test_eval_identity_and_rate_one() -> None:
    x = torch.randn(2, 3, 4)
    assert spatial_dropout(x, 0.5, training=False) is x
    assert torch.equal(spatial_dropout(x, 1.0), torch.zeros_like(x))


def test_rank_error() -> None:
    with pytest.raises(
        ValueError, match=r"input must have at least 3 dimensions \(N, C, \*spatial\), got 2"
    ):
        spatial_dropout(torch.ones(4, 5), 0.5)
