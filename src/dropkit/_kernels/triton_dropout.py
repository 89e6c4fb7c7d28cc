"""Dropout for CUDA tensors in Triton, computing the mask of :mod:`dropkit._kernels.philox`.

Element-wise dropout draws four Philox 4x32-10 words per counter with ``tl.philox`` (for stream
``offset = 0`` exactly ``tl.randint4x(seed, counters)``): counter ``g`` serves elements
``4 g .. 4 g + 3``, word ``k`` element ``4 g + k``, and an element is kept iff its word is below
:func:`dropkit._kernels.philox.threshold` ``(p)``. That is the definition the compiled CPU kernel
and the pure-PyTorch path compute, so the same seed gives the same mask on every backend. The
seed is read from a one-element int64 tensor on the device (no host synchronisation); backward
runs the same kernel on the gradient and rebuilds the mask without storing a byte of it.

Masks shared along dims (drop_path's rows, spatial dropout's maps, DropBlock's masks) are applied
by :func:`apply_mask` in one pass: ``keep[index(i)] ? x[i] * scale : 0``, where a dropped element
is written as zero without being read.

Both kernels work on the logical (row-major) order of a contiguous copy; the output is a fresh
tensor in the input's memory format. With ``TRITON_INTERPRET=1`` set before this module is
imported, the kernels also run on CPU tensors, which is how they are tested without a GPU.

Called with ``traced=True`` (from the operators' decomposition under ``torch.compile``, see
:mod:`dropkit._kernels.ops`), the kernels are launched through ``torch.library.wrap_triton``, so
that tracing records each launch as a graph node that inductor compiles with the rest of the
graph; eager calls launch them directly.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor

from dropkit._kernels.philox import threshold

#: Philox counters per program (four elements each).
GROUPS = 1024
#: Warps per program (a program moves 16 KiB of float32 each way).
NUM_WARPS = 8
#: Offsets are 32-bit element indices.
MAX_ELEMENTS = 2**31 - 4 * GROUPS
#: Elements per program of the mask kernel.
MASK_BLOCK = 4096


@triton.jit
def _dropout_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    out_ptr,
    seed_ptr,
    scale_ptr,
    n,
    limit,
    stream_low,
    stream_high,
    scale,
    GROUPS: tl.constexpr,
    SCALE_FROM_POINTER: tl.constexpr,
):
    program = tl.program_id(0)
    groups = program * GROUPS + tl.arange(0, GROUPS)
    zero = groups * 0
    seed = tl.load(seed_ptr)
    # the stream's words may arrive as 64-bit integers: truncate them to 32 bits
    c2 = (zero + stream_low).to(tl.uint32)
    c3 = (zero + stream_high).to(tl.uint32)
    r0, r1, r2, r3 = tl.philox(seed, groups.to(tl.uint32), zero.to(tl.uint32), c2, c3)
    # element 4 g + k takes word k of counter g
    words = tl.interleave(tl.interleave(r0, r2), tl.interleave(r1, r3))
    keep = words.to(tl.int64) < limit
    if SCALE_FROM_POINTER:  # noqa: SIM108 (a compile-time branch)
        factor = tl.load(scale_ptr)  # float64 input keeps a float64 scale
    else:
        factor = scale
    offsets = program * (4 * GROUPS) + tl.arange(0, 4 * GROUPS)
    inside = offsets < n
    x = tl.load(x_ptr + offsets, mask=inside & keep, other=0.0)
    y = tl.where(keep, x.to(factor.dtype) * factor, 0.0)
    tl.store(out_ptr + offsets, y.to(out_ptr.dtype.element_ty), mask=inside)


def _scale_argument(dtype: torch.dtype, scale: float, device: torch.device) -> tuple[Any, bool]:
    """A float64 scale travels as a one-element tensor (Triton's float arguments are float32)."""
    if dtype == torch.float64:
        return torch.full((1,), scale, dtype=torch.float64, device=device), True
    return None, False


def _launcher(kernel: Any, traced: bool) -> Any:
    """``kernel`` itself, or wrapped for tracing (``torch.library.wrap_triton``)."""
    return torch.library.wrap_triton(kernel) if traced else kernel


def _in_layout_of(x: Tensor, out: Tensor) -> Tensor:
    """``out`` (contiguous, ``x``'s shape) in ``x``'s memory format."""
    if x.is_contiguous():
        return out
    return torch.empty_like(x).copy_(out)


def apply_with_seed(
    x: Tensor, p: float, seed: Tensor, offset: int = 0, *, traced: bool = False
) -> Tensor:
    """``x`` with the elements that ``(seed, offset)`` drops zeroed, the rest times ``1 / (1 - p)``.

    Args:
        x: a tensor on a Triton device (or any device under ``TRITON_INTERPRET=1``).
        p: the drop probability, ``0 <= p < 1``.
        seed: a one-element int64 tensor on ``x``'s device, the 64-bit Philox key.
        offset: the stream.
        traced: launch through ``torch.library.wrap_triton`` (while tracing).
    """
    source = x.contiguous()
    out = torch.empty_like(source)
    n = source.numel()
    if n:
        scale = 1.0 / (1.0 - p)
        scale_tensor, from_pointer = _scale_argument(source.dtype, scale, source.device)
        stream = offset % 2**64
        _launcher(_dropout_kernel, traced)[(triton.cdiv(n, 4 * GROUPS),)](
            source,
            out,
            seed,
            scale_tensor if from_pointer else seed,
            n,
            threshold(p),
            stream & 0xFFFFFFFF,
            stream >> 32,
            scale,
            GROUPS=GROUPS,
            SCALE_FROM_POINTER=from_pointer,
            num_warps=NUM_WARPS,
        )
    return _in_layout_of(x, out)


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


def apply_mask(
    x: Tensor,
    keep: Tensor,
    scale: float | Tensor,
    layout: tuple[int, int],
    *,
    traced: bool = False,
) -> Tensor:
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
        _launcher(_mask_kernel, traced)[((n // columns) * chunks,)](
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
    return _in_layout_of(x, out)
