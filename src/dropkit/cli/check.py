"""``dropkit check``: dk.check on a model a user's function builds."""

from __future__ import annotations

import argparse
import json
import traceback
from typing import Any

import torch

from dropkit.cli._common import UsageError, UserCodeError, call_user


def add_parser(commands: Any) -> None:
    """Add the ``check`` parser to ``commands``."""
    check = commands.add_parser(
        "check",
        help="check a model for dropout bugs (dk.check)",
        description=(
            "TARGET (module:function or path/to/script.py:function) is called with no arguments "
            "and returns (model, example_inputs); dk.check runs on them. Exit code 0 when clean, "
            "1 when something was found or when TARGET or the model fails (the error is named), "
            "2 for bad input."
        ),
    )
    check.add_argument("target", help="module:function or path/to/script.py:function")
    check.add_argument("--json", action="store_true", help="print the findings as a JSON list")


def run(args: argparse.Namespace) -> int:
    """Run ``dropkit check``; returns the exit code."""
    check = _find_check()
    from dropkit.advisor.target import load_target

    factory = load_target(args.target)
    built = call_user(args.target, factory)
    if not (isinstance(built, tuple) and len(built) == 2):
        raise UsageError(
            f"{args.target} must return (model, example_inputs), got {type(built).__name__}"
        )
    model, example_inputs = built
    if not isinstance(model, torch.nn.Module):
        raise UsageError(
            f"{args.target} must return (model, example_inputs) with a torch.nn.Module as "
            f"model, got {type(model).__name__}"
        )
    try:
        report = check(model, example_inputs)
    except Exception as error:
        if _raised_in(model, error):
            what = f"the model from {args.target} on its example input"
            raise UserCodeError(what, error) from error
        raise
    if args.json:
        print(json.dumps([finding.to_dict() for finding in report]))
    elif not report:
        print(f"{args.target}: no dropout problems found")
    else:
        print(f"{args.target}: {len(report)} finding(s)")
        for finding in report:
            where = f" at {finding.name}" if finding.name else ""
            print(f"- {finding.kind}{where}: {finding}")
    return 1 if report else 0


def _raised_in(model: torch.nn.Module, error: BaseException) -> bool:
    """True when ``error`` was raised while the model (or one of its modules) was running."""
    modules = {id(module) for module in model.modules()}
    calls = ("_call_impl", "_wrapped_call_impl")
    return any(
        frame.f_code.co_name in calls and id(frame.f_locals.get("self")) in modules
        for frame, _line in traceback.walk_tb(error.__traceback__)
    )


def _find_check() -> Any:
    import dropkit

    check = getattr(dropkit, "check", None)
    if check is None:
        raise UsageError(
            "dropkit check needs dk.check, which this installation of dropkit does not have"
        )
    return check
