"""Stochastic depth (DropPath) for residual branches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch import Tensor

from dropkit._kernels import ops
from dropkit._kernels.seeds import draw_seed
from dropkit._validation import (
    check_bool,
    check_choice,
    check_floating,
    check_generator,
    check_min_dims,
    check_probability,
)
from dropkit.functional._tracing import traceable
from dropkit.functional.dropout import shared_dropout

#: How :func:`drop_path` draws: one decision per sample (``"row"``) or one for the batch.
DropPathMode = Literal["row", "batch"]
DROP_PATH_MODES: tuple[DropPathMode, ...] = get_args(DropPathMode)


@traceable
def drop_path(
    x: Tensor,
    p: float = 0.1,
    training: bool = True,
    *,
    mode: DropPathMode = "row",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Drop a residual branch's output for whole samples (``"row"``) or the batch (``"batch"``).

    Stochastic depth from Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016
    (https://arxiv.org/abs/1603.09382). Apply it to the branch ``f(x)`` of ``x + f(x)``: a dropped
    sample passes through the identity only. Kept outputs are scaled by ``1 / (1 - p)`` so
    evaluation uses the branch as it is. Use :func:`dropkit.depth_rates` for the paper's linear rule
    over depth.

    Args:
        x: a floating-point tensor whose first dimension is the batch.
        p: probability of dropping the branch, in [0, 1].
        training: apply only when True; otherwise return ``x`` unchanged.
        mode: ``"row"`` draws one decision per sample; ``"batch"`` one for the whole batch.
        generator: the torch generator to draw the decisions from (the global one when None).

    Shape:
        - Input: ``(N, *)``.
        - Output: ``(N, *)``, same shape as the input.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> branch = torch.ones(6, 3, 4)
        >>> y = dk.functional.drop_path(branch, p=0.5, generator=torch.Generator().manual_seed(1))
        >>> sorted(set(y.flatten(1).mean(1).tolist()))  # each sample dropped or kept whole
        [0.0, 2.0]
    """
    check_floating(x)
    check_choice(mode, "mode", DROP_PATH_MODES)
    check_min_dims(x, 1, shape_hint="(N, *)")
    ones = [1] * (x.dim() - 1)
    mask_shape = [x.shape[0], *ones] if mode == "row" else [1, *ones]
    return shared_dropout(x, p, training, generator, mask_shape)


@traceable
def drop_path_residual(
    x: Tensor,
    branch: Callable[[Tensor], Tensor],
    p: float = 0.1,
    training: bool = True,
    *,
    mode: DropPathMode = "row",
    generator: torch.Generator | None = None,
) -> Tensor:
    """``x + drop_path(branch(x))``, running ``branch`` only on the samples it keeps.

    Stochastic depth from Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016
    (https://arxiv.org/abs/1603.09382), as the paper describes it: a dropped block is skipped,
    not computed and then multiplied by zero. The kept samples are gathered, passed through
    ``branch``, scaled by ``1 / (1 - p)`` and added back to their rows, so the output has the same
    distribution and the same gradients as :func:`drop_path` on the branch, for about ``1 - p`` of
    the branch's cost. The decisions are drawn exactly as :func:`drop_path` draws them, so the
    same generator state drops the same samples.

    ``branch`` sees a smaller batch: layers that mix samples (batch norm in training mode) see
    statistics of the kept samples only. When the branch is skipped for the whole batch, the
    parameters of a ``branch`` module still get (zero) gradients, as they do with
    :func:`drop_path`, so ``DistributedDataParallel`` with its default
    ``find_unused_parameters=False`` finds every parameter it waits for.

    Args:
        x: a floating-point tensor whose first dimension is the batch.
        branch: the residual branch, a callable mapping ``(M, *)`` to ``(M, *)`` for any ``M``.
        p: probability of dropping the branch, in [0, 1].
        training: apply only when True; otherwise return ``x + branch(x)``.
        mode: ``"row"`` draws one decision per sample; ``"batch"`` one for the whole batch.
        generator: the torch generator to draw the decisions from (the global one when None).

    Shape:
        - Input: ``(N, *)``; ``branch`` must keep the shape.
        - Output: ``(N, *)``.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> branch = torch.nn.Linear(4, 4)
        >>> x = torch.randn(8, 4)
        >>> y = dk.drop_path_residual(x, branch, p=0.5, generator=torch.Generator().manual_seed(0))
        >>> y.shape
        torch.Size([8, 4])
        >>> bool(((y - x).abs().sum(1) == 0).any())  # some samples skipped the branch entirely
        True
    """
    check_floating(x)
    check_choice(mode, "mode", DROP_PATH_MODES)
    check_min_dims(x, 1, shape_hint="(N, *)")
    p = check_probability(p)
    training = check_bool(training, "training")
    check_generator(generator, x)
    if not callable(branch):
        raise TypeError(f"branch must be a callable (a module or function), got {branch!r}")
    if not training or p == 0.0:
        return x + branch(x)
    if p == 1.0 or x.shape[0] == 0:
        return _skipped(x, branch)
    if torch.compiler.is_compiling() or torch._C._get_tracing_state() is not None:
        # data-dependent batch sizes would break a compiled graph or be baked into a jit trace
        return x + drop_path(branch(x), p, training, mode=mode, generator=generator)
    scale = 1.0 / (1.0 - p)
    seed = draw_seed(x.device, generator)  # as drop_path draws its decisions
    if mode == "batch":
        kept = ops.keep_mask((1,) * x.dim(), p, seed, x.device)
        return x + _checked(branch(x), x) * scale if bool(kept) else _skipped(x, branch)
    keep = ops.keep_mask((x.shape[0],) + (1,) * (x.dim() - 1), p, seed, x.device)
    keep = keep.view(-1)
    index = keep.nonzero().squeeze(1)
    if index.numel() == 0:
        return _skipped(x, branch)
    if index.numel() == x.shape[0]:
        return x + _checked(branch(x), x) * scale
    out = _checked(branch(x.index_select(0, index)), x)
    return x.index_add(0, index, out.to(x.dtype), alpha=scale)


def _skipped(x: Tensor, branch: Callable[[Tensor], Tensor]) -> Tensor:
    """``x`` for a batch whose branch is skipped, joined to the branch's trainable parameters by
    a zero term: their gradients are zeros, as a branch multiplied by a zero mask would give,
    not missing (which stops DistributedDataParallel at the next step)."""
    if not torch.is_grad_enabled() or not isinstance(branch, torch.nn.Module):
        return x.clone()
    trainable = [p for p in branch.parameters() if p.requires_grad and p.numel() > 0]
    if not trainable:
        return x.clone()
    zero = torch.stack([p.reshape(-1)[0].to(x.dtype) for p in trainable]).sum() * 0.0
    return x + zero


def _checked(out: Tensor, x: Tensor) -> Tensor:
    """A residual branch must keep the per-sample shape of its input."""
    if not isinstance(out, Tensor) or out.shape[1:] != x.shape[1:]:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(
            f"branch must return a tensor shaped like its input (N, {tuple(x.shape[1:])}), "
            f"got {shape}"
        )
    return out
