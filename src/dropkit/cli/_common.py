"""What every subcommand shares: the one-line usage error and the argument types."""

from __future__ import annotations

import argparse
from typing import NoReturn

USAGE_ERROR = 2


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


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
