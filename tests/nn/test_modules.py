"""The module shells: validation on construction and assignment, repr, train/eval, rank checks."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

import dropkit as dk
from tests.helpers import assert_fraction

RATE_MODULES = [
    lambda p: dk.Dropout(p),
    lambda p: dk.SpatialDropout1d(p),
    lambda p: dk.SpatialDropout2d(p),
    lambda p: dk.SpatialDropout3d(p),
    lambda p: dk.DropBlock2d(p, 3),
    lambda p: dk.DropBlock3d(p, 3),
    lambda p: dk.DropPath(p),
    lambda p: dk.GaussianDropout(p),
    lambda p: dk.AlphaDropout(p),
]
INPUT_FOR = {
    dk.SpatialDropout1d: (4, 6, 8),
    dk.SpatialDropout3d: (2, 4, 5, 5, 5),
    dk.DropBlock3d: (2, 4, 6, 6, 6),
}


def example_input(module: nn.Module) -> torch.Tensor:
    return torch.ones(INPUT_FOR.get(type(module), (4, 6, 8, 8)))


@pytest.mark.parametrize("make", RATE_MODULES)
def test_rate_validated_on_construction_and_assignment(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        make(1.5)
    module = make(0.2)
    module.p = 0.4
    assert module.p == 0.4
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got -0.1"):
        module.p = -0.1
    assert module.p == 0.4, "a refused assignment must leave the rate unchanged"


@pytest.mark.parametrize("make", RATE_MODULES)
def test_eval_is_identity_and_train_is_random(make) -> None:  # type: ignore[no-untyped-def]
    module = make(0.5)
    x = example_input(module)
    assert module.eval()(x) is x
    torch.manual_seed(0)
    first = module.train()(x)
    second = module(x)
    assert first.shape == x.shape
    assert not torch.equal(first, second)


@pytest.mark.parametrize("make", RATE_MODULES)
def test_copy_pickle_and_state_dict(make) -> None:  # type: ignore[no-untyped-def]
    module = make(0.3)
    clone = pickle.loads(pickle.dumps(module))
    assert clone.p == 0.3 and repr(clone) == repr(module)
    assert copy.deepcopy(module).p == 0.3
    assert module.state_dict() == {}


def test_reassigned_rate_is_used() -> None:
    layer = dk.Dropout(0.1)
    layer.p = 0.6
    y = layer(torch.ones(500, 500))
    assert_fraction((y == 0).double().mean().item(), 0.6, 250_000)


def test_reprs() -> None:
    assert repr(dk.Dropout(0.5, broadcast_dims=(1,))) == "Dropout(p=0.5, broadcast_dims=(1,))"
    assert repr(dk.SpatialDropout3d(0.2)) == "SpatialDropout3d(p=0.2)"
    assert (
        repr(dk.DropBlock2d(0.1, (3, 5)))
        == "DropBlock2d(p=0.1, block_size=(3, 5), shared_channels=False)"
    )
    assert repr(dk.DropBlock3d(0.1, 3, shared_channels=True)) == (
        "DropBlock3d(p=0.1, block_size=3, shared_channels=True)"
    )
    assert repr(dk.DropPath(0.2, mode="batch")) == "DropPath(p=0.2, mode='batch')"
    assert repr(dk.GaussianDropout(0.2)) == "GaussianDropout(p=0.2)"
    assert repr(dk.AlphaDropout(0.2)) == "AlphaDropout(p=0.2)"
    assert repr(dk.GaussianNoise(0.3)) == "GaussianNoise(std=0.3)"


@pytest.mark.parametrize(
    ("module", "shape", "message"),
    [
        (
            dk.SpatialDropout1d(0.1),
            (4, 8),
            r"3 dimensions \(N, C, L\) for SpatialDropout1d; add a batch",
        ),
        (
            dk.SpatialDropout2d(0.1),
            (3, 8, 8),
            r"4 dimensions \(N, C, H, W\) for SpatialDropout2d; add a batch",
        ),
        (
            dk.SpatialDropout2d(0.1),
            (1, 3, 8, 8, 8),
            r"4 dimensions \(N, C, H, W\) for SpatialDropout2d, got 5",
        ),
        (
            dk.SpatialDropout3d(0.1),
            (3, 4, 4, 4),
            r"5 dimensions \(N, C, D, H, W\) for SpatialDropout3d",
        ),
        (dk.DropBlock2d(0.1), (3, 8, 8), r"4 dimensions \(N, C, H, W\) for DropBlock2d"),
        (dk.DropBlock3d(0.1), (2, 3, 8, 8), r"5 dimensions \(N, C, D, H, W\) for DropBlock3d"),
    ],
)
def test_modules_accept_only_their_rank(
    module: nn.Module, shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        module(torch.ones(shape))


def test_other_constructor_errors() -> None:
    with pytest.raises(ValueError, match="block_size must be an int >= 1, got 0"):
        dk.DropBlock2d(0.1, 0)
    with pytest.raises(ValueError, match="mode must be one of 'row', 'batch', got 'x'"):
        dk.DropPath(0.1, mode="x")
    with pytest.raises(TypeError, match=r"broadcast_dims must contain ints, got \('a',\)"):
        dk.Dropout(0.1, broadcast_dims=("a",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="std must be a finite number >= 0, got -1.0"):
        dk.GaussianNoise(-1.0)
    noise = dk.GaussianNoise(0.1)
    with pytest.raises(ValueError, match="std must be a finite number >= 0, got nan"):
        noise.std = float("nan")
    with pytest.raises(ValueError, match="broadcast_dims has dim 5"):
        dk.Dropout(0.1, broadcast_dims=5)(torch.ones(2, 2))


def test_modules_train_inside_a_network() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        dk.DropBlock2d(0.1, 3),
        dk.SpatialDropout2d(0.1),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 16),
        dk.Dropout(0.3),
        dk.GaussianNoise(0.05),
        nn.Linear(16, 2),
    )
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    x, target = torch.randn(16, 3, 8, 8), torch.randint(0, 2, (16,))
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(net(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) < sum(losses[:5])
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
