"""Multiplicative and additive noise: Gaussian dropout, alpha dropout, Gaussian noise."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dropkit._kernels.masks import bernoulli_mask
from dropkit._kernels.seeds import replayable
from dropkit._validation import check_bool, check_floating, check_generator, check_non_negative
from dropkit.functional._contract import contract
from dropkit.functional._tracing import traceable

# SELU's saturation value -lambda * alpha (Klambauer et al. 2017, Eq. 2 constants).
SELU_SATURATION = -1.0507009873554804934193349852946 * 1.6732632423543772848170429916717


@traceable
def gaussian_dropout(
    x: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Multiply every element by independent ``N(1, p / (1 - p))`` noise.

    Gaussian dropout from Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from
    Overfitting", JMLR 15, 2014, Section 10 (https://jmlr.org/papers/v15/srivastava14a.html): the
    noise has the mean and variance of Bernoulli dropout's ``m / (1 - p)``, so ``p`` reads the same
    as for :func:`dropout`.

    Args:
        x: a floating-point tensor of any shape.
        p: the equivalent drop probability, in [0, 1] (default 0.5, as :func:`dropout`); the
            noise variance is ``p / (1 - p)``.
        training: apply only when True; otherwise return ``x`` unchanged.
        generator: the torch generator to draw the noise from (the global one when None).

    Shape:
        - Input: ``(*)``. Output: same shape.

    Returns:
        ``x`` when not training or ``p == 0``; zeros when ``p == 1`` (infinite variance).

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> _ = torch.manual_seed(0)
        >>> y = dk.functional.gaussian_dropout(torch.ones(100_000), p=0.5)
        >>> round(y.mean().item(), 1), round(y.var().item(), 1)  # mean 1, variance p / (1 - p)
        (1.0, 1.0)
    """
    p, result = contract(x, p, training, generator)
    if result is not None:
        return result
    noise = torch.randn(
        x.shape, generator=replayable(generator, x.device), device=x.device, dtype=x.dtype
    )
    return x * noise.mul_(math.sqrt(p / (1.0 - p))).add_(1.0)


@traceable
def alpha_dropout(
    x: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Dropout for SELU networks that keeps zero mean and unit variance.

    Alpha dropout from Klambauer et al., "Self-Normalizing Neural Networks", NeurIPS 2017
    (https://arxiv.org/abs/1706.02515), Section "New dropout technique": dropped elements are set
    to SELU's saturation value ``alpha' = -lambda * alpha`` instead of 0, then an affine map
    ``a * y + b`` with ``a = ((1 - p) (1 + p alpha'^2))^(-1/2)`` and ``b = -a alpha' p`` restores
    mean 0 and variance 1 for standardised input.

    Args:
        x: a floating-point tensor of any shape, typically SELU activations.
        p: probability of dropping an element, in [0, 1] (default 0.5, as
            ``torch.nn.functional.alpha_dropout``).
        training: apply only when True; otherwise return ``x`` unchanged.
        generator: the torch generator to draw the mask from (the global one when None).

    Shape:
        - Input: ``(*)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> x = torch.randn(200_000, generator=torch.Generator().manual_seed(0))
        >>> y = dk.functional.alpha_dropout(x, p=0.2)
        >>> abs(round(y.mean().item(), 1)), round(y.std().item(), 1)
        (0.0, 1.0)
    """
    p, result = contract(x, p, training, generator)
    if result is not None:
        return result
    a = 1.0 / math.sqrt((1.0 - p) * (1.0 + p * SELU_SATURATION**2))
    b = -a * SELU_SATURATION * p
    keep = bernoulli_mask(x.shape, 1.0 - p, x.device, generator)
    dropped_value = x.new_full((), a * SELU_SATURATION + b)
    return torch.where(keep, x * a + b, dropped_value)


@traceable
def gaussian_noise(
    x: Tensor,
    std: float,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Add independent ``N(0, std^2)`` noise to every element during training.

    Additive Gaussian noise injection, a classic regulariser (Bishop, "Training with Noise is
    Equivalent to Tikhonov Regularization", Neural Computation 7(1), 1995), as Keras'
    ``GaussianNoise``.

    Args:
        x: a floating-point tensor of any shape.
        std: the noise's standard deviation, a finite number >= 0.
        training: apply only when True; otherwise return ``x`` unchanged.
        generator: the torch generator to draw the noise from (the global one when None).

    Shape:
        - Input: ``(*)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> _ = torch.manual_seed(0)
        >>> y = dk.functional.gaussian_noise(torch.zeros(100_000), std=0.5)
        >>> round(y.std().item(), 2)
        0.5
    """
    check_floating(x)
    std = check_non_negative(std, "std")
    training = check_bool(training, "training")
    check_generator(generator, x)
    if not training or std == 0.0:
        return x
    noise = torch.randn(
        x.shape, generator=replayable(generator, x.device), device=x.device, dtype=x.dtype
    )
    return x + noise.mul_(std)
