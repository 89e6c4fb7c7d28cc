"""Embedding dropout: drop whole rows of an embedding matrix (whole words of the vocabulary)."""

from __future__ import annotations

import torch
from torch import Tensor

from dropkit._kernels.masks import apply_keep_mask, bernoulli_mask, zeros_with_zero_gradient
from dropkit._validation import check_dims, check_floating, check_generator, check_probability
from dropkit.functional._tracing import traceable


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
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zero whole rows of an embedding matrix with probability ``p``, scale the rest by 1 / (1 - p).

    Embedding dropout from Gal & Ghahramani, "A Theoretically Grounded Application of Dropout in
    Recurrent Neural Networks", NeurIPS 2016 (https://arxiv.org/abs/1512.05287), as used by Merity
    et al., "Regularizing and Optimizing LSTM Language Models", ICLR 2018
    (https://arxiv.org/abs/1708.02182). Looking tokens up in the returned matrix drops a word at
    every position where it occurs in the batch, not at single positions.

    Args:
        weight: the embedding matrix, ``(num_embeddings, embedding_dim)``.
        p: probability of dropping a row, in [0, 1].
        training: apply only when True; otherwise return ``weight`` unchanged.
        generator: the torch generator to draw the mask from (the global one when None).

    Shape:
        - Input: ``(V, D)``. Output: ``(V, D)``.

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
    """
    check_floating(weight, "weight")
    check_dims(weight, (2,), "weight", "(num_embeddings, embedding_dim)")
    p = check_probability(p)
    check_generator(generator, weight)
    if not training or p == 0.0:
        return weight
    if p == 1.0:
        return zeros_with_zero_gradient(weight)
    keep = embedding_row_mask(weight.shape[0], p, weight.device, generator)
    return apply_keep_mask(weight, keep[:, None], 1.0 / (1.0 - p))
