"""Element-wise dropout with a memory-light backward, routed to the fastest path available.

- CPU, compiled kernel (:mod:`dropkit._kernels.build`): one pass draws counter-based random bits,
  thresholds them and writes the output; backward keeps only the seed (0 bytes per element) and
  reruns the kernel on the gradient, which rebuilds the identical mask.
- CUDA with Triton: the same idea with Philox (:mod:`dropkit._kernels.triton_dropout`).
- A mask shared along trailing dims (drop_path's rows, spatial dropout's maps, ``broadcast_dims``
  ending at the last dim) on a contiguous CPU tensor: the compiled kernel writes
  ``x * scale`` for kept rows and zeros for dropped ones in one pass, saving only the small mask.
- CUDA with Triton, a broadcast mask (drop_path, spatial dropout, DropBlock's dense path): one
  Triton pass writes ``x * scale`` or an exact zero per element, saving only the mask.
- Otherwise (no compiler, under ``torch.compile``, small tensors): the pure-PyTorch path,
  ``torch.bernoulli`` and ``torch.where``; when a gradient is needed on a large tensor its mask
  is saved bit-packed (1 bit per element) instead of one byte per element.

Every path draws its randomness from the torch generator (a seed, or the mask itself), so
``torch.manual_seed`` and ``generator=`` reproduce masks, and activation checkpointing, which
restores the generator's state, replays them.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from dropkit._kernels.bitpack import pack_bits, unpack_bits
from dropkit._kernels.build import cpu_kernels_available
from dropkit._kernels.masks import apply_keep_mask, bernoulli_mask

#: Below this many elements the pure-PyTorch path is as fast and needs no compiled kernel.
MIN_FUSED_ELEMENTS = 1 << 15


def draw_seed(generator: torch.Generator | None) -> int:
    """A 62-bit seed drawn from a CPU torch generator (the global one when None)."""
    return int(torch.randint(2**62, (), dtype=torch.int64, generator=generator))


def cpu_dropout_with_seed(x: Tensor, p: float, seed: int) -> Tensor:
    """The compiled kernel's output for ``seed`` (no autograd)."""
    out, _ = torch.ops.dropkit.dropout_fused(x, p, seed, False)
    return out


def cpu_keep_mask(x: Tensor, p: float, seed: int) -> tuple[Tensor, Tensor]:
    """The compiled kernel's output for ``seed`` and its keep mask, bit-packed as uint8."""
    out, words = torch.ops.dropkit.dropout_fused(x, p, seed, True)
    return out, words.view(torch.uint8)


class SeededCpuDropout(torch.autograd.Function):
    """CPU dropout by the compiled kernel; backward regenerates the mask from the seed."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, p: float, seed: int) -> Tensor:
        ctx.p = p
        ctx.seed = seed
        return cpu_dropout_with_seed(x, p, seed)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        return SeededCpuDropout.apply(grad, ctx.p, ctx.seed), None, None


class PackedMaskDropout(torch.autograd.Function):
    """Dropout by a given boolean mask, saving it bit-packed for backward (1 bit per element)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        ctx.shape = keep.shape
        ctx.save_for_backward(pack_bits(keep))
        return apply_keep_mask(x, keep, scale)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (packed,) = ctx.saved_tensors
        keep = unpack_bits(packed, ctx.shape)
        return PackedMaskDropout.apply(grad, keep, ctx.scale), None, None


class RowMaskDropout(torch.autograd.Function):
    """``x * scale`` on the rows ``keep`` keeps, zeros elsewhere, in one pass (compiled kernel)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        ctx.save_for_backward(keep)
        return torch.ops.dropkit.row_dropout(x, keep, scale)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return RowMaskDropout.apply(grad, keep, ctx.scale), None, None


def covers_leading_dims(mask_shape: Sequence[int], shape: Sequence[int]) -> bool:
    """True when a mask of ``mask_shape`` varies only over leading dims of ``shape``.

    That is, ``mask_shape`` is ``shape[:k]`` followed by ones, for some ``k``.
    """
    if len(mask_shape) != len(shape):
        return False
    k = 0
    while k < len(shape) and mask_shape[k] == shape[k] and shape[k] != 1:
        k += 1
    return all(size == 1 for size in mask_shape[k:])


def broadcast_dropout(x: Tensor, keep: Tensor, scale: float) -> Tensor:
    """:func:`apply_keep_mask` for a mask broadcast over ``x``, in one pass where it can be."""
    if (
        x.device.type == "cpu"
        and x.numel() >= MIN_FUSED_ELEMENTS
        and x.is_contiguous()
        and not torch.compiler.is_compiling()
        and covers_leading_dims(keep.shape, x.shape)
        and cpu_kernels_available()
    ):
        return RowMaskDropout.apply(x, keep, scale)
    return masked_scale(x, keep, scale)


def masked_scale(x: Tensor, keep: Tensor, scale: float | Tensor) -> Tensor:
    """``x * scale`` where ``keep`` (broadcast) is True, exact zeros elsewhere.

    CUDA tensors take the one-pass Triton kernel when the mask's broadcast allows it; everything
    else takes :func:`apply_keep_mask` (two passes, the same result).
    """
    if (
        x.device.type == "cuda"
        and x.numel() >= MIN_FUSED_ELEMENTS
        and not torch.compiler.is_compiling()
        and _triton_ready()
    ):
        from dropkit._kernels import triton_dropout

        layout = triton_dropout.mask_layout(tuple(keep.shape), tuple(x.shape))
        if layout is not None and x.numel() <= triton_dropout.MAX_ELEMENTS:
            return triton_dropout.TritonMaskDropout.apply(x, keep, scale, layout)
    return apply_keep_mask(x, keep, scale)


_TRITON_FOUND: list[bool] = []


def _triton_ready() -> bool:
    if not _TRITON_FOUND:  # look once: find_spec is slow next to a kernel launch
        _TRITON_FOUND.append(importlib.util.find_spec("triton") is not None)
    return _TRITON_FOUND[0] and os.environ.get("DROPKIT_TRITON", "1").lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


def element_dropout(x: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Inverted dropout of every element of ``x`` for 0 < p < 1, by the best available path."""
    if not torch.compiler.is_compiling() and x.numel() >= MIN_FUSED_ELEMENTS:
        if x.device.type == "cpu" and cpu_kernels_available():
            return SeededCpuDropout.apply(x, p, draw_seed(generator))
        if x.device.type == "cuda" and _triton_ready():
            from dropkit._kernels import triton_dropout

            if x.numel() <= triton_dropout.MAX_ELEMENTS:
                return triton_dropout.triton_dropout(x, p, generator)
    return reference_dropout(x, p, generator)


def reference_dropout(x: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """The pure-PyTorch path: a Bernoulli mask, saved bit-packed when a large gradient needs it."""
    keep = bernoulli_mask(x.shape, 1.0 - p, x.device, generator)
    scale = 1.0 / (1.0 - p)
    if (
        x.requires_grad
        and torch.is_grad_enabled()
        and x.numel() >= MIN_FUSED_ELEMENTS
        and not torch.compiler.is_compiling()
    ):
        return PackedMaskDropout.apply(x, keep, scale)
    return apply_keep_mask(x, keep, scale)
