"""Old names kept for one release: keyword arguments and attributes that were renamed.

An old name still works and gives the same result, with a ``FutureWarning`` that names the new
one (FutureWarning, not DeprecationWarning, so that users see it by default).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

Function = TypeVar("Function", bound=Callable[..., Any])


def warn_renamed(owner: str, old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``owner``'s ``old`` is now called ``new``."""
    warnings.warn(
        f"{owner}: {old!r} is renamed {new!r}; the old name will be removed in the next release",
        FutureWarning,
        stacklevel=stacklevel,
    )


def renamed_arguments(owner: str, **renames: str) -> Callable[[Function], Function]:
    """Accept each old keyword argument (``old="new"``) in place of its new name, with a warning.

    Giving both names at once is a TypeError.
    """

    def decorate(function: Function) -> Function:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{owner} got both {old!r} and its new name {new!r}")
                    warn_renamed(owner, old, new)
                    kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return cast(Function, wrapper)

    return decorate


class RenamedAttribute:
    """A class attribute that forwards reads and writes to its new name, with a warning."""

    def __init__(self, new: str) -> None:
        self.new = new
        self.old = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.old = name

    def __get__(self, instance: object | None, owner: type) -> Any:
        if instance is None:
            return self
        warn_renamed(type(instance).__name__, self.old, self.new)
        return getattr(instance, self.new)

    def __set__(self, instance: object, value: Any) -> None:
        warn_renamed(type(instance).__name__, self.old, self.new)
        setattr(instance, self.new, value)
