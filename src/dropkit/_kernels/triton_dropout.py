"""Dropout for CUDA tensors in Triton, keeping only a seed for backward.

The kernel draws Philox random numbers with ``tl.rand(seed, offsets)``: the same seed and offsets
give the same numbers, so backward runs the same kernel on the gradient and rebuilds the identical
mask without storing a byte of it. The seed is drawn from a torch generator on the input's device
(no host synchronisation). With ``TRITON_INTERPRET=1`` set before this module is imported, the
kernel also runs on CPU tensors, which is how it is tested without a GPU.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor

BLOCK = 1024
#: Offsets are 32-bit counters of the Philox stream.
MAX_ELEMENTS = 2**31 - BLOCK


@triton.jit
def _dropout_kernel(x_ptr, out_ptr, seed_ptr, scale_ptr, n, p, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n
    seed = tl.load(seed_ptr)
    scale = tl.load(scale_ptr)  # float64 for float64 input, else float32
    x = tl.load(x_ptr + offsets, mask=inside, other=0.0)
    keep = tl.rand(seed, offsets) >= p
    y = tl.where(keep, x.to(scale.dtype) * scale, 0.0)
    tl.store(out_ptr + offsets, y.to(out_ptr.dtype.element_ty), mask=inside)


def apply_with_seed(x: Tensor, p: float, seed: Tensor) -> Tensor:
    """``x`` with the elements that ``seed`` drops zeroed and the rest scaled by ``1 / (1 - p)``."""
    source = x.contiguous()
    out = torch.empty_like(source)
    n = source.numel()
    if n:
        grid = (triton.cdiv(n, BLOCK),)
        compute = torch.float64 if source.dtype == torch.float64 else torch.float32
        scale = torch.full((1,), 1.0 / (1.0 - p), dtype=compute, device=source.device)
        _dropout_kernel[grid](source, out, seed, scale, n, p, BLOCK=BLOCK)
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
