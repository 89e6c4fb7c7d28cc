"""A study knows what it searches: its space, its objective and its direction are recorded when
it is created, and a call that asks for something else is refused instead of mixing results."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dropkit.advisor.tuning.storage import hide_password

SPACE_ATTR = "dropkit:space"
OBJECTIVE_ATTR = "dropkit:objective"
DIRECTION_ATTR = "dropkit:direction"
#: Trials that re-evaluate a candidate with another seed carry these user attributes.
CANDIDATE_ATTR = "dropkit:candidate"
SEED_ATTR = "dropkit:seed"
FAILURE_ATTR = "dropkit:failure"
RESTORED_ATTR = "dropkit:restored_from"
SCRIPT_MODULE_PREFIX = "dropkit_target_"


def objective_name(function: Callable[..., Any]) -> str:
    """``module:qualified.name`` of ``function``; a script's functions are ``script.py:name``,
    whether the script runs as ``python script.py`` or is loaded by ``dropkit tune script.py:f``.
    """
    target = function
    while hasattr(target, "func") and not hasattr(target, "__qualname__"):  # functools.partial
        target = target.func
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    module_name = getattr(target, "__module__", None) or type(target).__module__
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if file and (module_name == "__main__" or module_name.startswith(SCRIPT_MODULE_PREFIX)):
        module_name = Path(file).name
    return f"{module_name}:{qualname}"


def default_study_name(
    objective: str, space: dict[str, tuple[float, float]], direction: str
) -> str:
    """A study name derived from the objective, the space and the direction, such as
    ``dropkit-score-3f2a9c1b``: two objectives (or spaces) in one storage never share a study."""
    identity = json.dumps([objective, _space_record(space), direction], sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    short = re.sub(r"[^A-Za-z0-9_]+", "_", objective.rpartition(":")[2]).strip("_") or "objective"
    return f"dropkit-{short[:40]}-{digest}"


def check_identity(
    study: Any,
    url: str,
    objective: str,
    space: dict[str, tuple[float, float]],
    direction: str,
) -> None:
    """Record the study's identity when it is new; refuse a call that asks for another one."""
    study_direction = study.direction.name.lower()
    if study_direction != direction:
        raise ValueError(
            f"study {study.study_name!r} already exists with direction {study_direction}, not "
            f"{direction}: {_how_to_start_anew()}"
        )
    wanted = {SPACE_ATTR: _space_record(space), OBJECTIVE_ATTR: objective}
    attributes = study.user_attrs
    if SPACE_ATTR not in attributes:
        if study.get_trials(deepcopy=False):
            raise ValueError(
                f"study {study.study_name!r} in {hide_password(url)} was not started by dk.tune "
                f"(it records no search space): {_how_to_start_anew()}"
            )
        for key, value in {**wanted, DIRECTION_ATTR: direction}.items():
            study.set_user_attr(key, value)
        return
    for key, label in ((SPACE_ATTR, "space"), (OBJECTIVE_ATTR, "objective")):
        if attributes.get(key) != wanted[key]:
            raise ValueError(
                f"study {study.study_name!r} in {hide_password(url)} searches {label} "
                f"{_show(attributes.get(key))}, not {_show(wanted[key])}: {_how_to_start_anew()}"
            )


def takes_seed(function: Callable[..., Any]) -> bool:
    """Whether ``function`` accepts a ``seed`` keyword."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        (p.name == "seed" and p.kind is not inspect.Parameter.POSITIONAL_ONLY)
        or p.kind is inspect.Parameter.VAR_KEYWORD
        for p in parameters
    )


def takes_reporter(function: Callable[..., Any]) -> bool:
    """Whether ``function`` takes a second positional argument (other than ``seed``)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    variadic = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
    return (len(positional) >= 2 and positional[1].name != "seed") or variadic


def _space_record(space: dict[str, tuple[float, float]]) -> dict[str, list[float]]:
    return {name: [float(low), float(high)] for name, (low, high) in sorted(space.items())}


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={v[0]:g}:{v[1]:g}" for k, v in value.items()) + "}"
    return str(value)


def _how_to_start_anew() -> str:
    return "start a new study with --study NEW (study_name= in Python) or another --storage"
