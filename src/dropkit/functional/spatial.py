"""Spatial dropout: whole feature maps."""

from __future__ import annotations

import torch
from torch import Tensor

from dropkit._validation import check_floating, check_min_dims
from dropkit.functional._tracing import traceable
from dropkit.functional.dropout import shared_dropout


@traceable
def spatial_dropout(
    x: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zero whole channels of a ``(N, C, *spatial)`` tensor with probability ``p``.

    Tompson et al., "Efficient Object Localization Using Convolutional Networks", CVPR 2015
    (https://arxiv.org/abs/1411.4280). Neighbouring activations of a feature map are strongly
    correlated, so dropping single elements barely regularises convolutional features; dropping a
    whole map does. Survivors are scaled by ``1 / (1 - p)``; one mask value per (sample, channel).

    Args:
        x: a floating-point tensor ``(N, C, *spatial)`` with at least one spatial dimension.
        p: probability of zeroing a channel, in [0, 1].
        training: apply only when True; otherwise return ``x`` unchanged.
        generator: the torch generator to draw the mask from (the global one when None).

    Shape:
        - Input: ``(N, C, L)``, ``(N, C, H, W)``, ``(N, C, D, H, W)`` or more spatial dims.
        - Output: same shape as the input.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> x = torch.ones(8, 16, 5, 5)
        >>> y = dk.functional.spatial_dropout(x, p=0.3)
        >>> per_channel = y.flatten(2)
        >>> bool((per_channel == per_channel[..., :1]).all())  # each map kept or dropped whole
        True
    """
    check_floating(x)
    check_min_dims(x, 3, shape_hint="(N, C, *spatial)")
    mask_shape = [x.shape[0], x.shape[1], *([1] * (x.dim() - 2))]
    return shared_dropout(x, p, training, generator, mask_shape)
