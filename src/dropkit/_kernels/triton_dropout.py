"""Dropout for CUDA tensors in Triton, keeping only a seed for backward.

Element-wise dropout draws Philox random numbers with ``tl.rand4x(seed, counters)``: one Philox
call gives four numbers, used by four interleaved sub-blocks of a program's elements, so the
random work is a quarter of one call per element. The same seed and counters give the same
numbers, so backward runs the same kernel on the gradient and rebuilds the identical mask without
storing a byte of it. Which counter serves which element depends only on ``SUB_BLOCK``, never on
the launch's warp count. The seed is drawn from a torch generator on the input's device (no host
synchronisation).

Masks shared along dims (drop_path's rows, spatial dropout's maps, DropBlock's masks) are applied
by :func:`apply_mask` in one pass: ``keep[index(i)] ? x[i] * scale : 0``, where a dropped element
is written as zero without being read.

With ``TRITON_INTERPRET=1`` set before this module is imported, the kernels also run on CPU
tensors, which is how they are tested without a GPU.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor

#: Elements per sub-block; a program covers four sub-blocks with one Philox call per lane.
SUB_BLOCK = 1024
#: Warps per program (a program moves 16 KiB of float32 each way).
NUM_WARPS = 8
#: Offsets are 32-bit element indices.
MAX_ELEMENTS = 2**31 - 4 * SUB_BLOCK
#: Elements per program of the mask kernel.
MASK_BLOCK = 4096


@triton.jit
def _dropout_sub_block(x_ptr, out_ptr, offsets, n, random, p, factor):  # type: ignore[no-untyped-def]
    inside = offsets < n
    keep = random >= p
    x = tl.load(x_ptr + offsets, mask=inside & keep, other=0.0)
    y = tl.where(keep, x.to(factor.dtype) * factor, 0.0)
    tl.store(out_ptr + offsets, y.to(out_ptr.dtype.element_ty), mask=inside)


@triton.jit
def _dropout_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    out_ptr,
    seed_ptr,
    scale_ptr,
    n,
    p,
    scale,
    SUB_BLOCK: tl.constexpr,
    SCALE_FROM_POINTER: tl.constexpr,
):
    program = tl.program_id(0)
    lanes = tl.arange(0, SUB_BLOCK)
    seed = tl.load(seed_ptr)
    r0, r1, r2, r3 = tl.rand4x(seed, program * SUB_BLOCK + lanes)
    if SCALE_FROM_POINTER:  # noqa: SIM108 (a compile-time branch)
        factor = tl.load(scale_ptr)  # float64 input keeps a float64 scale
    else:
        factor = scale
    base = program * (4 * SUB_BLOCK) + lanes
    _dropout_sub_block(x_ptr, out_ptr, base, n, r0, p, factor)
    _dropout_sub_block(x_ptr, out_ptr, base + SUB_BLOCK, n, r1, p, factor)
    _dropout_sub_block(x_ptr, out_ptr, base + 2 * SUB_BLOCK, n, r2, p, factor)
    _dropout_sub_block(x_ptr, out_ptr, base + 3 * SUB_BLOCK, n, r3, p, factor)


def _scale_argument(dtype: torch.dtype, scale: float, device: torch.device) -> tuple[Any, bool]:
    """A float64 scale travels as a one-element tensor (Triton's float arguments are float32)."""
    if dtype == torch.float64:
        return torch.full((1,), scale, dtype=torch.float64, device=device), True
    return None, False


def apply_with_seed(x: Tensor, p: float, seed: Tensor) -> Tensor:
    """``x`` with the elements that ``seed`` drops zeroed and the rest scaled by ``1 / (1 - p)``."""
    source = x.contiguous()
    out = torch.empty_like(source)
    n = source.numel()
    if n:
        scale = 1.0 / (1.0 - p)
        scale_tensor, from_pointer = _scale_argument(source.dtype, scale, source.device)
        grid = (triton.cdiv(n, 4 * SUB_BLOCK),)
        _dropout_kernel[grid](
            source,
            out,
            seed,
            scale_tensor if from_pointer else seed,
            n,
            p,
            scale,
            SUB_BLOCK=SUB_BLOCK,
            SCALE_FROM_POINTER=from_pointer,
            num_warps=NUM_WARPS,
        )
    return out.view(x.shape)


class TritonDropout(torch.autograd.Function):
    """Dropout whose backward regenerates the forward mask from the saved seed."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, p: float, seed: Tensor) -> Tensor:
        ctx.p = p
        ctx.save_for_backward(seed)
        return apply_with_seed(x, p, seed)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (seed,) = ctx.saved_tensors
        return TritonDropout.apply(grad, ctx.p, seed), None, None


def draw_seed(device: torch.device, generator: torch.Generator | None) -> Tensor:
    """A one-element int64 seed tensor on ``device`` drawn from the torch generator."""
    return torch.randint(2**62, (1,), device=device, dtype=torch.int64, generator=generator)


def triton_dropout(x: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Inverted dropout of ``x`` (0 < p < 1) by the Triton kernel."""
    return TritonDropout.apply(x, p, draw_seed(x.device, generator))


@triton.jit
def _mask_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    keep_ptr,
    out_ptr,
    scale_ptr,
    columns,
    chunks,
    row_group,
    scale,
    BLOCK: tl.constexpr,
    KEEP_PER_ROW: tl.constexpr,
    SCALE_FROM_POINTER: tl.constexpr,
):
    # x is (rows, columns); this program covers one chunk of one row (one division per program)
    program = tl.program_id(0)
    row = program // chunks
    column = (program % chunks) * BLOCK + tl.arange(0, BLOCK)
    inside = column < columns
    if KEEP_PER_ROW:
        keep = tl.load(keep_ptr + row + column * 0, mask=inside, other=0) != 0  # one address
    else:
        keep_row = (row // row_group).to(tl.int64) * columns
        keep = tl.load(keep_ptr + keep_row + column, mask=inside, other=0) != 0
    if SCALE_FROM_POINTER:  # noqa: SIM108 (a compile-time branch)
        factor = tl.load(scale_ptr)
    else:
        factor = scale
    offsets = row.to(tl.int64) * columns + column
    x = tl.load(x_ptr + offsets, mask=inside & keep, other=0.0)
    y = tl.where(keep, x.to(factor.dtype) * factor, 0.0)
    tl.store(out_ptr + offsets, y.to(out_ptr.dtype.element_ty), mask=inside)


def mask_layout(mask_shape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, int] | None:
    """``(group, inner)`` such that element ``i`` of ``shape`` reads mask element
    ``(i // (group * inner)) * inner + i % inner``, or None when the broadcast is not of that form.

    The mask must equal ``shape`` except for one run of consecutive dims where it is 1: those
    dims multiply to ``group`` and the dims after them to ``inner``.
    """
    if len(mask_shape) != len(shape):
        return None
    differs = [dim for dim, (m, s) in enumerate(zip(mask_shape, shape, strict=True)) if m != s]
    if not differs:
        return 1, 1
    first, last = differs[0], differs[-1]
    if any(mask_shape[dim] != 1 for dim in range(first, last + 1)):
        return None
    group = 1
    for size in shape[first : last + 1]:
        group *= size
    inner = 1
    for size in shape[last + 1 :]:
        inner *= size
    return group, inner


def apply_mask(x: Tensor, keep: Tensor, scale: float | Tensor, layout: tuple[int, int]) -> Tensor:
    """``x * scale`` where the broadcast ``keep`` is True, exact zeros elsewhere, in one pass.

    A tensor ``scale`` is rounded to ``x``'s dtype first, as ``x * scale`` rounds a 0-dim tensor;
    a float ``scale`` multiplies in float32 (float64 for float64 ``x``), as a Python number does.
    """
    source = x.contiguous()
    out = torch.empty_like(source)
    n = source.numel()
    if n:
        group, inner = layout
        if group == 1 and inner == 1:  # a full mask
            columns, row_group, per_row = n, 1, False
        elif inner == 1:  # one decision per row of `group` elements
            columns, row_group, per_row = group, 1, True
        else:  # one mask row of `inner` elements shared by `group` rows of x
            columns, row_group, per_row = inner, group, False
        block = min(MASK_BLOCK, max(128, triton.next_power_of_2(columns)))
        chunks = triton.cdiv(columns, block)
        if isinstance(scale, Tensor):
            compute = torch.float64 if source.dtype == torch.float64 else torch.float32
            rounded = scale.to(device=source.device, dtype=source.dtype)
            scale_tensor: Tensor | None = rounded.to(compute).reshape(1)
            from_pointer, value = True, 1.0
        else:
            scale_tensor, from_pointer = _scale_argument(source.dtype, scale, source.device)
            value = scale
        _mask_kernel[((n // columns) * chunks,)](
            source,
            keep.contiguous().view(torch.uint8),
            out,
            scale_tensor if from_pointer else keep,
            columns,
            chunks,
            row_group,
            value,
            BLOCK=block,
            KEEP_PER_ROW=per_row,
            SCALE_FROM_POINTER=from_pointer,
            num_warps=NUM_WARPS if block >= 2048 else 4,
        )
    return out.view(x.shape)


class TritonMaskDropout(torch.autograd.Function):
    """One-pass dropout by a broadcast boolean mask; backward keeps only the mask and scale."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, keep: Tensor, scale: float | Tensor, layout: tuple[int, int]
    ) -> Tensor:
        ctx.scale = scale
        ctx.layout = layout
        ctx.save_for_backward(keep)
        return apply_mask(x, keep, scale, layout)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        (keep,) = ctx.saved_tensors
        return TritonMaskDropout.apply(grad, keep, ctx.scale, ctx.layout), None, None, None
