"""Argument checks shared by every function and module.

Each check raises with a message that names the argument and the value it received, so a user
reading the error knows which call to fix.

Numbers: a rate or any other real argument accepts every real number type (``int``, ``float``,
``fractions.Fraction``, numpy's integer and floating scalars such as ``np.float32``: everything
registered as :class:`numbers.Real`) and a one-element tensor that does not require grad; ``bool``
(Python's or numpy's), strings and NaN are refused with the argument named. Whole-number
arguments accept :class:`numbers.Integral` (``int``, ``np.int64``), never ``bool``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar, cast, overload

import torch
from torch import Tensor

FLOATING_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INDEX_DTYPES = (torch.int32, torch.int64)

Value = TypeVar("Value")
Choice = TypeVar("Choice", bound=str)
_UNSET: Any = object()


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def real_number(value: Any, name: str, expected: str) -> float:
    """``value`` as a float if it is a real number (see the module docstring), else TypeError."""
    if isinstance(value, Tensor):
        usable = value.dtype != torch.bool and not value.is_complex()
        if usable and value.numel() == 1 and not value.requires_grad:
            return float(value.item())
        grad = " that requires grad" if value.requires_grad else ""
        raise TypeError(
            f"{name} must be {expected}, got a tensor of shape {tuple(value.shape)} "
            f"and dtype {value.dtype}{grad}"
        )
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    return float(value)


def check_probability(value: float, name: str = "p") -> float:
    """Return ``value`` as a float if it lies in [0, 1], else raise naming ``name``."""
    if type(value) is float and 0.0 <= value <= 1.0:  # the common case, checked fast
        return value
    value = real_number(value, name, "a float in [0, 1]")
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return value


def check_below_one(value: float, name: str = "p") -> float:
    """A probability that must be strictly below 1 (a rate whose rescale 1 / (1 - p) is used)."""
    value = check_probability(value, name)
    if value == 1.0:
        raise ValueError(f"{name} must be below 1, got {value!r}")
    return value


def check_non_negative(value: float, name: str) -> float:
    """A finite real number >= 0."""
    value = real_number(value, name, "a non-negative number")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_positive(value: float, name: str) -> float:
    """A finite real number > 0."""
    value = real_number(value, name, "a positive number")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def check_positive_int(value: int, name: str) -> int:
    """An int >= 1 (any integral type, bools refused)."""
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 1, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def check_bool(value: bool, name: str) -> bool:
    """A bool (Python's or numpy's), returned as a Python bool; anything else is a TypeError."""
    if value is True or value is False:  # the common case, checked fast
        return value
    if not _is_bool(value):
        raise TypeError(f"{name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_choice(value: str, name: str, choices: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_floating(x: Tensor, name: str = "input") -> None:
    """Dropout is defined on real-valued floating tensors only."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in FLOATING_DTYPES:
        raise TypeError(
            f"{name} must be a floating-point tensor (float16, bfloat16, float32 or float64), "
            f"got dtype {x.dtype}"
        )


def check_indices(x: Tensor, name: str) -> None:
    """Token indices: an integer tensor (int32 or int64)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of indices, got {type(x).__name__}")
    if x.dtype not in INDEX_DTYPES:
        raise TypeError(f"{name} must be an int64 or int32 tensor of indices, got dtype {x.dtype}")


def check_dims(
    x: Tensor, allowed: Iterable[int], name: str = "input", shape_hint: str = ""
) -> None:
    """The tensor's number of dimensions must be one of ``allowed``."""
    allowed = tuple(allowed)
    if x.dim() not in allowed:
        expected = " or ".join(str(d) for d in allowed)
        hint = f" {shape_hint}" if shape_hint else ""
        raise ValueError(
            f"{name} must have {expected} dimensions{hint}, got {x.dim()} (shape {tuple(x.shape)})"
        )


def check_min_dims(x: Tensor, minimum: int, name: str = "input", shape_hint: str = "") -> None:
    """The tensor must have at least ``minimum`` dimensions."""
    if x.dim() < minimum:
        hint = f" {shape_hint}" if shape_hint else ""
        raise ValueError(
            f"{name} must have at least {minimum} dimensions{hint}, got {x.dim()} "
            f"(shape {tuple(x.shape)})"
        )


