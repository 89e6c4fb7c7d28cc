"""dropkit's fast paths as registered PyTorch operators (``torch.ops.dropkit.*``).

Four operators, each linear in its first argument ``x`` for fixed other arguments, and the keep
mask ``dropkit::keep_mask``:

- ``dropkit::dropout(Tensor x, float p, Tensor seed)``: element-wise inverted dropout with the
  mask of :func:`dropkit._kernels.philox.keep_mask` for ``seed``.
- ``dropkit::broadcast_dropout(Tensor x, float p, Tensor seed, int[] mask_shape)``: inverted
  dropout with the keep mask of ``mask_shape`` for ``seed``, broadcast against ``x`` (drop_path,
  spatial dropout, ``broadcast_dims``): ``mask_scale`` of ``keep_mask``, in one call.
- ``dropkit::mask_scale(Tensor x, Tensor keep, float scale)``: ``x * scale`` where the boolean
  ``keep`` (broadcast against ``x``) is True, exact zeros elsewhere.
- ``dropkit::drop_block(Tensor x, float gamma, int[] blocks, bool shared, Tensor seed)``:
  DropBlock with the block seeds drawn from ``seed`` (:mod:`dropkit._kernels.sparse_block`).

``dropkit::draw_dropout(Tensor x, float p, int[]? mask_shape)`` is the seed drawn from the
global generator (as :func:`dropkit._kernels.philox.sample_seed` draws it) and ``dropout`` or
``broadcast_dropout`` called with it: a composite of the two for eager CPU calls and
``torch.jit.trace`` (:func:`draws_in_kernel`), whose CPU kernel the compiled library supplies.
``dropkit::draw_drop_block(Tensor x, float gamma, int[] blocks, bool shared)`` is the same for
``drop_block``.

Each has one implementation for every device that picks a backend at call time
(:mod:`dropkit.backends`: the compiled CPU kernel, Triton on CUDA, or pure PyTorch, all giving
the same result for the same seed), a fake (shape) kernel for ``torch.compile`` and
``torch.export``, an autograd formula whose backward applies the same op to the gradient (for
``dropout``, ``broadcast_dropout`` and ``drop_block`` it keeps only the 8-byte seed and
regenerates the mask) and a vmap rule. When the compiled CPU kernels load they add C++ entry
points for CPU tensors (``csrc/ops.cpp``), so an eager call there does not enter Python.
Outputs are fresh tensors laid out as ``torch.empty_like(x)`` (channels_last stays
channels_last), never views.

``torch.func`` transforms and forward-mode AD go through :class:`LinearOpFunction`, an
``autograd.Function`` with ``jvp`` and ``vmap`` rules; plain calls (also under
``torch.compile``) call the operator directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.autograd.forward_ad as forward_ad
from torch import Tensor

from dropkit import backends
from dropkit._kernels import cpu, philox, sparse_block
from dropkit._kernels.masks import apply_keep_mask


def _same_layout(a: Tensor, b: Tensor) -> bool:
    """Whether ``a`` and ``b`` (same shape) lay their elements out alike (size-1 dims aside)."""
    return all(
        size == 1 or first == second
        for size, first, second in zip(a.shape, a.stride(), b.stride(), strict=True)
    )


def finish(x: Tensor, out: Tensor) -> Tensor:
    """``out`` as a fresh tensor (not a view) laid out as ``torch.empty_like(x)`` would be.

    That is ``x``'s own layout for dense inputs (channels_last stays channels_last, a transposed
    tensor stays transposed), as torch's dropout does, and contiguous otherwise.
    """
    if x.is_contiguous() and out.is_contiguous() and not out._is_view():  # the common case
        return out
    expected = torch.empty_like(x, device="meta")
    if not _same_layout(expected, out):
        return torch.empty_like(x).copy_(out)
    return out.detach() if out._is_view() else out


def _empty_like(x: Tensor) -> Tensor:
    return torch.empty_like(x)


def _triton_fits(x: Tensor) -> bool:
    from dropkit._kernels import triton_dropout

    return x.numel() <= triton_dropout.MAX_ELEMENTS


# --- dropkit::dropout ------------------------------------------------------------------------


@torch.library.custom_op("dropkit::dropout", mutates_args=())
def dropout_op(x: Tensor, p: float, seed: Tensor) -> Tensor:
    """``x * keep / (1 - p)`` for the keep mask of ``seed`` (0 < p < 1)."""
    if x.numel() == 0:
        return _empty_like(x)
    backend = backends.selected(x)
    if backend == "cpu":
        return finish(x, cpu.dropout_with_seed(x, p, int(seed)))
    if backend == "triton" and _triton_fits(x):
        return finish(x, _dropout_triton(x, p, seed))
    keep = philox.keep_mask(x.shape, p, seed, device=x.device)
    return finish(x, apply_keep_mask(x, keep, 1.0 / (1.0 - p)))


def _dropout_triton(x: Tensor, p: float, seed: Tensor, traced: bool = False) -> Tensor:
    from dropkit._kernels import triton_dropout

    return triton_dropout.apply_with_seed(x, p, seed.reshape(1).to(x.device), traced=traced)


@dropout_op.register_fake
def _dropout_fake(x: Tensor, p: float, seed: Tensor) -> Tensor:
    return _empty_like(x)


# --- dropkit::keep_mask ---------------------------------------------------------------------


@torch.library.custom_op("dropkit::keep_mask", mutates_args=())
def keep_mask_op(seed: Tensor, shape: list[int], p: float, device: torch.device) -> Tensor:
    """The boolean keep mask of ``shape`` for ``seed`` (:func:`philox.keep_mask`).

    On CPU the compiled kernel computes the same Philox words far faster than the pure-PyTorch
    rounds (which cost a fixed few hundred microseconds even for a mask of a few elements).
    """
    if device.type == "cpu" and 0.0 < p < 1.0 and backends.selected(torch.empty(shape)) == "cpu":
        return cpu.keep_mask(shape, p, int(seed))
    return philox.keep_mask(shape, p, seed, device=device)


@keep_mask_op.register_fake
def _keep_mask_fake(seed: Tensor, shape: list[int], p: float, device: torch.device) -> Tensor:
    return torch.empty(shape, dtype=torch.bool, device=device)


@keep_mask_op.register_vmap
def _keep_mask_vmap(
    info: Any, in_dims: tuple[Any, ...], seed: Tensor, shape: list[int], p: float, device: Any
) -> tuple[Tensor, int | None]:
    if in_dims[0] is None:  # randomness="same": one mask for every sample
        return keep_mask_op(seed, shape, p, device), None
    masks = [keep_mask_op(one, shape, p, device) for one in seed.movedim(in_dims[0], 0)]
    return torch.stack(masks), 0


def plain_sizes(shape: Sequence[int]) -> list[int]:
    """``shape`` as a list for a ``SymInt[]`` argument. Under ``torch.jit.trace`` sizes read
    from a tensor are traced values, on which torch's tracer fails an internal assert for such
    arguments: there they become plain ints (the trace keeps the traced sizes)."""
    if torch._C._get_tracing_state() is not None:
        return [int(size) for size in shape]
    return list(shape)


def keep_mask(shape: Sequence[int], p: float, seed: Tensor, device: torch.device) -> Tensor:
    """The keep mask of ``shape`` for ``seed`` (one per sample under vmap's "different")."""
    return keep_mask_op._opoverload(seed, plain_sizes(shape), p, device)


# --- dropkit::mask_scale ---------------------------------------------------------------------


def covers_leading_dims(mask_shape: Sequence[int], shape: Sequence[int]) -> bool:
    """True when a mask of ``mask_shape`` varies only over leading dims of ``shape``.

    That is, ``mask_shape`` is ``shape[:k]`` followed by ones, for some ``k``.
    """
    if len(mask_shape) != len(shape):
        return False
    k = 0
    while k < len(shape) and mask_shape[k] == shape[k] and shape[k] != 1:
        k += 1
    return all(size == 1 for size in mask_shape[k:])


@torch.library.custom_op("dropkit::mask_scale", mutates_args=())
def mask_scale_op(x: Tensor, keep: Tensor, scale: float) -> Tensor:
    """``x * scale`` where the broadcast boolean ``keep`` is True, exact zeros elsewhere."""
    return _mask_scale(x, keep, scale)


def _mask_scale(x: Tensor, keep: Tensor, scale: float) -> Tensor:
    if x.numel() == 0:
        return _empty_like(x)
    backend = backends.selected(x)
    if backend == "cpu" and covers_leading_dims(keep.shape, x.shape):
        return finish(x, cpu.row_dropout(x, keep, scale))
    if backend == "triton" and _triton_fits(x) and _mask_layout(x, keep) is not None:
        return finish(x, _mask_scale_triton(x, keep, scale))
    return finish(x, apply_keep_mask(x, keep, scale))


def _mask_layout(x: Tensor, keep: Tensor) -> tuple[int, int] | None:
    from dropkit._kernels import triton_dropout

    return triton_dropout.mask_layout(tuple(keep.shape), tuple(x.shape))


def _mask_scale_triton(x: Tensor, keep: Tensor, scale: float, traced: bool = False) -> Tensor:
    from dropkit._kernels import triton_dropout

    layout = _mask_layout(x, keep)
    assert layout is not None
    return triton_dropout.apply_mask(x, keep, scale, layout, traced=traced)


@mask_scale_op.register_fake
def _mask_scale_fake(x: Tensor, keep: Tensor, scale: float) -> Tensor:
    return _empty_like(x)


# --- dropkit::broadcast_dropout --------------------------------------------------------------


@torch.library.custom_op("dropkit::broadcast_dropout", mutates_args=())
def broadcast_dropout_op(x: Tensor, p: float, seed: Tensor, mask_shape: list[int]) -> Tensor:
    """``x * keep / (1 - p)`` for the keep mask of ``mask_shape`` (broadcast against ``x``)."""
    keep = keep_mask_op._opoverload(seed, mask_shape, p, x.device)
    return _mask_scale(x, keep, 1.0 / (1.0 - p))


def _broadcast_dropout_triton(
    x: Tensor, p: float, seed: Tensor, mask_shape: list[int], traced: bool = False
) -> Tensor:
    keep = philox.keep_mask(mask_shape, p, seed, device=x.device)
    return _mask_scale_triton(x, keep, 1.0 / (1.0 - p), traced)


@broadcast_dropout_op.register_fake
def _broadcast_dropout_fake(x: Tensor, p: float, seed: Tensor, mask_shape: list[int]) -> Tensor:
    return _empty_like(x)


# --- dropkit::drop_block ---------------------------------------------------------------------


@torch.library.custom_op("dropkit::drop_block", mutates_args=())
def drop_block_op(x: Tensor, gamma: float, blocks: list[int], shared: bool, seed: Tensor) -> Tensor:
    """DropBlock of ``(N, C, *spatial)`` ``x`` with seed rate ``gamma`` and the mask of ``seed``."""
    if x.numel() == 0:
        return _empty_like(x)
    return finish(x, sparse_block.drop_block_with_seed(x, gamma, blocks, shared, seed))


def _drop_block_triton(
    x: Tensor, gamma: float, blocks: list[int], shared: bool, seed: Tensor, traced: bool = False
) -> Tensor:
    return sparse_block.drop_block_with_seed(x, gamma, blocks, shared, seed, traced=traced)


@drop_block_op.register_fake
def _drop_block_fake(
    x: Tensor, gamma: float, blocks: list[int], shared: bool, seed: Tensor
) -> Tensor:
    return _empty_like(x)


# --- autograd, vmap and the torch.func entry point --------------------------------------------

OPS = (dropout_op, broadcast_dropout_op, mask_scale_op, drop_block_op)


def _save(ctx: Any, rest: Sequence[Any]) -> None:
    ctx.rest = [None if isinstance(arg, Tensor) else arg for arg in rest]
    ctx.slots = [i for i, arg in enumerate(rest) if isinstance(arg, Tensor)]
    ctx.save_for_backward(*[rest[i] for i in ctx.slots])


def _restore(ctx: Any) -> list[Any]:
    rest = list(ctx.rest)
    for slot, tensor in zip(ctx.slots, ctx.saved_tensors, strict=True):
        rest[slot] = tensor
    return rest


def _register_autograd(op: Any) -> None:
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        _save(ctx, inputs[1:])

    def backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
        rest = _restore(ctx)
        return (op(grad, *rest), *([None] * len(rest)))

    op.register_autograd(backward, setup_context=setup_context)


def _per_sample(
    call: Callable[..., Tensor], batch_size: int, in_dims: Sequence[int | None], args: Sequence[Any]
) -> tuple[Tensor, int]:
    """Apply ``call`` to each sample of the batched arguments and stack the results."""

    def pick(arg: Any, dim: int | None, index: int) -> Any:
        return arg.select(dim, index) if isinstance(arg, Tensor) and dim is not None else arg

    outputs = [
        call(*(pick(arg, dim, index) for arg, dim in zip(args, in_dims, strict=True)))
        for index in range(batch_size)
    ]
    return torch.stack(outputs), 0


def _register_vmap(op: Any) -> None:
    def rule(info: Any, in_dims: tuple[Any, ...], *args: Any) -> tuple[Tensor, int]:
        # one sample at a time: with randomness="different" the seed is batched, one per sample
        return _per_sample(op, info.batch_size, in_dims, args)

    op.register_vmap(rule)


def _register_triton_decomposition(
    op: Any, implementation: Callable[..., Tensor], applies: Callable[..., bool] = lambda *a: True
) -> None:
    """Under ``torch.compile``, trace ``op`` on CUDA tensors served by Triton into its kernels.

    This is what ``torch.library.triton_op`` registers: AOTAutograd runs the operator under
    ``FunctionalTensorMode``, and this rule then runs ``implementation`` (the same code as the
    eager Triton path, launching its kernels through ``torch.library.wrap_triton``) so that the
    graph holds the kernel launches and inductor compiles them with their neighbours. Other
    tensors, other backends and ``torch.export`` (which keeps custom operators whole) keep the
    operator as one opaque call. ``triton_op`` itself is not used because defining an operator
    with it imports inductor (seconds) and logs a warning where Triton is not installed.
    """
    from torch._subclasses.fake_tensor import FakeTensor
    from torch._subclasses.functional_tensor import FunctionalTensor, FunctionalTensorMode

    def rule(mode: Any, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        x = args[0]
        if x.device.type != "cuda" or kwargs:
            return mode.__torch_dispatch__(func, types, args, kwargs)
        from torch.export._trace import custom_triton_ops_decomposition_disabled

        if (
            not custom_triton_ops_decomposition_disabled()
            and all(issubclass(t, (FakeTensor, FunctionalTensor)) or t is Tensor for t in types)
            and backends.selected(x) == "triton"
            and _triton_fits(x)
            and applies(*args)
        ):
            with mode:
                return implementation(*args, traced=True)
        return mode.__torch_dispatch__(func, types, args, kwargs)

    op.register_torch_dispatch(FunctionalTensorMode, rule)


for _op in OPS:
    _register_autograd(_op)
    _register_vmap(_op)
if hasattr(torch.library, "wrap_triton"):  # torch >= 2.6
    _register_triton_decomposition(dropout_op, _dropout_triton)
    _register_triton_decomposition(
        mask_scale_op, _mask_scale_triton, lambda x, keep, scale: _mask_layout(x, keep) is not None
    )
    _register_triton_decomposition(drop_block_op, _drop_block_triton)
    _register_triton_decomposition(
        broadcast_dropout_op,
        _broadcast_dropout_triton,
        lambda x, p, seed, mask_shape: (
            _mask_layout(x, torch.empty(mask_shape, device="meta")) is not None
        ),
    )


class LinearOpFunction(torch.autograd.Function):
    """``op(x, *rest)`` for an op linear in ``x``: backward and jvp apply ``op`` to the
    gradient or tangent; vmap applies it per sample. Used under ``torch.func`` and forward AD."""

    @staticmethod
    def forward(op: Any, x: Tensor, *rest: Any) -> Tensor:
        return op(x, *rest)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        ctx.op = inputs[0]
        ctx.full = inputs[2:]
        _save(ctx, inputs[2:])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
        rest = _restore(ctx)
        return (None, LinearOpFunction.apply(ctx.op, grad, *rest), *([None] * len(rest)))

    @staticmethod
    def jvp(ctx: Any, op_tangent: Any, x_tangent: Tensor, *rest_tangents: Any) -> Tensor:
        return LinearOpFunction.apply(ctx.op, x_tangent, *ctx.full)

    @staticmethod
    def vmap(info: Any, in_dims: tuple[Any, ...], op: Any, *args: Any) -> tuple[Tensor, int]:
        return _per_sample(
            lambda *sample: LinearOpFunction.apply(op, *sample), info.batch_size, in_dims[1:], args
        )


def _transformed() -> bool:
    """Whether a torch.func transform or forward-mode AD is active (they need the jvp rule)."""
    return torch._C._are_functorch_transforms_active() or forward_ad._current_level >= 0


def call(op: Any, x: Tensor, *rest: Any) -> Tensor:
    """Call one of :data:`OPS` on ``x``, through :class:`LinearOpFunction` when transformed."""
    if _transformed():
        return LinearOpFunction.apply(op._opoverload, x, *rest)
    return op._opoverload(x, *rest)


# --- dropkit::draw_dropout and draw_drop_block: the seed draw and the operator in one call ------

torch.library.define(
    "dropkit::draw_dropout",
    "(Tensor x, float p, int[]? mask_shape) -> Tensor",
    tags=(torch.Tag.nondeterministic_seeded,),
)


@torch.library.impl("dropkit::draw_dropout", "CompositeImplicitAutograd")
def _draw_dropout_composite(x: Tensor, p: float, mask_shape: list[int] | None) -> Tensor:
    seed = philox.sample_seed(None, x.device)
    if mask_shape is None:
        return call(dropout_op, x, p, seed)
    return call(broadcast_dropout_op, x, p, seed, list(mask_shape))


torch.library.define(
    "dropkit::draw_drop_block",
    "(Tensor x, float gamma, int[] blocks, bool shared) -> Tensor",
    tags=(torch.Tag.nondeterministic_seeded,),
)


@torch.library.impl("dropkit::draw_drop_block", "CompositeImplicitAutograd")
def _draw_drop_block_composite(x: Tensor, gamma: float, blocks: list[int], shared: bool) -> Tensor:
    seed = philox.sample_seed(None, x.device)
    return call(drop_block_op, x, gamma, list(blocks), shared, seed)


def _callable(overload: Any) -> Any:
    """The overload's C++ callable: what ``OpOverload.__call__`` calls, without its Python
    frame."""
    return getattr(overload, "_op", overload)


_draw_dropout = _callable(torch.ops.dropkit.draw_dropout.default)
_draw_drop_block = _callable(torch.ops.dropkit.draw_drop_block.default)
#: Whether the compiled library's kernel for ``draw_dropout`` (CPU tensors) is loaded.
_compiled_draw = False


def enable_draw() -> None:
    """Called when the compiled CPU library loads: :func:`draws_in_kernel` may now say True."""
    global _compiled_draw
    _compiled_draw = True


def draws_in_kernel(x: Tensor) -> bool:
    """Whether :func:`draw_dropout` serves ``x`` with the global generator.

    That is a plain tensor (not a subclass: fake and functional tensors draw from Python) outside
    ``torch.compile`` and ``torch.func`` transforms, either on CPU with the compiled library
    loaded (its kernel draws the seed and records the backward in C++, forward-mode AD
    included) or under ``torch.jit.trace``, which records the one operator: the traced program
    then draws a fresh mask per call and loads wherever dropkit is imported (``draw_dropout`` is
    defined from Python).
    """
    return (
        not torch.compiler.is_compiling()  # first: dynamo decides here, at trace time
        and type(x) is Tensor
        and ((_compiled_draw and x.is_cpu) or torch._C._get_tracing_state() is not None)
        and not torch._C._are_functorch_transforms_active()
    )


def draw_dropout(x: Tensor, p: float, mask_shape: list[int] | None) -> Tensor:
    """Dropout of ``x`` (``mask_shape`` None) or with the keep mask of ``mask_shape`` broadcast,
    with a seed drawn from the global generator, in one operator call: the same seed, mask and
    generator state as :func:`dropkit._kernels.seeds.draw_seed` followed by
    :func:`seeded_dropout` or :func:`seeded_broadcast_dropout` (which is what its
    pure-PyTorch implementation does; the compiled library draws the seed in C++). Only where
    :func:`draws_in_kernel` says so."""
    return _draw_dropout(x, p, mask_shape)


def draw_drop_block(x: Tensor, gamma: float, blocks: list[int], shared: bool) -> Tensor:
    """DropBlock of ``x`` with a seed drawn from the global generator, in one operator call:
    :func:`dropkit._kernels.seeds.draw_seed` followed by :func:`seeded_drop_block`, as
    :func:`draw_dropout` is for dropout. Only where :func:`draws_in_kernel` says so."""
    return _draw_drop_block(x, gamma, blocks, shared)


def seeded_dropout(x: Tensor, p: float, seed: Tensor) -> Tensor:
    """Element-wise dropout of ``x`` with the mask of ``seed``; backward keeps only the seed."""
    return call(dropout_op, x, p, seed)


def seeded_broadcast_dropout(x: Tensor, p: float, seed: Tensor, mask_shape: list[int]) -> Tensor:
    """Dropout of ``x`` with the keep mask of ``mask_shape`` (broadcast) for ``seed``, in one
    pass; backward keeps only the seed."""
    return call(broadcast_dropout_op, x, p, seed, plain_sizes(mask_shape))


def seeded_drop_block(
    x: Tensor, gamma: float, blocks: Sequence[int], shared: bool, seed: Tensor
) -> Tensor:
    """DropBlock of ``x`` with the block seeds drawn from ``seed``; backward keeps the seed."""
    return call(drop_block_op, x, gamma, list(blocks), shared, seed)
