"""Broadcast masks (drop_path, spatial dropout, broadcast_dims) computed by the compiled kernel on
CPU are the Philox definition's masks bit for bit, as the pure-PyTorch rounds compute them."""

from __future__ import annotations

import pytest
import torch

import dropkit as dk
from dropkit._kernels import ops, philox

CPU = torch.device("cpu")


@pytest.mark.parametrize("shape", [(1,), (2, 1, 1, 1), (7, 3), (64, 1, 1), (5, 0), (1000,)])
@pytest.mark.parametrize("p", [1e-9, 0.1, 0.5, 0.9])
def test_kernel_route_equals_the_definition(shape: tuple[int, ...], p: float) -> None:
    for seed in (0, 123456789, -5, 2**62 + 3):
        definition = philox.keep_mask(list(shape), p, torch.tensor(seed), device=CPU)
        routed = ops.keep_mask_op(torch.tensor(seed), list(shape), p, CPU)
        assert routed.dtype == torch.bool and routed.shape == shape
        assert torch.equal(routed, definition), (shape, p, seed)


def test_drop_path_masks_agree_across_backends() -> None:
    x = torch.ones(256, 4, 3)
    torch.manual_seed(3)
    fast = dk.functional.drop_path(x, 0.4)
    state = torch.get_rng_state()
    torch.manual_seed(3)
    with dk.backends.force("reference"):
        reference = dk.functional.drop_path(x, 0.4)
    assert torch.equal(fast, reference)
    assert torch.equal(torch.get_rng_state(), state)
    assert 0 < int((fast[:, 0, 0] == 0).sum()) < 256
