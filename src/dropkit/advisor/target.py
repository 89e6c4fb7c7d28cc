"""Find a user's function from ``module:function`` or ``path/to/script.py:function``."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class TargetError(ValueError):
    """A target that cannot be found or imported; the message says which part failed."""


def load_target(target: str) -> Callable[..., Any]:
    """Import ``module:function`` or ``script.py:function`` and return the function.

    A script is run as a module with a name unique to its file (its folder goes first on
    ``sys.path`` while it runs, so it can import its neighbours); a module is imported as usual
    (the current folder is searched too). ``sys.path`` is left as it was.
    A dotted function name (``module:Class.method``) is followed.

    Example:
        >>> from dropkit.advisor.target import load_target
        >>> load_target("math:sqrt")(16.0)
        4.0
    """
    if not isinstance(target, str) or ":" not in target:
        raise TargetError(
            f"target must be 'module:function' or 'path/to/script.py:function', got {target!r}"
        )
    location, _, name = target.rpartition(":")
    if not location or not name:
        raise TargetError(f"target {target!r} lacks a module or a function name")
    module = _load_script(location) if location.endswith(".py") else _load_module(location)
    value: Any = module
    for part in name.split("."):
        if not hasattr(value, part):
            raise TargetError(f"{location} has no attribute {name!r}")
        value = getattr(value, part)
    if not callable(value):
        raise TargetError(f"{target} is not callable (it is a {type(value).__name__})")
    return value


def _load_script(location: str) -> Any:
    path = Path(location).expanduser()
    if not path.is_file():
        raise TargetError(f"script {location} does not exist")
    resolved = path.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    module_name = f"dropkit_target_{stem}_{digest}"  # unique to the file, stable across runs
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot load {location} as a Python script")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with _searched_first(resolved.parent):
            spec.loader.exec_module(module)
    except Exception as error:
        sys.modules.pop(module_name, None)
        raise TargetError(f"running {location} failed: {type(error).__name__}: {error}") from error
    return module


def _load_module(location: str) -> Any:
    try:
        with _searched_first(Path.cwd()):
            return importlib.import_module(location)
    except ModuleNotFoundError as error:
        if error.name and location.startswith(error.name):
            raise TargetError(f"no module named {location!r}") from error
        raise TargetError(f"importing {location} failed: {error}") from error
    except Exception as error:
        raise TargetError(
            f"importing {location} failed: {type(error).__name__}: {error}"
        ) from error


@contextlib.contextmanager
def _searched_first(folder: Path) -> Iterator[None]:
    """Put ``folder`` first on ``sys.path`` while the target is imported, then restore it."""
    saved = list(sys.path)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path[:] = saved
