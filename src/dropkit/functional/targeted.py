"""Targeted dropout: dropout restricted to the weights or units a magnitude criterion marks."""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

from dropkit._deprecation import renamed_arguments
from dropkit._kernels.masks import apply_keep_mask, bernoulli_mask
from dropkit._validation import (
    check_bool,
    check_choice,
    check_floating,
    check_generator,
    check_min_dims,
    check_probability,
)
from dropkit.functional._tracing import traceable

#: What targeted dropout targets: single weights of each unit, or whole units.
TargetedMode = Literal["weight", "unit"]
TARGETED_MODES: tuple[TargetedMode, ...] = get_args(TargetedMode)


def targeted_count(total: int, targeted_fraction: float) -> int:
    """How many of ``total`` weights (or units) are targeted: floor(targeted_fraction * total)."""
    # Rounding first keeps float error (0.3 * 10 = 2.9999999999999996) from losing one.
    return min(total, math.floor(round(targeted_fraction * total, 9)))


@renamed_arguments("targeted_mask", gamma="targeted_fraction")
def targeted_mask(
    weight: Tensor, targeted_fraction: float, mode: TargetedMode = "weight"
) -> Tensor:
    """The boolean mask of the targeted weights (True = targeted), computed without gradient.

    Rows are output units (dim 0); each unit's weights are the flattened remaining dims. In
    ``"weight"`` mode each row's ``floor(targeted_fraction * row_size)`` smallest-magnitude
    weights are targeted; in ``"unit"`` mode the ``floor(targeted_fraction * units)`` rows with
    the smallest L2 norm are targeted whole. Ties are broken by position (a stable sort), so the
    mask is deterministic.
    """
    check_choice(mode, "mode", TARGETED_MODES)
    with torch.no_grad():
        row_size = math.prod(weight.shape[1:])  # explicit: -1 is ambiguous for empty weights
        rows = weight.detach().reshape(weight.shape[0], row_size).abs().float()
        mask = torch.zeros(rows.shape, dtype=torch.bool, device=weight.device)
        if mode == "weight":
            count = targeted_count(rows.shape[1], targeted_fraction)
            if count:
                order = torch.argsort(rows, dim=1, stable=True)[:, :count]
                mask.scatter_(1, order, True)
        else:
            count = targeted_count(rows.shape[0], targeted_fraction)
            if count:
                order = torch.argsort(rows.norm(dim=1), stable=True)[:count]
                mask[order] = True
    return mask.reshape(weight.shape)


@traceable
@renamed_arguments("targeted_dropout", gamma="targeted_fraction", alpha="p")
def targeted_dropout(
    weight: Tensor,
    targeted_fraction: float = 0.5,
    p: float = 0.5,
    training: bool = True,
    *,
    mode: TargetedMode = "weight",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Drop, with probability ``p``, only the weights (or units) of smallest magnitude.

    Targeted dropout from Gomez et al., "Learning Sparse Networks Using Targeted Dropout", 2019
    (https://arxiv.org/abs/1905.13678). For each output unit (a row of a linear weight, the
    flattened ``(in, *kernel)`` slice of a convolution weight) the bottom ``targeted_fraction``
    of its weights by magnitude is targeted (``mode="weight"``), or that fraction of units with
    the smallest L2 norm is targeted whole (``mode="unit"``): the paper's targeting proportion
    gamma. Each targeted weight (or unit) is dropped with probability ``p``, the paper's drop
    rate alpha; no other weight is ever dropped. The network learns to
    need the targeted weights less, so :func:`dropkit.prune` can remove them afterwards. As in the
    authors' code the survivors are not rescaled. In unit mode a targeted unit is dropped whole
    (the paper's unit dropout); the authors' code draws each of its weights separately.

    The rate comes second, after the targeted fraction, as the two came before they were
    renamed (``gamma``, ``alpha``), so positional calls keep their meaning; the old keywords
    still work for one release, with a ``FutureWarning``.

    Args:
        weight: a floating-point weight with output units along dim 0, at least 2 dims.
        targeted_fraction: the fraction targeted (the paper's gamma), in [0, 1].
        p: the probability of dropping a targeted weight (or unit), the paper's alpha, in [0, 1].
        training: apply only when True; otherwise return ``weight`` unchanged (as for an empty
            weight, with no rows or no columns).
        mode: ``"weight"`` or ``"unit"`` (:data:`TargetedMode`).
        generator: the torch generator to draw the mask from (the global one when None).

    Shape:
        - Input: ``(out, in, *kernel)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> weight = torch.tensor([[0.1, -2.0, 0.3, 4.0]])
        >>> dk.functional.targeted_dropout(weight, targeted_fraction=0.5, p=1.0)  # the two smallest
        tensor([[ 0., -2.,  0.,  4.]])
        >>> dk.functional.targeted_dropout(weight, 0.5, 1.0, training=False)
        tensor([[ 0.1000, -2.0000,  0.3000,  4.0000]])
    """
    check_floating(weight, "weight")
    check_min_dims(weight, 2, "weight", "(out, in, *kernel)")
    targeted_fraction = check_probability(targeted_fraction, "targeted_fraction")
    p = check_probability(p)
    training = check_bool(training, "training")
    check_choice(mode, "mode", TARGETED_MODES)
    check_generator(generator, weight)
    if not training or targeted_fraction == 0.0 or p == 0.0 or weight.numel() == 0:
        return weight
    targeted = targeted_mask(weight, targeted_fraction, mode)
    if mode == "weight":
        dropped = targeted & bernoulli_mask(weight.shape, p, weight.device, generator)
    else:
        unit_shape = (weight.shape[0],) + (1,) * (weight.dim() - 1)
        dropped = targeted & bernoulli_mask(unit_shape, p, weight.device, generator)
    return apply_keep_mask(weight, ~dropped, 1.0)
