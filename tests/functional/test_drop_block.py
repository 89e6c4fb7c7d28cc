"""DropBlock: the paper's seed rate, whole blocks, batch-level rescale."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dropkit.functional import drop_block
from tests.helpers import FLOAT_DTYPES, assert_fraction, generator

_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def expected_drop_fraction(p: float, spatial: tuple[int, ...], block: tuple[int, ...]) -> float:
    """Exact E[dropped fraction]: a unit covered by k possible seeds survives with (1 - gamma)^k."""
    block = tuple(min(b, s) for b, s in zip(block, spatial, strict=True))
    valid = [s - b + 1 for s, b in zip(spatial, block, strict=True)]
    gamma = min(1.0, p * math.prod(spatial) / (math.prod(block) * math.prod(valid)))
    covers = []
    for size, b, v in zip(spatial, block, valid, strict=True):
        covers.append([min(i, v - 1) - max(0, i - b + 1) + 1 for i in range(size)])
    grids = torch.meshgrid(*[torch.tensor(c, dtype=torch.float64) for c in covers], indexing="ij")
    counts = math.prod(grids) if len(grids) > 1 else grids[0]
    return float((1 - (1 - gamma) ** counts).mean())


def zeros_are_whole_blocks(y: torch.Tensor, block: tuple[int, ...]) -> bool:
    """True when the zero set equals the union of all-zero blocks lying fully inside the map."""
    spatial = y.shape[2:]
    block = tuple(min(b, s) for b, s in zip(block, spatial, strict=True))
    zeros = (y == 0).double()
    full = (_AVG_POOL[len(block)](zeros, block, stride=1) == 1).double()
    padding = [pad for b in reversed(block) for pad in (b - 1, b - 1)]
    covered = _MAX_POOL[len(block)](F.pad(full, padding), block, stride=1)
    return torch.equal(covered, zeros)


@pytest.mark.parametrize(
    ("p", "size", "block"),
    [
        (0.1, (56, 56), (7, 7)),
        (0.3, (20, 20), (5, 5)),
        (0.5, (12, 12), (3, 3)),
        (0.2, (16, 15), (4, 6)),
    ],
)
def test_realised_fraction_equals_the_papers_expectation(
    p: float, size: tuple[int, int], block: tuple[int, int]
) -> None:
    x = torch.ones(32, 64, *size)
    y = drop_block(x, p, block, generator=generator(1))
    per_map = (y == 0).double().flatten(2).mean(2).flatten()
    tolerance = 5 * per_map.std().item() / math.sqrt(per_map.numel())
    expected = expected_drop_fraction(p, size, block)
    assert abs(per_map.mean().item() - expected) < tolerance
    if p <= 0.1:  # little overlap: close to the target rate itself
        assert abs(expected - p) < 0.01


def test_size_correction_is_applied() -> None:
    # without the (size / valid)^2 correction the fraction would be 0.1 * (50/56)^2 = 0.080
    y = drop_block(torch.ones(32, 64, 56, 56), 0.1, 7, generator=generator(2))
    assert (y == 0).double().mean().item() > 0.09


@pytest.mark.parametrize(
    ("shape", "block"),
    [
        ((8, 16, 20, 20), (5, 5)),
        ((8, 16, 17, 17), (4, 4)),
        ((8, 16, 15, 18), (3, 6)),
        ((16, 8, 30), (7,)),
        ((4, 8, 9, 10, 11), (3, 3, 3)),
    ],
)
def test_every_zero_lies_in_a_whole_zeroed_block(
    shape: tuple[int, ...], block: tuple[int, ...]
) -> None:
    y = drop_block(torch.ones(shape), 0.25, block, generator=generator(3))
    assert (y == 0).any()
    assert zeros_are_whole_blocks(y, block)


def test_survivors_rescaled_by_count_over_the_batch() -> None:
    x = torch.randn(16, 8, 14, 14, generator=generator(4))
    y = drop_block(x, 0.3, 3, generator=generator(5))
    kept = y != 0
    scale = kept.numel() / kept.sum().item()
    torch.testing.assert_close(y[kept], x[kept] * scale)


def test_per_channel_masks_by_default_and_shared_on_request() -> None:
    x = torch.ones(4, 32, 16, 16)
    per_channel = drop_block(x, 0.3, 3, generator=generator(6)) == 0
    assert not torch.equal(per_channel, per_channel[:, :1].expand_as(per_channel))
    shared = drop_block(x, 0.3, 3, shared_channels=True, generator=generator(6)) == 0
    assert torch.equal(shared, shared[:, :1].expand_as(shared))
    assert zeros_are_whole_blocks(shared.float().logical_not().float(), (3, 3))


def test_shared_channels_fraction() -> None:
    y = drop_block(torch.ones(512, 2, 20, 20), 0.2, 5, shared_channels=True, generator=generator(7))
    per_map = (y[:, 0] == 0).double().flatten(1).mean(1)
    tolerance = 5 * per_map.std().item() / math.sqrt(per_map.numel())
    assert abs(per_map.mean().item() - expected_drop_fraction(0.2, (20, 20), (5, 5))) < tolerance


def test_block_larger_than_the_map_is_clipped() -> None:
    y = drop_block(torch.ones(100, 40, 5, 5), 0.3, 10, generator=generator(8))
    maps = (y == 0).flatten(2)
    assert torch.equal(maps, maps[..., :1].expand_as(maps)), "a clipped block must cover the map"
    assert_fraction(maps[..., 0].double().mean().item(), 0.3, 4000)


def test_gradient_is_mask_times_scale_and_gradcheck() -> None:
    x = torch.randn(4, 3, 9, 9, requires_grad=True)
    y = drop_block(x, 0.3, 3, generator=generator(9))
    y.backward(torch.ones_like(y))
    kept = (y != 0).float()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, kept * kept.numel() / kept.sum())
    x64 = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: drop_block(t, 0.3, 3, generator=generator(10)), (x64,)
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_dtypes_and_channels_last(dtype: torch.dtype) -> None:
    x = torch.ones(8, 16, 12, 12, dtype=dtype).to(memory_format=torch.channels_last)
    y = drop_block(x, 0.2, 3, generator=generator(11))
    assert y.dtype == dtype and y.shape == x.shape
    assert zeros_are_whole_blocks(y.double(), (3, 3))


def test_eval_zero_one_and_empty() -> None:
    x = torch.randn(2, 3, 8, 8)
    assert drop_block(x, 0.5, 3, training=False) is x
    assert drop_block(x, 0.0, 3) is x
    assert torch.equal(drop_block(x, 1.0, 3), torch.zeros_like(x))
    assert drop_block(torch.empty(0, 3, 8, 8), 0.5, 3).shape == (0, 3, 8, 8)


def test_errors() -> None:
    with pytest.raises(ValueError, match="block_size must be an int >= 1, got 0"):
        drop_block(torch.ones(1, 1, 4, 4), 0.1, 0)
    with pytest.raises(
        ValueError, match=r"block_size must be an int or 2 ints \(one per spatial dim\)"
    ):
        drop_block(torch.ones(1, 1, 4, 4), 0.1, (3, 3, 3))
    with pytest.raises(ValueError, match="input must have 3 or 4 or 5 dimensions .*got 2"):
        drop_block(torch.ones(4, 4), 0.1, 3)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.1"):
        drop_block(torch.ones(1, 1, 4, 4), 1.1, 3)
    with pytest.raises(TypeError, match="floating-point"):
        drop_block(torch.ones(1, 1, 4, 4, dtype=torch.int32), 0.1, 3)


@settings(max_examples=40, deadline=None)
@given(
    spatial=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    block=st.integers(1, 8),
    p=st.floats(0.0, 1.0),
    shared=st.booleans(),
    dtype=st.sampled_from(FLOAT_DTYPES),
    seed=st.integers(0, 2**31),
)
def test_property_blocks_whole_and_rescale_exact(
    spatial: list[int], block: int, p: float, shared: bool, dtype: torch.dtype, seed: int
) -> None:
    x = torch.rand(3, 4, *spatial, generator=generator(seed)).add_(0.5).to(dtype)
    y = drop_block(x, p, block, shared_channels=shared, generator=generator(seed + 1))
    assert y.shape == x.shape and y.dtype == dtype and not torch.isnan(y).any()
    blocks = (block,) * len(spatial)
    assert zeros_are_whole_blocks(y.double(), blocks)
    kept = y != 0
    if p == 1.0 or not kept.any():
        assert not kept.any()
        return
    if p > 0.0:
        mask = kept[:, :1] if shared else kept
        scale = mask.numel() / mask.sum().item()
        torch.testing.assert_close(y[kept], x[kept] * scale)
