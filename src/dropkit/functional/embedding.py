"""Embedding dropout: drop whole rows of an embedding matrix (whole words of the vocabulary)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from dropkit._kernels.masks import apply_keep_mask, bernoulli_mask, zeros_with_zero_gradient
from dropkit._validation import check_dims, check_floating, check_indices
from dropkit.functional._contract import contract
from dropkit.functional._tracing import traceable

#: How token indices pick rows of an embedding matrix: ``lookup(tokens, weight)``.
EmbeddingLookup = Callable[[Tensor, Tensor], Tensor]


def embedding_row_mask(
    rows: int, p: float, device: torch.device, generator: torch.Generator | None = None
) -> Tensor:
    """One keep decision per vocabulary row: True with probability ``1 - p``."""
    return bernoulli_mask((rows,), 1.0 - p, device, generator)


@traceable
def embedding_dropout(
    weight: Tensor,
    p: float = 0.1,
    training: bool = True,
    *,
    tokens: Tensor | None = None,
    lookup: EmbeddingLookup | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zero whole rows of an embedding matrix with probability ``p``, scale the rest by 1 / (1 - p).

    Embedding dropout from Gal & Ghahramani, "A Theoretically Grounded Application of Dropout in
    Recurrent Neural Networks", NeurIPS 2016 (https://arxiv.org/abs/1512.05287), as used by Merity
    et al., "Regularizing and Optimizing LSTM Language Models", ICLR 2018
    (https://arxiv.org/abs/1708.02182). Looking tokens up in the returned matrix drops a word at
    every position where it occurs in the batch, not at single positions.

    With ``tokens`` the function returns the looked-up rows instead, ``lookup(tokens, dropped)``,
    without building the dropped matrix: the rows are looked up in ``weight`` and the row mask is
    applied to them, so a large vocabulary is never copied and sparse gradients still work
    (:class:`dropkit.EmbeddingDropout` calls it so). The same rows are dropped either way.

    Args:
        weight: the embedding matrix, ``(num_embeddings, embedding_dim)``.
        p: probability of dropping a row, in [0, 1].
        training: apply only when True (a bool); otherwise return ``weight`` (or its looked-up
            rows) unchanged.
        tokens: token indices (an int64 or int32 tensor) to look up, or None for the matrix.
        lookup: how ``tokens`` pick rows, ``lookup(tokens, weight)``; default
            ``torch.nn.functional.embedding``. Only with ``tokens``.
        generator: the torch generator to draw the mask from (the global one when None).

    Shape:
        - Input: ``(V, D)``; ``tokens``: ``(*)``.
        - Output: ``(V, D)``; with ``tokens``: ``(*, D)``.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> import dropkit as dk
        >>> weight = torch.ones(6, 3)
        >>> generator = torch.Generator().manual_seed(0)
        >>> dropped = dk.functional.embedding_dropout(weight, 0.5, generator=generator)
        >>> dropped[:, 0].tolist()  # whole rows dropped or scaled by 2
        [2.0, 0.0, 2.0, 2.0, 0.0, 2.0]
        >>> F.embedding(torch.tensor([[1, 0, 1]]), dropped)[..., 0]  # word 1 dropped everywhere
        tensor([[0., 2., 0.]])
        >>> tokens = torch.tensor([[1, 0, 1]])
        >>> generator = torch.Generator().manual_seed(0)
        >>> dk.functional.embedding_dropout(weight, 0.5, tokens=tokens, generator=generator)[..., 0]
        tensor([[0., 2., 0.]])
    """
    check_floating(weight, "weight")
    check_dims(weight, (2,), "weight", "(num_embeddings, embedding_dim)")
    if tokens is not None:
        check_indices(tokens, "tokens")
    elif lookup is not None:
        raise ValueError("lookup is used only with tokens, got tokens=None")
    if lookup is not None and not callable(lookup):
        raise TypeError(f"lookup must be a callable lookup(tokens, weight), got {lookup!r}")
    p, result = contract(weight, p, training, generator, "weight")
    rows = weight if tokens is None else (lookup or F.embedding)(tokens, weight)
    if result is weight:
        return rows
    if result is not None:
        return result if tokens is None else zeros_with_zero_gradient(rows)
    keep = embedding_row_mask(weight.shape[0], p, weight.device, generator)
    keep = keep[:, None] if tokens is None else keep[tokens].unsqueeze(-1)
    return apply_keep_mask(rows, keep, 1.0 / (1.0 - p))
