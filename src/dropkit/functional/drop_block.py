"""DropBlock: contiguous regions of feature maps."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from dropkit._kernels import ops
from dropkit._kernels.seeds import draw_seed
from dropkit._validation import check_bool, check_dims, check_floating, check_positive_int
from dropkit.functional._contract import contract
from dropkit.functional._tracing import traceable


def block_sizes(block_size: int | Sequence[int], spatial_dims: int) -> tuple[int, ...]:
    """Validate ``block_size`` (an int, or one int per spatial dim) and return one size per dim."""
    if type(block_size) is int and block_size >= 1:  # the common case, checked fast
        return (block_size,) * spatial_dims
    if isinstance(block_size, int) and not isinstance(block_size, bool):
        return (check_positive_int(block_size, "block_size"),) * spatial_dims
    if isinstance(block_size, Sequence) and not isinstance(block_size, str):
        sizes = tuple(block_size)
        if len(sizes) != spatial_dims:
            raise ValueError(
                f"block_size must be an int or {spatial_dims} ints (one per spatial dim), "
                f"got {block_size!r}"
            )
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"block_size must contain ints >= 1, got {block_size!r}")
        return sizes
    raise TypeError(f"block_size must be an int >= 1 or a sequence of ints, got {block_size!r}")


def seed_rate(p: float, spatial: Sequence[int], blocks: Sequence[int]) -> float:
    """The paper's gamma: the seed probability that drops a fraction ``p`` of the units.

    gamma = p * prod(size) / (prod(block) * prod(size - block + 1)), with each block already
    clipped to its feature size; capped at 1.
    """
    valid = [size - block + 1 for size, block in zip(spatial, blocks, strict=True)]
    gamma = p * math.prod(spatial) / (math.prod(blocks) * math.prod(valid))
    return min(gamma, 1.0)


@traceable
def drop_block(
    x: Tensor,
    p: float = 0.1,
    block_size: int | Sequence[int] = 7,
    training: bool = True,
    *,
    shared_channels: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zero contiguous ``block_size`` regions of feature maps, about a fraction ``p`` in all.

    DropBlock from Ghiasi, Lin and Le, "DropBlock: A regularization method for convolutional
    networks", NeurIPS 2018 (https://arxiv.org/abs/1810.12890), following the paper's Algorithm 1:

    1. ``block_size`` is clipped to the feature size in each spatial dim (even sizes allowed).
    2. Block seeds are drawn with probability
       ``gamma = p * prod(size) / (prod(block) * prod(size - block + 1))``, only at positions where
       a whole block fits inside the feature map, one mask per (sample, channel).
    3. Every seed zeroes the block that starts at it.
    4. Kept units are scaled by ``count(all) / count(kept)`` over the whole batch's mask.

    The block seeds are a function of one seed drawn from the generator. Seeds are sparse, so on
    CPU they are drawn as a Bernoulli process by geometric gaps (the same distribution) and only
    their blocks are written, by a compiled kernel that reads ``x`` once and writes the output
    once. Dense rates (``gamma * block area > 1``) and CUDA tensors draw every seed position from
    the Philox mask (:mod:`dropkit._kernels.philox`) and max-pool it; on CUDA a Triton kernel
    then applies it in one pass. Backward keeps only the 8-byte seed and rebuilds the blocks.

    Overlapping blocks make the realised fraction slightly below ``p`` when ``p`` is large, as in
    the paper. ``shared_channels=True`` draws one mask per sample, shared by all channels (timm's
    default); torchvision's ``drop_block2d`` matches the per-channel default here.

    Args:
        x: a floating-point tensor ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``.
        p: target fraction of dropped units, in [0, 1] (the paper's ``1 - keep_prob``).
        block_size: side of the square (cubic) block, or one size per spatial dim.
        training: apply only when True; otherwise return ``x`` unchanged.
        shared_channels: one mask per sample shared by all channels instead of one per channel
            (a bool).
        generator: the torch generator to draw the seeds from (the global one when None).

    Shape:
        - Input: ``(N, C, *spatial)`` with 1 to 3 spatial dims.
        - Output: same shape as the input.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> x = torch.ones(4, 8, 28, 28)
        >>> y = dk.functional.drop_block(x, p=0.2, block_size=5)
        >>> y.shape
        torch.Size([4, 8, 28, 28])
        >>> bool(((y == 0) | (y > 1)).all())  # dropped, or scaled up to keep the mean
        True
    """
    check_floating(x)
    check_dims(x, (3, 4, 5), shape_hint="(N, C, *spatial) with 1 to 3 spatial dims")
    spatial = tuple(x.shape[2:])
    sizes = block_sizes(block_size, len(spatial))
    shared_channels = check_bool(shared_channels, "shared_channels")
    if not (generator is None and training is True and type(p) is float and 0.0 < p < 1.0):
        p, result = contract(x, p, training, generator)  # the common case needs no more checks
        if result is not None:
            return result
    if x.numel() == 0:
        return x
    blocks = tuple(min(block, size) for block, size in zip(sizes, spatial, strict=True))
    gamma = seed_rate(p, spatial, blocks)
    if generator is None and ops.draws_in_kernel(x):  # the seed drawn in the operator call
        return ops.draw_drop_block(x, gamma, list(blocks), shared_channels)
    seed = draw_seed(x.device, generator)
    return ops.seeded_drop_block(x, gamma, blocks, shared_channels, seed)
