"""dk.rng in one process: streams, seeding by rank, replay under checkpointing, saved state, and
``generator=`` on every module."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Iterator

import pytest
import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

import dropkit as dk
from tests.helpers import DEVICES

TP = "tensor-parallel"


@pytest.fixture(autouse=True)
def fresh_streams() -> Iterator[None]:
    state = torch.get_rng_state()
    dk.rng.reset()
    yield
    dk.rng.reset()
    torch.set_rng_state(state)


def first_output(output: object) -> Tensor:
    return output[0] if isinstance(output, tuple) else output  # type: ignore[return-value]


# name -> (module factory taking generator=, input factory)
MODULES: dict[str, tuple[Callable[..., nn.Module], Callable[[], Tensor]]] = {
    "Dropout": (lambda g: dk.Dropout(0.5, generator=g), lambda: torch.randn(4, 16)),
    "SpatialDropout1d": (
        lambda g: dk.SpatialDropout1d(0.5, generator=g),
        lambda: torch.randn(4, 8, 5),
    ),
    "SpatialDropout2d": (
        lambda g: dk.SpatialDropout2d(0.5, generator=g),
        lambda: torch.randn(4, 8, 3, 3),
    ),
    "SpatialDropout3d": (
        lambda g: dk.SpatialDropout3d(0.5, generator=g),
        lambda: torch.randn(2, 8, 2, 2, 2),
    ),
    "DropBlock2d": (lambda g: dk.DropBlock2d(0.3, 3, generator=g), lambda: torch.randn(2, 4, 9, 9)),
    "DropBlock3d": (
        lambda g: dk.DropBlock3d(0.3, 3, generator=g),
        lambda: torch.randn(2, 2, 6, 6, 6),
    ),
    "DropPath": (lambda g: dk.DropPath(0.5, generator=g), lambda: torch.randn(32, 4)),
    "DropPathResidual": (
        lambda g: dk.DropPathResidual(nn.Linear(4, 4), 0.5, generator=g),
        lambda: torch.randn(32, 4),
    ),
    "GaussianDropout": (lambda g: dk.GaussianDropout(0.5, generator=g), lambda: torch.randn(64)),
    "AlphaDropout": (lambda g: dk.AlphaDropout(0.5, generator=g), lambda: torch.randn(64)),
    "GaussianNoise": (lambda g: dk.GaussianNoise(0.5, generator=g), lambda: torch.randn(64)),
    "DropConnect": (
        lambda g: dk.DropConnect(nn.Linear(8, 4), 0.5, generator=g),
        lambda: torch.randn(3, 8),
    ),
    "WeightDrop": (
        lambda g: dk.WeightDrop(nn.LSTM(4, 6, batch_first=True), 0.5, generator=g),
        lambda: torch.randn(2, 5, 4),
    ),
    "TargetedDropout": (
        lambda g: dk.TargetedDropout(nn.Linear(16, 4), 0.5, 0.5, generator=g),
        lambda: torch.randn(3, 16),
    ),
    "EmbeddingDropout": (
        lambda g: dk.EmbeddingDropout(nn.Embedding(40, 4), 0.5, generator=g),
        lambda: torch.arange(40).view(4, 10),
    ),
    "LockedDropout": (lambda g: dk.LockedDropout(0.5, generator=g), lambda: torch.randn(4, 5, 8)),
    "ConcreteDropout": (
        lambda g: dk.ConcreteDropout(nn.Linear(8, 4), init_p=0.5, generator=g),
        lambda: torch.randn(3, 8),
    ),
    "SpatialConcreteDropout": (
        lambda g: dk.SpatialConcreteDropout(nn.Conv2d(4, 2, 1), init_p=0.5, generator=g),
        lambda: torch.randn(2, 4, 3, 3),
    ),
    "TransformerEncoderLayer": (
        lambda g: dk.nn.TransformerEncoderLayer(
            16, 4, 32, attention_dropout=0.3, activation_dropout=0.3, drop_path=0.3, generator=g
        ),
        lambda: torch.randn(4, 5, 16),
    ),
    "TransformerEncoder": (
        lambda g: dk.nn.TransformerEncoder(2, 16, 4, 32, drop_path=0.3, generator=g),
        lambda: torch.randn(4, 5, 16),
    ),
}


def build(name: str, generator: dk.rng.GeneratorSource) -> tuple[nn.Module, Tensor]:
    make, inputs = MODULES[name]
    torch.manual_seed(0)  # the same weights and input for every build
    return make(generator), inputs()


def run(module: nn.Module, x: Tensor, state: Tensor) -> Tensor:
    torch.set_rng_state(state)
    with torch.no_grad():
        return first_output(module(x))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_with_torch_generator(name: str) -> None:
    module, x = build(name, torch.Generator().manual_seed(3))
    state = torch.get_rng_state()
    first = run(module, x, state)
    module.generator = torch.Generator().manual_seed(3)
    assert torch.equal(run(module, x, state), first)
    module.generator = torch.Generator().manual_seed(4)
    assert not torch.equal(run(module, x, state), first)
    assert "generator=Generator(device=cpu)" in repr(module)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_bound_to_stream_replays_and_differs_by_tensor_rank(name: str) -> None:
    dk.rng.seed_parallel(11, data_rank=0, tensor_rank=0)
    module, x = build(name, TP)
    state = torch.get_rng_state()
    rank0 = run(module, x, state)
    assert torch.equal(run(module, x, state), rank0)  # the same global state, the same mask
    module.generator = dk.rng.get_stream(TP)  # a Stream object draws as its name does
    assert torch.equal(run(module, x, state), rank0)
    module.generator = TP
    dk.rng.seed_parallel(11, data_rank=0, tensor_rank=1)
    assert not torch.equal(run(module, x, state), rank0)
    default = copy.deepcopy(module)
    default.generator = None
    assert not torch.equal(run(default, x, state), rank0)  # the default stream is another


@pytest.mark.parametrize("name", sorted(MODULES))
def test_generator_is_shown_but_never_saved(name: str) -> None:
    plain, _ = build(name, None)
    bound, _ = build(name, TP)
    assert "generator" not in repr(plain)
    assert "generator='tensor-parallel'" in repr(bound)
    assert bound.state_dict().keys() == plain.state_dict().keys()
    clone = copy.deepcopy(bound)
    assert clone.generator == TP


@pytest.mark.parametrize("name", sorted(MODULES))
def test_evaluation_takes_no_stream_draw(name: str) -> None:
    dk.rng.seed_parallel(0, data_rank=0)
    module, x = build(name, TP)
    module.eval()
    state = torch.get_rng_state()
    with torch.no_grad():
        module(x)
    assert torch.equal(torch.get_rng_state(), state)


def test_module_rejects_bad_generator_and_unknown_stream() -> None:
    with pytest.raises(TypeError, match="generator must be None, a torch.Generator, a stream"):
        dk.Dropout(0.1, generator=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="generator must not be an empty stream name"):
        dk.DropPath(0.1, generator="")
    layer = dk.Dropout(0.1, generator="experts")  # looked up at call time
    with pytest.raises(ValueError, match="no random stream named 'experts'"):
        layer(torch.ones(3))


def test_transformer_generator_reaches_every_site() -> None:
    encoder = dk.nn.TransformerEncoder(2, 8, 2, 16)
    encoder.generator = TP
    layers = [encoder.embedding_dropout]
    for layer in encoder.layers:
        layers += [layer, layer.attention_residual_dropout, layer.activation_dropout]
        layers += [layer.feedforward_residual_dropout, layer.drop_path]
    assert all(site.generator == TP for site in layers)
    assert "generator='tensor-parallel'" in repr(encoder.layers[0])


def test_seed_parallel_default_stream_follows_data_and_pipeline_ranks() -> None:
    def draws(**ranks: int) -> Tensor:
        dk.rng.seed_parallel(5, **ranks)
        return torch.rand(8)

    base = draws(data_rank=0, tensor_rank=0)
    assert torch.equal(draws(data_rank=0, tensor_rank=1), base)  # one tensor-parallel group
    assert not torch.equal(draws(data_rank=1, tensor_rank=0), base)
    assert not torch.equal(draws(data_rank=0, pipeline_rank=1), base)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"seed": -1, "data_rank": 0}, ValueError, "seed must be >= 0, got -1"),
        ({"seed": 1.5, "data_rank": 0}, TypeError, "seed must be an int, got 1.5"),
        ({"seed": 1, "data_rank": True}, TypeError, "data_rank must be an int, got True"),
        ({"seed": 1, "data_rank": 0, "tensor_rank": -2}, ValueError, "tensor_rank must be >= 0"),
    ],
)
def test_seed_parallel_rejects_bad_ranks(arguments: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        dk.rng.seed_parallel(**arguments)


class StandInMesh:
    """What seed_from_mesh reads of a DeviceMesh: named dims, sizes by index, local ranks."""

    def __init__(
        self, names: tuple[str, ...] | None, sizes: tuple[int, ...], local: tuple[int, ...]
    ):
        self.mesh_dim_names = names
        self._sizes, self._local = sizes, local

    def size(self, mesh_dim: int) -> int:
        return self._sizes[mesh_dim]

    def get_local_rank(self, mesh_dim: str) -> int:
        assert self.mesh_dim_names is not None
        return self._local[self.mesh_dim_names.index(mesh_dim)]


def test_seed_from_mesh_flattens_every_data_like_dim() -> None:
    mesh = StandInMesh(("pp", "replicate", "shard", "tp"), (2, 2, 4, 2), (1, 1, 3, 1))
    seed = dk.rng.seed_from_mesh(9, mesh)
    state = dk.rng.state_dict()
    assert (state["data_rank"], state["pipeline_rank"], state["streams"]) == (7, 1, {TP: 1})
    assert seed == dk.rng.seed_parallel(9, data_rank=7, tensor_rank=1, pipeline_rank=1)
    with pytest.raises(ValueError, match="mesh must have named dims"):
        dk.rng.seed_from_mesh(9, StandInMesh(None, (2,), (0,)))


def test_streams_are_keyed_by_name_seed_and_rank() -> None:
    dk.rng.seed_parallel(1, data_rank=0)
    expert = dk.rng.add_stream("expert", rank=2)
    assert expert == dk.rng.get_stream("expert")
    assert expert.key != dk.rng.add_stream("expert", rank=3).key
    assert expert.key != dk.rng.get_stream(TP).key
    dk.rng.seed_parallel(2, data_rank=0)  # re-keys every registered stream
    assert dk.rng.get_stream("expert").key != expert.key
    with pytest.raises(ValueError, match="no random stream named 'other' \\(registered: 'expert'"):
        dk.rng.get_stream("other")


def test_resolve_draws_once_from_the_global_state() -> None:
    dk.rng.seed_parallel(3, data_rank=0)
    assert dk.rng.resolve(None, "cpu") is None
    explicit = torch.Generator()
    assert dk.rng.resolve(explicit, "cpu") is explicit
    state = torch.get_rng_state()
    first = dk.rng.resolve(TP, "cpu")
    second = dk.rng.resolve(TP, "cpu")
    assert first is not None and second is not None
    a, b = torch.rand(4, generator=first), torch.rand(4, generator=second)
    assert not torch.equal(a, b)  # each call takes a new number
    torch.set_rng_state(state)
    replay = dk.rng.resolve(TP, torch.device("cpu"))
    assert replay is not None and torch.equal(torch.rand(4, generator=replay), a)


def test_stream_context_forks_the_global_generator() -> None:
    dk.rng.seed_parallel(3, data_rank=0, tensor_rank=0)
    state = torch.get_rng_state()

    def inside(count: int) -> Tensor:
        with dk.rng.stream(TP):
            return torch.rand(count)

    short = inside(1)
    after_short = torch.get_rng_state()
    torch.set_rng_state(state)
    long = inside(1000)
    assert torch.equal(torch.get_rng_state(), after_short)  # the block's draws stay inside
    assert torch.equal(long[:1], short)
    assert not torch.equal(torch.rand(1), short)
    torch.set_rng_state(state)
    outside = torch.rand(1000)
    assert not torch.equal(outside, long)  # the stream is not the default stream
    dk.rng.seed_parallel(3, data_rank=0, tensor_rank=1)
    torch.set_rng_state(state)
    assert not torch.equal(inside(1000), long)  # another tensor-parallel rank
    torch.set_rng_state(state)
    with dk.rng.stream(None):
        assert torch.equal(torch.rand(1000), outside)


def test_stream_context_with_a_torch_generator() -> None:
    with dk.rng.stream(torch.Generator().manual_seed(8)):
        first = torch.rand(5)
    with dk.rng.stream(torch.Generator().manual_seed(8)):
        assert torch.equal(torch.rand(5), first)
    with (
        pytest.raises(TypeError, match="source must be None, a torch.Generator"),
        dk.rng.stream(5),  # type: ignore[arg-type]
    ):
        pass


def gradients(model: nn.Module, x: Tensor, state: Tensor, **checkpointing: bool) -> list[Tensor]:
    torch.set_rng_state(state)
    model.zero_grad()
    inputs = x.clone().requires_grad_(True)
    output = checkpoint(model, inputs, **checkpointing) if checkpointing else model(inputs)
    output.square().sum().backward()
    return [parameter.grad.clone() for parameter in model.parameters()]


def stream_models(device: str = "cpu") -> list[tuple[nn.Module, Tensor]]:
    torch.manual_seed(0)
    mlp = nn.Sequential(
        nn.Linear(8, 64), nn.GELU(), dk.Dropout(0.5, generator=TP), nn.Linear(64, 1)
    )
    block = dk.nn.TransformerEncoderLayer(
        16, 4, 32, attention_dropout=0.5, residual_dropout=0.3, drop_path=0.3, generator=TP
    )
    return [
        (mlp.to(device), torch.randn(16, 8).to(device)),
        (block.to(device), torch.randn(4, 6, 16).to(device)),
    ]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_recomputes_the_same_stream_masks(use_reentrant: bool, device: str) -> None:
    dk.rng.seed_parallel(21, data_rank=0, tensor_rank=1)
    state = torch.get_rng_state()
    # Same masks, so equal up to the summation order of a GPU kernel's backward.
    tolerance = {"rtol": 1e-6, "atol": 1e-7} if device == "cpu" else {"rtol": 1e-4, "atol": 1e-5}
    for model, x in stream_models(device):
        plain = gradients(model, x, state)
        replayed = gradients(model, x, state, use_reentrant=use_reentrant)
        for left, right in zip(plain, replayed, strict=True):
            torch.testing.assert_close(left, right, **tolerance)
        # Other masks give other gradients, so the equality above is the masks' replay.
        other = gradients(model, x, torch.Generator().manual_seed(99).get_state())
        assert any(not torch.allclose(a, b) for a, b in zip(plain, other, strict=True))


def test_state_dict_resumes_streams_and_global_generators() -> None:
    dk.rng.seed_parallel(4, data_rank=1, tensor_rank=1, pipeline_rank=2)
    dk.rng.add_stream("expert", rank=5)
    layers = [dk.Dropout(0.5), dk.Dropout(0.5, generator=TP), dk.Dropout(0.5, generator="expert")]
    buffer = io.BytesIO()
    torch.save(dk.rng.state_dict(), buffer)
    expected = [layer(torch.ones(64)) for _ in range(3) for layer in layers]
    dk.rng.reset()
    torch.manual_seed(0)
    buffer.seek(0)
    dk.rng.load_state_dict(torch.load(buffer))  # plain data and tensors: weights_only loads it
    resumed = [layer(torch.ones(64)) for _ in range(3) for layer in layers]
    for left, right in zip(expected, resumed, strict=True):
        assert torch.equal(left, right)


def test_load_state_dict_rejects_foreign_state() -> None:
    with pytest.raises(TypeError, match="state must be a dict from dk.rng.state_dict"):
        dk.rng.load_state_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="missing format, seed"):
        dk.rng.load_state_dict({"data_rank": 0})
    state = dk.rng.state_dict()
    with pytest.raises(ValueError, match="state has format 99"):
        dk.rng.load_state_dict({**state, "format": 99})
    with pytest.raises(ValueError, match="rank of 'x' must be >= 0, got -1"):
        dk.rng.load_state_dict({**state, "streams": {"x": -1}})


def test_compiled_modules_draw_the_stream_masks_of_eager() -> None:
    dk.rng.seed_parallel(2, data_rank=0, tensor_rank=1)
    for model, x in stream_models():  # a bound Dropout, and SDPA run inside dk.rng.stream
        state = torch.get_rng_state()
        compiled = torch.compile(model, backend="eager")(x)
        after = torch.get_rng_state()
        torch.set_rng_state(state)
        assert torch.equal(compiled, model(x))
        assert torch.equal(torch.get_rng_state(), after)
