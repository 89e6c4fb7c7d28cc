"""The core family on every available device (CPU here; CUDA too where a GPU is present)."""

from __future__ import annotations

import pytest
import torch

import dropkit as dk
from tests.helpers import DEVICES, assert_fraction, generator

CASES = [
    ("dropout", lambda x, g: dk.functional.dropout(x, 0.3, generator=g), (256, 256)),
    ("spatial", lambda x, g: dk.functional.spatial_dropout(x, 0.3, generator=g), (64, 64, 4, 4)),
    ("block", lambda x, g: dk.functional.drop_block(x, 0.3, 3, generator=g), (16, 32, 16, 16)),
    ("path", lambda x, g: dk.functional.drop_path(x, 0.3, generator=g), (4096, 8)),
    ("gaussian", lambda x, g: dk.functional.gaussian_dropout(x, 0.3, generator=g), (256, 256)),
    ("alpha", lambda x, g: dk.functional.alpha_dropout(x, 0.3, generator=g), (256, 256)),
    ("noise", lambda x, g: dk.functional.gaussian_noise(x, 0.3, generator=g), (256, 256)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("name", "function", "shape"), CASES, ids=[case[0] for case in CASES])
def test_runs_on_device_reproducibly_with_gradients(
    device: str, name: str, function, shape
) -> None:  # type: ignore[no-untyped-def]
    x = torch.ones(shape, device=device, requires_grad=True)
    y = function(x, generator(5, device))
    assert y.device == x.device and y.shape == x.shape
    assert torch.equal(y, function(x, generator(5, device)))
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if name == "noise":  # additive: the gradient of x + noise is one
        assert torch.equal(x.grad, torch.ones_like(x))
    elif name != "alpha":  # multiplicative on ones: the gradient is the output itself
        torch.testing.assert_close(x.grad, y.detach())
    if name in ("dropout", "path"):
        assert_fraction(
            (y == 0).double().mean().item(), 0.3, y.numel() if name == "dropout" else 4096
        )


@pytest.mark.parametrize("device", DEVICES)
def test_generator_on_another_device_is_refused(device: str) -> None:
    other = "cpu" if device != "cpu" else "meta"
    x = torch.ones(3, device=device)
    if other == "meta":
        gen = torch.Generator(device="cpu")
        with pytest.raises(
            ValueError, match="generator is on device cpu, but the input is on meta"
        ):
            dk.functional.dropout(torch.ones(3, device="meta"), 0.5, generator=gen)
    else:
        with pytest.raises(
            ValueError, match="generator is on device cpu, but the input is on cuda"
        ):
            dk.functional.dropout(x, 0.5, generator=torch.Generator(device="cpu"))
