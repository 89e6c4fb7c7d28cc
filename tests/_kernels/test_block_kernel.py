"""The compiled DropBlock kernel against the pure-PyTorch sparse path, seed for seed."""

import math

import pytest
import torch

import dropkit as dk
from dropkit._kernels import build
from dropkit._kernels.sparse_block import bernoulli_positions, block_positions, dropped_cells

pytestmark = pytest.mark.skipif(
    not build.cpu_kernels_available(), reason="no C++ compiler: the compiled path is unavailable"
)


def cpu():
    from dropkit._kernels import cpu

    return cpu


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
    out = cpu().block_drop(x, seeds, valid, blocks, shared, 1.25)
    assert torch.equal(out, expected)
    kept = cpu().block_kept(seeds, maps, spatial, valid, blocks)
    assert kept == dropped.numel() - int(dropped.sum())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_reduced_precision_dtypes(dtype):
    x = torch.randn(2, 5, 12, 12).to(dtype)
    seeds, valid, _ = draw(x, (3, 3), False, 0.05, seed=4)
    out = cpu().block_drop(x, seeds, valid, (3, 3), False, 1.5)
    expected, _ = reference(x, seeds, (3, 3), False, 1.5)
    assert out.dtype == dtype
    assert torch.equal(out, expected)


def test_non_contiguous_and_channels_last_input():
    base = torch.randn(2, 6, 10, 10)
    seeds, valid, _ = draw(base, (3, 3), False, 0.05, seed=5)
    layouts = (
        base.to(memory_format=torch.channels_last),
        base.transpose(2, 3).contiguous().transpose(2, 3),
        base.permute(1, 0, 2, 3).contiguous().permute(1, 0, 2, 3),
    )
    for shared in (False, True):
        chosen = seeds[seeds < 2 * 8 * 8] if shared else seeds  # 2 shared maps of 8 x 8 seeds
        expected, _ = reference(base, chosen, (3, 3), shared, 2.0)
        for x in layouts:
            out = cpu().block_drop(x, chosen, valid, (3, 3), shared, 2.0)
            assert torch.equal(out, expected)
            assert out.stride() == x.stride()
    expected, _ = reference(base, seeds, (3, 3), False, 2.0)
    sliced = torch.randn(2, 12, 10, 10)[:, ::2]
    expected, _ = reference(sliced, seeds, (3, 3), False, 2.0)
    assert torch.equal(cpu().block_drop(sliced, seeds, valid, (3, 3), False, 2.0), expected)


def test_unsorted_or_out_of_range_seeds_are_refused():
    x = torch.randn(1, 2, 8, 8)
    with pytest.raises(RuntimeError, match="sorted, distinct"):
        cpu().block_drop(x, torch.tensor([9, 3]), (6, 6), (3, 3), False, 1.0)
    with pytest.raises(RuntimeError, match="sorted, distinct"):
        cpu().block_drop(x, torch.tensor([72]), (6, 6), (3, 3), False, 1.0)


def layouts_of(x):
    """``x`` in every memory layout the kernel has a path for, and some it has none for."""
    spatial_last = x.transpose(-1, -2).contiguous().transpose(-1, -2)  # each map one run
    channels_inner = x.movedim(1, -1).contiguous().movedim(-1, 1)  # each row of (W, C) one run
    layouts = [spatial_last, channels_inner]
    if x.dim() == 5:
        layouts.append(x.permute(0, 1, 4, 2, 3).contiguous().permute(0, 1, 3, 4, 2))
    layouts.append(torch.stack([x, x], dim=1)[:, 0])  # not dense: the output is contiguous
    return layouts


@pytest.mark.parametrize("rate", [0.3, 0.85], ids=["sparse", "dense"])  # dense: many blocks
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    "shape", [(4, 16, 20, 20), (2, 8, 6, 10, 12), (3, 5, 30), (2, 300, 3, 250)]
)
def test_every_layout_and_dtype_gives_the_contiguous_result(shape, dtype, rate):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(6)).to(dtype)
    for shared in (False, True):
        expected = dk.functional.drop_block(
            x, rate, 3, shared_channels=shared, generator=torch.Generator().manual_seed(7)
        )
        assert (expected == 0).any() and (expected != 0).any()
        for y in layouts_of(x):
            out = dk.functional.drop_block(
                y, rate, 3, shared_channels=shared, generator=torch.Generator().manual_seed(7)
            )
            assert torch.equal(out, expected), (shared, y.stride())
            assert out.stride() == torch.empty_like(y).stride()


@pytest.mark.parametrize(
    ("shape", "rate", "block"), [((1, 1, 600, 600), 0.5, 1), ((2, 3, 400, 400), 0.2, 2)]
)
def test_many_block_seeds_match_the_reference_path(shape, rate, block):
    # over 32768 geometric gaps a batch: the kernel's scalar steps against the tensor ops
    x = torch.randn(shape, generator=torch.Generator().manual_seed(8))
    compiled = dk.functional.drop_block(x, rate, block, generator=torch.Generator().manual_seed(9))
    with dk.backends.force("reference"):
        expected = dk.functional.drop_block(
            x, rate, block, generator=torch.Generator().manual_seed(9)
        )
    assert torch.equal(compiled, expected)
    assert 0.3 * rate < (compiled == 0).float().mean() < 3 * rate
