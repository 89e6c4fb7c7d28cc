"""Activation checkpointing replays every mask, with the global generator and with generator=."""

import pytest
import torch
from torch.utils.checkpoint import checkpoint

import dropkit as dk

FUNCTIONS = {
    "dropout": lambda t, g: dk.functional.dropout(t, 0.5, generator=g),
    "drop_path": lambda t, g: dk.functional.drop_path(t, 0.5, generator=g),
    "drop_block": lambda t, g: dk.functional.drop_block(t, 0.2, 3, generator=g),
    # ops that draw with torch's own samplers (randn, bernoulli_), replayed the same way
    "gaussian_dropout": lambda t, g: dk.functional.gaussian_dropout(t, 0.5, generator=g),
    "alpha_dropout": lambda t, g: dk.functional.alpha_dropout(t, 0.5, generator=g),
    "gaussian_noise": lambda t, g: dk.functional.gaussian_noise(t, 0.5, generator=g),
    "embedding_dropout": lambda t, g: dk.functional.embedding_dropout(
        t.reshape(-1, 16), 0.5, generator=g
    ).reshape(t.shape),
    "targeted_dropout": lambda t, g: dk.functional.targeted_dropout(
        t.reshape(t.shape[0], -1), 0.5, 0.5, generator=g
    ).reshape(t.shape),
}


@pytest.mark.parametrize("reentrant", [False, True])
@pytest.mark.parametrize("explicit", [False, True], ids=["global", "generator"])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_recompute_gives_the_gradients_of_the_plain_run(name, explicit, reentrant):
    function = FUNCTIONS[name]
    x = torch.randn(8, 4, 16, 16, requires_grad=True)
    weight = torch.randn(4, 16, 16)
    generator = torch.Generator() if explicit else None

    def region(t):
        # two draws from the same generator inside one region, then a third op after it
        return function(function(t * weight, generator).sin(), generator) * 2

    def run(checkpointed):
        torch.manual_seed(11)
        if generator is not None:
            generator.manual_seed(5)
        y = checkpoint(region, x, use_reentrant=reentrant) if checkpointed else region(x)
        y = function(y, generator)
        x.grad = None
        y.square().sum().backward()
        gradient = x.grad
        state = generator.get_state() if generator is not None else torch.get_rng_state()
        return y.detach(), gradient, state

    plain_output, plain, plain_state = run(False)
    replayed_output, replayed, replayed_state = run(True)
    # What differs, if anything: the forward, the recompute's masks, or the generator's draws.
    report = (
        f"outputs differ at {int((plain_output != replayed_output).sum())} elements, "
        f"gradients at {int((plain != replayed).sum())} (zeros only in one run: "
        f"{int(((plain == 0) != (replayed == 0)).sum())}), generator states equal: "
        f"{torch.equal(plain_state, replayed_state)}"
    )
    assert torch.equal(plain_output, replayed_output), report
    assert torch.equal(plain, replayed), report
    assert torch.equal(plain_state, replayed_state), report


def test_a_second_backward_replays_again():
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(4096, requires_grad=True)
    y = checkpoint(
        lambda t: dk.functional.dropout(t.exp(), 0.5, generator=generator), x, use_reentrant=False
    )
    first = torch.autograd.grad(y.sum(), x, retain_graph=True)[0]
    second = torch.autograd.grad(y.sum(), x)[0]
    assert torch.equal(first, second)
    assert torch.equal(first == 0, y.detach() == 0)


@pytest.mark.parametrize("reentrant", [False, True])
def test_a_recompute_with_nothing_to_replay_raises(reentrant):
    # the region's forward drew from the global generator, its recompute from an explicit one
    chosen = {"generator": None}
    x = torch.randn(64, requires_grad=True)

    def region(t):
        return dk.functional.dropout(t.exp(), 0.5, generator=chosen["generator"])

    y = checkpoint(region, x, use_reentrant=reentrant)
    chosen["generator"] = torch.Generator().manual_seed(0)
    with pytest.raises(RuntimeError, match="recorded no seed to replay"):
        y.sum().backward()
