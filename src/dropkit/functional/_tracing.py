"""Functional ops as leaves of ``torch.fx.symbolic_trace``.

Symbolic tracing calls a function with :class:`torch.fx.Proxy` placeholders instead of tensors.
dropkit's ops check their input and draw a seed, which a placeholder cannot do, so a decorated
op called with a placeholder records itself as one ``call_function`` node instead: the traced
graph calls the op at run time (fresh masks on every call), and fx-based tools (feature
extraction, quantization, graph rewrites) see one node per op.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from torch import Tensor
from torch.fx import Proxy, _symbolic_trace

Function = TypeVar("Function", bound=Callable[..., Any])


def may_hold_proxies(args: tuple[Any, ...]) -> bool:
    """Whether a call's arguments may hold a :class:`torch.fx.Proxy` and need a scan: always,
    unless the first is a plain tensor and no fx tracer is running (``Tracer.trace`` sets the
    flag read here; a torch without it counts as tracing). Graphs built from proxies by hand
    (``GraphAppendingTracer``, ``fx.Transformer``) pass a Proxy first and are scanned."""
    return not (args and type(args[0]) is Tensor) or getattr(
        _symbolic_trace, "_is_fx_tracing_flag", True
    )


def traceable(function: Function) -> Function:
    """``function``, recorded as one graph node when called with a ``torch.fx.Proxy``."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if may_hold_proxies(args):  # the common eager call skips the scan
            for value in (*args, *kwargs.values()):
                if isinstance(value, Proxy):
                    return value.tracer.create_proxy("call_function", wrapper, args, kwargs)
        return function(*args, **kwargs)

    return cast(Function, wrapper)


def untraced(function: Function) -> Function:
    """The undecorated function of a :func:`traceable` op, for callers that have already done
    the Proxy check: a module's ``forward`` runs only after its ``__call__`` has made the module
    one leaf node under tracing, so it calls its op without a second check."""
    return cast(Function, getattr(function, "__wrapped__", function))
