"""Module form of standard dropout."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor

from dropkit import rng
from dropkit._validation import Validated, dims_argument
from dropkit.functional._tracing import untraced
from dropkit.functional.dropout import dropout
from dropkit.nn._base import RateModule

# the op without its Proxy check: __call__ has done it (RateModule)
_dropout = untraced(dropout)


class Dropout(RateModule):
    """Inverted dropout: zero elements with probability ``p``, scale survivors by ``1 / (1 - p)``.

    Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 15,
    2014 (https://jmlr.org/papers/v15/srivastava14a.html). See :func:`dropkit.functional.dropout`.

    Args:
        p: probability of zeroing an element, in [0, 1]; may be reassigned (``module.p = 0.2``).
        broadcast_dims: dims along which one mask value is shared (negative dims allowed), as
            Keras' ``noise_shape``; fixed at construction, checked against each input.
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input: ``(*)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> layer = dk.Dropout(0.2)
        >>> layer
        Dropout(p=0.2)
        >>> layer(torch.ones(3, 5)).shape
        torch.Size([3, 5])
        >>> bool((layer.eval()(torch.ones(3, 5)) == 1).all())  # identity in eval
        True
    """

    broadcast_dims = Validated(dims_argument, "Dims that share one mask value.")

    def __init__(
        self,
        p: float = 0.5,
        broadcast_dims: int | Iterable[int] = (),
        *,
        generator: rng.GeneratorSource = None,
    ) -> None:
        super().__init__(p, generator)
        self.broadcast_dims = broadcast_dims

    def forward(self, x: Tensor) -> Tensor:
        return _dropout(
            x,
            self.p,
            self.training,
            broadcast_dims=self.broadcast_dims,
            generator=self.draw_generator(x),
        )

    def extra_repr(self) -> str:
        if self.broadcast_dims:
            return self.with_generator(f"p={self.p}, broadcast_dims={self.broadcast_dims}")
        return self.with_generator(f"p={self.p}")
