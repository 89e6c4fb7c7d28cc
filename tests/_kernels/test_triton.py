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
from dropkit._kernels import build, philox
from dropkit._kernels import triton_dropout as kernel

compiled = build.cpu_kernels_available()
if compiled:
    from dropkit._kernels import cpu

# the Philox mask, bit for bit: pure PyTorch, Triton and (where built) the compiled kernel
for n in (0, 1, 5, 4097, 9000):
    for seed, offset in ((0, 0), (-7, 0), (126920237933305286, 5), (2**63 - 1, -1)):
        x = torch.ones(n)
        out = kernel.apply_with_seed(x, 0.3, torch.tensor([seed]), offset)
        keep = philox.keep_mask((n,), 0.3, seed, offset)
        assert torch.equal(out != 0, keep), (n, seed, offset)
        if compiled:
            assert torch.equal(cpu.dropout_with_seed(x, 0.3, seed, offset), out), (n, seed)

# with offset 0, element 4 g + k is word k of tl.randint4x(seed, g): Triton's own generator
import triton
import triton.language as tl

@triton.jit
def randint4x_kernel(seed_ptr, out_ptr, GROUPS: tl.constexpr):
    groups = tl.arange(0, GROUPS)
    r0, r1, r2, r3 = tl.randint4x(tl.load(seed_ptr), groups)
    base = out_ptr + 4 * groups
    tl.store(base, r0.to(tl.int64))
    tl.store(base + 1, r1.to(tl.int64))
    tl.store(base + 2, r2.to(tl.int64))
    tl.store(base + 3, r3.to(tl.int64))

words = torch.empty(4 * 64, dtype=torch.int64)
randint4x_kernel[(1,)](torch.tensor([-(2**40) - 3]), words, GROUPS=64)
assert torch.equal(words & 0xFFFFFFFF, philox.random_words(256, -(2**40) - 3)), "randint4x"

# every dtype: exact scaled values and zeros, infinities dropped to zero
for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
    x = torch.randn(3, 700).to(dtype)
    x[0, :2] = float("inf")
    keep = philox.keep_mask(x.shape, 0.25, 11)
    out = kernel.apply_with_seed(x, 0.25, torch.tensor([11]))
    expected = torch.where(keep, x * (1 / 0.75), torch.zeros((), dtype=dtype))
    assert out.dtype == dtype and torch.equal(out == 0, expected == 0), dtype
    if dtype == torch.bfloat16:  # the interpreter rounds float32 to bfloat16 toward zero
        torch.testing.assert_close(out, expected, rtol=2**-7, atol=0)
    else:
        assert torch.equal(out, expected), dtype

# the output keeps the input's memory format; the values follow the logical index
x = torch.randn(2, 6, 5, 7)
expected = kernel.apply_with_seed(x, 0.5, torch.tensor([3]))
channels_last = x.contiguous(memory_format=torch.channels_last)
for y in (channels_last, x.transpose(1, 3).contiguous().transpose(1, 3)):
    out = kernel.apply_with_seed(y, 0.5, torch.tensor([3]))
    assert out.stride() == y.stride() and torch.equal(out, expected)

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
y = x.contiguous(memory_format=torch.channels_last)
mask = torch.rand(2, 3, 1, 1, generator=g) < 0.5
out = kernel.apply_mask(y, mask, 0.5, kernel.mask_layout((2, 3, 1, 1), tuple(x.shape)))
assert out.is_contiguous(memory_format=torch.channels_last)
assert torch.equal(out, torch.where(mask, x * 0.5, 0.0))
print("ok")
"""


def test_triton_kernel_under_the_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run(
        [sys.executable, "-c", CHECKS], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
