"""Module form of targeted dropout: a wrapper around a linear or convolution layer."""

from __future__ import annotations

from typing import cast

from torch import Tensor, nn

from dropkit import rng
from dropkit._deprecation import RenamedAttribute, renamed_arguments
from dropkit._validation import Validated, check_probability, one_of
from dropkit.functional.targeted import TARGETED_MODES, TargetedMode, targeted_dropout
from dropkit.nn._base import RateModule
from dropkit.nn.drop_connect import WeightLayer, call_with_weight, check_weight_layer


class TargetedDropout(RateModule):
    """Wrap a linear or convolution layer and drop, with probability ``p``, its weakest weights.

    Gomez et al., "Learning Sparse Networks Using Targeted Dropout", 2019
    (https://arxiv.org/abs/1905.13678). In training each forward pass recomputes the targeted set
    from the current weights (per output unit, the ``targeted_fraction`` of smallest magnitude in
    ``"weight"`` mode; that fraction of units of smallest L2 norm in ``"unit"`` mode: the paper's
    gamma) and drops each targeted weight (or unit) with probability ``p`` (the paper's alpha),
    without rescaling. Evaluation uses every weight. After training, :func:`dropkit.prune`
    removes the targeted set for good. See :func:`dropkit.functional.targeted_dropout`.

    ``p``, ``targeted_fraction`` and ``mode`` may be reassigned (schedules change ``p``). The
    names before 0.2, ``gamma`` and ``alpha`` (argument and attribute), still work for one
    release with a ``FutureWarning``.

    Args:
        module: an ``nn.Linear`` or ``nn.Conv1d/2d/3d``.
        targeted_fraction: the fraction targeted (the paper's gamma), in [0, 1].
        p: the probability of dropping a targeted weight (or unit), the paper's alpha, in [0, 1].
        mode: ``"weight"`` or ``"unit"`` (:data:`dropkit.functional.TargetedMode`).
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input and output: those of the wrapped layer.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> layer = dk.TargetedDropout(torch.nn.Linear(16, 8), targeted_fraction=0.5, p=0.5)
        >>> layer
        TargetedDropout(
          targeted_fraction=0.5, p=0.5, mode='weight'
          (module): Linear(in_features=16, out_features=8, bias=True)
        )
        >>> layer(torch.randn(4, 16)).shape
        torch.Size([4, 8])
    """

    dropout_kind = "targeted"
    targeted_fraction = Validated(check_probability, "The fraction targeted, in [0, 1].")
    mode = Validated[TargetedMode](one_of(TARGETED_MODES), "Target weights or whole units.")
    gamma = RenamedAttribute("targeted_fraction")
    alpha = RenamedAttribute("p")

    @renamed_arguments("TargetedDropout", gamma="targeted_fraction", alpha="p")
    def __init__(
        self,
        module: nn.Module,
        targeted_fraction: float = 0.5,
        p: float = 0.5,
        *,
        mode: TargetedMode = "weight",
        generator: rng.GeneratorSource = None,
    ) -> None:
        super().__init__(p, generator)
        check_weight_layer(module, "TargetedDropout")
        self.module = cast(WeightLayer, module)
        self.targeted_fraction = targeted_fraction
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return self.module(x)
        weight = self.module.weight
        generator = self.draw_generator(weight)
        weight = targeted_dropout(
            weight, self.targeted_fraction, self.p, True, mode=self.mode, generator=generator
        )
        return call_with_weight(self.module, x, weight, self.module.bias)

    def extra_repr(self) -> str:
        return self.with_generator(
            f"targeted_fraction={self.targeted_fraction}, p={self.p}, mode={self.mode!r}"
        )
