"""Random streams for data, tensor and pipeline parallelism that replay under checkpointing.

The practice follows Megatron-LM (Shoeybi et al., "Megatron-LM: Training Multi-Billion Parameter
Language Models Using Model Parallelism", 2019, https://arxiv.org/abs/1909.08053): dropout on
activations that every rank of a tensor-parallel group holds whole (replicated) must draw the same
mask on each of those ranks, dropout on activations split across the group (sharded) must draw
different masks, and data-parallel ranks must differ.

- The **default stream** is torch's global generator. :func:`seed_parallel` seeds it from the user
  seed, the data-parallel rank and the pipeline rank, so it is the same on the ranks of a
  tensor-parallel group and differs everywhere else. A module with ``generator=None`` uses it.
- A **named stream** (:class:`Stream`) is a 63-bit key made from the user seed, the stream's name
  and the rank coordinates it must differ by; ``"tensor-parallel"`` also includes the
  tensor-parallel rank. A stream holds no generator state: each use takes one number from the
  global CPU generator and seeds a fresh generator with a hash of (key, number).

Because a stream's draws are a function of the global generator's state, anything that saves and
restores that state replays them exactly: ``torch.utils.checkpoint`` recomputes the same masks
(with ``use_reentrant`` True or False), and a run resumed with the torch generator states (kept
in :func:`state_dict`) continues bit-identically. An explicit ``torch.Generator`` given as
``generator=`` is used as it is; torch's checkpoint does not save or restore it.

Example:
    >>> import torch
    >>> import dropkit as dk
    >>> _ = dk.rng.seed_parallel(1234, data_rank=0, tensor_rank=1)
    >>> layer = dk.Dropout(0.5, generator="tensor-parallel")  # a sharded activation
    >>> layer
    Dropout(p=0.5, generator='tensor-parallel')
    >>> state = torch.get_rng_state()
    >>> first = layer(torch.ones(8))
    >>> torch.set_rng_state(state)  # as activation checkpointing does before recomputing
    >>> torch.equal(first, layer(torch.ones(8)))
    True
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec, Protocol, TypeVar, Union

import torch

__all__ = [
    "TENSOR_PARALLEL",
    "GeneratorSource",
    "Stream",
    "add_stream",
    "check_source",
    "describe",
    "get_stream",
    "load_state_dict",
    "reset",
    "resolve",
    "seed_from_mesh",
    "seed_parallel",
    "state_dict",
    "stream",
]

#: The name of the stream for activations sharded across a tensor-parallel group.
TENSOR_PARALLEL = "tensor-parallel"

_FORMAT = 1
_SEED_LIMIT = 1 << 63
_DRAW_LIMIT = 1 << 62  # torch.randint's bound must fit an int64


@dataclass(frozen=True)
class Stream:
    """A named random stream: a key, no state. Obtain one from :func:`add_stream`.

    A ``Stream`` keeps the key it was made with; a module given the stream's name instead looks
    the key up at each call, so it follows a later :func:`seed_parallel` or
    :func:`load_state_dict`.

    Args:
        name: the stream's name.
        key: a 63-bit integer mixed with one draw of the global CPU generator at each use.
    """

    name: str
    key: int

    def __repr__(self) -> str:
        return f"Stream({self.name!r})"


#: What ``generator=`` accepts: nothing (the default stream), a torch generator, a stream's name,
#: or a :class:`Stream`.
GeneratorSource = Union[torch.Generator, str, Stream, None]  # noqa: UP007 (a runtime alias)


class _Mesh(Protocol):
    """What :func:`seed_from_mesh` reads of a ``torch.distributed`` ``DeviceMesh``."""

    mesh_dim_names: tuple[str, ...] | None

    def get_local_rank(self, mesh_dim: str) -> int: ...

    def size(self, mesh_dim: int) -> int: ...


@dataclass
class _Registry:
    seed: int = 0
    data_rank: int = 0
    pipeline_rank: int = 0
    # name -> the stream's own coordinate (the tensor-parallel rank for "tensor-parallel").
    ranks: dict[str, int] = field(default_factory=dict)


_registry = _Registry()


def _hash(*parts: object) -> int:
    """A stable 63-bit hash (the same in every process and Python version)."""
    text = "\x1f".join(repr(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") % _SEED_LIMIT


def _check_int(value: object, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def _make_stream(name: str, rank: int) -> Stream:
    state = _registry
    return Stream(
        name, _hash("stream", name, state.seed, state.data_rank, state.pipeline_rank, rank)
    )


def seed_parallel(
    seed: int, *, data_rank: int, tensor_rank: int = 0, pipeline_rank: int = 0
) -> int:
    """Seed the default stream for this rank and register the ``"tensor-parallel"`` stream.

    After Megatron-LM's ``model_parallel_cuda_manual_seed`` (Shoeybi et al. 2019,
    https://arxiv.org/abs/1909.08053). The global torch generators (CPU and every CUDA device)
    are seeded from ``(seed, data_rank, pipeline_rank)``: the same on every rank of a
    tensor-parallel group, different across data-parallel and pipeline ranks. The
    ``"tensor-parallel"`` stream's key also includes ``tensor_rank``, so dropout bound to it draws
    different masks on each rank of the group. Streams added with :func:`add_stream` are re-keyed.
    Call it on every rank with the same ``seed``, after building the model if the weights must be
    initialised alike everywhere (DDP broadcasts rank 0's weights in any case).

    Args:
        seed: the run's seed, an int >= 0, the same on every rank.
        data_rank: this process's data-parallel rank (FSDP's shard rank counts here), >= 0.
        tensor_rank: this process's rank in its tensor-parallel group, >= 0.
        pipeline_rank: this process's pipeline stage, >= 0.

    Returns:
        The seed given to ``torch.manual_seed``.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> first = dk.rng.seed_parallel(7, data_rank=0, tensor_rank=0)
        >>> first == dk.rng.seed_parallel(7, data_rank=0, tensor_rank=1)  # same default stream
        True
        >>> first == dk.rng.seed_parallel(7, data_rank=1, tensor_rank=1)
        False
        >>> dk.rng.get_stream("tensor-parallel")
        Stream('tensor-parallel')
    """
    seed = _check_int(seed, "seed")
    _registry.seed = seed
    _registry.data_rank = _check_int(data_rank, "data_rank")
    _registry.pipeline_rank = _check_int(pipeline_rank, "pipeline_rank")
    _registry.ranks[TENSOR_PARALLEL] = _check_int(tensor_rank, "tensor_rank")
    global_seed = _hash("default", seed, _registry.data_rank, _registry.pipeline_rank)
    torch.manual_seed(global_seed)
    return global_seed


def seed_from_mesh(
    seed: int, mesh: _Mesh, *, tensor_dim: str = "tp", pipeline_dim: str = "pp"
) -> int:
    """:func:`seed_parallel` with the ranks read from a ``torch.distributed`` ``DeviceMesh``.

    Megatron-LM's seeding (Shoeybi et al. 2019, https://arxiv.org/abs/1909.08053) on a named mesh.
    The dims named ``tensor_dim`` and ``pipeline_dim`` give the tensor-parallel and pipeline ranks
    (0 when the mesh has no such dim); every other dim (``"dp"``, FSDP's ``"replicate"`` and
    ``"shard"``, context parallel's ``"cp"``, ...) holds different data or a different slice of
    it, so together they form the data-parallel rank (row-major, in the mesh's order).

    Args:
        seed: the run's seed, an int >= 0, the same on every rank.
        mesh: a ``DeviceMesh`` with named dims, this process being one of its ranks.
        tensor_dim: the name of the tensor-parallel dim.
        pipeline_dim: the name of the pipeline dim.

    Returns:
        The seed given to ``torch.manual_seed``.

    Example:
        On every rank, after ``torch.distributed.init_process_group``:
        ``dk.rng.seed_from_mesh(1234, init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp",
        "tp")))``. Any object with ``mesh_dim_names``, ``size(dim_index)`` and
        ``get_local_rank(dim_name)`` is read the same way, as this stand-in for rank (dp 1, tp 0):

        >>> import dropkit as dk
        >>> class Rank:
        ...     mesh_dim_names = ("dp", "tp")
        ...     def size(self, index): return 2
        ...     def get_local_rank(self, name): return {"dp": 1, "tp": 0}[name]
        >>> dk.rng.seed_from_mesh(1234, Rank()) == dk.rng.seed_parallel(1234, data_rank=1)
        True
    """
    names = mesh.mesh_dim_names
    if not names:
        raise ValueError("mesh must have named dims (mesh_dim_names), got none")
    data_rank = 0
    for index, name in enumerate(names):
        if name not in (tensor_dim, pipeline_dim):
            data_rank = data_rank * mesh.size(index) + mesh.get_local_rank(name)

    def coordinate(name: str) -> int:
        return mesh.get_local_rank(name) if name in names else 0

    return seed_parallel(
        seed,
        data_rank=data_rank,
        tensor_rank=coordinate(tensor_dim),
        pipeline_rank=coordinate(pipeline_dim),
    )


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a stream name must be a str, got {name!r}")
    if not name:
        raise ValueError("a stream name must not be empty")
    return name


def add_stream(name: str, *, rank: int = 0) -> Stream:
    """Register a named stream that differs by ``rank`` as well as by data and pipeline rank.

    For a dimension of parallelism beyond tensor parallelism, e.g. an expert-parallel stream
    (``rank`` = the expert-parallel rank), as Megatron-LM's tracker adds states by name (Shoeybi
    et al. 2019, https://arxiv.org/abs/1909.08053). The key uses the seed and ranks of the last
    :func:`seed_parallel` (0 for each before it; re-keyed by later calls).

    Args:
        name: the stream's name (``"tensor-parallel"`` is registered by :func:`seed_parallel`).
        rank: the coordinate by which this stream must differ between processes, >= 0.

    Example:
        >>> import dropkit as dk
        >>> dk.rng.add_stream("expert", rank=3)
        Stream('expert')
        >>> dk.rng.get_stream("expert") == dk.rng.add_stream("expert", rank=3)
        True
    """
    _registry.ranks[_check_name(name)] = _check_int(rank, "rank")
    return _make_stream(name, rank)


def get_stream(name: str) -> Stream:
    """The registered stream called ``name``; a ValueError lists the registered names if none.

    Example:
        >>> import dropkit as dk
        >>> _ = dk.rng.seed_parallel(0, data_rank=0)
        >>> dk.rng.get_stream("tensor-parallel").name
        'tensor-parallel'
    """
    ranks = _registry.ranks
    if _check_name(name) not in ranks:
        known = ", ".join(repr(known) for known in sorted(ranks)) or "none"
        raise ValueError(
            f"no random stream named {name!r} (registered: {known}); call "
            f"dk.rng.seed_parallel(...) or dk.rng.add_stream({name!r}, rank=...) first"
        )
    return _make_stream(name, ranks[name])


def reset() -> None:
    """Forget every stream and the parallel seed (the global generators are left as they are).

    Example:
        >>> import dropkit as dk
        >>> dk.rng.reset()
        >>> dk.rng.state_dict()["streams"]
        {}
    """
    _registry.seed = _registry.data_rank = _registry.pipeline_rank = 0
    _registry.ranks = {}


def check_source(value: object, name: str = "generator") -> GeneratorSource:
    """Validate what a module was given as ``generator=``; a name is looked up only when used.

    Args:
        value: None, a ``torch.Generator``, a stream name or a :class:`Stream`.
        name: the argument's name for the error message.

    Example:
        >>> import dropkit as dk
        >>> dk.rng.check_source("not-registered-yet")
        'not-registered-yet'
        >>> dk.rng.check_source(7)
        Traceback (most recent call last):
        ...
        TypeError: generator must be None, a torch.Generator, a stream name or a ..., got 7
    """
    if value is None or isinstance(value, (torch.Generator, Stream)):
        return value
    if isinstance(value, str):
        if not value:
            raise ValueError(f"{name} must not be an empty stream name")
        return value
    raise TypeError(
        f"{name} must be None, a torch.Generator, a stream name or a dk.rng.Stream, got {value!r}"
    )


def describe(source: GeneratorSource) -> str:
    """How ``extra_repr`` shows a generator source: never a generator's state.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> dk.rng.describe("tensor-parallel"), dk.rng.describe(torch.Generator())
        ("'tensor-parallel'", 'Generator(device=cpu)')
    """
    if isinstance(source, torch.Generator):
        return f"Generator(device={source.device})"
    return repr(source)


_Params = ParamSpec("_Params")
_Result = TypeVar("_Result")


def _run_eagerly(function: Callable[_Params, _Result]) -> Callable[_Params, _Result]:
    """``torch.compiler.disable`` for host-side work, importing the compiler only when compiling
    (so ``import dropkit`` stays light)."""

    @functools.wraps(function)
    def run(*args: _Params.args, **kwargs: _Params.kwargs) -> _Result:
        if torch.compiler.is_compiling():
            return torch.compiler.disable(function)(*args, **kwargs)
        return function(*args, **kwargs)

    return run


@_run_eagerly
def _stream_seed(source: str | Stream) -> int:
    stream_ = get_stream(source) if isinstance(source, str) else source
    draw = int(torch.randint(_DRAW_LIMIT, (), dtype=torch.int64))  # the global CPU generator
    return _hash("draw", stream_.key, draw)


def resolve(source: GeneratorSource, device: torch.device | str) -> torch.Generator | None:
    """The ``torch.Generator`` an op should draw from, for a module's ``generator=`` value.

    None stays None (the default stream: the global generator); a ``torch.Generator`` is returned
    as it is; a stream (a name or a :class:`Stream`) takes one number from the global CPU
    generator and returns a fresh generator on ``device`` seeded with a hash of (stream key,
    number), so the result is replayed wherever the global state is (Megatron-LM's streams,
    Shoeybi et al. 2019, https://arxiv.org/abs/1909.08053, made stateless). Call it once per op
    call, and only when the op will draw.

    Args:
        source: None, a ``torch.Generator``, a registered stream's name or a :class:`Stream`.
        device: the device of the tensor the op draws for.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> _ = dk.rng.seed_parallel(0, data_rank=0, tensor_rank=0)
        >>> generator = dk.rng.resolve("tensor-parallel", torch.device("cpu"))
        >>> mask = dk.functional.dropout(torch.ones(4), 0.5, generator=generator)
        >>> dk.rng.resolve(None, "cpu") is None
        True
    """
    source = check_source(source)
    if source is None or isinstance(source, torch.Generator):
        return source
    return _seeded_generator(_stream_seed(source), device)


@_run_eagerly
def _seeded_generator(seed: int, device: torch.device | str) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def _cuda_index(device: torch.device | str | None) -> int | None:
    """The CUDA device whose global generator a fork covers, or None for CPU only."""
    if device is None:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            return torch.cuda.current_device()
        return None
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return device.index if device.index is not None else torch.cuda.current_device()


@contextmanager
def stream(
    source: GeneratorSource, device: torch.device | str | None = None
) -> Iterator[torch.Generator | None]:
    """Draw every torch random call inside the block from a stream: Megatron-LM's ``fork``.

    Shoeybi et al. 2019 (https://arxiv.org/abs/1909.08053). On entry the stream takes one number
    from the global CPU generator; the global generators (CPU, and the CUDA device of ``device``,
    or the current one when CUDA is in use) are then seeded from (stream key, number) for the
    block and restored on exit. Everything inside draws from the stream: dropkit ops with
    ``generator=None``, ``torch.nn.Dropout``, attention dropout in
    ``scaled_dot_product_attention``, weight initialisation of a sharded layer. Replays under
    checkpointing as :func:`resolve` does. ``source`` may also be a ``torch.Generator`` (the block
    is seeded from one draw of it) or None (the block runs as it is).

    Args:
        source: a registered stream's name, a :class:`Stream`, a ``torch.Generator`` or None.
        device: the device whose generator to fork besides the CPU's.

    Yields:
        The global CPU generator, seeded for the block (None when ``source`` is None).

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> _ = dk.rng.seed_parallel(0, data_rank=0, tensor_rank=1)
        >>> with dk.rng.stream("tensor-parallel"):
        ...     dropped = torch.nn.functional.dropout(torch.ones(2, 6), 0.5)  # sharded heads
        >>> dropped.shape
        torch.Size([2, 6])
    """
    source = check_source(source, "source")
    if source is None:
        yield None
        return
    if isinstance(source, torch.Generator):
        device_of = source.device
        seed = int(
            torch.randint(_DRAW_LIMIT, (), dtype=torch.int64, generator=source, device=device_of)
        )
    else:
        seed = _stream_seed(source)
    cuda = _cuda_index(device)
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state(cuda) if cuda is not None else None
    try:
        torch.default_generator.manual_seed(seed)
        if cuda is not None:
            torch.cuda.default_generators[cuda].manual_seed(seed)
        yield torch.default_generator
    finally:
        torch.set_rng_state(cpu_state)
        if cuda is not None and cuda_state is not None:
            torch.cuda.set_rng_state(cuda_state, cuda)


def state_dict() -> dict[str, Any]:
    """Everything this process needs to continue its dropout randomness after a restart.

    The parallel seed and ranks, the registered streams, and the global torch generator states
    (CPU, and the current CUDA device when CUDA is in use), as Megatron-LM's checkpoints keep its
    tracker's states (Shoeybi et al. 2019, https://arxiv.org/abs/1909.08053). Save one per rank
    with the model and optimizer; :func:`load_state_dict` restores it.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> _ = dk.rng.seed_parallel(5, data_rank=1)
        >>> saved = dk.rng.state_dict()
        >>> before = torch.rand(3)
        >>> dk.rng.load_state_dict(saved)
        >>> torch.equal(before, torch.rand(3))
        True
    """
    cuda = _cuda_index(None)
    return {
        "format": _FORMAT,
        "seed": _registry.seed,
        "data_rank": _registry.data_rank,
        "pipeline_rank": _registry.pipeline_rank,
        "streams": dict(_registry.ranks),
        "cpu_state": torch.get_rng_state(),
        "cuda_state": torch.cuda.get_rng_state(cuda) if cuda is not None else None,
    }


_STATE_KEYS = ("format", "seed", "data_rank", "pipeline_rank", "streams", "cpu_state")


def load_state_dict(state: Mapping[str, Any]) -> None:
    """Restore what :func:`state_dict` saved: streams, seed, ranks and global generator states.

    Args:
        state: a dict from :func:`state_dict` (of the same rank).

    Example:
        >>> import dropkit as dk
        >>> dk.rng.load_state_dict(dk.rng.state_dict())
    """
    if not isinstance(state, Mapping):
        raise TypeError(
            f"state must be a dict from dk.rng.state_dict(), got {type(state).__name__}"
        )
    missing = [key for key in _STATE_KEYS if key not in state]
    if missing:
        raise ValueError(f"state is not from dk.rng.state_dict(): missing {', '.join(missing)}")
    if state["format"] != _FORMAT:
        raise ValueError(f"state has format {state['format']!r}; this dropkit reads {_FORMAT}")
    streams = state["streams"]
    if not isinstance(streams, Mapping):
        raise TypeError(f"state['streams'] must map names to ranks, got {streams!r}")
    ranks = {
        _check_name(name): _check_int(rank, f"rank of {name!r}") for name, rank in streams.items()
    }
    _registry.seed = _check_int(state["seed"], "seed")
    _registry.data_rank = _check_int(state["data_rank"], "data_rank")
    _registry.pipeline_rank = _check_int(state["pipeline_rank"], "pipeline_rank")
    _registry.ranks = ranks
    torch.set_rng_state(state["cpu_state"])
    cuda_state = state.get("cuda_state")
    if cuda_state is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda_state, torch.cuda.current_device())