def normalize_dims(
    dims: int | Iterable[int], ndim: int, name: str = "broadcast_dims"
) -> tuple[int, ...]:
    """Turn an int or iterable of possibly negative dims into sorted non-negative dims."""
    if type(dims) is tuple and not dims:  # the common cases, checked fast
        return ()
    if type(dims) is range and dims.step == 1 and 0 <= dims.start <= dims.stop <= ndim:
        return tuple(dims)
    result = []
    for dim in dims_argument(dims, name):
        if not -ndim <= dim < ndim:
            raise ValueError(
                f"{name} has dim {dim}, out of range for a tensor with {ndim} dimensions"
            )
        result.append(dim % ndim)
    if len(set(result)) != len(result):
        raise ValueError(f"{name} repeats a dimension: {dims!r}")
    return tuple(sorted(result))


def dims_argument(dims: Any, name: str = "broadcast_dims") -> tuple[int, ...]:
    """An int or a sequence of ints (possibly negative dims) as a tuple, else TypeError."""
    expected = f"{name} must be an int or a sequence of ints"
    if _is_bool(dims) or isinstance(dims, (str, bytes)):
        raise TypeError(f"{expected}, got {dims!r}")
    if isinstance(dims, numbers.Integral):
        return (int(dims),)
    if isinstance(dims, Tensor) or not isinstance(dims, Iterable):
        raise TypeError(f"{expected}, got {dims!r} ({type(dims).__name__})")
    items = tuple(dims)
    for dim in items:
        if _is_bool(dim) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"{name} must contain ints, got {dims!r}")
    return tuple(int(dim) for dim in items)


def check_generator(generator: torch.Generator | None, x: Tensor) -> None:
    """A generator, when given, must live on the input's device type."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {generator!r}")
    if generator.device.type != x.device.type:
        raise ValueError(
            f"generator is on device {generator.device}, but the input is on {x.device}"
        )


class Validated(property, Generic[Value]):
    """A module attribute checked on every assignment, at construction and after.

    ``check(value, name)`` returns the value to store or raises naming the attribute; the value
    is kept in the instance's ``__dict__`` under ``"_" + name``. ``after(instance, value)``, when
    given, runs after each successful assignment (to pass the value on to submodules).
    ``default``, when given, is read before the first assignment. With ``of_instance=True`` the
    check also sees the instance, ``check(instance, value, name)``, for a value that must fit
    the rest of the module. It is a ``property`` with a setter, so tools that look for settable
    properties (model tooling, torch.compile) see one.

    Example:
        >>> import torch
        >>> from dropkit._validation import Validated, check_probability
        >>> class Layer(torch.nn.Module):
        ...     p = Validated(check_probability, "The probability of dropping, in [0, 1].")
        ...     def __init__(self, p):
        ...         super().__init__()
        ...         self.p = p
        >>> layer = Layer(0.5)
        >>> layer.p = 2.0
        Traceback (most recent call last):
        ...
        ValueError: p must be a probability in [0, 1], got 2.0
        >>> layer.p
        0.5
    """

    def __init__(
        self,
        check: Callable[..., Value],
        doc: str,
        *,
        after: Callable[[Any, Value], None] | None = None,
        default: Value = _UNSET,
        of_instance: bool = False,
    ) -> None:
        super().__init__(self._read, self._write, None, doc)
        self.check = check
        self.after = after
        self.default = default
        self.of_instance = of_instance
        self.name = ""
        self.storage = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.storage = f"_{name}"

    def _read(self, instance: Any) -> Value:
        value: Value = instance.__dict__.get(self.storage, self.default)  # read on every forward
        if value is _UNSET:
            raise AttributeError(f"{type(instance).__name__} has no {self.name!r} set yet")
        return value

    def _write(self, instance: Any, value: Any) -> None:
        if self.of_instance:
            checked = self.check(instance, value, self.name)
        else:
            checked = self.check(value, self.name)
        instance.__dict__[self.storage] = checked
        if self.after is not None:
            self.after(instance, checked)

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Validated[Value]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> Value: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        return self if instance is None else self._read(instance)

    def __set__(self, instance: object, value: Any) -> None:
        self._write(instance, value)


def one_of(choices: Sequence[Choice]) -> Callable[[Any, str], Choice]:
    """A check for :class:`Validated`: the value must be one of ``choices``."""

    def check(value: Any, name: str) -> Choice:
        return cast(Choice, check_choice(value, name, choices))

    return check
