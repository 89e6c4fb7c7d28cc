"""Every public name list imports: with only torch and numpy installed, and with every extra.

``from dropkit.X import *`` reads each name of ``X.__all__``; a lazily imported name that needs an
optional package would fail there. The run without extras hides the optional packages from the
import system in a subprocess, as if they were not installed.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import subprocess
import sys
import textwrap

import pytest

import dropkit

#: Packages that only optional extras install.
OPTIONAL = (
    "accelerate",
    "lightning",
    "matplotlib",
    "mnist1d",
    "optuna",
    "pandas",
    "psycopg2",
    "pytorch_lightning",
    "rich",
    "sklearn",
    "tbparse",
    "tensorboard",
    "timm",
    "transformers",
    "triton",
)


def public_modules() -> list[str]:
    """dropkit and each of its non-private modules that declares ``__all__``."""
    names = ["dropkit"]
    for info in pkgutil.walk_packages(dropkit.__path__, "dropkit."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        if info.name in ("dropkit.cli.__main__",):
            continue
        source = _source(info.name)
        if source is not None and _declares_all(source):
            names.append(info.name)
    return names


def _declares_all(source: str) -> bool:
    """True when the module assigns ``__all__`` at its top level."""
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            return True
    return False


def _source(name: str) -> str | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    with open(spec.origin, encoding="utf-8") as handle:
        return handle.read()


STAR_IMPORTS = textwrap.dedent(
    """
    import importlib, sys

    class Hidden:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HIDDEN:
                raise ModuleNotFoundError(f"No module named {name!r} (hidden)", name=name)
            return None

    sys.meta_path.insert(0, Hidden())
    failures = []
    for module in MODULES:
        try:
            exec(f"from {module} import *", {})
            names = importlib.import_module(module).__all__
            missing = [n for n in names if not hasattr(importlib.import_module(module), n)]
            if missing:
                failures.append(f"{module}: {missing} in __all__ but missing")
        except Exception as error:
            failures.append(f"{module}: {type(error).__name__}: {error}")
    loaded = sorted(name for name in HIDDEN_ALL if name in sys.modules)
    print("\\n".join(failures))
    print("LOADED", ",".join(loaded))
    """
)


def run_star_imports(hidden: tuple[str, ...]) -> tuple[list[str], list[str]]:
    header = f"HIDDEN = {sorted(hidden)!r}\nHIDDEN_ALL = {OPTIONAL!r}\n"
    code = header + f"MODULES = {public_modules()!r}\n" + STAR_IMPORTS
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    loaded = lines[-1].removeprefix("LOADED").strip()
    return [line for line in lines[:-1] if line], [name for name in loaded.split(",") if name]


def test_public_modules_are_found() -> None:
    modules = public_modules()
    for expected in ("dropkit", "dropkit.functional", "dropkit.nn", "dropkit.model"):
        assert expected in modules
    assert not any(part.startswith("_") for name in modules for part in name.split("."))


def test_every_public_list_imports_without_extras() -> None:
    failures, loaded = run_star_imports(OPTIONAL)
    assert failures == [], "\n".join(failures)
    assert loaded == []


@pytest.mark.parametrize("module", ["dropkit", "dropkit.functional", "dropkit.nn"])
def test_core_lists_hold_only_public_objects(module: str) -> None:
    imported = __import__(module, fromlist=["__all__"])
    for name in imported.__all__:
        assert not name.startswith("_") or name == "__version__", f"{module}.{name}"
        value = getattr(imported, name)
        assert value is not None, f"{module}.{name}"
        if module == "dropkit.functional":
            assert callable(value), f"{module}.{name}"


def test_every_public_list_imports_with_extras() -> None:
    failures, _ = run_star_imports(())
    assert failures == [], "\n".join(failures)
