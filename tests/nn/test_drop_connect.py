"""The DropConnect wrapper around linear and convolution layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dropkit as dk
from dropkit.nn import RateModule
from tests.helpers import assert_fraction

LAYERS = [
    lambda: nn.Linear(12, 7),
    lambda: nn.Linear(12, 7, bias=False),
    lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=1),
    lambda: nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2),
    lambda: nn.Conv2d(4, 6, 3, padding=1, padding_mode="reflect"),
    lambda: nn.Conv3d(2, 4, (1, 3, 3), padding=(0, 1, 1), bias=False),
]
INPUTS = {
    nn.Linear: (5, 12),
    nn.Conv1d: (2, 4, 9),
    nn.Conv2d: (2, 4, 8, 8),
    nn.Conv3d: (2, 2, 3, 6, 6),
}


@pytest.mark.parametrize("make", LAYERS)
def test_eval_equals_the_plain_layer_and_state_dict_loads(make) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    plain = make()
    wrapped = dk.DropConnect(make(), p=0.4)
    wrapped.module.load_state_dict(plain.state_dict())
    x = torch.randn(INPUTS[type(plain)])
    assert torch.equal(wrapped.eval()(x), plain(x))
    restored = dk.DropConnect(make(), p=0.4)
    restored.load_state_dict(wrapped.state_dict())
    assert torch.equal(restored.eval()(x), plain(x))


@pytest.mark.parametrize("make", LAYERS)
def test_training_uses_a_dropped_weight_with_the_layer_settings(make) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(1)
    layer = make()
    wrapped = dk.DropConnect(layer, p=0.5)
    x = torch.randn(INPUTS[type(layer)])
    torch.manual_seed(2)
    y = wrapped(x)
    torch.manual_seed(2)
    dropped = dk.functional.drop_connect(layer.weight, 0.5)
    expected = torch.func.functional_call(layer, {"weight": dropped}, (x,))
    torch.testing.assert_close(y, expected)
    assert y.shape == layer(x).shape


def test_identity_input_reveals_a_weight_mask_shared_across_the_batch() -> None:
    layer = nn.Linear(50, 40, bias=False)
    nn.init.ones_(layer.weight)
    wrapped = dk.DropConnect(layer, p=0.3)
    x = torch.eye(50).repeat(4, 1)  # four copies of the identity in one batch
    torch.manual_seed(3)
    out = wrapped(x)
    first = out[:50]
    for copy in range(1, 4):
        assert torch.equal(out[copy * 50 : (copy + 1) * 50], first)  # one mask for the batch
    assert_fraction((first == 0).double().mean().item(), 0.3, first.numel())
    assert set(first.unique().tolist()) == {0.0, torch.tensor(1 / 0.7).item()}
    assert not torch.equal(wrapped(torch.eye(50)), first)  # a fresh mask next forward


def test_gradients_reach_the_wrapped_weight_only_where_kept() -> None:
    layer = nn.Linear(6, 4)
    wrapped = dk.DropConnect(layer, p=0.5)
    torch.manual_seed(4)
    wrapped(torch.ones(3, 6)).sum().backward()
    torch.manual_seed(4)
    kept = dk.functional.drop_connect(torch.ones(4, 6), 0.5) != 0
    assert torch.equal(layer.weight.grad != 0, kept)
    assert torch.equal(layer.bias.grad, torch.full((4,), 3.0))


def test_gaussian_inference_and_activation() -> None:
    torch.manual_seed(5)
    wrapped = dk.DropConnect(
        nn.Linear(300, 3), p=0.5, inference="gaussian", samples=1000, activation=torch.relu
    )
    x = torch.rand(2, 300)
    train_out = wrapped(x)
    assert (train_out >= 0).all()  # the activation applies in training too
    wrapped.eval()
    y = wrapped(x)
    torch.manual_seed(6)
    masks = [
        torch.relu(
            nn.functional.linear(
                x, dk.functional.drop_connect(wrapped.module.weight, 0.5), wrapped.module.bias
            )
        )
        for _ in range(1000)
    ]
    reference = torch.stack(masks).detach()
    sigma = (2 * reference.var(0) / 1000).sqrt()
    # an output the samples never lift above zero has no sample variance to compare with: there
    # the rule of three bounds P(positive) by 3 / 1000, so its mean stays far below the others'
    varied = sigma > 0
    assert ((y - reference.mean(0)).abs()[varied] <= 5 * sigma[varied]).all()
    assert (y[~varied] <= 3 / 1000 * reference.max()).all()
    mean_mode = dk.DropConnect(wrapped.module, p=0.5, activation=torch.relu).eval()
    assert torch.equal(mean_mode(x), torch.relu(wrapped.module(x)))
    assert "inference='gaussian', samples=1000, activation=relu" in repr(wrapped)


def test_rate_is_a_validated_settable_attribute() -> None:
    wrapped = dk.DropConnect(nn.Linear(2, 2), p=0.1)
    assert isinstance(wrapped, RateModule) and wrapped.dropout_kind == "weight"
    wrapped.p = 0.6
    assert wrapped.p == 0.6
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        wrapped.p = 1.5


def test_errors() -> None:
    with pytest.raises(
        TypeError, match="DropConnect wraps an nn.Linear or nn.Conv1d/2d/3d, got LSTM"
    ):
        dk.DropConnect(nn.LSTM(2, 2), 0.5)
    with pytest.raises(ValueError, match="inference must be one of 'mean', 'gaussian', got 'mc'"):
        dk.DropConnect(nn.Linear(2, 2), 0.5, inference="mc")
    with pytest.raises(ValueError, match="samples must be an int >= 1, got 0"):
        dk.DropConnect(nn.Linear(2, 2), 0.5, samples=0)
    with pytest.raises(TypeError, match="activation must be callable or None, got 'relu'"):
        dk.DropConnect(nn.Linear(2, 2), 0.5, activation="relu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got -0.5"):
        dk.DropConnect(nn.Linear(2, 2), -0.5)
