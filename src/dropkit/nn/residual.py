"""Module form of compute-skipping stochastic depth for residual blocks."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from dropkit import rng
from dropkit._validation import Validated, one_of
from dropkit.functional.drop_path import DROP_PATH_MODES, DropPathMode, drop_path_residual
from dropkit.nn._base import RateModule


class DropPathResidual(RateModule):
    """A residual block ``x + branch(x)`` whose branch is skipped for dropped samples.

    Stochastic depth from Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016
    (https://arxiv.org/abs/1603.09382). Same distribution and gradients as
    ``x + DropPath(p)(branch(x))``, but ``branch`` runs only on the kept samples
    (see :func:`dropkit.functional.drop_path_residual`); in evaluation it is ``x + branch(x)``.

    Args:
        branch: the residual branch, a module (registered as a submodule) or a callable that
            keeps the shape of its input.
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
        >>> branch = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU())
        >>> block = dk.DropPathResidual(branch, p=0.2)
        >>> block(torch.randn(4, 8)).shape
        torch.Size([4, 8])
    """

    dropout_kind = "path"
    mode = Validated(one_of(DROP_PATH_MODES), "One decision per sample or for the batch.")

    def __init__(
        self,
        branch: Callable[[Tensor], Tensor],
        p: float = 0.1,
        mode: DropPathMode = "row",
        *,
        generator: rng.GeneratorSource = None,
    ) -> None:
        super().__init__(p, generator)
        if not callable(branch):
            raise TypeError(f"branch must be a callable (a module or function), got {branch!r}")
        self.branch = branch
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        generator = self.draw_generator(x)
        return drop_path_residual(
            x, self.branch, self.p, self.training, mode=self.mode, generator=generator
        )

    def extra_repr(self) -> str:
        return self.with_generator(f"p={self.p}, mode={self.mode!r}")
