"""The contract every dropout op keeps, written once.

Every op in :mod:`dropkit.functional` validates its tensor, its rate ``p``, ``training`` and
``generator`` the same way, and shares the same cases where nothing is drawn: in evaluation
(``training=False``) or at ``p == 0`` the input itself is returned, and at ``p == 1`` zeros that
stay in the graph with a zero gradient (no NaN, also for infinite input).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dropkit._kernels.masks import zeros_with_zero_gradient
from dropkit._validation import check_bool, check_floating, check_generator, check_probability


def contract(
    x: Tensor,
    p: float,
    training: bool,
    generator: torch.Generator | None,
    name: str = "input",
) -> tuple[float, Tensor | None]:
    """Validate the shared arguments; return ``p`` as a float and the result when nothing is
    drawn (``x`` itself, or zeros), else None.

    ``name`` is the tensor's name in error messages (``"weight"`` for ops on weights).
    """
    check_floating(x, name)
    p = check_probability(p)
    training = check_bool(training, "training")
    check_generator(generator, x)
    if not training or p == 0.0:
        return p, x
    if p == 1.0:
        return p, zeros_with_zero_gradient(x)
    return p, None
