"""The shared shell of dropout modules: a validated, assignable rate."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from dropkit._validation import check_dims, check_floating, check_probability


class RateModule(nn.Module):
    """A module whose drop rate ``p`` is validated at construction and on every assignment.

    Schedules change ``module.p`` during training; a bad value raises at once instead of failing
    later inside a forward pass.
    """

    #: What the module drops, for model tooling: "element", "spatial", "block", "path",
    #: "attention", "embedding", "weight", "noise", ...
    dropout_kind: ClassVar[str] = "element"
    _p: float

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # under torch.fx.symbolic_trace the module is one leaf node, called at run time
        for value in (*args, *kwargs.values()):
            if isinstance(value, torch.fx.Proxy):
                tracer = value.tracer
                path = tracer.path_of_module(self)  # type: ignore[attr-defined]
                return tracer.create_proxy("call_module", path, args, kwargs)
        return super().__call__(*args, **kwargs)

    @property
    def p(self) -> float:
        """The probability of dropping, in [0, 1]."""
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        self._p = check_probability(value)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def check_module_rank(module: nn.Module, x: Tensor, rank: int, shape: str) -> None:
    """Refuse input of another rank (never reinterpret it), with a hint for unbatched input."""
    check_floating(x)
    hint = "; add a batch dimension with x.unsqueeze(0)" if x.dim() == rank - 1 else ""
    check_dims(x, (rank,), shape_hint=f"{shape} for {type(module).__name__}{hint}")
