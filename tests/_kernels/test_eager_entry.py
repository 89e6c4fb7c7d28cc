"""The eager CPU entry: ``dropkit::draw_dropout``, ``draw_drop_block`` and the C++ backward nodes.

An eager call on a plain CPU tensor with the global generator draws its seed inside the compiled
operator and records a plain autograd node. Both must be invisible: the same seed, mask,
gradient and generator state as the Python draw followed by the seeded operator (which is what
runs without a compiler), and the same behaviour under autograd's edge cases.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import dropkit as dk
from dropkit._kernels import build, ops, philox

pytestmark = pytest.mark.skipif(
    not build.cpu_kernels_available(), reason="no C++ compiler: the compiled path is unavailable"
)

# gamma of DropBlock at p = 0.3 on 3x3 maps with 2x2 blocks: 0.3 * 9 / (4 * 4)
BLOCK_GAMMA = 0.3 * 9 / 16

CALLS = {
    "dropout": (lambda t: dk.functional.dropout(t, 0.3), None),
    "drop_path": (lambda t: dk.functional.drop_path(t, 0.3), [5, 1, 1, 1]),
    "spatial_dropout": (lambda t: dk.functional.spatial_dropout(t, 0.3), [5, 4, 1, 1]),
    "drop_block": (lambda t: dk.functional.drop_block(t, 0.3, 2), "blocks"),
    "drop_block_shared": (
        lambda t: dk.functional.drop_block(t, 0.3, 2, shared_channels=True),
        "shared blocks",
    ),
}
ENTRIES = {"drop_block": "draw_drop_block", "drop_block_shared": "draw_drop_block"}


def python_draw(x, mask_shape):
    """What an eager call computes without the compiled entry: the seed drawn from Python."""
    seed = philox.sample_seed()
    if mask_shape is None:
        return ops.seeded_dropout(x, 0.3, seed)
    if mask_shape in ("blocks", "shared blocks"):
        return ops.seeded_drop_block(x, BLOCK_GAMMA, [2, 2], mask_shape == "shared blocks", seed)
    return ops.seeded_broadcast_dropout(x, 0.3, seed, mask_shape)


@pytest.mark.parametrize("name", list(CALLS))
def test_the_seed_mask_and_generator_state_are_the_python_draws(name):
    call, mask_shape = CALLS[name]
    x = torch.randn(5, 4, 3, 3)
    assert ops.draws_in_kernel(x)
    differ = 0
    for state in range(300):  # many generator states: the seed's reduction must match torch's
        torch.manual_seed(state)
        ours = call(x)
        ours_state = torch.get_rng_state()
        torch.manual_seed(state)
        theirs = python_draw(x, mask_shape)
        assert torch.equal(ours, theirs), state
        assert torch.equal(ours_state, torch.get_rng_state()), state
        differ += not torch.equal(ours, x)
    assert differ > 250  # the calls did drop: nearly every state gives a mask that zeroes


@pytest.mark.parametrize("name", list(CALLS))
def test_a_plain_eager_call_reads_the_generator_without_an_operator(name):
    # The profiler records every operator call without changing dispatch: a plain eager call is
    # draw_dropout (draw_drop_block) and the operator it calls, with no aten::randint for the
    # seed (the draw is read in C++), while inside a dispatch mode the seed comes from
    # aten::randint.
    call, _ = CALLS[name]
    x = torch.randn(5, 4, 3, 3)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        call(x)
    names = {event.name for event in profile.events()}
    assert f"dropkit::{ENTRIES.get(name, 'draw_dropout')}" in names, names
    assert not any(name.startswith("aten::randint") for name in names), names


def test_the_mask_is_philox_keep_mask_of_torch_randint_seed():
    x = torch.randn(64, 100)
    torch.manual_seed(11)
    seed = torch.randint(-(2**63), 2**63 - 1, (), dtype=torch.int64)
    torch.manual_seed(11)
    y = dk.functional.dropout(x, 0.5)
    assert torch.equal(y != 0, philox.keep_mask(x.shape, 0.5, seed))


@pytest.mark.parametrize(
    ("name", "node"),
    [
        ("dropout", "DropoutBackward"),
        ("drop_path", "BroadcastDropoutBackward"),
        ("spatial_dropout", "BroadcastDropoutBackward"),
    ],
)
def test_eager_calls_record_the_compiled_backward_node(name, node):
    call, _ = CALLS[name]
    x = torch.randn(5, 4, 3, 3, requires_grad=True)
    y = call(x)
    assert y.grad_fn.name() == node
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad, torch.where(y.detach() == 0, 0.0, 1 / 0.7))
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward(torch.ones_like(y))


@pytest.mark.parametrize("shared", [False, True])
def test_drop_block_records_the_compiled_backward_node(shared):
    x = torch.randn(4, 6, 12, 12, requires_grad=True)
    y = dk.functional.drop_block(x, 0.3, 3, shared_channels=shared)
    assert y.grad_fn.name() == "DropBlockBackward"
    y.backward(torch.ones_like(y))
    kept = y.detach() != 0
    scales = x.grad[kept]  # one scale for every kept cell, zero gradient in the blocks
    assert torch.equal(scales, scales[:1].expand_as(scales)) and scales[0] > 1
    assert torch.equal(x.grad[~kept], torch.zeros_like(x.grad[~kept]))
    torch.testing.assert_close(y.detach()[kept], x.detach()[kept] * scales[0])
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward(torch.ones_like(y))


def test_no_node_without_grad_and_the_input_untouched():
    x = torch.randn(5, 4, 3, 3)
    y = dk.functional.dropout(x, 0.3)
    assert y.grad_fn is None and not y.requires_grad
    with torch.no_grad():
        leaf = torch.randn(5, 4, requires_grad=True)
        assert dk.functional.drop_path(leaf, 0.3).grad_fn is None


def test_dispatch_modes_see_the_draw_and_the_operator():
    seen = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(func.name())
            return func(*args, **(kwargs or {}))

    x = torch.randn(5, 4, 3, 3)
    torch.manual_seed(2)
    expected = dk.functional.drop_path(x, 0.3)
    torch.manual_seed(2)
    with Record():
        recorded = dk.functional.drop_path(x, 0.3)
    assert torch.equal(recorded, expected)
    assert seen[0].startswith("aten::randint") and seen[1] == "dropkit::broadcast_dropout", seen


def test_compiled_autograd_gives_the_eager_gradient():
    from torch._dynamo import compiled_autograd

    x = torch.randn(6, 8, 4, 4, requires_grad=True)
    weights = torch.randn(6, 8, 4, 4)

    def forward(t):
        blocks = dk.functional.drop_block(t, 0.3, 2) + dk.functional.drop_block(
            t, 0.2, 3, shared_channels=True
        )
        return dk.functional.dropout(t, 0.4) + dk.functional.drop_path(t, 0.3) + blocks

    torch.manual_seed(5)
    y = forward(x)
    (eager,) = torch.autograd.grad((y * weights).sum(), x)
    torch._dynamo.reset()
    torch.manual_seed(5)
    y = forward(x)
    with compiled_autograd._enable(torch.compile(backend="eager")):
        (y * weights).sum().backward()
    # the same masks; the five branches' gradients may be summed in another order (a wrong mask
    # would be off by whole weights, not by rounding)
    torch.testing.assert_close(x.grad, eager, rtol=1e-6, atol=1e-5)
    assert not torch.equal(eager, torch.zeros_like(eager))


@pytest.mark.parametrize("mask_shape", [None, [4, 8, 1, 1]])
def test_opcheck(mask_shape):
    x = torch.randn(4, 8, 6, 6, requires_grad=True)
    torch.library.opcheck(torch.ops.dropkit.draw_dropout.default, (x, 0.3, mask_shape))


@pytest.mark.parametrize("shared", [False, True])
def test_opcheck_drop_block(shared):
    x = torch.randn(4, 8, 6, 6, requires_grad=True)
    torch.library.opcheck(torch.ops.dropkit.draw_drop_block.default, (x, 0.1, [3, 3], shared))


def test_drop_block_with_a_generator_or_under_a_transform_takes_the_seeded_operator():
    x = torch.randn(5, 4, 3, 3)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        dk.functional.drop_block(x, 0.3, 2, generator=torch.Generator().manual_seed(0))
    names = {event.name for event in profile.events()}
    assert "dropkit::drop_block" in names and "dropkit::draw_drop_block" not in names, names
    torch.manual_seed(3)
    expected = dk.functional.drop_block(x, 0.3, 2)
    torch.manual_seed(3)
    (vjp_out, _) = torch.func.vjp(lambda t: dk.functional.drop_block(t, 0.3, 2), x)
    assert torch.equal(vjp_out, expected)  # torch.func draws the same seed from Python


def test_other_tensors_draw_from_python():
    from torch._subclasses.fake_tensor import FakeTensorMode

    x = torch.randn(4, 4)
    with torch.inference_mode():
        assert ops.draws_in_kernel(x)  # no autograd here, still one operator call
    assert not ops.draws_in_kernel(torch.nn.Parameter(x))  # subclasses stay in Python
    with FakeTensorMode() as mode:
        assert not ops.draws_in_kernel(mode.from_tensor(x))
    seen = []

    def probe(t):
        seen.append(ops.draws_in_kernel(t))
        return t

    torch.func.vmap(probe)(x)
    assert seen == [False]
