"""The check of the argument the model tools share: a model."""

from __future__ import annotations

from typing import Any

from torch import nn


def check_model(model: Any, name: str = "model") -> nn.Module:
    """``model`` itself when it is an ``nn.Module``; else a TypeError naming the argument."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    return model
