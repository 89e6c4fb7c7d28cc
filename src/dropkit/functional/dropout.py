"""Standard (inverted) dropout."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from dropkit._kernels import ops
from dropkit._kernels.seeds import draw_seed
from dropkit._validation import check_floating, normalize_dims
from dropkit.functional._contract import contract
from dropkit.functional._tracing import traceable


@traceable
def dropout(
    x: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    broadcast_dims: int | Iterable[int] = (),
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zero each element with probability ``p`` and scale the survivors by ``1 / (1 - p)``.

    Inverted dropout from Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from
    Overfitting", JMLR 15, 2014 (https://jmlr.org/papers/v15/srivastava14a.html). The expected
    value of every element is unchanged, so evaluation uses the input as it is.

    Args:
        x: a floating-point tensor of any shape.
        p: probability of zeroing an element, in [0, 1].
        training: apply dropout only when True (a bool); otherwise return ``x`` unchanged.
        broadcast_dims: dims along which one mask value is shared (negative dims allowed), like
            Keras' ``noise_shape``: ``broadcast_dims=1`` on (N, L, C) input drops the same features
            at every position of a sequence.
        generator: the torch generator to draw the mask from (the global one when None).

    Shape:
        - Input: ``(*)``, any shape.
        - Output: ``(*)``, same shape as the input.

    Returns:
        ``x`` itself when ``training`` is False or ``p == 0``; zeros (with zero gradient) when
        ``p == 1``; otherwise a new tensor. Dropped elements are exactly 0, also where ``x`` is
        infinite. The mask is a function of one seed drawn from the generator
        (:mod:`dropkit._kernels.philox`), the same on every backend (:mod:`dropkit.backends`).
        Backward keeps only that seed and regenerates the mask, also with ``broadcast_dims``.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> x = torch.ones(2, 4)
        >>> y = dk.functional.dropout(x, p=0.5, generator=torch.Generator().manual_seed(0))
        >>> sorted(set(y.flatten().tolist()))  # dropped, or scaled by 1 / (1 - 0.5)
        [0.0, 2.0]
        >>> shared = dk.functional.dropout(torch.ones(2, 3, 4), p=0.5, broadcast_dims=1)
        >>> bool((shared == shared[:, :1]).all())  # one mask value per (sample, feature)
        True
    """
    check_floating(x)
    dims = normalize_dims(broadcast_dims, x.dim())
    if not dims:
        return shared_dropout(x, p, training, generator, None)
    mask_shape = [1 if dim in dims else size for dim, size in enumerate(x.shape)]
    return shared_dropout(x, p, training, generator, mask_shape)


def shared_dropout(
    x: Tensor,
    p: float,
    training: bool,
    generator: torch.Generator | None,
    mask_shape: list[int] | None,
) -> Tensor:
    """:func:`dropout` of ``x`` with one mask of ``mask_shape`` broadcast against it (None: one
    mask value per element).

    The body of :func:`dropout` once its ``broadcast_dims`` are resolved, called directly by the
    ops built on it (:func:`~dropkit.functional.drop_path`, ``spatial_dropout``) so that a call
    validates its input and passes the tracing check once. ``x`` must have been checked to be a
    floating-point tensor; ``p``, ``training`` and ``generator`` are checked here. The common
    eager case (training, a float rate strictly between 0 and 1, the global generator, a plain
    CPU tensor) needs no further check and is one operator call that draws the seed itself.
    """
    checked = generator is None and training is True and type(p) is float and 0.0 < p < 1.0
    if checked and ops.draws_in_kernel(x):
        return ops.draw_dropout(x, p, mask_shape)
    p, result = contract(x, p, training, generator)
    if result is not None:
        return result
    seed = draw_seed(x.device, generator)
    if mask_shape is None or mask_shape == list(x.shape):
        return ops.seeded_dropout(x, p, seed)
    return ops.seeded_broadcast_dropout(x, p, seed, mask_shape)
