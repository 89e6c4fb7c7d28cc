"""Argument checks shared by every function and module.

Each check raises with a message that names the argument and the value it received, so a user
reading the error knows which call to fix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

FLOATING_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_probability(value: float, name: str = "p") -> float:
    """Return ``value`` as a float if it lies in [0, 1], else raise ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, Tensor) and value.numel() == 1 and not value.requires_grad:
            value = float(value.item())
        else:
            raise TypeError(f"{name} must be a float in [0, 1], got {value!r}")
    value = float(value)
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
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a non-negative number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_positive_int(value: int, name: str) -> int:
    """An int >= 1 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def check_choice(value: str, name: str, choices: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    if value not in choices:
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
    if isinstance(dims, bool):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {dims!r}")
    items = (dims,) if isinstance(dims, int) else tuple(dims)
    result = []
    for dim in items:
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"{name} must contain ints, got {dims!r}")
        if not -ndim <= dim < ndim:
            raise ValueError(
                f"{name} has dim {dim}, out of range for a tensor with {ndim} dimensions"
            )
        result.append(dim % ndim)
    if len(set(result)) != len(result):
        raise ValueError(f"{name} repeats a dimension: {dims!r}")
    return tuple(sorted(result))


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
