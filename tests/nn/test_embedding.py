"""The EmbeddingDropout wrapper."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dropkit as dk
from tests.helpers import assert_fraction


def test_same_rows_as_the_functional_form() -> None:
    embedding = nn.Embedding(30, 5)
    wrapped = dk.EmbeddingDropout(embedding, 0.4)
    tokens = torch.randint(0, 30, (6, 9))
    torch.manual_seed(0)
    y = wrapped(tokens)
    torch.manual_seed(0)
    expected = F.embedding(tokens, dk.functional.embedding_dropout(embedding.weight, 0.4))
    torch.testing.assert_close(y, expected, rtol=0, atol=0)


def test_every_occurrence_of_a_dropped_token_is_zero() -> None:
    torch.manual_seed(1)
    wrapped = dk.EmbeddingDropout(nn.Embedding(200, 4), 0.5)
    tokens = torch.randint(0, 200, (16, 40))
    zero = (wrapped(tokens) == 0).all(-1)
    for token in tokens.unique():
        states = zero[tokens == token]
        assert states.all() or not states.any()
    dropped_words = torch.stack([zero[tokens == t][0] for t in tokens.unique()])
    assert_fraction(dropped_words.double().mean().item(), 0.5, dropped_words.numel())


def test_eval_equals_the_plain_embedding_and_settings_are_kept() -> None:
    embedding = nn.Embedding(10, 3, padding_idx=0, scale_grad_by_freq=True)
    wrapped = dk.EmbeddingDropout(embedding, 0.5)
    tokens = torch.tensor([[0, 1, 1, 2]])
    wrapped.eval()
    assert torch.equal(wrapped(tokens), embedding(tokens))
    wrapped.train()
    torch.manual_seed(2)
    wrapped(tokens).sum().backward()
    assert torch.equal(embedding.weight.grad[0], torch.zeros(3))  # padding_idx gets no gradient
    torch.manual_seed(2)
    reference = nn.Embedding(10, 3, padding_idx=0, scale_grad_by_freq=True)
    reference.load_state_dict(embedding.state_dict())
    torch.manual_seed(2)
    weight = dk.functional.embedding_dropout(reference.weight, 0.5)
    F.embedding(tokens, weight, 0, scale_grad_by_freq=True).sum().backward()
    torch.testing.assert_close(embedding.weight.grad, reference.weight.grad)


def test_max_norm_renormalises_the_stored_rows() -> None:
    embedding = nn.Embedding(5, 4, max_norm=1.0)
    with torch.no_grad():
        embedding.weight.mul_(10)
    wrapped = dk.EmbeddingDropout(embedding, 0.5)
    tokens = torch.tensor([1, 2, 3])
    wrapped(tokens)
    norms = embedding.weight[tokens].norm(dim=1)
    assert (norms <= 1.0 + 1e-4).all()
    assert (embedding.weight[[0, 4]].norm(dim=1) > 1.0).all()  # rows not looked up stay


def test_sparse_gradients() -> None:
    embedding = nn.Embedding(50, 4, sparse=True)
    wrapped = dk.EmbeddingDropout(embedding, 0.3)
    torch.manual_seed(0)
    out = wrapped(torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]]))
    out.sum().backward()
    grad = embedding.weight.grad
    assert grad.is_sparse
    # each looked-up row gets its output's scale (0 when the word was dropped, else 1 / 0.7)
    scale = (out[0] != 0).all(1).float() / 0.7
    expected = torch.zeros(50, 4)
    expected[1:9] = scale[:, None]
    torch.testing.assert_close(grad.to_dense(), expected)
    assert 0 < int((scale == 0).sum()) < 8


def test_rate_edges_and_errors() -> None:
    wrapped = dk.EmbeddingDropout(nn.Embedding(5, 2), 1.0)
    out = wrapped(torch.tensor([1, 2]))
    assert torch.equal(out, torch.zeros(2, 2))
    wrapped.p = 0.0
    assert torch.equal(wrapped(torch.tensor([1])), wrapped.embedding(torch.tensor([1])))
    assert wrapped.dropout_kind == "embedding"
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.1"):
        wrapped.p = 1.1
    with pytest.raises(TypeError, match="EmbeddingDropout wraps an nn.Embedding, got Linear"):
        dk.EmbeddingDropout(nn.Linear(2, 2), 0.1)  # type: ignore[arg-type]
