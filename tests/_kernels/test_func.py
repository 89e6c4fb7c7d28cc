"""torch.func and forward-mode AD through every op; vmap's three randomness modes."""

import pytest
import torch
import torch.autograd.forward_ad as forward_ad

import dropkit as dk

FUNCTIONS = {
    "dropout": lambda t: dk.functional.dropout(t, 0.5),
    "drop_path": lambda t: dk.functional.drop_path(t, 0.5),
    "spatial": lambda t: dk.functional.spatial_dropout(t, 0.5),
    "drop_block": lambda t: dk.functional.drop_block(t, 0.3, 2),
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_grad_vjp_jvp_and_forward_ad_use_the_forward_mask(name):
    function = FUNCTIONS[name]
    x = torch.randn(4, 3, 6, 6).add_(5)  # no zeros

    def seeded(t):
        torch.manual_seed(0)
        return function(t)

    y = seeded(x)
    mask_scale = y / x
    gradient = torch.func.grad(lambda t: seeded(t).sum())(x)
    assert torch.allclose(gradient, mask_scale)
    _, vjp = torch.func.vjp(seeded, x)
    assert torch.allclose(vjp(torch.ones_like(x))[0], mask_scale)
    out, tangent = torch.func.jvp(seeded, (x,), (torch.ones_like(x),))
    assert torch.equal(out, y) and torch.allclose(tangent, mask_scale)
    with forward_ad.dual_level():
        dual = seeded(forward_ad.make_dual(x, torch.ones_like(x)))
        assert torch.allclose(forward_ad.unpack_dual(dual).tangent, mask_scale)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_vmap_randomness_modes(name):
    # after functorch's test_vmap randomness tests: "different" draws a mask per sample,
    # "same" one mask for all, "error" refuses to draw
    function = FUNCTIONS[name]
    batch = torch.ones(6, 2, 3, 8, 8)
    different = torch.func.vmap(function, randomness="different")(batch)
    same = torch.func.vmap(function, randomness="same")(batch)
    assert different.shape == same.shape == batch.shape
    assert all(torch.equal(same[0], sample) for sample in same)
    assert not all(torch.equal(different[0], sample) for sample in different)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        torch.func.vmap(function, randomness="error")(batch)


def test_vmap_same_matches_one_unbatched_call():
    torch.manual_seed(4)
    same = torch.func.vmap(FUNCTIONS["dropout"], randomness="same")(torch.ones(3, 50))
    torch.manual_seed(4)
    assert torch.equal(same[1], FUNCTIONS["dropout"](torch.ones(50)))


def test_per_sample_gradients_through_dropout_module():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), dk.Dropout(0.5), torch.nn.Linear(16, 1))
    params = {name: p.detach() for name, p in model.named_parameters()}
    inputs = torch.randn(5, 8)

    def loss(parameters, sample):
        return torch.func.functional_call(model, parameters, (sample.unsqueeze(0),)).sum()

    per_sample = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0), randomness="different")(
        params, inputs
    )
    hidden = per_sample["2.weight"].squeeze(1)  # (5, 16): zero where the sample's mask dropped
    dropped = hidden == 0
    assert per_sample["0.weight"].shape == (5, 16, 8)
    assert not all(torch.equal(dropped[0], row) for row in dropped)  # a mask per sample
    assert 0.2 < dropped.double().mean().item() < 0.8


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_gradcheck_with_forward_ad_and_batched_gradients(name):
    # as PyTorch's OpInfo gradient checks for dropout: reverse, forward and batched reverse
    # gradients (batched forward gradients would draw inside vmap, which its OpInfo skips too)
    function = FUNCTIONS[name]

    def seeded(t):
        return _with_seed(function, t)

    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(seeded, (x,), check_forward_ad=True)
    assert torch.autograd.gradcheck(seeded, (x,), check_batched_grad=True)


def _with_seed(function, t):
    state = torch.get_rng_state()
    torch.manual_seed(8)
    try:
        return function(t)
    finally:
        torch.set_rng_state(state)


@pytest.mark.parametrize("shape", [(5,), (5, 5), (5, 5, 5)])
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("training", [True, False])
def test_opinfo_dropout_samples(shape, p, training):
    # PyTorch's dropout OpInfo samples: small shapes, p in {0, 0.5, 1}, training on and off
    x = torch.randn(shape).add_(3)
    y = dk.functional.dropout(x, p, training)
    assert y.shape == x.shape and y.dtype == x.dtype
    if not training or p == 0.0:
        assert y is x
    elif p == 1.0:
        assert not y.any()
    else:
        kept = y != 0
        assert torch.allclose(y[kept], x[kept] * 2)
