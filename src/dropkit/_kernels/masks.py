"""Mask generation and application.

Every method in :mod:`dropkit.functional` draws its randomness here, from a torch generator, so
``torch.manual_seed`` and ``generator=`` reproduce masks everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dropkit._kernels.seeds import replayable


def bernoulli_mask(
    shape: Sequence[int],
    probability: float,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A boolean tensor whose entries are True with ``probability``, independently.

    An explicit ``generator`` is replayed under checkpointing (:func:`seeds.replayable`).
    """
    mask = torch.empty(tuple(shape), dtype=torch.bool, device=device)
    return mask.bernoulli_(probability, generator=replayable(generator, mask.device))


def apply_keep_mask(x: Tensor, mask: Tensor, scale: float | Tensor) -> Tensor:
    """``x * scale`` where ``mask`` is True, exactly 0 elsewhere (no NaN from dropped infinities).

    ``mask`` broadcasts against ``x``. Backward keeps only the boolean mask, never a float copy.
    """
    return torch.where(mask, x * scale, x.new_zeros(()))


def zeros_with_zero_gradient(x: Tensor) -> Tensor:
    """Zeros shaped like ``x`` that stay connected to the graph with a zero gradient."""
    return x.masked_fill(torch.ones((), dtype=torch.bool, device=x.device), 0)
