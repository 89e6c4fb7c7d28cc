"""Module form of locked (variational) dropout."""

from __future__ import annotations

from torch import Tensor

from dropkit import rng
from dropkit._validation import Validated, check_bool
from dropkit.functional.locked import locked_dropout
from dropkit.nn._base import RateModule


class LockedDropout(RateModule):
    """Dropout with one mask per sequence, shared by every time step.

    Gal & Ghahramani, "A Theoretically Grounded Application of Dropout in Recurrent Neural
    Networks", NeurIPS 2016 (https://arxiv.org/abs/1512.05287); Merity et al. 2018
    (https://arxiv.org/abs/1708.02182). Put it on the inputs and outputs of recurrent layers. See
    :func:`dropkit.functional.locked_dropout`.

    Args:
        p: probability of dropping a feature, in [0, 1]; may be reassigned.
        batch_first: True for ``(N, T, *)`` input, False for ``(T, N, *)``.
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input: ``(N, T, *)`` or ``(T, N, *)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> layer = dk.LockedDropout(0.3)
        >>> layer
        LockedDropout(p=0.3, batch_first=True)
        >>> y = layer(torch.ones(4, 10, 8))
        >>> bool((y == y[:, :1]).all())
        True
    """

    dropout_kind = "locked"
    batch_first = Validated(check_bool, "True for (N, T, *) input, False for (T, N, *).")

    def __init__(
        self, p: float = 0.5, batch_first: bool = True, *, generator: rng.GeneratorSource = None
    ) -> None:
        super().__init__(p, generator)
        self.batch_first = batch_first

    def forward(self, x: Tensor) -> Tensor:
        generator = self.draw_generator(x)
        return locked_dropout(
            x, self.p, self.training, batch_first=self.batch_first, generator=generator
        )

    def extra_repr(self) -> str:
        return self.with_generator(f"p={self.p}, batch_first={self.batch_first}")
