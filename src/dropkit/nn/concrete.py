"""Concrete dropout: a dropout rate learned by gradient descent through a relaxed Bernoulli mask."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dropkit import rng
from dropkit._kernels.seeds import replayable
from dropkit._validation import (
    Validated,
    check_floating,
    check_min_dims,
    check_non_negative,
    check_positive,
    check_probability,
)
from dropkit.nn._base import RateModule

# Keeps the logarithms of the relaxation finite at the ends of (0, 1), as in the authors' code.
_EPSILON = 1e-7


def _check_open_probability(value: float, name: str) -> float:
    value = check_probability(value, name)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be a probability strictly between 0 and 1, got {value!r}")
    return value


class ConcreteDropout(RateModule):
    """Dropout on a layer's input whose rate ``p`` is learned with the rest of the model.

    Gal, Hron & Kendall, "Concrete Dropout", NeurIPS 2017 (https://arxiv.org/abs/1705.07832). In
    training the Bernoulli keep mask is replaced by its concrete (relaxed) form
    ``z = 1 - sigmoid((log p - log(1 - p) + log u - log(1 - u)) / temperature)``, ``u ~ U(0, 1)``,
    so the loss is differentiable in ``p``; kept inputs are scaled by ``1 / (1 - p)``, and
    evaluation passes the input through unchanged. Add :meth:`regularization` (or
    :func:`dropkit.concrete_regularization` for a whole model) to the loss: without it ``p`` only
    shrinks. The regulariser is ``weight_regularizer * ||W||^2 / (1 - p)`` plus
    ``dropout_regularizer * K * (p log p + (1 - p) log(1 - p))``, with ``K`` the number of input
    features the mask covers (the last input seen; before any forward, the layer's
    ``in_features`` or ``in_channels``). For a data set of ``N`` examples and prior length scale
    ``l`` the paper takes ``weight_regularizer = l**2 / N`` and ``dropout_regularizer = 2 / N``
    (for a squared-error loss), so the learned rate falls as the data set grows.

    ``p`` reads the current rate as a float; assigning it (``module.p = 0.2``) resets the learned
    rate. The trainable parameter is ``p_logit``.

    Args:
        module: the layer whose input is dropped (its parameters enter the weight regulariser).
        init_p: the initial rate, strictly between 0 and 1 (default 0.1, the authors'
            initialisation).
        temperature: the relaxation's temperature (the paper uses 0.1), > 0.
        weight_regularizer: the weight term's factor, ``l**2 / N``, >= 0.
        dropout_regularizer: the entropy term's factor, ``2 / N``, >= 0.
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input: what ``module`` takes, ``(N, *)``. Output: what ``module`` returns.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> layer = dk.ConcreteDropout(torch.nn.Linear(8, 4), init_p=0.2)
        >>> round(layer.p, 4)
        0.2
        >>> y = layer(torch.randn(16, 8))
        >>> loss = y.pow(2).mean() + dk.concrete_regularization(layer)
        >>> loss.backward()
        >>> layer.p_logit.grad is not None  # the rate is trained by gradient descent
        True
    """

    dropout_kind = "concrete"
    #: Input dims that share one mask value, counted from dim 1: none for element-wise dropout.
    _shared_from_dim: int | None = None
    temperature = Validated(check_positive, "The relaxation's temperature, > 0.")
    weight_regularizer = Validated(check_non_negative, "The weight term's factor, >= 0.")
    dropout_regularizer = Validated(check_non_negative, "The entropy term's factor, >= 0.")

    def __init__(
        self,
        module: nn.Module,
        *,
        init_p: float = 0.1,
        temperature: float = 0.1,
        weight_regularizer: float = 1e-6,
        dropout_regularizer: float = 1e-5,
        generator: rng.GeneratorSource = None,
    ) -> None:
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"{type(self).__name__} wraps an nn.Module, got {type(module).__name__}"
            )
        super().__init__(_check_open_probability(init_p, "init_p"), generator)
        self.module = module
        self.temperature = temperature
        self.weight_regularizer = weight_regularizer
        self.dropout_regularizer = dropout_regularizer
        self.input_size = 0

    @property
    def p(self) -> float:
        """The current (learned) rate, as a float."""
        return float(torch.sigmoid(self.p_logit.detach()).item())

    @p.setter
    def p(self, value: float) -> None:
        value = _check_open_probability(value, "p")
        logit = math.log(value) - math.log1p(-value)
        if "p_logit" not in self._parameters:
            self.p_logit = nn.Parameter(torch.tensor(logit))
        else:
            with torch.no_grad():
                self.p_logit.fill_(logit)

    def probability(self) -> Tensor:
        """The rate as a differentiable scalar tensor."""
        return torch.sigmoid(self.p_logit)

    def _noise_shape(self, x: Tensor) -> tuple[int, ...]:
        return tuple(x.shape)

    def _mask_size(self, x: Tensor) -> int:
        return x[0].numel()

    def forward(self, x: Tensor) -> Tensor:
        check_floating(x)
        check_min_dims(x, 2 if self._shared_from_dim is None else 3, shape_hint="(N, *)")
        self.input_size = self._mask_size(x)
        if not self.training:
            return self.module(x)
        p = self.probability().to(x.dtype)
        generator = self.draw_generator(x)
        u = torch.rand(
            self._noise_shape(x),
            dtype=x.dtype,
            device=x.device,
            generator=replayable(generator, x.device),
        )
        logits = (
            torch.log(p + _EPSILON)
            - torch.log1p(-p + _EPSILON)
            + torch.log(u + _EPSILON)
            - torch.log1p(-u + _EPSILON)
        )
        keep = 1.0 - torch.sigmoid(logits / self.temperature)
        return self.module(x * keep / (1.0 - p))

    def _default_input_size(self) -> int:
        for name in ("in_features", "in_channels", "input_size", "embedding_dim"):
            size = getattr(self.module, name, None)
            if isinstance(size, int):
                return size
        raise RuntimeError(
            f"{type(self).__name__} needs one forward pass before regularization() to know its "
            "input size"
        )

    def regularization(self) -> Tensor:
        """The term to add to the loss: the weight and dropout regularisers of this layer."""
        p = self.probability()
        size = self.input_size or self._default_input_size()
        squares = sum((param.pow(2).sum() for param in self.module.parameters()), p.new_zeros(()))
        weight_term = self.weight_regularizer * squares / (1.0 - p)
        entropy = p * torch.log(p + _EPSILON) + (1.0 - p) * torch.log1p(-p + _EPSILON)
        return weight_term + self.dropout_regularizer * size * entropy

    def extra_repr(self) -> str:
        return self.with_generator(
            f"p={self.p:.4g}, temperature={self.temperature}, "
            f"weight_regularizer={self.weight_regularizer}, "
            f"dropout_regularizer={self.dropout_regularizer}"
        )


class SpatialConcreteDropout(ConcreteDropout):
    """Concrete dropout of whole channels, for the input of a convolution.

    The spatial variant of Gal, Hron & Kendall 2017 (https://arxiv.org/abs/1705.07832): one relaxed
    mask value per sample and channel, shared over the spatial positions (as
    :class:`dropkit.SpatialDropout2d` is to dropout), and ``K`` in the regulariser is the number of
    channels. Arguments as :class:`ConcreteDropout`.

    Shape:
        - Input: ``(N, C, *spatial)``, at least 3 dims. Output: what ``module`` returns.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> layer = dk.SpatialConcreteDropout(torch.nn.Conv2d(3, 8, 3, padding=1), init_p=0.1)
        >>> layer(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
        >>> layer.input_size  # channels
        3
    """

    dropout_kind = "concrete"
    _shared_from_dim = 2

    def _noise_shape(self, x: Tensor) -> tuple[int, ...]:
        return (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)

    def _mask_size(self, x: Tensor) -> int:
        return x.shape[1]


def concrete_regularization(model: nn.Module) -> Tensor:
    """Sum :meth:`ConcreteDropout.regularization` over every concrete dropout layer in ``model``.

    Gal, Hron & Kendall, "Concrete Dropout", NeurIPS 2017 (https://arxiv.org/abs/1705.07832). Add
    the result to the training loss. A model without concrete dropout layers gives a zero tensor.

    Args:
        model: any module; it may itself be a concrete dropout layer.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> model = torch.nn.Sequential(dk.ConcreteDropout(torch.nn.Linear(4, 4)), torch.nn.ReLU())
        >>> dk.concrete_regularization(model).shape
        torch.Size([])
        >>> float(dk.concrete_regularization(torch.nn.Linear(2, 2)))
        0.0
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {model!r} ({type(model).__name__})")
    terms = [
        module.regularization() for module in model.modules() if isinstance(module, ConcreteDropout)
    ]
    if not terms:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else None
        return torch.zeros((), device=device)
    return torch.stack([term.to(terms[0].dtype) for term in terms]).sum()
