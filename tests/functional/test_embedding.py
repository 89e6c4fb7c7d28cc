"""Embedding dropout: whole vocabulary rows."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dropkit.functional import embedding_dropout
from tests.helpers import FLOAT_DTYPES, assert_fraction, generator


def test_drops_whole_rows_at_rate_p_and_rescales() -> None:
    weight = torch.randn(5000, 8, generator=generator(0))
    dropped = embedding_dropout(weight, 0.3, generator=generator(1))
    zero_rows = (dropped == 0).all(1)
    partly = (dropped == 0).any(1) & ~zero_rows
    assert not partly.any()
    assert_fraction(zero_rows.double().mean().item(), 0.3, 5000)
    torch.testing.assert_close(
        dropped[~zero_rows], weight[~zero_rows] * (1.0 / 0.7), rtol=0, atol=0
    )


def test_a_dropped_token_is_zero_at_every_occurrence() -> None:
    weight = torch.randn(20, 4, generator=generator(2)) + 5  # no zero entries
    tokens = torch.randint(0, 20, (8, 30), generator=generator(3))
    out = F.embedding(tokens, embedding_dropout(weight, 0.5, generator=generator(4)))
    zero = (out == 0).all(-1)
    for token in tokens.unique():
        states = zero[tokens == token]
        assert states.all() or not states.any()
    assert zero.any() and not zero.all()


def test_eval_zero_and_one() -> None:
    weight = torch.randn(5, 3, requires_grad=True)
    assert embedding_dropout(weight, 0.5, training=False) is weight
    assert embedding_dropout(weight, 0.0) is weight
    zeros = embedding_dropout(weight, 1.0)
    assert torch.equal(zeros, torch.zeros(5, 3))
    zeros.sum().backward()
    assert torch.equal(weight.grad, torch.zeros(5, 3))


def test_gradcheck() -> None:
    weight = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda w: embedding_dropout(w, 0.5, generator=generator(5)), (weight,))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dtypes(dtype: torch.dtype) -> None:
    out = embedding_dropout(torch.ones(10, 2, dtype=dtype), 0.5, generator=generator(6))
    assert out.dtype == dtype and set(out.unique().tolist()) <= {0.0, 2.0}


def test_errors() -> None:
    with pytest.raises(ValueError, match="weight must have 2 dimensions"):
        embedding_dropout(torch.ones(3), 0.5)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 2"):
        embedding_dropout(torch.ones(3, 2), 2)
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got 3"):
        embedding_dropout(torch.ones(3, 2), 0.5, generator=3)  # type: ignore[arg-type]
