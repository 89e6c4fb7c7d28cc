"""The two failures of tuning that are not bad input: the user's objective, and the storage."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ObjectiveError(Exception):
    """The user's objective raised, or returned something that is not a finite number.

    Attributes:
        function_name: the objective, as ``module:function`` or ``script.py:function``.
        error: the exception it raised (a ``ValueError`` describing a bad return value).

    Example:
        >>> from dropkit.advisor.tuning import ObjectiveError
        >>> print(ObjectiveError("train.py:score", ZeroDivisionError("division by zero")))
        the objective train.py:score failed: ZeroDivisionError: division by zero
    """

    def __init__(self, function_name: str, error: BaseException) -> None:
        self.function_name = function_name
        self.error = error
        super().__init__(f"the objective {function_name} failed: {type(error).__name__}: {error}")


class StorageError(Exception):
    """The study's storage cannot be used: unreachable, read-only, full, damaged, or not ours.

    Attributes:
        unsaved: finished results that could not be stored, each ``{"rates": ..., "value": ...,
            "seed": ...}``; the message repeats them, so they are never lost silently.

    Example:
        >>> from dropkit.advisor.tuning import StorageError
        >>> error = StorageError("the server is gone", [{"rates": {"a": 0.2}, "value": 0.5}])
        >>> error.unsaved[0]["value"]
        0.5
    """

    def __init__(self, message: str, unsaved: Iterable[dict[str, Any]] = ()) -> None:
        self.unsaved = list(unsaved)
        super().__init__(message)


def first_line(error: BaseException) -> str:
    """The first non-empty line of ``error``'s message, or its type's name."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
