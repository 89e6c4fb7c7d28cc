"""Targeted dropout: dropout restricted to the weights or units a magnitude criterion marks."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dropkit._kernels.masks import apply_keep_mask, bernoulli_mask
from dropkit._validation import (
    check_choice,
    check_floating,
    check_generator,
    check_min_dims,
    check_probability,
)
from dropkit.functional._tracing import traceable

TARGETED_MODES = ("weight", "unit")


def targeted_count(total: int, gamma: float) -> int:
    """How many of ``total`` weights (or units) ``gamma`` targets: floor(gamma * total)."""
    # Rounding first keeps float error (0.3 * 10 = 2.9999999999999996) from losing one.
    return min(total, math.floor(round(gamma * total, 9)))


def targeted_mask(weight: Tensor, gamma: float, mode: str = "weight") -> Tensor:
    """The boolean mask of the targeted weights (True = targeted), computed without gradient.

    Rows are output units (dim 0); each unit's weights are the flattened remaining dims. In
    ``"weight"`` mode each row's ``floor(gamma * row_size)`` smallest-magnitude weights are
    targeted; in ``"unit"`` mode the ``floor(gamma * units)`` rows with the smallest L2 norm are
    targeted whole. Ties are broken by position (a stable sort), so the mask is deterministic.
    """
    check_choice(mode, "mode", TARGETED_MODES)
    with torch.no_grad():
        row_size = math.prod(weight.shape[1:])  # explicit: -1 is ambiguous for empty weights
        rows = weight.detach().reshape(weight.shape[0], row_size).abs().float()
        mask = torch.zeros(rows.shape, dtype=torch.bool, device=weight.device)
        if mode == "weight":
            count = targeted_count(rows.shape[1], gamma)
            if count:
                order = torch.argsort(rows, dim=1, stable=True)[:, :count]
                mask.scatter_(1, order, True)
        else:
            count = targeted_count(rows.shape[0], gamma)
            if count:
                order = torch.argsort(rows.norm(dim=1), stable=True)[:count]
                mask[order] = True
    return mask.reshape(weight.shape)


@traceable
def targeted_dropout(
    weight: Tensor,
    gamma: float,
    alpha: float,
    training: bool = True,
    *,
    mode: str = "weight",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Drop, with probability ``alpha``, only the weights (or units) of smallest magnitude.

    Targeted dropout from Gomez et al., "Learning Sparse Networks Using Targeted Dropout", 2019
    (https://arxiv.org/abs/1905.13678). For each output unit (a row of a linear weight, the
    flattened ``(in, *kernel)`` slice of a convolution weight) the bottom ``gamma`` fraction of its
    weights by magnitude is targeted (``mode="weight"``), or the ``gamma`` fraction of units with
    the smallest L2 norm is targeted whole (``mode="unit"``). Each targeted weight (or unit) is
    dropped with probability ``alpha``; no other weight is ever dropped. The network learns to
    need the targeted weights less, so :func:`dropkit.prune` can remove them afterwards. As in the
    authors' code the survivors are not rescaled. In unit mode a targeted unit is dropped whole
    (the paper's unit dropout); the authors' code draws each of its weights separately.

    Args:
        weight: a floating-point weight with output units along dim 0, at least 2 dims.
        gamma: the targeted fraction, in [0, 1].
        alpha: the probability of dropping a targeted weight (or unit), in [0, 1].
        training: apply only when True; otherwise return ``weight`` unchanged (as for an empty
            weight, with no rows or no columns).
        mode: ``"weight"`` or ``"unit"``.
        generator: the torch generator to draw the mask from (the global one when None).

    Shape:
        - Input: ``(out, in, *kernel)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> weight = torch.tensor([[0.1, -2.0, 0.3, 4.0]])
        >>> dk.functional.targeted_dropout(weight, gamma=0.5, alpha=1.0)  # the two smallest go
        tensor([[ 0., -2.,  0.,  4.]])
        >>> dk.functional.targeted_dropout(weight, gamma=0.5, alpha=1.0, training=False)
        tensor([[ 0.1000, -2.0000,  0.3000,  4.0000]])
    """
    check_floating(weight, "weight")
    check_min_dims(weight, 2, "weight", "(out, in, *kernel)")
    gamma = check_probability(gamma, "gamma")
    alpha = check_probability(alpha, "alpha")
    check_choice(mode, "mode", TARGETED_MODES)
    check_generator(generator, weight)
    if not training or gamma == 0.0 or alpha == 0.0 or weight.numel() == 0:
        return weight
    targeted = targeted_mask(weight, gamma, mode)
    if mode == "weight":
        dropped = targeted & bernoulli_mask(weight.shape, alpha, weight.device, generator)
    else:
        unit_shape = (weight.shape[0],) + (1,) * (weight.dim() - 1)
        dropped = targeted & bernoulli_mask(unit_shape, alpha, weight.device, generator)
    return apply_keep_mask(weight, ~dropped, 1.0)
