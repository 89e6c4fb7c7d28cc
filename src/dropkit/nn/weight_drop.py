"""WeightDrop: DropConnect on the recurrent weights of an RNN (AWD-LSTM)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor, nn
from torch.func import functional_call

from dropkit import rng
from dropkit._validation import Validated
from dropkit.functional.drop_connect import drop_connect
from dropkit.nn._base import RateModule


def _parameter_names(owner: WeightDrop, weights: Any, name: str) -> tuple[str, ...]:
    """Names of parameters the wrapped network has, as a tuple (one name may be a str)."""
    if isinstance(weights, str):
        weights = (weights,)
    if not isinstance(weights, Iterable):
        raise TypeError(f"{name} must be parameter names (str), got {weights!r}")
    names = tuple(weights)
    if not names:
        raise ValueError(f"{name} must name at least one parameter, got none")
    own = dict(owner.module.named_parameters())
    for entry in names:
        if not isinstance(entry, str):
            raise TypeError(f"{name} must contain parameter names (str), got {entry!r}")
        if entry not in own:
            available = ", ".join(sorted(own))
            raise ValueError(
                f"{name} names {entry!r}, which {type(owner.module).__name__} does not have; "
                f"its parameters are: {available}"
            )
    return names


class WeightDrop(RateModule):
    """Wrap an ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN`` and apply DropConnect to chosen weights.

    Merity et al., "Regularizing and Optimizing LSTM Language Models", ICLR 2018
    (https://arxiv.org/abs/1708.02182), after Wan et al. 2013. Each forward pass in training draws
    one mask per named weight (shared by every time step and every sequence of the batch) and runs
    the network with the dropped weights substituted for its own through
    :func:`torch.func.functional_call`. The wrapped network's parameters are never deleted or
    replaced, so its ``state_dict``, ``flatten_parameters()`` and cuDNN path stay as they are, and
    evaluation equals the plain network. Any module with parameters of those names works (e.g.
    ``nn.LSTMCell`` with ``weights=("weight_hh",)``).

    Args:
        module: the recurrent network.
        p: probability of dropping a weight, in [0, 1]; may be reassigned.
        weights: names of the parameters to drop (default the first layer's hidden-to-hidden
            matrix, ``"weight_hh_l0"``).
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input and output: those of the wrapped network.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> lstm = dk.WeightDrop(torch.nn.LSTM(4, 8, batch_first=True), p=0.5)
        >>> output, (h, c) = lstm(torch.randn(2, 5, 4))
        >>> output.shape
        torch.Size([2, 5, 8])
        >>> sorted(lstm.state_dict())[:2]  # the network's own parameter names
        ['module.bias_hh_l0', 'module.bias_ih_l0']
    """

    dropout_kind = "weight"
    weights = Validated(
        _parameter_names,
        "Names of the parameters dropped, checked against the network.",
        of_instance=True,
    )

    def __init__(
        self,
        module: nn.Module,
        p: float = 0.5,
        weights: Iterable[str] = ("weight_hh_l0",),
        *,
        generator: rng.GeneratorSource = None,
    ) -> None:
        super().__init__(p, generator)
        if not isinstance(module, nn.Module):
            raise TypeError(f"WeightDrop wraps an nn.Module, got {type(module).__name__}")
        self.module = module
        self.weights = weights

    def flatten_parameters(self) -> None:
        """Call the wrapped network's ``flatten_parameters()`` where it has one."""
        flatten = getattr(self.module, "flatten_parameters", None)
        if callable(flatten):
            flatten()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if not self.training or self.p == 0.0:
            return self.module(*args, **kwargs)
        dropped: dict[str, Tensor] = {}
        for name in self.weights:
            weight = self.module.get_parameter(name)
            generator = self.draw_generator(weight)
            dropped[name] = drop_connect(weight, self.p, True, generator=generator)
        return functional_call(self.module, dropped, args, kwargs)

    def extra_repr(self) -> str:
        return self.with_generator(f"p={self.p}, weights={self.weights}")
