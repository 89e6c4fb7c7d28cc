"""Stochastic depth (DropPath) for residual branches."""

from __future__ import annotations

import torch
from torch import Tensor

from dropkit._validation import check_choice, check_floating, check_min_dims
from dropkit.functional.dropout import dropout

DROP_PATH_MODES = ("row", "batch")


def drop_path(
    x: Tensor,
    p: float = 0.1,
    training: bool = True,
    *,
    mode: str = "row",
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
    first = 1 if mode == "row" else 0
    return dropout(x, p, training, broadcast_dims=range(first, x.dim()), generator=generator)
