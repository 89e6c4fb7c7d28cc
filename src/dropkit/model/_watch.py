"""Seeing dropkit's own ops while a model runs: calls of the ``dropkit.functional`` functions
(watched with a profile function, so an op is seen even when it returns its input unchanged) and
operators registered in the ``torch.ops.dropkit`` namespace (watched in a dispatch mode)."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import dropkit.functional

#: Called when a dropkit op runs: (the op's name, whether it is active, its output or None).
OpCallback = Callable[[str, bool, Any], None]

#: Arguments that switch an op off when false or zero.
SWITCHES = ("training", "train")
RATES = ("p", "std")


def functional_ops() -> dict[CodeType, str]:
    """The code objects of the public ``dropkit.functional`` functions, with their names."""
    ops = {}
    for name in dropkit.functional.__all__:
        function = inspect.unwrap(getattr(dropkit.functional, name))  # past tracing wrappers
        code = getattr(function, "__code__", None)
        if isinstance(code, CodeType):
            ops[code] = f"dropkit.functional.{name}"
    return ops


def is_active(arguments: dict[str, Any]) -> bool:
    """Whether an op called with ``arguments`` draws random numbers (training, rate above 0)."""
    for name in SWITCHES:
        if name in arguments and not arguments[name]:
            return False
    for name in RATES:
        value = arguments.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
            return False
    return True


def registered_ops() -> bool:
    """Whether any operator is registered in the ``dropkit`` namespace."""
    return any(name.startswith("dropkit::") for name in torch._C._dispatch_get_all_op_names())


class OpsMode(TorchDispatchMode):
    """Reports each call of a ``torch.ops.dropkit`` operator."""

    def __init__(self, callback: OpCallback) -> None:
        super().__init__()
        self.callback = callback

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if getattr(func, "namespace", None) == "dropkit":
            arguments = dict(kwargs)
            for argument, value in zip(func._schema.arguments, args, strict=False):
                arguments[argument.name] = value
            name = f"torch.ops.dropkit.{func.__name__}"
            self.callback(name, is_active(arguments), result)
        return result


@contextmanager
def watch_ops(callback: OpCallback, inside: list[bool]) -> Iterator[None]:
    """Call ``callback`` for every dropkit op the block runs: the outermost ``dropkit.functional``
    call (with its return value) and every ``torch.ops.dropkit`` operator. ``inside[0]`` is True
    while a functional op runs (its own random draws are the op's, not another finding)."""
    ops = functional_ops()
    running: list[FrameType] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and not running and frame.f_code in ops:
            running.append(frame)
            inside[0] = True
            callback(ops[frame.f_code], is_active(frame.f_locals), None)
        elif event == "return" and running and frame is running[0]:
            running.clear()
            inside[0] = False
            callback(ops[frame.f_code], False, arg)

    previous = sys.getprofile()
    sys.setprofile(profile)
    mode = OpsMode(callback) if registered_ops() else None
    try:
        if mode is None:
            yield
        else:
            with mode:
                yield
    finally:
        sys.setprofile(previous)
        inside[0] = False
