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
    wrapped = dk.TargetedDropout(layer, targeted_fraction=0.5, p=0.5, mode=mode)
    x = torch.randn(shape)
    torch.manual_seed(1)
    y = wrapped(x)
    torch.manual_seed(1)
    weight = dk.functional.targeted_dropout(layer.weight, 0.5, 0.5, mode=mode)
    assert not ((weight == 0) & ~targeted_mask(layer.weight, 0.5, mode)).any()
    torch.testing.assert_close(y, torch.func.functional_call(layer, {"weight": weight}, (x,)))
    wrapped.eval()
    assert torch.equal(wrapped(x), layer(x))


def test_rates_are_settable_and_checked_on_assignment() -> None:
    wrapped = dk.TargetedDropout(nn.Linear(4, 4), targeted_fraction=0.5, p=0.33)
    assert wrapped.p == 0.33 and wrapped.dropout_kind == "targeted"
    wrapped.p = 0.1
    wrapped.targeted_fraction = 0.75
    wrapped.mode = "unit"
    assert (wrapped.p, wrapped.targeted_fraction, wrapped.mode) == (0.1, 0.75, "unit")
    with pytest.raises(
        ValueError, match=r"targeted_fraction must be a probability in \[0, 1\], got 1.5"
    ):
        wrapped.targeted_fraction = 1.5
    with pytest.raises(ValueError, match=r"^p must be a probability in \[0, 1\], got -1"):
        wrapped.p = -1
    with pytest.raises(ValueError, match="mode must be one of 'weight', 'unit', got 'row'"):
        wrapped.mode = "row"  # type: ignore[assignment]
    assert (wrapped.p, wrapped.targeted_fraction, wrapped.mode) == (0.1, 0.75, "unit")


def test_old_names_warn_and_mean_the_same() -> None:
    with pytest.warns(FutureWarning) as record:
        old = dk.TargetedDropout(nn.Linear(4, 4), gamma=0.25, alpha=0.75)
    assert sorted(str(warning.message).split(";")[0] for warning in record) == [
        "TargetedDropout: 'alpha' is renamed 'p'",
        "TargetedDropout: 'gamma' is renamed 'targeted_fraction'",
    ]
    assert (old.targeted_fraction, old.p) == (0.25, 0.75)
    with pytest.warns(FutureWarning, match="'alpha' is renamed 'p'"):
        assert old.alpha == 0.75
    with pytest.warns(FutureWarning, match="'gamma' is renamed 'targeted_fraction'"):
        old.gamma = 0.5
    assert old.targeted_fraction == 0.5
    with pytest.warns(FutureWarning, match="'alpha' is renamed 'p'"):
        old.alpha = 0.2
    assert old.p == 0.2
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="^p must be a prob"):
        old.alpha = 2.0
    torch.manual_seed(0)
    new = dk.TargetedDropout(nn.Linear(4, 4), 0.5, 0.2)
    new.load_state_dict(old.state_dict())
    x = torch.randn(3, 4)
    torch.manual_seed(1)
    expected = new(x)
    torch.manual_seed(1)
    assert torch.equal(old(x), expected)


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
    with pytest.raises(ValueError, match=r"^p must be a probability in \[0, 1\], got 3"):
        dk.TargetedDropout(nn.Linear(2, 2), 0.5, 3)
