"""Module form of embedding dropout: a wrapper around an ``nn.Embedding``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dropkit import rng
from dropkit.functional.embedding import embedding_dropout
from dropkit.nn._base import RateModule


class EmbeddingDropout(RateModule):
    """Wrap an ``nn.Embedding`` and drop whole words of the vocabulary with probability ``p``.

    Gal & Ghahramani 2016 (https://arxiv.org/abs/1512.05287), as used by Merity et al. 2018
    (https://arxiv.org/abs/1708.02182). In training each forward pass drops each vocabulary row
    with probability ``p`` (a dropped word is zero at every position of the batch) and scales the
    kept rows by ``1 / (1 - p)``; evaluation equals the plain embedding. It calls
    :func:`dropkit.functional.embedding_dropout` with the tokens, which applies the row mask to
    the looked-up rows: the full matrix is never copied and ``sparse=True`` gradients still work.

    The embedding's settings are respected: ``padding_idx`` gets no gradient, ``max_norm``
    renormalises the stored rows in place before the lookup (as ``nn.Embedding`` does; a kept row
    is then scaled by ``1 / (1 - p)``), ``scale_grad_by_freq`` and ``sparse`` apply to the gradient.

    Args:
        embedding: the ``nn.Embedding`` to wrap.
        p: probability of dropping a word, in [0, 1]; may be reassigned.
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input: ``(*)`` token indices. Output: ``(*, embedding_dim)``.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> _ = torch.manual_seed(0)
        >>> embed = dk.EmbeddingDropout(torch.nn.Embedding(10, 4), p=0.5)
        >>> tokens = torch.tensor([[3, 3, 5, 3]])
        >>> zero = (embed(tokens) == 0).all(-1)[0].tolist()
        >>> zero[0] == zero[1] == zero[3]  # word 3 is dropped everywhere or nowhere
        True
    """

    dropout_kind = "embedding"

    def __init__(
        self, embedding: nn.Embedding, p: float = 0.1, *, generator: rng.GeneratorSource = None
    ) -> None:
        super().__init__(p, generator)
        if not isinstance(embedding, nn.Embedding):
            raise TypeError(
                f"EmbeddingDropout wraps an nn.Embedding, got {type(embedding).__name__}"
            )
        self.embedding = embedding

    def forward(self, tokens: Tensor) -> Tensor:
        weight = self.embedding.weight
        return embedding_dropout(
            weight,
            self.p,
            self.training,
            tokens=tokens,
            lookup=self._lookup,
            generator=self.draw_generator(weight),
        )

    def _lookup(self, tokens: Tensor, weight: Tensor) -> Tensor:
        """The wrapped embedding's own lookup, with its settings."""
        embedding = self.embedding
        if embedding.max_norm is not None:
            with torch.no_grad():
                torch.embedding_renorm_(weight, tokens, embedding.max_norm, embedding.norm_type)
        return F.embedding(
            tokens,
            weight,
            embedding.padding_idx,
            None,
            embedding.norm_type,
            embedding.scale_grad_by_freq,
            embedding.sparse,
        )
