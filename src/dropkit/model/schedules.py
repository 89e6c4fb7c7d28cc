"""Drop-rate schedules (callables from a step to a rate) and a scheduler that applies them.

Each schedule maps a step count (0, 1, 2, ...) to a rate in [0, 1]; :class:`DropoutScheduler`
writes the rate into a model through the same path as :func:`dropkit.set_dropout`. Arguments that
are rates are ``p`` or end in ``_rate``; steps are ``steps``, ``until`` or end in ``_step``.

Example:
    >>> import torch
    >>> import dropkit as dk
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
    >>> scheduler = dk.DropoutScheduler(net, dk.schedules.linear(0.0, 0.2, steps=4))
    >>> rates = []
    >>> for epoch in range(3):
    ...     scheduler.step()
    ...     rates.append(net[1].p)
    >>> rates
    [0.05, 0.1, 0.15]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from torch import nn

from dropkit._deprecation import RenamedAttribute, renamed_arguments
from dropkit._validation import check_non_negative, check_positive_int, check_probability
from dropkit.model._base_rates import base_rate
from dropkit.model._pretrained import warn_refused_attention
from dropkit.model.setting import Change, SiteKind, check_not_flattened, select_sites, write_rates
from dropkit.rules import interpolate

__all__ = ["DropoutScheduler", "constant", "early", "late", "linear"]


def check_step(step: int, name: str = "step") -> int:
    """A step count: an int >= 0 (``name`` is the argument named in the error)."""
    if isinstance(step, bool) or not isinstance(step, int):
        raise TypeError(f"{name} must be an int >= 0, got {step!r}")
    if step < 0:
        raise ValueError(f"{name} must be an int >= 0, got {step!r}")
    return step


@dataclass(frozen=True)
class constant:
    """The same rate at every step.

    Args:
        p: the rate, in [0, 1].

    Example:
        >>> import dropkit as dk
        >>> dk.schedules.constant(0.1)(0), dk.schedules.constant(0.1)(1000)
        (0.1, 0.1)
    """

    p: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "p", check_probability(self.p))

    def __call__(self, step: int) -> float:
        check_step(step)
        return self.p


@dataclass(frozen=True, init=False)
class linear:
    """A linear ramp from ``start_rate`` at step 0 to ``end_rate`` at step ``steps``, then
    ``end_rate``.

    The DropBlock ramp of Ghiasi et al. 2018 (https://arxiv.org/abs/1810.12890): the drop rate
    rises linearly from 0 to its target over training, since a fixed rate "does not work well".
    The old names ``start`` and ``end`` (arguments and attributes) still work for one release,
    with a ``FutureWarning``.

    Args:
        start_rate: the rate at step 0, in [0, 1].
        end_rate: the rate from step ``steps`` on, in [0, 1].
        steps: the length of the ramp, >= 1.

    Example:
        >>> import dropkit as dk
        >>> ramp = dk.schedules.linear(start_rate=0.0, end_rate=0.1, steps=4)
        >>> [ramp(step) for step in range(6)]
        [0.0, 0.025, 0.05, 0.075, 0.1, 0.1]
    """

    start_rate: float
    end_rate: float
    steps: int
    start = RenamedAttribute("start_rate")
    end = RenamedAttribute("end_rate")

    @renamed_arguments("schedules.linear", start="start_rate", end="end_rate")
    def __init__(self, start_rate: float, end_rate: float, steps: int) -> None:
        object.__setattr__(self, "start_rate", check_probability(start_rate, "start_rate"))
        object.__setattr__(self, "end_rate", check_probability(end_rate, "end_rate"))
        object.__setattr__(self, "steps", check_positive_int(steps, "steps"))

    def __call__(self, step: int) -> float:
        fraction = min(check_step(step), self.steps) / self.steps
        return interpolate(self.start_rate, self.end_rate, fraction)


@dataclass(frozen=True)
class early:
    """Early dropout: ``p`` at step 0, decaying linearly to 0 at step ``until``, 0 after.

    Liu et al., "Dropout Reduces Underfitting", ICML 2023 (https://arxiv.org/abs/2303.01500):
    dropout only in the first part of training helps models that underfit (small ViTs:
    73.9 -> 74.3 top-1 with the rate decaying to 0 over the first 50 of 300 epochs).

    Args:
        p: the rate at step 0, in [0, 1].
        until: the step from which the rate is 0, >= 1.

    Example:
        >>> import dropkit as dk
        >>> schedule = dk.schedules.early(0.1, until=4)
        >>> [schedule(step) for step in range(6)]
        [0.1, 0.075, 0.05, 0.025, 0.0, 0.0]
    """

    p: float
    until: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "p", check_probability(self.p))
        check_positive_int(self.until, "until")

    def __call__(self, step: int) -> float:
        remaining = max(self.until - check_step(step), 0) / self.until
        return interpolate(0.0, self.p, remaining)


@dataclass(frozen=True, init=False)
class late:
    """Late dropout: 0 before step ``start_step``, ``p`` from step ``start_step`` on.

    Liu et al., "Dropout Reduces Underfitting", ICML 2023 (https://arxiv.org/abs/2303.01500):
    for models that overfit, turning dropout (or stochastic depth) on only later in training.
    The old name ``start`` (argument and attribute) still works for one release, with a
    ``FutureWarning``.

    Args:
        p: the rate from step ``start_step`` on, in [0, 1].
        start_step: the first step with dropout, >= 0.

    Example:
        >>> import dropkit as dk
        >>> schedule = dk.schedules.late(0.2, start_step=2)
        >>> [schedule(step) for step in range(4)]
        [0.0, 0.0, 0.2, 0.2]
    """

    p: float
    start_step: int
    start = RenamedAttribute("start_step")

    @renamed_arguments("schedules.late", start="start_step")
    def __init__(self, p: float, start_step: int) -> None:
        object.__setattr__(self, "p", check_probability(p))
        object.__setattr__(self, "start_step", check_step(start_step, "start_step"))

    def __call__(self, step: int) -> float:
        return self.p if check_step(step) >= self.start_step else 0.0


class DropoutScheduler:
    """Set a model's drop rates from a schedule, one step at a time.

    Like a learning-rate scheduler: the rate for step 0 is written on construction, and each
    :meth:`step` advances the count and writes the next rate. Rates go through the same path as
    :func:`dropkit.set_dropout` (modules, attention floats read at call time, Hugging Face config
    fields), to the sites matched on construction (without ``kinds``: activation dropout only, as
    in :func:`dropkit.set_dropout`).

    With ``relative=True`` the schedule gives a factor and each site gets its base rate times that
    factor, as ``LambdaLR`` scales each group's initial learning rate: depth-linear drop-path
    rates keep their shape (``kinds=["path"]`` with ``early(1.0, until=...)`` fades them all out
    together). The base rates are recorded on construction (``base_rates``) and kept in
    :meth:`state_dict`. An absolute schedule over drop-path sites whose rates differ raises
    unless ``flatten=True``.

    Args:
        model: the model whose sites are set.
        schedule: a callable from a step (int >= 0) to a rate in [0, 1] (a factor >= 0 with
            ``relative=True``), such as :func:`dropkit.schedules.linear`.
        kinds: only sites of these kinds; None for activation dropout (see
            :func:`dropkit.set_dropout`).
        names: only sites matching these names; None for all.
        relative: the schedule scales each site's base rate instead of giving the rate.
        flatten: allow one absolute rate over drop-path sites whose rates differ.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), dk.Dropout(0.5))
        >>> scheduler = dk.DropoutScheduler(net, dk.schedules.early(0.2, until=2))
        >>> net[1].p
        0.2
        >>> scheduler.step(); net[1].p
        0.1
        >>> scheduler.state_dict()
        {'step': 1, 'rate': 0.1, 'base_rates': [0.5]}
        >>> encoder = dk.nn.TransformerEncoder(3, 8, 2, 16, drop_path=0.2)
        >>> fade = dk.DropoutScheduler(encoder, dk.schedules.early(1.0, until=2), kinds=["path"],
        ...                            relative=True)
        >>> fade.step(); [layer.drop_path.p for layer in encoder.layers]
        [0.0, 0.05, 0.1]
    """

    def __init__(
        self,
        model: nn.Module,
        schedule: Callable[[int], float],
        *,
        kinds: Iterable[SiteKind | str] | str | None = None,
        names: Iterable[str] | None = None,
        relative: bool = False,
        flatten: bool = False,
    ) -> None:
        if not callable(schedule):
            raise TypeError(f"schedule must be a callable from step to rate, got {schedule!r}")
        self.model = model
        self.schedule = schedule
        self.relative = relative
        self.sites = select_sites(model, kinds=kinds, names=names)
        self.base_rates = [base_rate(site) for site in self.sites]
        self.last_step = 0
        self.rate = 0.0
        self.last_changes: list[Change] = []
        self._warned = False
        rate = self._rate_at(0)
        if not relative and not flatten:
            check_not_flattened(self.sites, rate)
        self._write(0, rate)

    def _rate_at(self, step: int) -> float:
        """The schedule's value for ``step``, validated (a rate, or a factor whose products with
        the base rates stay in [0, 1])."""
        value = self.schedule(step)
        if not self.relative:
            return check_probability(value, "schedule(step)")
        factor = check_non_negative(value, "schedule(step)")
        for site, base in zip(self.sites, self.base_rates, strict=True):
            if base * factor > 1.0:
                raise ValueError(
                    f"schedule(step) = {factor:g} at step {step} scales the base rate {base:g} "
                    f"of {site.name} above 1"
                )
        return factor

    def _write(self, step: int, rate: float) -> None:
        if self.relative:
            rates = [round(base * rate, 12) for base in self.base_rates]
        else:
            rates = [rate] * len(self.sites)
        if not self._warned and any(rate > 0 for rate in rates):
            self._warned = True  # once: a warning per step would drown the training log
            named = [(s.name, s.kind, r) for s, r in zip(self.sites, rates, strict=True)]
            warn_refused_attention(self.model, named, stacklevel=4)
        self.last_changes = write_rates(self.sites, rates, keep_base=self.relative)
        self.last_step = step
        self.rate = rate

    def step(self) -> None:
        """Advance one step and write the schedule's value for it (validated first: a bad value
        raises and leaves the step count and rates as they were)."""
        self._write(self.last_step + 1, self._rate_at(self.last_step + 1))

    def state_dict(self) -> dict[str, Any]:
        """The step count, the current rate (the factor when relative) and the base rates (the
        schedule itself is code, not state)."""
        return {"step": self.last_step, "rate": self.rate, "base_rates": list(self.base_rates)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume at the saved step (with the saved base rates): the schedule's value for it is
        written at once."""
        if "step" not in state_dict:
            raise KeyError("state_dict has no 'step' entry")
        step = check_step(state_dict["step"], "state_dict['step']")
        bases = state_dict.get("base_rates")
        if bases is not None:
            if len(bases) != len(self.sites):
                raise ValueError(
                    f"state_dict['base_rates'] has {len(bases)} rates for {len(self.sites)} sites"
                )
            self.base_rates = [check_probability(b, "state_dict['base_rates']") for b in bases]
        self._write(step, self._rate_at(step))

    def __repr__(self) -> str:
        return (
            f"DropoutScheduler(schedule={self.schedule!r}, sites={len(self.sites)}, "
            f"step={self.last_step}, rate={self.rate}, relative={self.relative})"
        )
