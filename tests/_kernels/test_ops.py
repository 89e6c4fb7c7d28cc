"""The registered operators: one mask per seed on every backend, opcheck, fresh outputs."""

import pytest
import torch
import torch.nn.functional as F

import dropkit as dk
from dropkit._kernels import build, ops, philox
from tests.helpers import saved_bytes

N = 1 << 16  # large enough for every kernel's many-thread path
needs_kernel = pytest.mark.skipif(
    not build.cpu_kernels_available(), reason="no C++ compiler: the compiled path is unavailable"
)
BACKENDS = ["cpu", "reference"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param == "cpu" and not build.cpu_kernels_available():
        pytest.skip("no C++ compiler")
    with dk.backends.force(request.param):
        yield request.param


def sigma(p, n):
    return 5 * (p * (1 - p) / n) ** 0.5


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_drop_fraction_and_scale(backend, p):
    x = torch.ones(N)
    y = dk.functional.dropout(x, p, generator=torch.Generator().manual_seed(1))
    dropped = (y == 0).double().mean().item()
    assert abs(dropped - p) < sigma(p, x.numel())
    assert torch.allclose(y[y != 0], torch.full((), 1 / (1 - p)))


def test_neighbours_independent(backend):
    # the nearest wrong generator (correlated neighbouring counters) fails this
    y = dk.functional.dropout(torch.ones(N), 0.5, generator=torch.Generator().manual_seed(2))
    keep = (y != 0).double()
    both = (keep[1:] * keep[:-1]).mean().item()
    assert abs(both - 0.25) < sigma(0.25, keep.numel())


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize(
    "function",
    [
        lambda x, g: dk.functional.dropout(x, 0.3, generator=g),
        lambda x, g: dk.functional.drop_path(x, 0.4, generator=g),
        lambda x, g: dk.functional.spatial_dropout(x, 0.4, generator=g),
        lambda x, g: dk.functional.drop_block(x, 0.15, 3, generator=g),
        lambda x, g: dk.functional.drop_block(x, 0.15, 3, shared_channels=True, generator=g),
        lambda x, g: dk.functional.drop_block(x, 0.5, 20, generator=g),  # dense block seeds
    ],
    ids=["dropout", "drop_path", "spatial", "drop_block", "drop_block_shared", "drop_block_dense"],
)
def test_kernel_and_reference_agree_bit_for_bit(function, dtype):
    x = torch.randn(8, 16, 24, 24, dtype=dtype)

    def run(name):
        generator = torch.Generator().manual_seed(7)
        with dk.backends.force(name):
            out = function(x, generator)
        return out, generator.get_state()

    (kernel, kernel_state), (reference, reference_state) = run("cpu"), run("reference")
    assert torch.equal(kernel, reference)
    assert torch.equal(kernel_state, reference_state)  # the same amount drawn


@needs_kernel
def test_global_generator_state_is_the_same_whichever_backend():
    x = torch.randn(N)
    states = []
    for name in BACKENDS:
        torch.manual_seed(3)
        with dk.backends.force(name):
            out = dk.functional.dropout(x, 0.5)
        states.append((out, torch.get_rng_state()))
    assert torch.equal(states[0][0], states[1][0])
    assert torch.equal(states[0][1], states[1][1])


def test_mask_is_philox_keep_mask_of_the_drawn_seed(backend):
    x = torch.randn(3, 1000)
    y = dk.functional.dropout(x, 0.25, generator=torch.Generator().manual_seed(9))
    seed = philox.sample_seed(torch.Generator().manual_seed(9))
    assert torch.equal(y != 0, philox.keep_mask(x.shape, 0.25, seed))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_backward_mask_equals_forward_mask(backend, dtype):
    x = torch.randn(N, dtype=dtype).add_(5).requires_grad_()  # no zeros in x
    y = dk.functional.dropout(x, 0.4, generator=torch.Generator().manual_seed(0))
    y.backward(torch.ones_like(y))
    assert y.dtype == dtype
    assert torch.equal(x.grad == 0, y == 0)
    expected = torch.tensor(1 / 0.6, dtype=dtype)
    assert torch.equal(x.grad[y != 0].unique(), expected.reshape(1))


def test_infinite_inputs_drop_to_exact_zero(backend):
    x = torch.full((N,), float("inf"))
    y = dk.functional.dropout(x, 0.5, generator=torch.Generator().manual_seed(0))
    assert not y.isnan().any() and (y == 0).any()


@pytest.mark.parametrize(
    "function",
    [
        lambda t: dk.functional.dropout(t, 0.3, generator=torch.Generator().manual_seed(0)),
        lambda t: dk.functional.drop_path(t, 0.4, generator=torch.Generator().manual_seed(4)),
        lambda t: dk.functional.drop_block(t, 0.25, 2, generator=torch.Generator().manual_seed(2)),
    ],
    ids=["dropout", "drop_path", "drop_block"],
)
def test_gradcheck(backend, function):
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(function, (x,))
    assert torch.autograd.gradgradcheck(function, (x,))


def op_samples():
    seed = torch.tensor(123456789)
    x = torch.randn(4, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    keep = torch.rand(4, 1, 1, 1) > 0.5
    return [
        (ops.dropout_op, (x, 0.3, seed)),
        (ops.dropout_op, (x.to(torch.float32).detach(), 0.7, seed)),
        (ops.broadcast_dropout_op, (x, 0.3, seed, [4, 1, 1, 1])),
        (ops.broadcast_dropout_op, (x, 0.3, seed, [1, 3, 1, 6])),  # not over leading dims
        (ops.mask_scale_op, (x, keep, 2.0)),
        (ops.mask_scale_op, (x, torch.rand(4, 3, 1, 1) > 0.5, 1.25)),
        (ops.drop_block_op, (x, 0.05, [3, 3], False, seed)),
        (ops.drop_block_op, (x, 0.3, [2, 2], True, seed)),  # dense seeds
        (ops.keep_mask_op, (seed, [4, 1, 3], 0.3, torch.device("cpu"))),
    ]


@pytest.mark.parametrize("index", range(9))
def test_opcheck(backend, index):
    op, args = op_samples()[index]
    torch.library.opcheck(op, args)


@pytest.mark.parametrize(
    "function",
    [
        lambda t: dk.functional.dropout(t, 0.5),
        lambda t: dk.functional.drop_path(t, 0.5),
        lambda t: dk.functional.spatial_dropout(t, 0.5),
        lambda t: dk.functional.drop_block(t, 0.1, 3),
        dk.Dropout(0.5),
        dk.DropPath(0.5),
    ],
)
def test_output_is_fresh_so_in_place_ops_after_it_work(backend, function):
    x = torch.randn(8, 16, 16, 16, requires_grad=True)  # 32768 elements
    y = function(x * 1)
    assert y._base is None
    y += 1
    z = torch.nn.ReLU(inplace=True)(function(x * 1))
    (y.sum() + z.sum()).backward()
    assert x.grad is not None


@pytest.mark.parametrize(
    "function",
    [
        lambda t: dk.functional.dropout(t, 0.5, generator=torch.Generator().manual_seed(0)),
        lambda t: dk.functional.drop_path(t, 0.5, generator=torch.Generator().manual_seed(0)),
        lambda t: dk.functional.spatial_dropout(t, 0.5, generator=torch.Generator().manual_seed(0)),
        lambda t: dk.functional.drop_block(t, 0.2, 3, generator=torch.Generator().manual_seed(0)),
    ],
)
def test_output_keeps_the_input_layout_and_values(backend, function):
    x = torch.randn(4, 8, 12, 12)
    last = x.to(memory_format=torch.channels_last)
    y, y_last = function(x), function(last)
    assert y_last.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y, y_last)
    transposed_input = x.transpose(2, 3).contiguous().transpose(2, 3)
    transposed = function(transposed_input)
    assert torch.equal(y, transposed)
    assert transposed.stride() == transposed_input.stride()  # as torch.empty_like lays it out


def test_element_dropout_keeps_only_the_seed(backend):
    x = torch.randn(N, requires_grad=True)
    assert saved_bytes(lambda t: dk.functional.dropout(t, 0.5), x) == 8  # one int64 seed
    assert saved_bytes(lambda t: dk.functional.drop_block(t, 0.1, 3), x.view(4, 4, 64, 64)) == 8
    assert saved_bytes(lambda t: F.dropout(t, 0.5), x) >= N  # torch keeps a full mask


def test_broadcast_mask_keeps_only_the_seed(backend):
    x = torch.randn(64, 1024, requires_grad=True)
    assert saved_bytes(lambda t: dk.functional.drop_path(t, 0.3), x) == 8
    assert saved_bytes(lambda t: dk.functional.spatial_dropout(t, 0.3), x.view(8, 8, 32, 32)) == 8


def test_pytorch_dropout_assertions(backend):
    # ported from PyTorch's test_nn `_test_dropout`: an input of 1 - p keeps its mean,
    # and the gradient of sum(y * x) is the output itself
    for p in (0.2, 0.5, 0.8):
        x = torch.full((1000, 100), 1.0 - p, requires_grad=True)
        y = dk.Dropout(p)(x)
        assert abs(y.mean().item() - (1 - p)) < 5 * (1 - p) * (p / (1 - p) / y.numel()) ** 0.5
        y.backward(x.detach())
        assert torch.allclose(x.grad, y.detach())
        module = dk.Dropout(p).eval()
        assert module(x) is x
    # p = 0 and p = 1 (OpInfo samples): identity, and zeros with a zero gradient
    x = torch.randn(3, 4, requires_grad=True)
    assert dk.functional.dropout(x, 0.0) is x
    zeros = dk.functional.dropout(x, 1.0)
    zeros.sum().backward()
    assert not zeros.any() and not x.grad.any()
    # empty input
    assert dk.functional.dropout(torch.empty(0, 3), 0.5).shape == (0, 3)


@pytest.mark.parametrize("index", [0, 2, 6])  # dropout, broadcast_dropout, drop_block
def test_forward_ad_on_the_operator_itself_applies_it_to_the_tangent(backend, index):
    import torch.autograd.forward_ad as forward_ad

    op, (x, *rest) = op_samples()[index]
    tangent = torch.randn_like(x)
    with forward_ad.dual_level():
        primal, out_tangent = forward_ad.unpack_dual(op(forward_ad.make_dual(x, tangent), *rest))
    assert torch.equal(primal, op(x.detach(), *rest))
    assert torch.equal(out_tangent, op(tangent, *rest))


BACKWARD_OPS = {
    "dropout": lambda t, g: dk.functional.dropout(t, 0.3, generator=g),
    "drop_path": lambda t, g: dk.functional.drop_path(t, 0.3, generator=g),
    "spatial_dropout": lambda t, g: dk.functional.spatial_dropout(t, 0.3, generator=g),
}


@needs_kernel
@pytest.mark.parametrize("name", list(BACKWARD_OPS))
def test_backward_is_the_same_with_and_without_a_graph_and_modes_see_it(name):
    from torch.utils._python_dispatch import TorchDispatchMode

    op = BACKWARD_OPS[name]
    x = torch.randn(6, 4, 5, 5, requires_grad=True)
    y = op(x, torch.Generator().manual_seed(3))
    expected = torch.where(y.detach() == 0, 0.0, 1 / 0.7)
    (plain,) = torch.autograd.grad(y.sum(), x, retain_graph=True)
    (graphed,) = torch.autograd.grad(y.sum(), x, create_graph=True, retain_graph=True)
    assert torch.equal(plain, expected) and torch.equal(graphed.detach(), expected)
    weights = torch.randn(y.shape, requires_grad=True)  # a gradient that itself needs one
    (weighted,) = torch.autograd.grad(y, x, weights, create_graph=True, retain_graph=True)
    assert weighted.requires_grad
    (second,) = torch.autograd.grad(weighted.sum(), weights)
    assert torch.equal(second, expected)

    seen = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(func.name())
            return func(*args, **(kwargs or {}))

    with Record():
        (recorded,) = torch.autograd.grad(y.sum(), x)
    assert torch.equal(recorded, expected)
    assert any(name.startswith("dropkit::") for name in seen), seen
