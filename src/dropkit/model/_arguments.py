"""Checks of the arguments the model tools share: a model, a flag."""

from __future__ import annotations

from typing import Any

from torch import nn


def check_model(model: Any, name: str = "model") -> nn.Module:
    """``model`` itself when it is an ``nn.Module``; else a TypeError naming the argument."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    return model


def check_flag(value: Any, name: str) -> bool:
    """A bool argument: anything else (``"yes"``, 1) is a TypeError naming it and its value."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value
