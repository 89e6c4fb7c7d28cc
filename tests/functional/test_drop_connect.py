"""DropConnect and its Gaussian moment-matching inference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import dropkit as dk
from dropkit.functional import drop_connect, drop_connect_gaussian
from tests.helpers import FLOAT_DTYPES, assert_fraction, generator


@pytest.mark.parametrize("p", [0.2, 0.5, 0.7])
def test_drops_weights_at_rate_and_rescales(p: float) -> None:
    weight = torch.randn(300, 400, generator=generator(0))
    dropped = drop_connect(weight, p, generator=generator(1))
    zero = dropped == 0
    assert_fraction(zero.double().mean().item(), p, weight.numel())
    torch.testing.assert_close(dropped[~zero], weight[~zero] * (1.0 / (1.0 - p)), rtol=0, atol=0)


def test_identity_input_shows_one_weight_mask_shared_by_the_batch() -> None:
    weight = torch.ones(6, 6)
    dropped = drop_connect(weight, 0.5, generator=generator(2))
    # each row of an identity batch reads one column of the dropped weight: x_i W^T = W[:, i]
    batch = torch.eye(6).repeat(3, 1)
    out = F.linear(batch, dropped)
    for copy in range(3):
        assert torch.equal(out[copy * 6 : (copy + 1) * 6], dropped.t())
    again = drop_connect(weight, 0.5, generator=generator(3))
    assert not torch.equal(again, dropped)  # a fresh mask on the next forward


def test_eval_zero_and_one() -> None:
    weight = torch.randn(4, 5, requires_grad=True)
    assert drop_connect(weight, 0.5, training=False) is weight
    assert drop_connect(weight, 0.0) is weight
    zeros = drop_connect(weight, 1.0)
    assert torch.equal(zeros, torch.zeros(4, 5))
    zeros.sum().backward()
    assert torch.equal(weight.grad, torch.zeros(4, 5))


def test_gradcheck() -> None:
    weight = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda w: drop_connect(w, 0.4, generator=generator(7)), (weight,)
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dtypes(dtype: torch.dtype) -> None:
    weight = torch.ones(8, 8, dtype=dtype)
    dropped = drop_connect(weight, 0.5, generator=generator(0))
    assert dropped.dtype == dtype
    assert set(dropped.unique().tolist()) <= {0.0, 2.0}


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        drop_connect(torch.ones(2, 2), 1.5)
    with pytest.raises(TypeError, match="weight must be a floating-point tensor"):
        drop_connect(torch.ones(2, 2, dtype=torch.long), 0.5)
    with pytest.raises(ValueError, match="samples must be an int >= 1, got 0"):
        drop_connect_gaussian(torch.ones(1, 2), torch.ones(2, 2), None, 0.5, samples=0)


def mask_samples(x, weight, bias, p, draws, seed):  # type: ignore[no-untyped-def]
    """Pre-activations under ``draws`` independent real weight masks, one mask per draw."""
    stacked = weight.expand(draws, *weight.shape).contiguous()
    dropped = drop_connect(stacked, p, generator=generator(seed))
    out = torch.einsum("ni,doi->dno", x, dropped)
    return out if bias is None else out + bias


@pytest.mark.parametrize(
    "activation", [None, torch.relu, torch.tanh], ids=["identity", "relu", "tanh"]
)
def test_gaussian_inference_matches_monte_carlo_over_weight_masks(activation) -> None:  # type: ignore[no-untyped-def]
    # A wide fan-in makes each pre-activation a sum of many independent terms, so the Gaussian
    # approximation's own error is far below the Monte-Carlo tolerance used here.
    torch.manual_seed(0)
    x = torch.rand(4, 400, dtype=torch.float64)
    weight = torch.randn(5, 400, dtype=torch.float64) / 20
    bias = torch.randn(5, dtype=torch.float64) / 5
    p, draws = 0.5, 4000
    act = activation if activation is not None else (lambda t: t)
    values = act(mask_samples(x, weight, bias, p, draws, 1))
    estimate = drop_connect_gaussian(
        x, weight, bias, p, samples=draws, activation=activation, generator=generator(2)
    )
    # both are means of ``draws`` independent values with (about) the same variance
    sigma = (2 * values.var(0) / draws).sqrt()
    assert ((estimate - values.mean(0)).abs() <= 5 * sigma).all()


@pytest.mark.parametrize("p", [0.3, 0.6])
def test_gaussian_variance_is_that_of_the_weight_masks(p: float) -> None:
    # the centred second moment through the activation: a variance without the p / (1 - p)
    # factor of the inverted form (or with the non-inverted p (1 - p)) fails this
    torch.manual_seed(3)
    x = torch.rand(2, 300, dtype=torch.float64)
    weight = torch.randn(3, 300, dtype=torch.float64) / 15
    draws = 20000
    values = mask_samples(x, weight, None, p, draws, 4)
    mean = F.linear(x, weight)
    variance = drop_connect_gaussian(
        x,
        weight,
        None,
        p,
        samples=draws,
        activation=lambda u: (u - mean) ** 2,
        generator=generator(5),
    )
    reference = values.var(0)
    # the sample variance of n near-normal draws has relative std sqrt(2 / (n - 1)); two of them
    relative = 5 * (2 * 2 / (draws - 1)) ** 0.5
    assert ((variance / reference - 1).abs() < relative).all()


def test_gaussian_on_a_convolution_matches_monte_carlo() -> None:
    torch.manual_seed(6)
    conv = torch.nn.Conv2d(8, 3, 3, padding=1, bias=True).double()
    x = torch.rand(1, 8, 5, 5, dtype=torch.float64)
    p, draws = 0.5, 3000
    layer = conv._conv_forward
    with torch.no_grad():
        # all draws in one grouped convolution: draw d uses its own dropped weight
        stacked = conv.weight.expand(draws, *conv.weight.shape).contiguous()
        dropped = drop_connect(stacked, p, generator=generator(7)).flatten(0, 1)
        out = F.conv2d(
            x.repeat(1, draws, 1, 1), dropped, conv.bias.repeat(draws), padding=1, groups=draws
        )
        values = torch.relu(out.view(draws, 3, 5, 5))
    estimate = drop_connect_gaussian(
        x,
        conv.weight,
        conv.bias,
        p,
        layer=layer,
        samples=draws,
        activation=torch.relu,
        generator=generator(8),
    ).detach()
    sigma = (2 * values.var(0) / draws).sqrt()
    # fan-in 72 is smaller: allow the Gaussian approximation a small bias on top of 5 sigma
    assert (
        (estimate - values.mean(0)).abs() <= 5 * sigma + 0.02 * values.mean(0).abs().max()
    ).all()


def test_gaussian_edge_rates() -> None:
    x, weight, bias = torch.randn(3, 4), torch.randn(2, 4), torch.randn(2)
    exact = F.linear(x, weight, bias)
    torch.testing.assert_close(drop_connect_gaussian(x, weight, bias, 0.0, samples=3), exact)
    fully_dropped = drop_connect_gaussian(x, weight, bias, 1.0, samples=3)
    torch.testing.assert_close(fully_dropped, bias.expand(3, 2))
    assert dk.functional.drop_connect_gaussian is drop_connect_gaussian
