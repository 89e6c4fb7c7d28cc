"""Gaussian dropout, alpha dropout, Gaussian noise."""

from __future__ import annotations

import math

import pytest
import torch

from dropkit.functional import alpha_dropout, gaussian_dropout, gaussian_noise
from dropkit.functional.noise import SELU_SATURATION
from tests.helpers import FLOAT_DTYPES, assert_fraction, generator

N = 1_000_000


def assert_mean_and_variance(sample: torch.Tensor, mean: float, variance: float) -> None:
    """Mean and variance within 5 standard errors (the variance's from the sample's 4th moment)."""
    sample = sample.double().flatten()
    n = sample.numel()
    centred = sample - sample.mean()
    fourth = centred.pow(4).mean().item()
    assert abs(sample.mean().item() - mean) < 5 * math.sqrt(variance / n)
    variance_error = math.sqrt(max(fourth - variance**2, 0.0) / n)
    assert abs(sample.var().item() - variance) < 5 * variance_error


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_gaussian_dropout_noise_has_mean_one_and_variance_p_over_1_minus_p(p: float) -> None:
    y = gaussian_dropout(torch.ones(N), p, generator=generator(1))
    assert_mean_and_variance(y, 1.0, p / (1 - p))


def test_gaussian_dropout_gradient_is_the_noise() -> None:
    x = torch.randn(100, requires_grad=True)
    y = gaussian_dropout(x, 0.3, generator=generator(2))
    y.sum().backward()
    noise = gaussian_dropout(torch.ones(100), 0.3, generator=generator(2))
    assert x.grad is not None
    torch.testing.assert_close(x.grad, noise)
    x64 = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: gaussian_dropout(t, 0.3, generator=generator(3)), (x64,)
    )


@pytest.mark.parametrize("p", [0.05, 0.2, 0.5])
def test_alpha_dropout_keeps_zero_mean_and_unit_variance(p: float) -> None:
    x = torch.randn(N, generator=generator(4))
    y = alpha_dropout(x, p, generator=generator(5))
    assert_mean_and_variance(y, 0.0, 1.0)
    a = 1 / math.sqrt((1 - p) * (1 + p * SELU_SATURATION**2))
    dropped_value = a * SELU_SATURATION - a * SELU_SATURATION * p
    dropped = torch.isclose(y, torch.tensor(dropped_value), rtol=0, atol=1e-6)
    kept = ~dropped
    torch.testing.assert_close(y[kept], x[kept] * a - a * SELU_SATURATION * p)
    assert_fraction(dropped.double().mean().item(), p, N, sigmas=6)


def test_alpha_dropout_gradcheck() -> None:
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: alpha_dropout(t, 0.3, generator=generator(6)), (x,))


@pytest.mark.parametrize("std", [0.1, 1.0, 3.0])
def test_gaussian_noise_variance(std: float) -> None:
    x = torch.full((N,), 2.0)
    y = gaussian_noise(x, std, generator=generator(7))
    assert_mean_and_variance(y, 2.0, std**2)


def test_gaussian_noise_gradient_is_identity() -> None:
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: gaussian_noise(t, 0.5, generator=generator(8)), (x,))


@pytest.mark.parametrize("function", [gaussian_dropout, alpha_dropout])
def test_rate_edges(function) -> None:  # type: ignore[no-untyped-def]
    x = torch.randn(10, requires_grad=True)
    assert function(x, 0.3, training=False) is x
    assert function(x, 0.0) is x
    y = function(x, 1.0)
    assert torch.equal(y, torch.zeros(10))
    y.sum().backward()
    assert x.grad is not None and torch.equal(x.grad, torch.zeros(10))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dtypes(dtype: torch.dtype) -> None:
    x = torch.randn(64, 64).to(dtype)
    for y in (gaussian_dropout(x, 0.2), alpha_dropout(x, 0.2), gaussian_noise(x, 0.2)):
        assert y.dtype == dtype and y.shape == x.shape and torch.isfinite(y).all()


def test_reproducible() -> None:
    x = torch.randn(30)
    for function in (gaussian_dropout, alpha_dropout, gaussian_noise):
        torch.manual_seed(3)
        a = function(x, 0.3)
        torch.manual_seed(3)
        assert torch.equal(a, function(x, 0.3))


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got -1.0"):
        gaussian_dropout(torch.ones(2), -1.0)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got nan"):
        alpha_dropout(torch.ones(2), float("nan"))
    with pytest.raises(ValueError, match="std must be a finite number >= 0, got -0.5"):
        gaussian_noise(torch.ones(2), -0.5)
    with pytest.raises(ValueError, match="std must be a finite number >= 0, got inf"):
        gaussian_noise(torch.ones(2), float("inf"))
    with pytest.raises(TypeError, match="floating-point"):
        gaussian_noise(torch.ones(2, dtype=torch.int8), 0.5)
