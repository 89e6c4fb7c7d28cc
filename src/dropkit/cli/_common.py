"""What every subcommand shares: the exit codes, the errors it raises, the argument types."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

#: Success (``dropkit check``: nothing found).
OK = 0
#: A failure that is not the input's fault: the user's own code raised, the environment failed
#: (disk full, permission denied while writing, database unreachable, a package missing), a
#: finding of ``dropkit check``, or an internal error of dropkit.
FAILURE = 1
#: Bad input: a bad argument, a missing or unreadable input file, an unknown format.
USAGE_ERROR = 2
#: Interrupted with Ctrl-C (128 + SIGINT), nothing printed.
INTERRUPTED = 130
#: Standard output was closed by its reader (128 + SIGPIPE), nothing printed.
CLOSED_OUTPUT = 141

Result = TypeVar("Result")


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


class EnvironmentFault(Exception):
    """The environment failed (a database unreachable or read-only, a disk full): one line, exit 1.

    Raise it with a message naming the cause, ``from`` the original error (shown by ``--debug``).
    """


class UserCodeError(Exception):
    """The user's own code (a target function, their model, an objective) raised: exit code 1.

    The message names their code and the exception; ``--debug`` shows the original traceback.

    Args:
        what: names the user's code, e.g. ``"models.py:build"``.
        error: the exception it raised, kept as ``error`` and as ``__cause__``.
    """

    def __init__(self, what: str, error: BaseException) -> None:
        super().__init__(f"{what} raised {describe(error)}")
        self.what = what
        self.error = error
        self.__cause__ = error


def describe(error: BaseException) -> str:
    """``"Type: message"``, or the type alone when the message is empty."""
    message = str(error).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def call_user(what: str, function: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
    """Call the user's ``function``; an exception it raises becomes a :class:`UserCodeError`.

    ``KeyboardInterrupt`` and ``SystemExit`` pass through untouched.

    Example:
        >>> from dropkit.cli import UserCodeError, call_user
        >>> call_user("models.py:size", len, "abc")
        3
        >>> try:
        ...     call_user("models.py:build", int, "x")
        ... except UserCodeError as error:
        ...     print(error)
        models.py:build raised ValueError: invalid literal for int() with base 10: 'x'
    """
    try:
        return function(*args, **kwargs)
    except Exception as error:
        raise UserCodeError(what, error) from error


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the usage stays in ``--help``)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def rates(text: str) -> list[float]:
    """Comma-separated dropout rates in [0, 1), sorted and without repeats."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"rates must be comma-separated numbers such as 0,0.2,0.5, got {text!r}"
        ) from None
    if not values or any(not 0.0 <= rate < 1.0 for rate in values):
        raise argparse.ArgumentTypeError(f"rates must lie in [0, 1), got {text!r}")
    return sorted(set(values))


def space(text: str) -> tuple[str, tuple[float, float]]:
    """``name=low:high``, a rate to tune and its range."""
    name, sep, bounds = text.partition("=")
    low, colon, high = bounds.partition(":")
    try:
        if not sep or not colon or not name:
            raise ValueError
        pair = (float(low), float(high))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a space is name=low:high such as head=0.1:0.5, got {text!r}"
        ) from None
    if not (0.0 <= pair[0] <= pair[1] <= 1.0):
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= low <= high <= 1")
    return name, pair


def probability(text: str) -> float:
    """A rate in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a rate is a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate must lie in [0, 1], got {text!r}")
    return value


def positive(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value
