"""The shared shell of dropout modules: a validated, assignable rate."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from dropkit import rng
from dropkit._validation import Validated, check_dims, check_floating, check_probability
from dropkit.functional._tracing import may_hold_proxies


def _follow(module: RandomModule, value: rng.GeneratorSource) -> None:
    for site in module.generator_sites():
        site.generator = value


class RandomModule(nn.Module):
    """A module that draws from ``generator``: None (the global generator), a ``torch.Generator``,
    or a random stream of :mod:`dropkit.rng` (a name such as ``"tensor-parallel"`` or a
    :class:`dropkit.rng.Stream`), looked up at each call. It is a plain attribute, never part of
    the ``state_dict``, and may be reassigned. A module made of other random modules lists them
    in :meth:`generator_sites`; assigning its generator assigns theirs."""

    generator = Validated[rng.GeneratorSource](
        rng.check_source,
        "Where the module's randomness comes from (see :func:`dropkit.rng.resolve`).",
        after=_follow,
        default=None,
    )

    def __init__(self, generator: rng.GeneratorSource = None) -> None:
        super().__init__()
        if generator is not None:  # a composite module assigns it once its sites exist
            self.generator = generator

    def generator_sites(self) -> Iterable[RandomModule]:
        """The random submodules that follow this module's generator (none by default)."""
        return ()

    def draw_generator(self, where: torch.device | Tensor) -> torch.Generator | None:
        """The generator for one training-time random op on the device ``where`` names (a tensor
        stands for its device, read only when a generator is set): None in evaluation, where
        dropout draws nothing, so a stream takes no number then, and None for the global one."""
        if not self.training:
            return None
        # the stored value (Validated keeps it under "_" + name), read without the property:
        # this runs on every forward
        source = self.__dict__.get("_generator")
        if source is None:
            return None
        return rng.resolve(source, where.device if isinstance(where, Tensor) else where)

    def with_generator(self, text: str) -> str:
        """``extra_repr`` text with the generator appended when one is set."""
        if self.generator is None:
            return text
        return f"{text}, generator={rng.describe(self.generator)}"


class RateModule(RandomModule):
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
    p = Validated(check_probability, "The probability of dropping, in [0, 1].")

    def __init__(self, p: float = 0.5, generator: rng.GeneratorSource = None) -> None:
        super().__init__(generator)
        self.p = p

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # under torch.fx.symbolic_trace the module is one leaf node, called at run time
        if not may_hold_proxies(args):  # the common eager call
            return super().__call__(*args, **kwargs)
        for value in (*args, *kwargs.values()):
            if isinstance(value, torch.fx.Proxy):
                tracer = value.tracer
                path = tracer.path_of_module(self)  # type: ignore[attr-defined]
                return tracer.create_proxy("call_module", path, args, kwargs)
        return super().__call__(*args, **kwargs)

    def extra_repr(self) -> str:
        return self.with_generator(f"p={self.p}")


def check_module_rank(module: nn.Module, x: Tensor, rank: int, shape: str) -> None:
    """Refuse input of another rank (never reinterpret it), with a hint for unbatched input."""
    check_floating(x)
    if x.dim() == rank:  # the common case: no message to build
        return
    hint = "; add a batch dimension with x.unsqueeze(0)" if x.dim() == rank - 1 else ""
    check_dims(x, (rank,), shape_hint=f"{shape} for {type(module).__name__}{hint}")
