import math

import pytest
import torch
import torch.nn.functional as F

import dropkit as dk
from dropkit._kernels.sparse_block import bernoulli_positions, block_positions


@pytest.mark.parametrize("rate", [0.001, 0.03, 0.5])
def test_bernoulli_positions_rate_and_uniformity(rate):
    count = 200_000
    positions = bernoulli_positions(count, rate, torch.device("cpu"), torch.manual_seed(0))
    assert torch.equal(positions, positions.unique())  # sorted and distinct
    assert positions.min() >= 0 and positions.max() < count
    expected = count * rate
    assert abs(positions.numel() - expected) < 5 * math.sqrt(expected * (1 - rate))
    # each half of the range gets half of the positions (a gap bias would skew it)
    first = (positions < count // 2).sum().item()
    assert abs(first - positions.numel() / 2) < 5 * math.sqrt(positions.numel() / 4)


def test_block_positions_match_a_dense_max_pool():
    generator = torch.Generator().manual_seed(0)
    spatial, blocks = (9, 11), (3, 4)
    valid = tuple(s - b + 1 for s, b in zip(spatial, blocks, strict=True))
    seeds_dense = torch.rand(2, 3, *valid, generator=generator) < 0.05
    seeds = seeds_dense.flatten().nonzero().squeeze(1)
    dropped = torch.zeros(2 * 3 * math.prod(spatial), dtype=torch.bool)
    dropped[block_positions(seeds, valid, spatial, blocks)] = True
    padded = F.pad(seeds_dense.float(), (3, 3, 2, 2))
    expected = F.max_pool2d(padded, kernel_size=blocks, stride=1) > 0
    assert torch.equal(dropped.view(2, 3, *spatial), expected)


@pytest.mark.parametrize("shared", [False, True])
def test_gradient_zero_exactly_on_dropped_blocks(shared):
    x = torch.rand(4, 6, 20, 20, dtype=torch.float64).add_(1).requires_grad_()
    y = dk.functional.drop_block(
        x, 0.2, 5, shared_channels=shared, generator=torch.Generator().manual_seed(0)
    )
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad == 0, y == 0)
    scale = y.numel() / (y != 0).sum()
    assert torch.allclose(x.grad[y != 0], scale.to(torch.float64))


def test_per_channel_saves_only_seeds():
    x = torch.randn(4, 16, 32, 32, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        dk.functional.drop_block(x, 0.1, 5)
    saved_bytes = sum(t.numel() * t.element_size() for t in saved)
    assert saved_bytes < x.numel() / 8  # far below one bit per element


def test_gradcheck():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)

    def function(t):
        return dk.functional.drop_block(t, 0.2, 3, generator=torch.Generator().manual_seed(1))

    assert torch.autograd.gradcheck(function, (x,))
