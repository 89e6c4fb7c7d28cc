"""The operators' Triton path, run by Triton's interpreter on CPU tensors (no GPU needed)."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

SCRIPT = """
import torch, dropkit as dk
from torch.utils.checkpoint import checkpoint

x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
functions = {
    "dropout": lambda t: dk.functional.dropout(t, 0.3),
    "drop_path": lambda t: dk.functional.drop_path(t, 0.5),
    "drop_block": lambda t: dk.functional.drop_block(t, 0.3, 3),
}
for name, function in functions.items():
    results = {}
    for backend in ("triton", "reference"):
        with dk.backends.force(backend):
            assert dk.backends.selected(x) == backend
            torch.manual_seed(5)
            y = function(x)
            (gradient,) = torch.autograd.grad(y.square().sum(), x)
            results[backend] = (y.detach(), gradient, torch.get_rng_state())
    for a, b in zip(results["triton"], results["reference"]):
        assert torch.equal(a, b), name
    with dk.backends.force("triton"):
        torch.library.opcheck(torch.ops.dropkit.dropout.default, (x, 0.3, torch.tensor(7)))
        generator = torch.Generator()
        generator.manual_seed(1)
        y = checkpoint(lambda t: dk.functional.dropout(t.sin(), 0.5, generator=generator), x,
                       use_reentrant=False)
        y.sum().backward()
        assert torch.equal(x.grad == 0, y.detach() == 0)
        x.grad = None
# the launches through torch.library.wrap_triton (what tracing records) compute the same
from dropkit._kernels import ops
seed, keep = torch.tensor(11), torch.rand(2, 3, 1, 1, generator=torch.Generator()) > 0.5
with dk.backends.force("triton"):
    plain = x.detach()
    assert torch.equal(ops._dropout_triton(plain, 0.3, seed, traced=True),
                       torch.ops.dropkit.dropout(plain, 0.3, seed))
    assert torch.equal(ops._mask_scale_triton(plain, keep, 2.0, traced=True),
                       torch.ops.dropkit.mask_scale(plain, keep, 2.0))
    assert torch.equal(ops._drop_block_triton(plain, 0.2, [3, 3], False, seed, traced=True),
                       torch.ops.dropkit.drop_block(plain, 0.2, [3, 3], False, seed))
    for sample in [(plain, keep, 2.0), (plain, 0.2, [3, 3], True, seed)]:
        op = torch.ops.dropkit.mask_scale if len(sample) == 3 else torch.ops.dropkit.drop_block
        torch.library.opcheck(op.default, sample)
print("ok")
"""


def test_triton_path_equals_the_reference_bit_for_bit():
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
