"""The one-pass kernel for masks shared along trailing dims (drop_path, spatial dropout)."""

import pytest
import torch

import dropkit as dk
from dropkit._kernels import build, fused
from dropkit._kernels.fused import covers_leading_dims
from dropkit._kernels.masks import apply_keep_mask

needs_kernel = pytest.mark.skipif(
    not build.cpu_kernels_available(), reason="no C++ compiler: the compiled path is unavailable"
)


def test_covers_leading_dims():
    assert covers_leading_dims((8, 1, 1), (8, 3, 4))
    assert covers_leading_dims((8, 3, 1), (8, 3, 4))
    assert covers_leading_dims((1, 1, 1), (8, 3, 4))
    assert covers_leading_dims((4, 1, 1), (4, 1, 3))
    assert not covers_leading_dims((8, 1, 4), (8, 3, 4))
    assert not covers_leading_dims((1, 3, 1), (8, 3, 4))
    assert not covers_leading_dims((8, 3), (8, 3, 4))


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("mask_shape", [(6, 1, 1), (6, 5, 1), (1, 1, 1)])
def test_kernel_equals_where(dtype, mask_shape):
    x = torch.randn(6, 5, 7000).to(dtype)
    x[0, 0, 0] = float("inf")
    keep = torch.rand(mask_shape, generator=torch.Generator().manual_seed(1)) < 0.5
    keep.view(-1)[0] = False
    out = torch.ops.dropkit.row_dropout(x, keep, 1 / 0.7)
    assert out.dtype == dtype and out.shape == x.shape
    assert torch.equal(out, apply_keep_mask(x, keep, 1 / 0.7))
    assert not out.isnan().any()


@needs_kernel
def test_kernel_refuses_a_mask_that_splits_rows():
    with pytest.raises(RuntimeError, match="whole leading rows"):
        torch.ops.dropkit.row_dropout(torch.ones(10), torch.ones(3, dtype=torch.bool), 1.0)


@needs_kernel
@pytest.mark.parametrize(
    "function",
    [
        lambda t, g: dk.functional.drop_path(t, 0.4, generator=g),
        lambda t, g: dk.functional.spatial_dropout(t, 0.4, generator=g),
        lambda t, g: dk.functional.dropout(t, 0.4, broadcast_dims=(2, 3), generator=g),
    ],
)
def test_routed_ops_match_the_where_path(monkeypatch, function):
    x = torch.randn(16, 8, 32, 32)
    x[:, :, 0, 0] = float("inf")
    grad = torch.randn_like(x)

    def run():
        leaf = x.clone().requires_grad_()
        y = function(leaf, torch.Generator().manual_seed(3))
        y.backward(grad)
        return y.detach(), leaf.grad, type(y.grad_fn).__name__

    y, gx, name = run()
    assert name == "RowMaskDropoutBackward"
    monkeypatch.setattr(fused, "cpu_kernels_available", lambda: False)
    y_where, gx_where, name_where = run()
    assert name_where != name
    assert torch.equal(y, y_where) and torch.equal(gx, gx_where)
    assert not y.isnan().any()


@needs_kernel
def test_non_contiguous_input_takes_the_where_path():
    x = torch.randn(64, 32, 32).transpose(0, 1)
    y = dk.functional.drop_path(x, 0.5, generator=torch.Generator().manual_seed(0))
    assert type(y.grad_fn).__name__ != "RowMaskDropoutBackward"
    rows = (y == 0).flatten(1).all(1) | (y != 0).flatten(1).all(1)
    assert rows.all()


@needs_kernel
def test_saves_only_the_small_mask_and_gradcheck(monkeypatch):
    x = torch.randn(64, 1024, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        dk.functional.drop_path(x, 0.3)
    assert sum(t.numel() * t.element_size() for t in saved) == 64  # one bool per row
    monkeypatch.setattr(fused, "MIN_FUSED_ELEMENTS", 1)
    t = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)

    def function(s):
        return dk.functional.drop_path(s, 0.4, generator=torch.Generator().manual_seed(4))

    assert type(function(t).grad_fn).__name__ == "RowMaskDropoutBackward"
    assert torch.autograd.gradcheck(function, (t,))
    assert torch.autograd.gradgradcheck(function, (t,))


@needs_kernel
@pytest.mark.parametrize(
    "function",
    [
        lambda t: dk.functional.drop_path(t, 0.5),
        lambda t: dk.functional.drop_block(t, 0.2, 3),
        lambda t: dk.functional.drop_block(t, 0.2, 3, shared_channels=True),
    ],
)
def test_checkpoint_replays_the_same_masks(function):
    from torch.utils.checkpoint import checkpoint

    x = torch.randn(32, 8, 16, 16, requires_grad=True)
    weight = torch.randn(8, 16, 16)

    def block(t):
        return function(t * weight) * 2

    torch.manual_seed(5)
    block(x).sum().backward()
    plain = x.grad.clone()
    x.grad = None
    torch.manual_seed(5)
    checkpoint(block, x, use_reentrant=False).sum().backward()
    assert torch.equal(x.grad, plain)
    assert (plain == 0).any()
