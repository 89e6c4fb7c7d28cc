import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

import dropkit as dk
from dropkit._kernels import build, fused
from dropkit._kernels.bitpack import unpack_bits

N = fused.MIN_FUSED_ELEMENTS * 2
needs_kernel = pytest.mark.skipif(
    not build.cpu_kernels_available(), reason="no C++ compiler: the compiled path is unavailable"
)


@pytest.fixture(params=["compiled", "pure"])
def path(request, monkeypatch):
    if request.param == "compiled" and not build.cpu_kernels_available():
        pytest.skip("no C++ compiler")
    if request.param == "pure":
        monkeypatch.setattr(fused, "cpu_kernels_available", lambda: False)
    return request.param


def sigma(p, n):
    return 5 * (p * (1 - p) / n) ** 0.5


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_drop_fraction_and_scale(path, p):
    x = torch.ones(4 * N)
    y = dk.functional.dropout(x, p, generator=torch.Generator().manual_seed(1))
    dropped = (y == 0).double().mean().item()
    assert abs(dropped - p) < sigma(p, x.numel())
    assert torch.allclose(y[y != 0], torch.full((), 1 / (1 - p)))


def test_neighbours_independent(path):
    # the nearest wrong generator (correlated neighbouring counters) fails this
    y = dk.functional.dropout(torch.ones(4 * N), 0.5, generator=torch.Generator().manual_seed(2))
    keep = (y != 0).double()
    both = (keep[1:] * keep[:-1]).mean().item()
    assert abs(both - 0.25) < sigma(0.25, keep.numel())


def test_generator_and_manual_seed_reproduce(path):
    x = torch.randn(N)
    a = dk.functional.dropout(x, 0.3, generator=torch.Generator().manual_seed(5))
    b = dk.functional.dropout(x, 0.3, generator=torch.Generator().manual_seed(5))
    c = dk.functional.dropout(x, 0.3, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(3)
    d = dk.functional.dropout(x, 0.3)
    torch.manual_seed(3)
    assert torch.equal(d, dk.functional.dropout(x, 0.3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_backward_mask_equals_forward_mask(path, dtype):
    x = torch.randn(N, dtype=dtype).add_(5).requires_grad_()  # no zeros in x
    y = dk.functional.dropout(x, 0.4, generator=torch.Generator().manual_seed(0))
    y.backward(torch.ones_like(y))
    assert y.dtype == dtype
    assert torch.equal(x.grad == 0, y == 0)
    expected = torch.tensor(1 / 0.6, dtype=dtype)
    assert torch.equal(x.grad[y != 0].unique(), expected.reshape(1))


def test_infinite_inputs_drop_to_exact_zero(path):
    x = torch.full((N,), float("inf"))
    y = dk.functional.dropout(x, 0.5, generator=torch.Generator().manual_seed(0))
    assert not y.isnan().any() and (y == 0).any()


def test_gradcheck(path, monkeypatch):
    monkeypatch.setattr(fused, "MIN_FUSED_ELEMENTS", 1)
    x = torch.randn(40, dtype=torch.float64, requires_grad=True)

    def function(t):
        return dk.functional.dropout(t, 0.3, generator=torch.Generator().manual_seed(0))

    assert torch.autograd.gradcheck(function, (x,))
    assert torch.autograd.gradgradcheck(function, (x,))


def test_checkpoint_replays_the_same_mask(path):
    x = torch.randn(N).requires_grad_()
    weight = torch.randn(N)

    def block(t):
        return dk.functional.dropout(t * weight, 0.5) * 2

    torch.manual_seed(11)
    block(x).sum().backward()
    plain = x.grad.clone()
    x.grad = None
    torch.manual_seed(11)
    checkpoint(block, x, use_reentrant=False).sum().backward()
    assert torch.equal(x.grad, plain)


@needs_kernel
def test_seed_regenerates_the_packed_mask():
    x = torch.randn(N + 13)
    out, packed = fused.cpu_keep_mask(x, 0.25, seed=1234)
    assert packed.numel() * 8 >= x.numel() > (packed.numel() - 8) * 8  # one bit per element
    keep = unpack_bits(packed, x.shape)
    assert torch.equal(keep, out != 0)
    assert torch.equal(fused.cpu_dropout_with_seed(x, 0.25, 1234), out)
    assert not torch.equal(fused.cpu_dropout_with_seed(x, 0.25, 1235), out)


@needs_kernel
def test_compiled_path_saves_no_mask():
    x = torch.randn(N, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        dk.functional.dropout(x, 0.5)
    assert sum(t.numel() * t.element_size() for t in saved) == 0
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        F.dropout(x, 0.5)
    assert sum(t.numel() * t.element_size() for t in saved) >= N  # torch keeps a full mask


def test_pure_path_saves_one_bit_per_element(monkeypatch):
    monkeypatch.setattr(fused, "cpu_kernels_available", lambda: False)
    x = torch.randn(N, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        dk.functional.dropout(x, 0.5)
    assert sum(t.numel() * t.element_size() for t in saved) == N // 8


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("DROPKIT_CPU_KERNELS", "0")
    assert build._load() is False


def test_no_compiler_falls_back_to_pure_path(tmp_path):
    script = (
        "import torch, dropkit as dk\n"
        "torch.manual_seed(0)\n"
        "from dropkit._kernels.build import cpu_kernels_available\n"
        "assert not cpu_kernels_available()\n"
        "y = dk.functional.dropout(torch.ones(100_000), 0.5)\n"
        "print(round((y == 0).float().mean().item(), 2))\n"
    )
    env = dict(os.environ, PATH=str(tmp_path), DROPKIT_CACHE_DIR=str(tmp_path))
    env.pop("CXX", None)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0.5"
    assert not list(tmp_path.glob("*.so"))
