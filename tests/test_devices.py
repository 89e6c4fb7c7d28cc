"""The fast paths on every available device: CPU always, CUDA too where a GPU is present.

Each test takes the ``device`` fixture, so the same assertions run on every device: the same mask
for the same seed on every backend of the device (and the mask docs/masks.md defines), keep rates
within their binomial tolerance, gradients that use the forward's mask, nothing per element saved
for backward, in-place ops after the op, and channels_last kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch.utils.checkpoint import checkpoint

import dropkit as dk
from dropkit._kernels import philox
from dropkit._kernels.build import cpu_kernels_available
from tests.functional.test_drop_block import expected_drop_fraction
from tests.helpers import DEVICES, assert_fraction, saved_bytes

Op = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

#: The ops with a fast path.
FAST_OPS: dict[str, Op] = {
    "dropout": lambda t, g: dk.functional.dropout(t, 0.3, generator=g),
    "dropout broadcast_dims=(2, 3)": lambda t, g: dk.functional.dropout(
        t, 0.3, broadcast_dims=(2, 3), generator=g
    ),
    "drop_path row": lambda t, g: dk.functional.drop_path(t, 0.3, generator=g),
    "drop_path batch": lambda t, g: dk.functional.drop_path(t, 0.3, mode="batch", generator=g),
    "spatial_dropout": lambda t, g: dk.functional.spatial_dropout(t, 0.3, generator=g),
    "drop_block sparse": lambda t, g: dk.functional.drop_block(t, 0.1, 3, generator=g),
    "drop_block dense": lambda t, g: dk.functional.drop_block(t, 0.9, 4, generator=g),
    "drop_block dense shared": lambda t, g: dk.functional.drop_block(
        t, 0.9, 4, shared_channels=True, generator=g
    ),
}


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


def seeded(device: torch.device, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def native_backend(device: torch.device) -> str | None:
    """The compiled backend for ``device`` when it can run here, else None."""
    if device.type == "cpu":
        return "cpu" if cpu_kernels_available() else None
    return "triton" if dk.backends.triton_installed() else None


def forward_backward(
    op: Op, x: torch.Tensor, grad: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    leaf = x.detach().requires_grad_()
    y = op(leaf, seeded(device, 3))
    y.backward(grad)
    assert leaf.grad is not None
    return y.detach(), leaf.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", list(FAST_OPS))
def test_every_backend_gives_the_same_output_and_gradient(
    device: torch.device, name: str, dtype: torch.dtype
) -> None:
    native = native_backend(device)
    if native is None:
        pytest.skip(f"no compiled backend for {device.type} here")
    x = torch.randn(16, 8, 20, 20, device=device, generator=seeded(device, 1)).to(dtype)
    x[:, :, 0, 0] = float("inf")  # a dropped infinity must be 0, never NaN
    grad = torch.randn(x.shape, device=device, generator=seeded(device, 2)).to(dtype)
    with dk.backends.force(native):
        y, gx = forward_backward(FAST_OPS[name], x, grad, device)
    with dk.backends.force("reference"):
        y_ref, gx_ref = forward_backward(FAST_OPS[name], x, grad, device)
    assert not y.isnan().any()
    if name != "drop_path batch":  # which drops all or nothing
        assert (y == 0).any() and (y != 0).any(), "the mask must drop some elements and keep some"
    assert torch.equal(y, y_ref), f"{native} and reference outputs differ"
    assert torch.equal(gx, gx_ref), f"{native} and reference gradients differ"


def test_the_mask_is_the_documented_function_of_the_seed(device: torch.device) -> None:
    """The device's mask is philox.keep_mask of the seed its generator draws, computed on CPU."""
    x = torch.ones(3, 1000, 7, device=device)
    y = dk.functional.dropout(x, 0.3, generator=seeded(device, 11))
    seed = philox.sample_seed(seeded(device, 11), device=device)
    expected = philox.keep_mask(x.shape, 0.3, seed.cpu(), device="cpu")
    assert torch.equal((y != 0).cpu(), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_dropout_keep_rate_and_independent_neighbours(
    device: torch.device, dtype: torch.dtype
) -> None:
    count = 1 << 18
    y = dk.functional.dropout(
        torch.full((count,), 8.0, device=device, dtype=dtype), 0.3, generator=seeded(device, 4)
    )
    keep = (y != 0).double()
    assert_fraction(1 - keep.mean().item(), 0.3, count)
    scale = y[y != 0].unique()
    assert scale.numel() == 1
    torch.testing.assert_close(scale.double().cpu(), torch.tensor([8 / 0.7], dtype=torch.float64),
                               rtol=1e-2 if dtype != torch.float32 else 1e-6, atol=0)  # fmt: skip
    q = 0.7
    for lag in (1, 1024, 4096):
        both = (keep[lag:] * keep[:-lag]).mean().item()
        pairs = count - lag
        # neighbouring products share an element: covariance q^3 - q^4 with each of two others
        sigma = math.sqrt((q**2 * (1 - q**2) + 2 * (q**3 - q**4)) / pairs)
        assert abs(both - q * q) < 5 * sigma, f"elements {lag} apart: {both} kept together"


def test_drop_path_drops_whole_rows_at_its_rate(device: torch.device) -> None:
    rows = 8192
    y = dk.functional.drop_path(torch.ones(rows, 64, device=device), 0.3, generator=seeded(device))
    dropped = (y == 0).all(1)
    assert ((y == 1 / 0.7) | (y == 0)).all()
    assert ((y != 0).all(1) | dropped).all(), "a row is dropped whole or kept whole"
    assert_fraction(dropped.double().mean().item(), 0.3, rows)


def test_spatial_dropout_drops_whole_channels_at_its_rate(device: torch.device) -> None:
    maps = dk.functional.spatial_dropout(
        torch.ones(64, 128, 5, 5, device=device), 0.3, generator=seeded(device, 5)
    ).flatten(2)
    assert torch.equal(maps, maps[..., :1].expand_as(maps)), "a channel is dropped whole"
    assert_fraction((maps[..., 0] == 0).double().mean().item(), 0.3, 64 * 128)


@pytest.mark.parametrize("shared", [False, True])
def test_drop_block_fraction_is_the_papers_expectation(device: torch.device, shared: bool) -> None:
    # 512 masks either way
    shape = (256, 2, 56, 56) if shared else (8, 64, 56, 56)
    y = dk.functional.drop_block(
        torch.ones(shape, device=device), 0.1, 7, shared_channels=shared, generator=seeded(device)
    )
    per_map = (y == 0).double().flatten(2).mean(2).flatten()
    if shared:
        assert torch.equal(y[:, 0] == 0, y[:, 1] == 0)
        per_map = per_map[::2]
    tolerance = 5 * per_map.std().item() / math.sqrt(per_map.numel())
    expected = expected_drop_fraction(0.1, (56, 56), (7, 7))
    assert abs(per_map.mean().item() - expected) < tolerance


@pytest.mark.parametrize("name", list(FAST_OPS))
def test_backward_uses_the_forward_mask(device: torch.device, name: str) -> None:
    x = torch.rand(8, 16, 12, 12, device=device).add_(1).requires_grad_()
    y = FAST_OPS[name](x, seeded(device, 6))
    y.backward(torch.ones_like(y))
    assert x.grad is not None
    assert torch.equal(x.grad == 0, y == 0)
    kept = y != 0
    # the gradient of a kept element is the output's scale: y / x
    torch.testing.assert_close(x.grad[kept], (y / x)[kept].detach())


@pytest.mark.parametrize(
    "name", ["dropout", "drop_path row", "spatial_dropout", "drop_block dense"]
)
def test_gradcheck(device: torch.device, name: str) -> None:
    x = torch.randn(2, 2, 5, 5, device=device, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: FAST_OPS[name](t, seeded(device, 7)), (x,), fast_mode=True
    )


@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpoint_replays_the_mask(device: torch.device, reentrant: bool) -> None:
    x = torch.randn(1 << 16, device=device, requires_grad=True)
    weight = torch.randn(1 << 16, device=device)

    def block(t: torch.Tensor) -> torch.Tensor:
        return dk.functional.dropout(t * weight, 0.5)

    torch.manual_seed(1)
    block(x).sum().backward()
    assert x.grad is not None
    plain = x.grad.clone()
    x.grad = None
    torch.manual_seed(1)
    out = checkpoint(block, x, use_reentrant=reentrant)
    assert isinstance(out, torch.Tensor)
    out.sum().backward()
    assert torch.equal(plain, x.grad)


def test_nothing_per_element_is_saved_for_backward(device: torch.device) -> None:
    x = torch.randn(64, 32, 16, 16, device=device, requires_grad=True)  # 524288 elements
    g = seeded(device)
    assert saved_bytes(lambda t: dk.functional.dropout(t, 0.5, generator=g), x) == 8  # the seed
    assert saved_bytes(lambda t: dk.functional.drop_block(t, 0.1, 3, generator=g), x) == 8
    # masks shared along dims (rows, channels) regenerate from the seed too
    assert saved_bytes(lambda t: dk.functional.drop_path(t, 0.5, generator=g), x) == 8
    assert saved_bytes(lambda t: dk.functional.spatial_dropout(t, 0.5, generator=g), x) == 8
    assert saved_bytes(lambda t: torch.nn.functional.dropout(t, 0.5), x) >= x.numel()


@pytest.mark.parametrize("name", list(FAST_OPS))
def test_in_place_ops_after_the_op_keep_the_gradient_right(device: torch.device, name: str) -> None:
    x = torch.randn(8, 16, 12, 12, device=device, requires_grad=True)
    y = FAST_OPS[name](x, seeded(device, 8))
    expected = (y.detach() / x.detach()).nan_to_num(0.0)  # the mask times its scale
    y.mul_(3).relu_()  # in-place ops on the op's output, as ReLU(inplace=True) does
    y.sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, 3 * expected * (y > 0))


@pytest.mark.parametrize("name", list(FAST_OPS))
def test_channels_last_stays_channels_last(device: torch.device, name: str) -> None:
    x = torch.randn(8, 16, 12, 12, device=device).contiguous(memory_format=torch.channels_last)
    y = FAST_OPS[name](x, seeded(device, 9))
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert not y._is_view()
    contiguous = FAST_OPS[name](x.contiguous(), seeded(device, 9))
    assert torch.equal(y, contiguous), "the mask follows logical indices, not the layout"


def test_drop_path_residual_equals_x_plus_drop_path_of_the_branch(device: torch.device) -> None:
    torch.manual_seed(0)
    branch = torch.nn.Linear(32, 32).to(device)
    h = torch.randn(64, 32, device=device)
    fused = dk.drop_path_residual(h, branch, 0.4, generator=seeded(device, 10))
    plain = h + dk.functional.drop_path(branch(h), 0.4, generator=seeded(device, 10))
    torch.testing.assert_close(fused, plain)
    skipped = (fused == h).all(1)
    assert skipped.any() and not skipped.all()
