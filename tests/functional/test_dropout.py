"""Inverted dropout: semantics, gradients, dtypes, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dropkit as dk
from dropkit.functional import dropout
from tests.helpers import DEVICES, FLOAT_DTYPES, assert_fraction, generator


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8])
def test_drop_fraction_matches_p(p: float) -> None:
    x = torch.ones(1000, 1000)
    y = dropout(x, p, generator=generator(1))
    assert_fraction((y == 0).double().mean().item(), p, x.numel())


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_survivors_scaled_exactly(p: float) -> None:
    x = torch.randn(300, 300, generator=generator(2))
    y = dropout(x, p, generator=generator(3))
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] * (1.0 / (1.0 - p)), rtol=0, atol=0)


def test_mean_is_preserved() -> None:
    x = torch.full((2000, 1000), 3.0)
    y = dropout(x, 0.4, generator=generator(4))
    # each element is 3 / 0.6 with probability 0.6: mean 3, std 3 * sqrt(0.4 / 0.6)
    sigma = 3.0 * (0.4 / 0.6) ** 0.5 / x.numel() ** 0.5
    assert abs(y.double().mean().item() - 3.0) < 5 * sigma


def test_eval_and_zero_rate_return_the_input_itself() -> None:
    x = torch.randn(4, 5)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x


def test_rate_one_gives_zeros_and_zero_gradient_without_nan() -> None:
    x = torch.tensor([1.0, float("inf"), -2.0, float("nan")], requires_grad=True)
    y = dropout(x, 1.0)
    assert torch.equal(y, torch.zeros(4))
    y.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad, torch.zeros(4))


def test_dropped_infinities_are_zero_not_nan() -> None:
    x = torch.full((1000,), float("inf"))
    y = dropout(x, 0.5, generator=generator(5))
    assert not torch.isnan(y).any()
    assert ((y == 0) | torch.isinf(y)).all()


def test_gradient_is_mask_times_scale() -> None:
    x = torch.randn(50, 40, requires_grad=True)
    y = dropout(x, 0.3, generator=generator(6))
    y.backward(torch.ones_like(y))
    assert x.grad is not None
    expected = (y != 0).float() / 0.7
    torch.testing.assert_close(x.grad, expected)


@pytest.mark.parametrize("broadcast_dims", [(), (0,), (1,), (-1,), (0, 2)])
def test_gradcheck(broadcast_dims: tuple[int, ...]) -> None:
    x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)

    def function(t: torch.Tensor) -> torch.Tensor:
        return dropout(t, 0.4, broadcast_dims=broadcast_dims, generator=generator(7))

    assert torch.autograd.gradcheck(function, (x,))


def test_broadcast_dims_share_the_mask() -> None:
    x = torch.ones(400, 30, 20)
    y = dropout(x, 0.25, broadcast_dims=1, generator=generator(8))
    assert torch.equal(y, y[:, :1, :].expand_as(y))
    # the mask itself has 400 * 20 independent entries
    assert_fraction((y[:, 0, :] == 0).double().mean().item(), 0.25, 400 * 20)
    # features still differ from one another: the mask is not shared along dim 2
    assert not torch.equal(y, y[:, :, :1].expand_as(y))


def test_negative_broadcast_dims_equal_positive() -> None:
    x = torch.ones(6, 7, 8)
    a = dropout(x, 0.5, broadcast_dims=(-1, -3), generator=generator(9))
    b = dropout(x, 0.5, broadcast_dims=(2, 0), generator=generator(9))
    assert torch.equal(a, b)


def test_manual_seed_and_generator_reproduce_the_mask() -> None:
    x = torch.randn(64, 64)
    torch.manual_seed(11)
    a = dropout(x, 0.5)
    torch.manual_seed(11)
    b = dropout(x, 0.5)
    assert torch.equal(a, b)
    assert torch.equal(
        dropout(x, 0.5, generator=generator(3)), dropout(x, 0.5, generator=generator(3))
    )
    assert not torch.equal(
        dropout(x, 0.5, generator=generator(3)), dropout(x, 0.5, generator=generator(4))
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dtypes_and_devices(dtype: torch.dtype, device: str) -> None:
    x = torch.ones(200, 500, dtype=dtype, device=device)
    y = dropout(x, 0.3, generator=generator(12, device))
    assert y.dtype == dtype and y.device == x.device
    assert_fraction((y == 0).double().mean().item(), 0.3, x.numel())
    assert set(y.unique().tolist()) == {0.0, torch.tensor(1 / 0.7, dtype=dtype).item()}


def test_non_contiguous_and_channels_last_input() -> None:
    x = torch.randn(8, 6, 10, 12).to(memory_format=torch.channels_last)
    y = dropout(x, 0.5, generator=generator(13))
    assert y.shape == x.shape
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] * 2.0, rtol=0, atol=0)
    t = torch.randn(30, 40).t()
    z = dropout(t, 0.5, generator=generator(14))
    kept = z != 0
    torch.testing.assert_close(z[kept], t[kept] * 2.0, rtol=0, atol=0)


def test_empty_tensor() -> None:
    x = torch.empty(0, 7)
    assert dropout(x, 0.5).shape == (0, 7)


@pytest.mark.parametrize("numel", [100, 40_000])  # below and above any size threshold
def test_no_grad_and_inference_mode_draw_the_grad_mode_mask(numel: int) -> None:
    x = torch.ones(numel)
    expected = dropout(x.requires_grad_(), 0.5, generator=generator(7)).detach()
    assert 0.4 < float((expected == 0).double().mean()) < 0.6
    with torch.no_grad():
        assert torch.equal(dropout(x, 0.5, generator=generator(7)), expected)
    with torch.inference_mode():
        quiet = dropout(torch.ones(numel), 0.5, generator=generator(7))
        assert quiet.is_inference() and torch.equal(quiet, expected)


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_bad_rate(p: float) -> None:
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got"):
        dropout(torch.ones(3), p)


def test_bad_inputs() -> None:
    with pytest.raises(
        TypeError, match="input must be a floating-point tensor.*got dtype torch.int64"
    ):
        dropout(torch.ones(3, dtype=torch.long), 0.5)
    with pytest.raises(TypeError, match="input must be a torch.Tensor, got list"):
        dropout([1.0, 2.0], 0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="p must be a float in \\[0, 1\\], got '0.5'"):
        dropout(torch.ones(3), "0.5")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match="broadcast_dims has dim 3, out of range for a tensor with 2"
    ):
        dropout(torch.ones(3, 4), 0.5, broadcast_dims=3)
    with pytest.raises(ValueError, match="broadcast_dims repeats a dimension"):
        dropout(torch.ones(3, 4), 0.5, broadcast_dims=(1, -1))
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None"):
        dropout(torch.ones(3), 0.5, generator=0)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(0, 6), min_size=0, max_size=4),
    p=st.floats(0.0, 1.0),
    dtype=st.sampled_from(FLOAT_DTYPES),
    seed=st.integers(0, 2**31),
)
def test_property_every_element_dropped_or_scaled(
    shape: list[int], p: float, dtype: torch.dtype, seed: int
) -> None:
    x = torch.randn(shape, generator=generator(seed)).to(dtype)
    y = dk.functional.dropout(x, p, generator=generator(seed + 1))
    assert y.shape == x.shape and y.dtype == dtype
    assert not torch.isnan(y).any()
    if p == 1.0:
        assert (y == 0).all()
    elif p > 0.0:
        kept = y != 0
        torch.testing.assert_close(y[kept], x[kept] * (1.0 / (1.0 - p)))
