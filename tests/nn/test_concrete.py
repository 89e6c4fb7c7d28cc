"""Concrete dropout: the relaxed mask, the regulariser, and a rate learned from the data."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import dropkit as dk
from dropkit.nn import RateModule
from tests.helpers import assert_fraction


def test_relaxed_mask_drops_at_rate_p_and_rescales() -> None:
    torch.manual_seed(0)
    layer = dk.ConcreteDropout(nn.Identity(), init_p=0.3)
    y = layer(torch.ones(400, 500))
    # the relaxed keep value is below 1/2 exactly when u > 1 - p: probability p
    assert_fraction((y < 0.5 / 0.7).double().mean().item(), 0.3, y.numel())
    sigma = y.std().item() / math.sqrt(y.numel())
    assert abs(y.mean().item() - 1.0) < 5 * sigma + 0.01  # about unbiased


def test_spatial_variant_shares_the_mask_over_positions() -> None:
    torch.manual_seed(1)
    layer = dk.SpatialConcreteDropout(nn.Identity(), init_p=0.5)
    y = layer(torch.ones(4, 6, 5, 5))
    assert torch.equal(y, y[:, :, :1, :1].expand_as(y))
    assert layer.input_size == 6
    element = dk.ConcreteDropout(nn.Identity())
    element(torch.ones(4, 6, 5, 5))
    assert element.input_size == 150


def test_eval_passes_the_input_through() -> None:
    inner = nn.Linear(3, 2)
    layer = dk.ConcreteDropout(inner).eval()
    x = torch.randn(4, 3)
    assert torch.equal(layer(x), inner(x))


def test_regularization_formula_and_gradients() -> None:
    inner = nn.Linear(5, 3)
    layer = dk.ConcreteDropout(inner, init_p=0.25, weight_regularizer=0.01, dropout_regularizer=0.1)
    p = 0.25
    squares = inner.weight.pow(2).sum() + inner.bias.pow(2).sum()
    entropy = p * math.log(p) + (1 - p) * math.log(1 - p)
    expected = 0.01 * squares / (1 - p) + 0.1 * 5 * entropy  # K = in_features before a forward
    torch.testing.assert_close(layer.regularization(), expected, rtol=1e-5, atol=1e-6)
    loss = layer(torch.randn(8, 5)).pow(2).mean() + layer.regularization()
    loss.backward()
    assert layer.p_logit.grad is not None and layer.p_logit.grad != 0
    two = nn.Sequential(layer, nn.ReLU(), dk.ConcreteDropout(nn.Linear(3, 1)))
    total = dk.concrete_regularization(two)
    torch.testing.assert_close(total, layer.regularization() + two[2].regularization())
    assert float(dk.concrete_regularization(nn.Linear(2, 2))) == 0.0


def test_rate_reads_and_resets() -> None:
    layer = dk.ConcreteDropout(nn.Linear(2, 2), init_p=0.1)
    assert isinstance(layer, RateModule) and layer.dropout_kind == "concrete"
    assert layer.p == pytest.approx(0.1)
    layer.p = 0.4
    assert layer.p == pytest.approx(0.4)
    assert "p_logit" in dict(layer.named_parameters())
    with pytest.raises(
        ValueError, match="p must be a probability strictly between 0 and 1, got 1.0"
    ):
        layer.p = 1.0
    assert "p=0.4, temperature=0.1" in repr(layer)


def learned_rate(size: int, steps: int = 200) -> float:
    """Train a small regression net with concrete dropout on ``size`` examples; the last rate."""
    torch.manual_seed(0)
    x = torch.randn(size, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 1.5]) + 0.1 * torch.randn(size)
    scale = {"weight_regularizer": 1e-4 / size, "dropout_regularizer": 2 / size}
    model = nn.Sequential(
        nn.Linear(4, 32),
        nn.ReLU(),
        dk.ConcreteDropout(nn.Linear(32, 1), init_p=0.2, **scale),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        batch = torch.randint(0, size, (min(size, 256),))
        prediction = model(x[batch]).squeeze(-1)
        loss = (prediction - y[batch]).pow(2).mean() + dk.concrete_regularization(model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model[2].p


def test_learned_rate_falls_as_the_training_set_grows() -> None:
    # the regulariser scales as 1 / N: little data pushes p towards 1/2, much data lets it shrink
    small, large = learned_rate(50), learned_rate(5000)
    assert small > 0.2 > 0.1 > large


def test_errors() -> None:
    with pytest.raises(ValueError, match="init_p must be a probability strictly between 0 and 1"):
        dk.ConcreteDropout(nn.Linear(2, 2), init_p=0.0)
    with pytest.raises(ValueError, match=r"temperature must be a finite number > 0, got 0.0"):
        dk.ConcreteDropout(nn.Linear(2, 2), temperature=0)
    with pytest.raises(ValueError, match="weight_regularizer must be a finite number >= 0"):
        dk.ConcreteDropout(nn.Linear(2, 2), weight_regularizer=-1.0)
    with pytest.raises(TypeError, match="ConcreteDropout wraps an nn.Module, got str"):
        dk.ConcreteDropout("linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input must have at least 3 dimensions"):
        dk.SpatialConcreteDropout(nn.Identity())(torch.ones(2, 3))
    with pytest.raises(RuntimeError, match="needs one forward pass before regularization"):
        dk.ConcreteDropout(nn.Identity()).regularization()
    with pytest.raises(TypeError, match=r"model must be an nn.Module, got 3 \(int\)"):
        dk.concrete_regularization(3)  # type: ignore[arg-type]


def test_settings_are_checked_on_assignment() -> None:
    layer = dk.ConcreteDropout(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"temperature must be a finite number > 0, got -1.0"):
        layer.temperature = -1
    with pytest.raises(TypeError, match="dropout_regularizer must be a non-negative number"):
        layer.dropout_regularizer = "small"
    assert (layer.temperature, layer.dropout_regularizer) == (0.1, 1e-5)
