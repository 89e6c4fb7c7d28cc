"""The compiled DropBlock kernel against the pure-PyTorch sparse path, seed for seed."""

import math

import pytest
import torch

import dropkit as dk
from dropkit._kernels import build, sparse_block
from dropkit._kernels.sparse_block import bernoulli_positions, block_positions, dropped_cells

pytestmark = pytest.mark.skipif(
    not build.cpu_kernels_available(), reason="no C++ compiler: the compiled path is unavailable"
)

GEOMETRIES = [((37,), (5,)), ((9, 11), (3, 4)), ((5, 6, 7), (2, 3, 2)), ((6, 6), (6, 6))]


def reference(x, seeds, blocks, shared, scale):
    spatial = tuple(x.shape[2:])
    valid = tuple(s - b + 1 for s, b in zip(spatial, blocks, strict=True))
    maps_shape = (x.shape[0], 1 if shared else x.shape[1], *spatial)
    dropped = dropped_cells(maps_shape, block_positions(seeds, valid, spatial, blocks), x.device)
    return torch.where(dropped, torch.zeros((), dtype=x.dtype), x * scale), dropped


def draw(x, blocks, shared, rate, seed):
    spatial = tuple(x.shape[2:])
    valid = tuple(s - b + 1 for s, b in zip(spatial, blocks, strict=True))
    maps = x.shape[0] * (1 if shared else x.shape[1])
    generator = torch.Generator().manual_seed(seed)
    return bernoulli_positions(maps * math.prod(valid), rate, x.device, generator), valid, maps


@pytest.mark.parametrize(("spatial", "blocks"), GEOMETRIES)
@pytest.mark.parametrize("shared", [False, True])
def test_kernel_equals_the_reference(spatial, blocks, shared):
    x = torch.randn(3, 4, *spatial, dtype=torch.float64)
    rate = 0.4 if spatial == blocks else 0.08  # a whole-map block has one seed position
    seeds, valid, maps = draw(x, blocks, shared, rate, seed=len(spatial) + shared)
    assert seeds.numel() > 0
    expected, dropped = reference(x, seeds, blocks, shared, 1.25)
    out = torch.ops.dropkit.block_drop(x, seeds, valid, blocks, shared, 1.25)
    assert torch.equal(out, expected)
    kept = torch.ops.dropkit.block_kept(seeds, maps, spatial, valid, blocks)
    assert kept == dropped.numel() - int(dropped.sum())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_reduced_precision_dtypes(dtype):
    x = torch.randn(2, 5, 12, 12).to(dtype)
    seeds, valid, _ = draw(x, (3, 3), False, 0.05, seed=4)
    out = torch.ops.dropkit.block_drop(x, seeds, valid, (3, 3), False, 1.5)
    expected, _ = reference(x, seeds, (3, 3), False, 1.5)
    assert out.dtype == dtype
    assert torch.equal(out, expected)


def test_non_contiguous_and_channels_last_input():
    base = torch.randn(2, 6, 10, 10)
    seeds, valid, _ = draw(base, (3, 3), False, 0.05, seed=5)
    expected, _ = reference(base, seeds, (3, 3), False, 2.0)
    for x in (base.to(memory_format=torch.channels_last), base.transpose(2, 3).transpose(2, 3)):
        assert torch.equal(
            torch.ops.dropkit.block_drop(x, seeds, valid, (3, 3), False, 2.0), expected
        )
    sliced = torch.randn(2, 12, 10, 10)[:, ::2]
    expected, _ = reference(sliced, seeds, (3, 3), False, 2.0)
    assert torch.equal(
        torch.ops.dropkit.block_drop(sliced, seeds, valid, (3, 3), False, 2.0), expected
    )


def test_unsorted_or_out_of_range_seeds_are_refused():
    x = torch.randn(1, 2, 8, 8)
    with pytest.raises(RuntimeError, match="sorted, distinct"):
        torch.ops.dropkit.block_drop(x, torch.tensor([9, 3]), (6, 6), (3, 3), False, 1.0)
    with pytest.raises(RuntimeError, match="sorted, distinct"):
        torch.ops.dropkit.block_drop(x, torch.tensor([72]), (6, 6), (3, 3), False, 1.0)


@pytest.mark.parametrize("shared", [False, True])
def test_compiled_and_pure_paths_agree(monkeypatch, shared):
    x = torch.randn(4, 8, 20, 20, requires_grad=True)
    grad = torch.randn(4, 8, 20, 20)

    def run():
        y = dk.functional.drop_block(
            x, 0.2, 5, shared_channels=shared, generator=torch.Generator().manual_seed(7)
        )
        (gx,) = torch.autograd.grad(y, x, grad)
        return y.detach(), gx

    compiled = run()
    monkeypatch.setattr(sparse_block, "cpu_kernels_available", lambda: False)
    pure = run()
    for a, b in zip(compiled, pure, strict=True):
        assert torch.equal(a == 0, b == 0)
        torch.testing.assert_close(a, b)


def test_backward_keeps_only_the_seeds_and_gradcheck():
    x = torch.randn(4, 16, 32, 32, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = dk.functional.drop_block(x, 0.1, 5)
    assert type(y.grad_fn).__name__ == "CompiledBlockDropBackward"
    assert sum(t.numel() * t.element_size() for t in saved) < x.numel() / 8
    t = torch.randn(2, 3, 7, 9, dtype=torch.float64, requires_grad=True)

    def function(s):
        return dk.functional.drop_block(s, 0.25, (2, 3), generator=torch.Generator().manual_seed(2))

    assert torch.autograd.gradcheck(function, (t,))
    assert torch.autograd.gradgradcheck(function, (t,))
