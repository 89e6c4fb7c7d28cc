"""DropBlock from sparse seeds: sample the few seed positions, then zero only around them.

DropBlock's seed rate gamma is small (about 0.003 for p = 0.1 and 7x7 blocks on 56x56 maps), so
instead of a Bernoulli draw per position followed by a max-pool over the whole tensor, the seeds
are drawn as a Bernoulli process by geometric gaps (the same distribution, exactly), and each
seed's block is written by index. The positions come from the Philox words of the op's seed, so
backward keeps only that 8-byte seed and computes the same positions again.

With the compiled CPU kernel (:mod:`dropkit._kernels.build`) the seed positions are drawn in
C++ by the same operations, and the blocks are applied in two passes over the feature maps,
each parallel over maps: the first counts the cells the blocks
cover (a small per-map bitmap) to get the scale, the second writes ``x * scale`` one map at a
time and zeroes that map's blocks while it is still in cache, so ``x`` is read once and the
output written once. Backward does the same on the gradient. Without the kernel, the
pure-PyTorch path below gives the same result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from dropkit import backends
from dropkit._kernels import cpu, philox
from dropkit._kernels.masks import apply_keep_mask

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def bernoulli_positions(
    count: int,
    rate: float,
    device: torch.device,
    generator: torch.Generator | None = None,
    *,
    seed: Tensor | None = None,
) -> Tensor:
    """Sorted positions in ``range(count)`` each chosen independently with probability ``rate``.

    The gaps between successive chosen positions of a Bernoulli process are geometric:
    ``floor(log(1 - U) / log(1 - rate))`` failures before each success, for uniform ``U``.
    With ``seed``, the uniforms are the Philox words of that seed (stream ``k + 1`` for the
    ``k``-th batch of draws), so the positions are a function of the seed alone; otherwise they
    are drawn from ``generator``.
    """
    if count == 0 or rate <= 0.0:
        return torch.empty(0, dtype=torch.int64, device=device)
    if rate >= 1.0:
        return torch.arange(count, device=device)
    log_miss = math.log1p(-rate)
    expected = count * rate
    draws = int(expected + 6.0 * math.sqrt(expected) + 16)
    chunks: list[Tensor] = []
    last = -1
    while True:
        if seed is not None:
            words = philox.random_words(draws, seed, len(chunks) + 1, device=device)
            uniform = words.to(torch.float64).add_(0.5).mul_(2.0**-32)
        else:
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


def dropped_cells(maps_shape: Sequence[int], positions: Tensor, device: torch.device) -> Tensor:
    """A boolean tensor of ``maps_shape`` that is True at ``positions`` (flat)."""
    dropped = torch.zeros(math.prod(maps_shape), dtype=torch.bool, device=device)
    dropped.index_fill_(0, positions, True)
    return dropped.view(tuple(maps_shape))


def drop_block_with_seed(
    x: Tensor,
    gamma: float,
    blocks: Sequence[int],
    shared: bool,
    seed: Tensor,
    *,
    traced: bool = False,
) -> Tensor:
    """DropBlock of ``(N, C, *spatial)`` ``x``: the blocks of seeds drawn from ``seed``, scaled.

    The block seeds are a function of ``seed`` alone: on CPU, when they are sparse
    (``gamma * block area <= 1``), by geometric gaps from its Philox words; otherwise by
    :func:`dropkit._kernels.philox.keep_mask` over the seed grid. So backward, given the same
    seed, rebuilds the same blocks, and the compiled kernel (:func:`cpu.drop_block`, which
    draws the seeds the same way) and the pure-PyTorch path agree. ``traced`` launches the
    Triton kernel through ``torch.library.wrap_triton`` (while tracing).
    """
    spatial = tuple(x.shape[2:])
    valid = tuple(size - block + 1 for size, block in zip(spatial, blocks, strict=True))
    channels = 1 if shared else x.shape[1]
    maps = x.shape[0] * channels
    maps_shape = (x.shape[0], channels, *spatial)
    if x.device.type == "cpu" and backends.selected(x) == "cpu":
        return cpu.drop_block(x, gamma, blocks, shared, int(seed))
    if gamma * math.prod(blocks) <= 1.0 and x.device.type == "cpu":
        seeds = bernoulli_positions(maps * math.prod(valid), gamma, x.device, seed=seed)
        dropped = dropped_cells(
            maps_shape, block_positions(seeds, valid, spatial, blocks), x.device
        )
    else:
        grid = ~philox.keep_mask((x.shape[0], channels, *valid), gamma, seed, device=x.device)
        padding = [pad for block in reversed(blocks) for pad in (block - 1, block - 1)]
        padded = F.pad(grid.to(torch.float32), padding)
        dropped = _MAX_POOL[len(spatial)](padded, kernel_size=tuple(blocks), stride=1) > 0
    keep = ~dropped
    if x.device.type == "cpu":  # a float scale, rounded as the compiled kernel rounds it
        scale_value: float | Tensor = keep.numel() / max(int(keep.count_nonzero()), 1)
    else:  # no host synchronisation
        scale_value = keep.numel() / keep.count_nonzero().clamp_min(1).to(torch.float32)
    if backends.selected(x) == "triton":
        from dropkit._kernels import triton_dropout

        layout = triton_dropout.mask_layout(tuple(keep.shape), tuple(x.shape))
        if layout is not None and x.numel() <= triton_dropout.MAX_ELEMENTS:
            return triton_dropout.apply_mask(x, keep, scale_value, layout, traced=traced)
    return apply_keep_mask(x, keep, scale_value)
