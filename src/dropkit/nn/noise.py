"""Module forms of Gaussian dropout, alpha dropout and Gaussian noise."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from dropkit import rng
from dropkit._validation import Validated, check_non_negative
from dropkit.functional.noise import alpha_dropout, gaussian_dropout, gaussian_noise
from dropkit.nn._base import RandomModule, RateModule


class GaussianDropout(RateModule):
    """Multiply activations by ``N(1, p / (1 - p))`` noise during training.

    Srivastava et al. 2014, Section 10 (https://jmlr.org/papers/v15/srivastava14a.html); see
    :func:`dropkit.functional.gaussian_dropout`.

    Args:
        p: the equivalent drop probability, in [0, 1] (default 0.5, as for every element-wise
            rate module).
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input: ``(*)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> dk.GaussianDropout(0.3)(torch.ones(2, 3)).shape
        torch.Size([2, 3])
        >>> dk.GaussianDropout()
        GaussianDropout(p=0.5)
    """

    dropout_kind = "noise"

    def __init__(self, p: float = 0.5, *, generator: rng.GeneratorSource = None) -> None:
        super().__init__(p, generator)

    def forward(self, x: Tensor) -> Tensor:
        return gaussian_dropout(x, self.p, self.training, generator=self.draw_generator(x))


class AlphaDropout(RateModule):
    """Dropout that keeps the zero mean and unit variance of SELU activations.

    Klambauer et al., "Self-Normalizing Neural Networks", NeurIPS 2017
    (https://arxiv.org/abs/1706.02515); see :func:`dropkit.functional.alpha_dropout`.

    Args:
        p: probability of dropping an element, in [0, 1] (default 0.5, as torch.nn.AlphaDropout).
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input: ``(*)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.SELU(), dk.AlphaDropout(0.1))
        >>> net(torch.randn(2, 4)).shape
        torch.Size([2, 4])
    """

    def __init__(self, p: float = 0.5, *, generator: rng.GeneratorSource = None) -> None:
        super().__init__(p, generator)

    def forward(self, x: Tensor) -> Tensor:
        return alpha_dropout(x, self.p, self.training, generator=self.draw_generator(x))


class GaussianNoise(RandomModule):
    """Add ``N(0, std^2)`` noise to activations during training.

    Bishop, "Training with Noise is Equivalent to Tikhonov Regularization", Neural Computation
    7(1), 1995; see :func:`dropkit.functional.gaussian_noise`.

    Args:
        std: the noise's standard deviation, >= 0; may be reassigned.
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input: ``(*)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> dk.GaussianNoise(0.1)
        GaussianNoise(std=0.1)
    """

    dropout_kind: ClassVar[str] = "noise"
    std = Validated(check_non_negative, "The noise's standard deviation, >= 0.")

    def __init__(self, std: float, *, generator: rng.GeneratorSource = None) -> None:
        super().__init__(generator)
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        return gaussian_noise(x, self.std, self.training, generator=self.draw_generator(x))

    def extra_repr(self) -> str:
        return self.with_generator(f"std={self.std}")
