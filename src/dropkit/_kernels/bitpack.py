"""Bit-packing of boolean masks: one bit per element, eight elements per byte.

Bit ``j`` of byte ``b`` holds element ``8 * b + j`` of the flattened mask (least significant bit
first), the layout of the compiled kernel's mask words read as bytes on a little-endian machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

_WEIGHTS: dict[torch.device, Tensor] = {}


def _bit_weights(device: torch.device) -> Tensor:
    if device not in _WEIGHTS:
        _WEIGHTS[device] = torch.tensor(
            [1 << j for j in range(8)], dtype=torch.uint8, device=device
        )
    return _WEIGHTS[device]


def pack_bits(mask: Tensor) -> Tensor:
    """A flat uint8 tensor of ``ceil(mask.numel() / 8)`` bytes holding ``mask``'s elements."""
    flat = mask.reshape(-1).to(torch.uint8)
    remainder = (-flat.numel()) % 8
    if remainder:
        flat = torch.cat([flat, flat.new_zeros(remainder)])
    # each byte's bits are distinct powers of two, so their sum is their bitwise OR
    return (flat.view(-1, 8) * _bit_weights(flat.device)).sum(1, dtype=torch.uint8)


def unpack_bits(packed: Tensor, shape: Sequence[int]) -> Tensor:
    """The boolean mask of ``shape`` that :func:`pack_bits` packed."""
    count = 1
    for size in shape:
        count *= size
    bits = packed.reshape(-1, 1).bitwise_and(_bit_weights(packed.device)).ne(0)
    return bits.view(-1)[:count].view(tuple(shape))
