"""WeightDrop on LSTM, GRU and RNN: training, warnings, state_dict, evaluation."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import dropkit as dk
from tests.helpers import DEVICES

RNNS = [nn.LSTM, nn.GRU, nn.RNN]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rnn_class", RNNS)
def test_trains_a_few_steps_without_any_warning(rnn_class, device: str) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    rnn = rnn_class(5, 16, num_layers=2, batch_first=True).to(device)
    model = dk.WeightDrop(rnn, 0.5, weights=("weight_hh_l0", "weight_hh_l1"))
    head = nn.Linear(16, 1).to(device)
    optimizer = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-2)
    x = torch.randn(8, 12, 5, device=device)
    target = x.sum(-1, keepdim=True).cumsum(1) / 10
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning (flatten_parameters, non-contiguous) fails
        for _ in range(30):
            output = model(x)[0]
            loss = (head(output) - target).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        model(x)
    assert losses[-1] < losses[0]
    assert rnn.weight_hh_l0.grad is not None and rnn.weight_hh_l0.grad.abs().sum() > 0


@pytest.mark.parametrize("rnn_class", RNNS)
def test_one_mask_per_forward_on_the_named_weight(rnn_class) -> None:  # type: ignore[no-untyped-def]
    rnn = rnn_class(3, 6, batch_first=True)
    model = dk.WeightDrop(rnn, 0.5)
    x = torch.randn(2, 4, 3)
    torch.manual_seed(1)
    y = model(x)[0]
    torch.manual_seed(1)
    dropped = dk.functional.drop_connect(rnn.weight_hh_l0, 0.5)
    expected = torch.func.functional_call(rnn, {"weight_hh_l0": dropped}, (x,))[0]
    assert torch.equal(y, expected)
    assert not torch.equal(y, rnn(x)[0])


@pytest.mark.parametrize("rnn_class", RNNS)
def test_eval_is_deterministic_and_equals_the_plain_network(rnn_class) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(2)
    model = dk.WeightDrop(rnn_class(3, 6), 0.5)
    x = torch.randn(5, 2, 3)
    model(x)  # a training forward first: its dropped weight must not linger
    fresh = rnn_class(3, 6)
    fresh.load_state_dict(model.module.state_dict())
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])
    assert torch.equal(model(x)[0], fresh(x)[0])


def test_state_dict_round_trip_and_parameter_names() -> None:
    model = dk.WeightDrop(nn.LSTM(3, 4), 0.3)
    names = {name for name, _ in model.named_parameters()}
    assert names == {f"module.{n}" for n, _ in nn.LSTM(3, 4).named_parameters()}
    copy = dk.WeightDrop(nn.LSTM(3, 4), 0.3)
    copy.load_state_dict(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(copy.state_dict()[key], value)
    plain = nn.LSTM(3, 4)
    plain.load_state_dict(model.module.state_dict())  # a plain LSTM reads it too
    assert hasattr(model.module, "weight_hh_l0")
    model.flatten_parameters()


def test_cells_and_rate_changes() -> None:
    cell = dk.WeightDrop(nn.LSTMCell(3, 4), 0.5, weights="weight_hh")
    h, _ = cell(torch.randn(2, 3))
    assert h.shape == (2, 4)
    cell.p = 0.0
    x = torch.randn(2, 3)
    assert torch.equal(cell(x)[0], cell.module(x)[0])
    assert cell.dropout_kind == "weight"
    assert repr(cell).startswith("WeightDrop(\n  p=0.0, weights=('weight_hh',)")


def test_errors() -> None:
    with pytest.raises(ValueError, match="weights names 'weight_hh_l3', which LSTM does not have"):
        dk.WeightDrop(nn.LSTM(2, 2), 0.5, weights=("weight_hh_l3",))
    with pytest.raises(ValueError, match="weights must name at least one parameter"):
        dk.WeightDrop(nn.LSTM(2, 2), 0.5, weights=())
    with pytest.raises(TypeError, match="WeightDrop wraps an nn.Module, got int"):
        dk.WeightDrop(3, 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 2"):
        dk.WeightDrop(nn.GRU(2, 2), 2)
