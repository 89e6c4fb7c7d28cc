"""DropConnect: dropout on the weights of a layer rather than on its activations."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from dropkit._kernels.seeds import replayable
from dropkit._validation import (
    check_floating,
    check_generator,
    check_positive_int,
    check_probability,
)
from dropkit.functional._tracing import traceable
from dropkit.functional.dropout import dropout

#: A layer's forward as a function of (input, weight, bias), e.g. ``torch.nn.functional.linear``.
LayerFunction = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]


@traceable
def drop_connect(
    weight: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zero each weight with probability ``p`` and scale the surviving weights by ``1 / (1 - p)``.

    DropConnect from Wan et al., "Regularization of Neural Networks using DropConnect", ICML 2013
    (https://proceedings.mlr.press/v28/wan13.html). The mask covers the weight tensor, not the
    activations: use the returned tensor as the layer's weight for one forward pass, so the whole
    batch shares one mask. In inverted form the expected weight is unchanged, so evaluation uses
    the weight as it is.

    Args:
        weight: a floating-point weight tensor of any shape.
        p: probability of zeroing a weight, in [0, 1].
        training: apply only when True; otherwise return ``weight`` unchanged.
        generator: the torch generator to draw the mask from (the global one when None).

    Shape:
        - Input: ``(*)``, any shape. Output: same shape.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> import dropkit as dk
        >>> weight = torch.ones(3, 4)
        >>> generator = torch.Generator().manual_seed(0)
        >>> dropped = dk.functional.drop_connect(weight, 0.5, generator=generator)
        >>> sorted(set(dropped.flatten().tolist()))  # each weight dropped or scaled by 2
        [0.0, 2.0]
        >>> F.linear(torch.ones(2, 4), dropped).shape  # one mask for the whole batch
        torch.Size([2, 3])
    """
    check_floating(weight, "weight")
    return dropout(weight, p, training, generator=generator)


@traceable
def drop_connect_gaussian(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    p: float = 0.5,
    *,
    layer: LayerFunction = F.linear,
    samples: int = 100,
    activation: Callable[[Tensor], Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """DropConnect inference by moment matching: average ``activation(u)`` over Gaussian ``u``.

    Wan et al., "Regularization of Neural Networks using DropConnect", ICML 2013, Section 3
    (https://proceedings.mlr.press/v28/wan13.html). Under DropConnect each pre-activation
    ``u = layer(x, W * M / (1 - p), b)`` is a sum of many independent terms; it is approximated by a
    Gaussian with the exact mean and variance of that sum. With the inverted mask
    ``M ~ Bernoulli(1 - p)`` these are ``mean = layer(x, W, b)`` and
    ``var = p / (1 - p) * layer(x * x, W * W, 0)`` (the paper's non-inverted form, mean
    ``(1 - p) W v`` and variance ``p (1 - p) (W∘W)(v∘v)``, divided by ``1 - p`` and ``(1 - p)^2``).
    The function draws ``samples`` values of ``u``, applies ``activation`` and returns their mean,
    the estimate of ``E[activation(u)]`` that weight scaling would replace with
    ``activation(E[u])``. The variance formula holds for any layer that is linear in its input and
    in its weight (linear, convolution) whose output units each use a weight at most once.

    Args:
        x: the layer's input.
        weight: the layer's weight (not dropped).
        bias: the layer's bias, or None.
        p: the DropConnect rate used in training, in [0, 1] (default 0.5, as
            :func:`drop_connect`). At ``p == 1`` every weight is dropped and the result is
            ``activation(layer(x, 0, b))``.
        layer: the layer as a function ``layer(input, weight, bias)`` (default
            ``torch.nn.functional.linear``).
        samples: the number of Gaussian samples to average, >= 1.
        activation: the non-linearity applied to each sample (identity when None).
        generator: the torch generator for the Gaussian samples (the global one when None).

    Shape:
        - Output: the layer's output shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> weight, x = torch.randn(3, 8), torch.randn(2, 8)
        >>> y = dk.functional.drop_connect_gaussian(x, weight, None, 0.5, activation=torch.relu)
        >>> y.shape, bool((y >= 0).all())
        (torch.Size([2, 3]), True)
    """
    check_floating(x)
    check_floating(weight, "weight")
    if bias is not None:
        check_floating(bias, "bias")
    p = check_probability(p)
    samples = check_positive_int(samples, "samples")
    check_generator(generator, x)
    act = activation if activation is not None else _identity
    if p == 1.0:
        return act(_run_layer(layer, x, torch.zeros_like(weight), bias))
    mean = _run_layer(layer, x, weight, bias)
    zero_bias = None if bias is None else torch.zeros_like(bias)
    std = (layer(x * x, weight * weight, zero_bias) * (p / (1.0 - p))).clamp_min(0.0).sqrt()
    total = torch.zeros_like(mean)
    for _ in range(samples):
        noise = torch.randn(
            mean.shape,
            dtype=mean.dtype,
            device=mean.device,
            generator=replayable(generator, mean.device),
        )
        total = total + act(mean + std * noise)
    return total / samples


def _run_layer(layer: LayerFunction, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``layer(x, weight, bias)``; torch's error on arguments that do not fit (a shape clash)
    becomes a ValueError naming them and their shapes. Running out of memory stays as it is."""
    try:
        return layer(x, weight, bias)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as error:
        bias_shape = None if bias is None else tuple(bias.shape)
        raise ValueError(
            f"layer(x, weight, bias) failed for x of shape {tuple(x.shape)}, weight of shape "
            f"{tuple(weight.shape)} and bias of shape {bias_shape}: {error}"
        ) from error


def _identity(x: Tensor) -> Tensor:
    return x
