"""Locked (variational) dropout: one mask per sequence, shared by all its time steps."""

from __future__ import annotations

import torch
from torch import Tensor

from dropkit._validation import check_bool, check_floating, check_min_dims
from dropkit.functional._tracing import traceable
from dropkit.functional.dropout import dropout


@traceable
def locked_dropout(
    x: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    batch_first: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Dropout whose mask is drawn once per sequence and reused at every time step.

    Variational dropout from Gal & Ghahramani, "A Theoretically Grounded Application of Dropout in
    Recurrent Neural Networks", NeurIPS 2016 (https://arxiv.org/abs/1512.05287), called locked
    dropout by Merity et al. 2018 (https://arxiv.org/abs/1708.02182). Each sample of the batch gets
    its own mask over the features; the time dimension shares it. Survivors are scaled by
    ``1 / (1 - p)``.

    Args:
        x: a floating-point sequence batch, at least 2 dims.
        p: probability of dropping a feature, in [0, 1].
        training: apply only when True; otherwise return ``x`` unchanged.
        batch_first: True for ``(N, T, *)`` input, False for ``(T, N, *)``.
        generator: the torch generator to draw the mask from (the global one when None).

    Shape:
        - Input: ``(N, T, *)`` when ``batch_first`` else ``(T, N, *)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> x = torch.ones(2, 5, 3)  # (batch, time, features)
        >>> y = dk.functional.locked_dropout(x, 0.5, generator=torch.Generator().manual_seed(0))
        >>> bool((y == y[:, :1]).all())  # the same mask at every time step
        True
    """
    check_floating(x)
    batch_first = check_bool(batch_first, "batch_first")
    check_min_dims(x, 2, shape_hint="(N, T, *)" if batch_first else "(T, N, *)")
    time_dim = 1 if batch_first else 0
    return dropout(x, p, training, broadcast_dims=time_dim, generator=generator)
