"""DropBlock from sparse seeds: sample the few seed positions, then zero only around them.

DropBlock's seed rate gamma is small (about 0.003 for p = 0.1 and 7x7 blocks on 56x56 maps), so
instead of a Bernoulli draw per position followed by a max-pool over the whole tensor, the seeds
are drawn as a Bernoulli process by geometric gaps (the same distribution, exactly), and each
seed's block is written by index. Backward keeps only the seeds' int64 positions (about
``8 * gamma`` bytes per element) and rebuilds the block positions from them.

With the compiled CPU kernel (:mod:`dropkit._kernels.build`) the blocks are applied in two
passes over the feature maps, each parallel over maps: the first counts the cells the blocks
cover (a small per-map bitmap) to get the scale, the second writes ``x * scale`` one map at a
time and zeroes that map's blocks while it is still in cache, so ``x`` is read once and the
output written once. Backward does the same on the gradient from the saved seeds. Without the
kernel, the pure-PyTorch path below gives the same result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from dropkit._kernels.build import cpu_kernels_available


def bernoulli_positions(
    count: int, rate: float, device: torch.device, generator: torch.Generator | None = None
) -> Tensor:
    """Sorted positions in ``range(count)`` each chosen independently with probability ``rate``.

    The gaps between successive chosen positions of a Bernoulli process are geometric:
    ``floor(log(1 - U) / log(1 - rate))`` failures before each success, for uniform ``U``.
    """
    if count == 0 or rate <= 0.0:
        return torch.empty(0, dtype=torch.int64, device=device)
    if rate >= 1.0:
        return torch.arange(count, device=device)
    log_miss = math.log1p(-rate)
    expected = count * rate
    draws = int(expected + 6.0 * math.sqrt(expected) + 16)
    chunks = []
    last = -1
    while True:
        uniform = torch.rand(draws, dtype=torch.float64, device=device, generator=generator)
        gaps = torch.floor(torch.log1p(-uniform) / log_miss).clamp_(max=count)
        positions = gaps.to(torch.int64).add_(1).cumsum_(0).add_(last)
        chunks.append(positions)
        last = int(positions[-1])
        if last >= count:
            break
        draws = int(draws / 2) + 16
    positions = torch.cat(chunks)
    return positions[positions < count]


def block_offsets(blocks: Sequence[int], spatial: Sequence[int], device: torch.device) -> Tensor:
    """Flat offsets, within one feature map, of a block's cells relative to its first cell."""
    offsets = torch.zeros((), dtype=torch.int64, device=device)
    stride = 1
    for block, size in zip(reversed(blocks), reversed(spatial), strict=True):
        steps = torch.arange(block, dtype=torch.int64, device=device) * stride
        offsets = steps.view(-1, *([1] * offsets.dim())) + offsets
        stride *= size
    return offsets.reshape(-1)


def block_positions(
    seeds: Tensor, valid: Sequence[int], spatial: Sequence[int], blocks: Sequence[int]
) -> Tensor:
    """Flat positions in ``(maps, *spatial)`` of every cell of the blocks starting at ``seeds``.

    ``seeds`` are flat positions in ``(maps, *valid)``, the grid where a whole block fits.
    """
    per_map = math.prod(valid)
    starts = (seeds // per_map) * math.prod(spatial)
    remainder = seeds % per_map
    stride = 1
    for size_valid, size in zip(reversed(valid), reversed(spatial), strict=True):
        starts = starts + (remainder % size_valid) * stride
        remainder = remainder // size_valid
        stride *= size
    offsets = block_offsets(blocks, spatial, seeds.device)
    return (starts.view(-1, 1) + offsets.view(1, -1)).reshape(-1)


class SparseBlockDrop(torch.autograd.Function):
    """``x * scale`` with the blocks of ``seeds`` zeroed; backward keeps only the seeds."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, seeds: Tensor, scale: Tensor, geometry: tuple) -> Tensor:
        ctx.geometry = geometry
        ctx.save_for_backward(seeds, scale)
        return _apply(x, seeds, scale, geometry)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        seeds, scale = ctx.saved_tensors
        return SparseBlockDrop.apply(grad, seeds, scale, ctx.geometry), None, None, None


class CompiledBlockDrop(torch.autograd.Function):
    """The compiled kernel's ``x * scale`` with the seeds' blocks zeroed; backward likewise."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, seeds: Tensor, scale: float, geometry: tuple) -> Tensor:
        ctx.scale = scale
        ctx.geometry = geometry
        ctx.save_for_backward(seeds)
        valid, blocks, shared = geometry
        return torch.ops.dropkit.block_drop(x, seeds, valid, blocks, shared, scale)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        (seeds,) = ctx.saved_tensors
        return CompiledBlockDrop.apply(grad, seeds, ctx.scale, ctx.geometry), None, None, None


def _apply(x: Tensor, seeds: Tensor, scale: Tensor, geometry: tuple) -> Tensor:
    out = (x * scale).contiguous()
    positions = block_positions(seeds, *geometry)
    out.view(-1).index_fill_(0, positions, 0)
    return out


def dropped_cells(maps_shape: Sequence[int], positions: Tensor, device: torch.device) -> Tensor:
    """A boolean tensor of ``maps_shape`` that is True at ``positions`` (flat)."""
    dropped = torch.zeros(math.prod(maps_shape), dtype=torch.bool, device=device)
    dropped.index_fill_(0, positions, True)
    return dropped.view(tuple(maps_shape))


def sparse_drop_block(
    x: Tensor,
    gamma: float,
    blocks: Sequence[int],
    shared_channels: bool,
    generator: torch.Generator | None,
) -> Tensor:
    """DropBlock with seeds drawn sparsely; same distribution as the dense Bernoulli draw."""
    spatial = tuple(x.shape[2:])
    valid = tuple(size - block + 1 for size, block in zip(spatial, blocks, strict=True))
    channels = 1 if shared_channels else x.shape[1]
    maps_shape = (x.shape[0], channels, *spatial)
    maps = x.shape[0] * channels
    seeds = bernoulli_positions(maps * math.prod(valid), gamma, x.device, generator)
    if x.device.type == "cpu" and cpu_kernels_available():
        kept_cells = torch.ops.dropkit.block_kept(seeds, maps, spatial, valid, blocks)
        scale = maps * math.prod(spatial) / max(kept_cells, 1)
        return CompiledBlockDrop.apply(x, seeds, scale, (valid, blocks, shared_channels))
    positions = block_positions(seeds, valid, spatial, blocks)
    dropped = dropped_cells(maps_shape, positions, x.device)
    kept = dropped.numel() - dropped.count_nonzero()
    scale = dropped.numel() / kept.clamp_min(1).to(torch.float32)
    if shared_channels:
        # one pass over x; the (N, 1, *spatial) factor is C times smaller than x
        factor = (~dropped).to(x.dtype).mul_(scale.to(x.dtype))
        return x * factor
    del dropped
    return SparseBlockDrop.apply(x, seeds, scale, (valid, spatial, blocks))
