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
print("ok")
"""


def test_triton_kernel_under_the_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run(
        [sys.executable, "-c", CHECKS], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
