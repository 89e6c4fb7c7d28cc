"""The shared shell of dropout modules: a validated, assignable rate."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from dropkit._validation import check_dims, check_floating, check_probability


class RateModule(nn.Module):
    """A module whose drop rate ``p`` is validated at construction and on every assignment.

    Schedules change ``module.p`` during training; a bad value raises at once instead of failing
    later inside a forward pass.

    Defaults: every rate module can be built without arguments other than the module it wraps.
    ``p`` defaults to 0.5 (as ``torch.nn.Dropout``) for methods that drop single elements, units
    or channels, and to 0.1 for methods whose papers start lower because each draw drops a whole
    region, path or word (DropBlock, DropPath, embedding dropout).
    """

    #: What the module drops, for model tooling: "element", "spatial", "block", "path",
    #: "attention", "embedding", "weight", "noise", ...
    dropout_kind: ClassVar[str] = "element"
    _p: float

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

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
