"""The LockedDropout module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dropkit as dk


def test_mask_constant_over_time_in_both_layouts() -> None:
    y = dk.LockedDropout(0.5)(torch.ones(8, 20, 6))
    assert torch.equal(y, y[:, :1].expand_as(y))
    z = dk.LockedDropout(0.5, batch_first=False)(torch.ones(20, 8, 6))
    assert torch.equal(z, z[:1].expand_as(z))


def test_an_awd_style_lstm_trains_and_is_deterministic_in_eval() -> None:
    torch.manual_seed(0)
    model = nn.ModuleDict(
        {
            "embed": dk.EmbeddingDropout(nn.Embedding(20, 8), 0.1),
            "input": dk.LockedDropout(0.3),
            "rnn": dk.WeightDrop(nn.LSTM(8, 16, batch_first=True), 0.5),
            "output": dk.LockedDropout(0.3),
            "head": nn.Linear(16, 20),
        }
    )

    def run(tokens: torch.Tensor) -> torch.Tensor:
        hidden = model["input"](model["embed"](tokens))
        hidden = model["output"](model["rnn"](hidden)[0])
        return model["head"](hidden)

    tokens = torch.randint(0, 20, (4, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        logits = run(tokens[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, 20), tokens[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval()
    assert torch.equal(run(tokens), run(tokens))


def test_eval_rate_and_errors() -> None:
    layer = dk.LockedDropout(0.5).eval()
    x = torch.randn(2, 3, 4)
    assert layer(x) is x
    layer.p = 0.2
    assert layer.p == 0.2 and layer.dropout_kind == "locked"
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 5"):
        layer.p = 5
    with pytest.raises(TypeError, match="batch_first must be a bool, got 'yes'"):
        dk.LockedDropout(0.5, batch_first="yes")  # type: ignore[arg-type]
