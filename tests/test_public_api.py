"""Every public name list imports: with only torch and numpy installed, and with every extra.

``from dropkit.X import *`` reads each name of ``X.__all__``; a lazily imported name that needs an
optional package would fail there. The run without extras hides the optional packages from the
import system in a subprocess, as if they were not installed.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import pkgutil
import re
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest
import torch

import dropkit

#: Packages that only optional extras install.
OPTIONAL = (
    "accelerate",
    "filelock",
    "lightning",
    "matplotlib",
    "mnist1d",
    "optuna",
    "pandas",
    "psycopg2",
    "pytorch_lightning",
    "rich",
    "sklearn",
    "sqlalchemy",
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
        if typing.get_origin(value) is typing.Literal:  # a type alias of the accepted strings
            assert all(isinstance(option, str) for option in typing.get_args(value)), name
            continue
        if module == "dropkit.functional":
            assert inspect.isfunction(value), f"{module}.{name}"
        if module == "dropkit.nn":
            module_class = inspect.isclass(value) and issubclass(value, torch.nn.Module)
            assert module_class or inspect.isfunction(value), f"{module}.{name}"


def test_every_public_list_imports_with_extras() -> None:
    failures, _ = run_star_imports(())
    assert failures == [], "\n".join(failures)


# --- docs/api.md lists the public API, and nothing else -------------------------------------

API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"
#: The modules whose public names docs/api.md lists.
API_MODULES = (
    "dropkit",
    "dropkit.functional",
    "dropkit.nn",
    "dropkit.model",
    "dropkit.model.schedules",
    "dropkit.advisor",
    "dropkit.advisor.tuning",
    "dropkit.results",
    "dropkit.rng",
    "dropkit.backends",
)
#: Modules with an ``__all__`` that are not public API (the page says so).
INTERNAL_PACKAGES = ("dropkit.cli", "dropkit.demo", "dropkit.report")
#: Public names that ``__all__`` leaves out because they need an optional package.
LAZY_NAMES = {"dropkit.advisor": ("HuggingFaceCallback", "LightningCallback")}
ENTRY = re.compile(r"^- ((?:`dropkit[\w.]*`(?:, )?)+): \S")
QUALIFIED = re.compile(r"`(dropkit[\w.]*)`")


def public_names(module: str) -> list[str]:
    """``__all__`` of ``module``, or the names its source defines at top level when it has none."""
    imported = importlib.import_module(module)
    names = getattr(imported, "__all__", None)
    if names is None:
        source = _source(module)
        assert source is not None, module
        names = []
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names.append(node.name)
            elif isinstance(node, ast.Assign):
                names += [target.id for target in node.targets if isinstance(target, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.append(node.target.id)
        names = [name for name in names if not name.startswith("_")]
    return [*names, *LAZY_NAMES.get(module, ())]


def api_page_entries() -> list[list[str]]:
    """The names each list item of docs/api.md starts with, one list per item."""
    entries = []
    for line in API_PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("- `dropkit"):
            match = ENTRY.match(line)
            assert match, f"docs/api.md: an entry is `name`, `alias`: description; got {line!r}"
            entries.append(QUALIFIED.findall(match.group(1)))
    return entries


def resolve(qualified: str) -> object:
    module, _, name = qualified.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_the_api_page_lists_every_public_name_and_nothing_else() -> None:
    expected = {f"{module}.{name}" for module in API_MODULES for name in public_names(module)}
    listed = [name for entry in api_page_entries() for name in entry]
    missing = sorted(expected - set(listed))
    extra = sorted(set(listed) - expected)
    repeated = sorted({name for name in listed if listed.count(name) > 1})
    assert missing == [], f"public but not on docs/api.md: {missing}"
    assert extra == [], f"on docs/api.md but not public: {extra}"
    assert repeated == [], f"listed twice on docs/api.md: {repeated}"


def test_names_on_one_line_of_the_api_page_are_one_object() -> None:
    aliased = [entry for entry in api_page_entries() if len(entry) > 1]
    assert len(aliased) > 40  # the top-level re-exports
    for entry in aliased:
        objects = {id(resolve(name)) for name in entry}
        assert len(objects) == 1, f"docs/api.md lists different objects on one line: {entry}"


def test_every_module_with_a_public_list_is_api_or_internal() -> None:
    page = API_PAGE.read_text(encoding="utf-8")
    for module in public_modules():
        internal = module.startswith(tuple(f"{package}." for package in INTERNAL_PACKAGES))
        if module in INTERNAL_PACKAGES or internal:
            continue
        assert module in API_MODULES, f"{module} declares __all__: add it to docs/api.md"
    for package in INTERNAL_PACKAGES:
        assert f"`{package}`" in page, f"docs/api.md must say {package} is not public"


def test_the_entry_pattern_reads_aliases_and_refuses_other_shapes() -> None:
    line = "- `dropkit.Dropout`, `dropkit.nn.Dropout`: element-wise dropout."
    match = ENTRY.match(line)
    assert match is not None
    assert QUALIFIED.findall(match.group(1)) == ["dropkit.Dropout", "dropkit.nn.Dropout"]
    assert ENTRY.match("- `dropkit.Dropout` element-wise dropout.") is None
    assert ENTRY.match("- `dropkit.Dropout`:") is None


# --- Literal type aliases name exactly the values the functions accept -----------------------


def test_literal_aliases_are_the_values_the_checks_accept() -> None:
    from dropkit.advisor.diagnosis import MODES, REGIMES
    from dropkit.model.setting import KNOWN_KINDS

    assert typing.get_args(dropkit.advisor.Regime) == REGIMES
    assert typing.get_args(dropkit.advisor.MetricMode) == MODES
    assert typing.get_args(dropkit.model.SiteKind) == KNOWN_KINDS
    history = {"train_loss": [1.0, 0.9, 0.8], "val_loss": [1.1, 1.0, 0.95]}
    options = ", ".join(repr(mode) for mode in MODES)
    with pytest.raises(ValueError, match=f"mode must be one of {options}, got 'lower'"):
        dropkit.diagnose(history, mode="lower")  # type: ignore[arg-type]
    verdict = dropkit.diagnose(history)
    assert verdict.regime in typing.get_args(dropkit.advisor.Regime)
    assert verdict.mode in typing.get_args(dropkit.advisor.MetricMode)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1))
    for kind in typing.get_args(dropkit.model.SiteKind):  # every known kind is accepted
        dropkit.set_dropout(model, 0.2, kinds=[kind])  # raises only for an unknown kind
    with pytest.raises(ValueError, match="kinds"):
        dropkit.set_dropout(model, 0.2, kinds=["elementwise"])
