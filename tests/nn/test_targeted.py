"""The TargetedDropout wrapper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dropkit as dk
from dropkit.functional.targeted import targeted_mask


@pytest.mark.parametrize("mode", ["weight", "unit"])
@pytest.mark.parametrize(
    ("make", "shape"),
    [(lambda: nn.Linear(10, 8), (3, 10)), (lambda: nn.Conv2d(3, 8, 3, padding=1), (2, 3, 6, 6))],
)
def test_training_drops_only_targeted_weights_and_eval_uses_all(make, shape, mode: str) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    layer = make()
    wrapped = dk.TargetedDropout(layer, gamma=0.5, alpha=0.5, mode=mode)
    x = torch.randn(shape)
    torch.manual_seed(1)
    y = wrapped(x)
    torch.manual_seed(1)
    weight = dk.functional.targeted_dropout(layer.weight, 0.5, 0.5, mode=mode)
    assert not ((weight == 0) & ~targeted_mask(layer.weight, 0.5, mode)).any()
    torch.testing.assert_close(y, torch.func.functional_call(layer, {"weight": weight}, (x,)))
    wrapped.eval()
    assert torch.equal(wrapped(x), layer(x))


def test_rates_are_settable_and_alpha_is_p() -> None:
    wrapped = dk.TargetedDropout(nn.Linear(4, 4), gamma=0.5, alpha=0.33)
    assert wrapped.p == 0.33 and wrapped.dropout_kind == "targeted"
    wrapped.p = 0.66
    assert wrapped.alpha == 0.66
    wrapped.alpha = 0.1
    wrapped.gamma = 0.75
    assert (wrapped.p, wrapped.gamma) == (0.1, 0.75)
    with pytest.raises(ValueError, match=r"gamma must be a probability in \[0, 1\], got 1.5"):
        wrapped.gamma = 1.5
    with pytest.raises(ValueError, match=r"alpha must be a probability in \[0, 1\], got -1"):
        wrapped.alpha = -1


def test_state_dict_and_gradients() -> None:
    wrapped = dk.TargetedDropout(nn.Linear(6, 3), 0.5, 1.0)
    wrapped(torch.randn(4, 6)).sum().backward()
    targeted = targeted_mask(wrapped.module.weight, 0.5)
    assert (wrapped.module.weight.grad[targeted] == 0).all()
    assert (wrapped.module.weight.grad[~targeted] != 0).all()
    other = dk.TargetedDropout(nn.Linear(6, 3), 0.5, 1.0)
    other.load_state_dict(wrapped.state_dict())
    assert torch.equal(other.module.weight, wrapped.module.weight)


def test_errors() -> None:
    with pytest.raises(
        TypeError, match="TargetedDropout wraps an nn.Linear or nn.Conv1d/2d/3d, got GRU"
    ):
        dk.TargetedDropout(nn.GRU(2, 2), 0.5, 0.5)
    with pytest.raises(ValueError, match="mode must be one of 'weight', 'unit', got 'channel'"):
        dk.TargetedDropout(nn.Linear(2, 2), 0.5, 0.5, mode="channel")
    with pytest.raises(ValueError, match=r"alpha must be a probability in \[0, 1\], got 3"):
        dk.TargetedDropout(nn.Linear(2, 2), 0.5, 3)
