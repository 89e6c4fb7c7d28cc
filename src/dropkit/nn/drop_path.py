"""Module form of stochastic depth."""

from __future__ import annotations

from torch import Tensor

from dropkit import rng
from dropkit._validation import Validated, one_of
from dropkit.functional._tracing import untraced
from dropkit.functional.drop_path import DROP_PATH_MODES, DropPathMode, drop_path
from dropkit.nn._base import RateModule

# the op without its Proxy check: __call__ has done it (RateModule)
_drop_path = untraced(drop_path)


class DropPath(RateModule):
    """Stochastic depth: drop a residual branch for whole samples (or the whole batch).

    Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016
    (https://arxiv.org/abs/1603.09382). Put it on the branch: ``x + drop_path(f(x))``. See
    :func:`dropkit.functional.drop_path`; :func:`dropkit.depth_rates` gives the linear rule.

    Args:
        p: probability of dropping the branch, in [0, 1].
        mode: ``"row"`` (one decision per sample) or ``"batch"`` (one for the batch).
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input: ``(N, *)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> block = torch.nn.Linear(8, 8)
        >>> drop = dk.DropPath(0.1)
        >>> x = torch.randn(4, 8)
        >>> (x + drop(block(x))).shape
        torch.Size([4, 8])
    """

    dropout_kind = "path"
    mode = Validated(one_of(DROP_PATH_MODES), "One decision per sample or for the batch.")

    def __init__(
        self, p: float = 0.1, mode: DropPathMode = "row", *, generator: rng.GeneratorSource = None
    ) -> None:
        super().__init__(p, generator)
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        generator = self.draw_generator(x)
        return _drop_path(x, self.p, self.training, mode=self.mode, generator=generator)

    def extra_repr(self) -> str:
        return self.with_generator(f"p={self.p}, mode={self.mode!r}")
