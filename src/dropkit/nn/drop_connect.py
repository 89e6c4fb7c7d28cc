"""Module form of DropConnect: a wrapper that drops the weights of a linear or convolution layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Union, cast, get_args

from torch import Tensor, nn
from torch.func import functional_call

from dropkit import rng
from dropkit._validation import Validated, check_positive_int, one_of
from dropkit.functional.drop_connect import drop_connect, drop_connect_gaussian
from dropkit.nn._base import RateModule

#: How :class:`DropConnect` evaluates: weight scaling or the paper's Gaussian moment matching.
DropConnectInference = Literal["mean", "gaussian"]
INFERENCE_MODES: tuple[DropConnectInference, ...] = get_args(DropConnectInference)
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
WeightLayer = Union[nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d]  # noqa: UP007 (a runtime alias)


def check_weight_layer(module: nn.Module, owner: str) -> None:
    """``module`` must be an ``nn.Linear`` or ``nn.Conv1d/2d/3d``."""
    if not isinstance(module, WEIGHT_LAYERS):
        raise TypeError(
            f"{owner} wraps an nn.Linear or nn.Conv1d/2d/3d, got {type(module).__name__}"
        )


def check_activation(value: Any, name: str) -> Callable[[Tensor], Tensor] | None:
    """A callable or None."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {value!r}")
    return cast("Callable[[Tensor], Tensor] | None", value)


def call_with_weight(module: nn.Module, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """Run ``module`` on ``x`` with ``weight`` and ``bias`` in place of its own, same settings."""
    replacements = {"weight": weight}
    if bias is not None:
        replacements["bias"] = bias
    return functional_call(module, replacements, (x,))


class DropConnect(RateModule):
    """Wrap a linear or convolution layer and drop its weights with probability ``p`` in training.

    DropConnect from Wan et al., "Regularization of Neural Networks using DropConnect", ICML 2013
    (https://proceedings.mlr.press/v28/wan13.html). Each forward pass in training draws one mask
    over the weight (shared by the whole batch) and scales the kept weights by ``1 / (1 - p)``; the
    bias is never dropped. The wrapped layer keeps its parameters and settings (stride, padding,
    dilation, groups, padding mode), so ``wrapper.module.load_state_dict(layer.state_dict())`` works
    and evaluation with ``inference="mean"`` equals the plain layer. See
    :func:`dropkit.functional.drop_connect`.

    With ``inference="gaussian"`` evaluation uses the paper's moment matching
    (:func:`dropkit.functional.drop_connect_gaussian`): it averages ``activation`` over ``samples``
    Gaussian draws of each pre-activation, so it is random (seed with ``torch.manual_seed``). When
    ``activation`` is given the wrapper applies it in training and in ``"mean"`` evaluation too, so
    the module computes ``activation(layer(x))`` in every mode; do not apply it again after.

    Args:
        module: an ``nn.Linear`` or ``nn.Conv1d/2d/3d``.
        p: probability of dropping a weight, in [0, 1]; may be reassigned.
        inference: ``"mean"`` (weight scaling: the plain layer) or ``"gaussian"``.
        samples: Gaussian samples per evaluation forward (``"gaussian"`` only), >= 1.
        activation: the non-linearity after the layer, applied by the wrapper (None: none).
        generator: where the masks and the Gaussian samples come from: None (the global
            generator), a ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input and output: those of the wrapped layer.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> layer = dk.DropConnect(torch.nn.Linear(8, 4), p=0.5)
        >>> layer
        DropConnect(
          p=0.5, inference='mean'
          (module): Linear(in_features=8, out_features=4, bias=True)
        )
        >>> x = torch.randn(3, 8)
        >>> layer(x).shape
        torch.Size([3, 4])
        >>> torch.equal(layer.eval()(x), layer.module(x))  # evaluation is the plain layer
        True
    """

    dropout_kind = "weight"
    inference = Validated[DropConnectInference](
        one_of(INFERENCE_MODES), "Evaluation by weight scaling or by Gaussian sampling."
    )
    samples = Validated(check_positive_int, "Gaussian samples per evaluation forward, >= 1.")
    activation = Validated(check_activation, "The non-linearity the wrapper applies, or None.")

    def __init__(
        self,
        module: nn.Module,
        p: float = 0.5,
        *,
        inference: DropConnectInference = "mean",
        samples: int = 100,
        activation: Callable[[Tensor], Tensor] | None = None,
        generator: rng.GeneratorSource = None,
    ) -> None:
        super().__init__(p, generator)
        check_weight_layer(module, "DropConnect")
        self.module = cast(WeightLayer, module)
        self.inference = inference
        self.samples = samples
        self.activation = activation

    def _activate(self, x: Tensor) -> Tensor:
        return x if self.activation is None else self.activation(x)

    def forward(self, x: Tensor) -> Tensor:
        weight, bias = self.module.weight, self.module.bias
        if self.training:
            dropped = drop_connect(weight, self.p, True, generator=self.draw_generator(weight))
            return self._activate(call_with_weight(self.module, x, dropped, bias))
        if self.inference == "gaussian":
            return drop_connect_gaussian(
                x,
                weight,
                bias,
                self.p,
                layer=lambda inp, w, b: call_with_weight(self.module, inp, w, b),
                samples=self.samples,
                activation=self.activation,
                generator=rng.resolve(self.generator, x.device),
            )
        return self._activate(self.module(x))

    def extra_repr(self) -> str:
        text = f"p={self.p}, inference={self.inference!r}"
        if self.inference == "gaussian":
            text += f", samples={self.samples}"
        if self.activation is not None:
            text += f", activation={getattr(self.activation, '__name__', self.activation)}"
        return self.with_generator(text)
