"""Module form of targeted dropout: a wrapper around a linear or convolution layer."""

from __future__ import annotations

from typing import cast

from torch import Tensor, nn

from dropkit import rng
from dropkit._validation import check_choice, check_probability
from dropkit.functional.targeted import TARGETED_MODES, targeted_dropout
from dropkit.nn._base import RateModule
from dropkit.nn.drop_connect import WeightLayer, call_with_weight, check_weight_layer


class TargetedDropout(RateModule):
    """Wrap a linear or convolution layer and drop, with probability ``alpha``, its weakest weights.

    Gomez et al., "Learning Sparse Networks Using Targeted Dropout", 2019
    (https://arxiv.org/abs/1905.13678). In training each forward pass recomputes the targeted set
    from the current weights (per output unit, the ``gamma`` fraction of smallest magnitude in
    ``"weight"`` mode; the ``gamma`` fraction of units of smallest L2 norm in ``"unit"`` mode) and
    drops each targeted weight (or unit) with probability ``alpha``, without rescaling. Evaluation
    uses every weight. After training, :func:`dropkit.prune` removes the targeted set for good. See
    :func:`dropkit.functional.targeted_dropout`.

    ``p`` is ``alpha``, the module's drop rate for model tooling and schedules (``module.p = 0.66``
    and ``module.alpha = 0.66`` are the same); ``gamma`` may be reassigned too.

    Args:
        module: an ``nn.Linear`` or ``nn.Conv1d/2d/3d``.
        gamma: the targeted fraction, in [0, 1].
        alpha: the probability of dropping a targeted weight (or unit), in [0, 1].
        mode: ``"weight"`` or ``"unit"``.
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input and output: those of the wrapped layer.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> layer = dk.TargetedDropout(torch.nn.Linear(16, 8), gamma=0.5, alpha=0.5)
        >>> layer
        TargetedDropout(
          gamma=0.5, alpha=0.5, mode='weight'
          (module): Linear(in_features=16, out_features=8, bias=True)
        )
        >>> layer(torch.randn(4, 16)).shape
        torch.Size([4, 8])
    """

    dropout_kind = "targeted"

    def __init__(
        self,
        module: nn.Module,
        gamma: float = 0.5,
        alpha: float = 0.5,
        *,
        mode: str = "weight",
        generator: rng.GeneratorSource = None,
    ) -> None:
        super().__init__(check_probability(alpha, "alpha"), generator)
        check_weight_layer(module, "TargetedDropout")
        self.module = cast(WeightLayer, module)
        self.gamma = gamma
        self.mode = check_choice(mode, "mode", TARGETED_MODES)

    @property
    def gamma(self) -> float:
        """The targeted fraction, in [0, 1]."""
        return self._gamma

    @gamma.setter
    def gamma(self, value: float) -> None:
        self._gamma = check_probability(value, "gamma")

    @property
    def alpha(self) -> float:
        """The probability of dropping a targeted weight: the same number as ``p``."""
        return self.p

    @alpha.setter
    def alpha(self, value: float) -> None:
        self.p = check_probability(value, "alpha")

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return self.module(x)
        weight = self.module.weight
        generator = self.draw_generator(weight.device)
        weight = targeted_dropout(
            weight, self.gamma, self.p, True, mode=self.mode, generator=generator
        )
        return call_with_weight(self.module, x, weight, self.module.bias)

    def extra_repr(self) -> str:
        return self.with_generator(f"gamma={self.gamma}, alpha={self.alpha}, mode={self.mode!r}")
