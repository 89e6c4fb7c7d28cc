"""The Triton kernel run by Triton's interpreter on CPU tensors (no GPU needed).

``TRITON_INTERPRET=1`` must be set before Triton is first imported, so the checks run in a
fresh interpreter.
"""

import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

CHECKS = r"""
import torch
from dropkit._kernels import triton_dropout as kernel

x = torch.randn(6000).add_(10).requires_grad_()
y = kernel.triton_dropout(x, 0.3, torch.Generator().manual_seed(0))
dropped = (y == 0).double().mean().item()
assert abs(dropped - 0.3) < 5 * (0.3 * 0.7 / x.numel()) ** 0.5, dropped
y.backward(torch.ones_like(y))
assert torch.equal(x.grad == 0, y == 0)
assert torch.allclose(x.grad[y != 0], torch.tensor(1 / 0.7))
seed = kernel.draw_seed(x.device, torch.Generator().manual_seed(0))
assert torch.equal(kernel.apply_with_seed(x.detach(), 0.3, seed), y.detach())
other = kernel.triton_dropout(x.detach(), 0.3, torch.Generator().manual_seed(1))
assert not torch.equal(other == 0, y == 0)

for dtype in (torch.float16, torch.bfloat16, torch.float64):
    z = kernel.triton_dropout(torch.ones(2000, dtype=dtype), 0.5, torch.Generator().manual_seed(1))
    assert z.dtype == dtype
    assert set(z.unique().tolist()) == {0.0, 2.0}, z.unique()

t = torch.randn(30, dtype=torch.float64, requires_grad=True)
assert torch.autograd.gradcheck(
    lambda s: kernel.triton_dropout(s, 0.4, torch.Generator().manual_seed(3)), (t,)
)
# four numbers per Philox call: sub-blocks 1024 apart and programs 4096 apart stay independent
n = 1 << 16
z = kernel.triton_dropout(torch.ones(n), 0.5, torch.Generator().manual_seed(4))
keep = (z != 0).double()
bound = 5 * (0.25 * 0.75 / n) ** 0.5
for lag in (1, kernel.SUB_BLOCK, 4 * kernel.SUB_BLOCK):
    both = (keep[lag:] * keep[:-lag]).mean().item()
    assert abs(both - 0.25) < bound, (lag, both)
assert abs(keep.mean().item() - 0.5) < 5 * (0.25 / n) ** 0.5

# the broadcast-mask kernel: drop_path rows, spatial maps, a shared DropBlock mask, a full mask
x = torch.randn(4, 3, 5, 7, dtype=torch.float64)
x[0, 0, 0, 0] = float("inf")
g = torch.Generator().manual_seed(5)
for mask_shape in ((4, 1, 1, 1), (4, 3, 1, 1), (4, 1, 5, 7), (4, 3, 5, 7), (1, 1, 1, 1)):
    mask = torch.rand(mask_shape, generator=g) < 0.5
    mask.view(-1)[0] = False
    layout = kernel.mask_layout(mask_shape, tuple(x.shape))
    for scale in (1.25, torch.tensor(1.25)):
        out = kernel.apply_mask(x, mask, scale, layout)
        assert torch.equal(out, torch.where(mask, x * scale, 0.0)), mask_shape
    half = kernel.apply_mask(x.half(), mask, torch.tensor(1.25), layout)
    assert torch.equal(half, torch.where(mask, x.half() * torch.tensor(1.25), 0.0))
# rows and maps longer than one program's block (several chunks per row, a ragged last chunk)
x = torch.randn(2, 3, 70, 70)
for mask_shape in ((2, 1, 1, 1), (2, 1, 70, 70), (2, 3, 70, 70)):
    mask = torch.rand(mask_shape, generator=g) < 0.5
    layout = kernel.mask_layout(mask_shape, tuple(x.shape))
    assert torch.equal(kernel.apply_mask(x, mask, 0.5, layout), torch.where(mask, x * 0.5, 0.0))
assert kernel.mask_layout((4, 1, 5, 1), (4, 3, 5, 7)) is None
assert kernel.mask_layout((4, 3), (4, 3, 5)) is None
t = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
mask = torch.tensor([True, False, True, True, False, True]).view(6, 1)
assert torch.autograd.gradcheck(
    lambda s: kernel.TritonMaskDropout.apply(s, mask, 1.5, (4, 1)), (t,)
)
print("ok")
"""


def test_triton_kernel_under_the_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run(
        [sys.executable, "-c", CHECKS], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
