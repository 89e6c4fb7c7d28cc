"""Typed Python wrappers around the compiled CPU operators (``torch.ops.dropkit.*``).

These wrappers are the only place Python calls the C++ ops of ``csrc/*.cpp``: when an op's schema
changes, this module changes with it and keeps the wrappers' signatures stable. Call them only
after :func:`dropkit._kernels.build.cpu_kernels_available` has returned True (it builds and loads
the library).

The element-wise ops compute the mask defined in :mod:`dropkit._kernels.philox` (Philox 4x32-10
keyed by ``seed``, stream ``offset``), bit for bit the same as its ``keep_mask``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def dropout_with_seed(x: Tensor, p: float, seed: int, offset: int = 0) -> Tensor:
    """``x * keep / (1 - p)`` for the keep mask of ``(seed, offset)``, in one pass (no autograd).

    Args:
        x: a CPU tensor of float16, bfloat16, float32 or float64.
        p: the drop probability, ``0 <= p < 1``.
        seed: the 64-bit Philox key (any int64; negative values are read as two's complement).
        offset: the stream; different offsets give unrelated masks.
    """
    return torch.ops.dropkit.dropout_fused(x, p, seed, offset)


def keep_mask(shape: Sequence[int], p: float, seed: int, offset: int = 0) -> Tensor:
    """The boolean keep mask of ``shape`` for ``(seed, offset)`` on CPU: what
    :func:`dropout_with_seed` keeps, and :func:`dropkit._kernels.philox.keep_mask` bit for bit."""
    return torch.ops.dropkit.keep_mask_fused(seed, list(shape), p, offset)


def drop_block(x: Tensor, gamma: float, blocks: Sequence[int], shared: bool, seed: int) -> Tensor:
    """DropBlock of ``(N, C, *spatial)`` ``x`` with block seed rate ``gamma`` and ``seed``.

    The block seeds are drawn as :func:`dropkit._kernels.sparse_block.drop_block_with_seed`
    draws them on CPU (bit for bit): by geometric gaps when ``gamma * block area <= 1``, else
    from the dense keep mask; then :func:`block_kept` gives the scale and :func:`block_drop`
    the output.
    """
    return torch.ops.dropkit.drop_block_fused(x, gamma, list(blocks), shared, seed)


def row_dropout(x: Tensor, keep: Tensor, scale: float) -> Tensor:
    """``x * scale`` where the mask ``keep`` is True, zeros elsewhere, in one pass.

    ``keep`` (bool) has ``x``'s dims, each of ``x``'s size or 1, and is broadcast against ``x``
    (``x``'s leading sizes followed by ones for drop_path and spatial dropout). Rows dropped
    whole are written as zeros without reading ``x``. The output has ``x``'s memory format and
    is written in one pass in that order.
    """
    return torch.ops.dropkit.row_dropout(x, keep, scale)


def block_kept(
    seeds: Tensor,
    mask_maps: int,
    spatial: Sequence[int],
    valid: Sequence[int],
    blocks: Sequence[int],
) -> int:
    """How many cells of ``mask_maps`` maps of ``spatial`` size the seeds' blocks leave uncovered.

    ``seeds`` are sorted, distinct int64 flat positions in ``(mask_maps, *valid)``, where
    ``valid[d] = spatial[d] - blocks[d] + 1``; each drops the block that starts at it.
    """
    return int(
        torch.ops.dropkit.block_kept(seeds, mask_maps, list(spatial), list(valid), list(blocks))
    )


def block_drop(
    x: Tensor,
    seeds: Tensor,
    valid: Sequence[int],
    blocks: Sequence[int],
    shared: bool,
    scale: float,
) -> Tensor:
    """``x * scale`` with the blocks of ``seeds`` zeroed; ``x`` is ``(N, C, *spatial)``.

    With ``shared``, mask map ``n`` serves every channel of sample ``n``; otherwise mask map
    ``n * C + c`` serves channel ``c``. The output has ``x``'s memory format.
    """
    return torch.ops.dropkit.block_drop(x, seeds, list(valid), list(blocks), shared, scale)
