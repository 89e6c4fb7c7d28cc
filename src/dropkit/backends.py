"""Which implementation runs dropkit's operators: one switch, read by every op at call time.

Every fast op (element dropout, masks shared along dims, DropBlock) has up to three backends that
compute the same mask from the same seed (see :mod:`dropkit._kernels.philox`):

- ``"cpu"``: the compiled C++ kernel for CPU tensors, built on first use
  (:mod:`dropkit._kernels.build`).
- ``"triton"``: the Triton kernel for CUDA tensors, when ``triton`` is installed.
- ``"reference"``: pure PyTorch; works on every device and needs no compiler.

By default an op uses the fastest backend that is available for the tensor's device and that
holds at least ``min_elements`` elements; everything else takes the reference path. The defaults
come from environment variables, read once when dropkit is imported:

- ``DROPKIT_CPU_KERNELS=0`` forbids the compiled CPU kernel;
- ``DROPKIT_TRITON=0`` forbids Triton;
- ``DROPKIT_MIN_ELEMENTS=N`` sets ``min_elements`` (0 when unset).

The settings are process-wide (shared by all threads); the context managers restore what was
set before them when their block ends.

Example:
    >>> import torch
    >>> import dropkit as dk
    >>> x = torch.ones(1000)
    >>> with dk.backends.force("reference"):
    ...     y = dk.functional.dropout(x, 0.5, generator=torch.Generator().manual_seed(0))
    >>> dk.backends.selected(x) in ("cpu", "reference")
    True
    >>> with dk.backends.forbid("cpu"):
    ...     dk.backends.selected(x)
    'reference'
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

__all__ = [
    "NAMES",
    "Settings",
    "forbid",
    "force",
    "min_elements",
    "selected",
    "set_allowed",
    "set_min_elements",
    "settings",
    "triton_installed",
    "use",
]

NAMES = ("cpu", "triton", "reference")

_OFF = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    """The switch's state: allowed backends, a forced one, and the size threshold."""

    allowed: frozenset[str] = field(default_factory=lambda: frozenset(NAMES))
    forced: str | None = None
    min_elements: int = 0


def _environment_defaults() -> Settings:
    allowed = set(NAMES)
    if os.environ.get("DROPKIT_CPU_KERNELS", "1").strip().lower() in _OFF:
        allowed.discard("cpu")
    if os.environ.get("DROPKIT_TRITON", "1").strip().lower() in _OFF:
        allowed.discard("triton")
    text = os.environ.get("DROPKIT_MIN_ELEMENTS", "0").strip() or "0"
    try:
        minimum = max(0, int(text))
    except ValueError:
        minimum = 0
    return Settings(frozenset(allowed), None, minimum)


_lock = threading.Lock()
_settings = _environment_defaults()
#: With ``TRITON_INTERPRET=1`` Triton kernels run on CPU tensors (slowly): a forced ``"triton"``
#: then serves CPU tensors too, which is how the Triton path is tested without a GPU.
_TRITON_ON_CPU = os.environ.get("TRITON_INTERPRET", "0").strip() == "1"


def settings() -> Settings:
    """The current settings (a frozen snapshot)."""
    return _settings


def _check_name(name: str, argument: str = "name") -> str:
    if name not in NAMES:
        raise ValueError(f"{argument} must be one of {', '.join(map(repr, NAMES))}, got {name!r}")
    return name


def _swap(new: Settings) -> Settings:
    global _settings
    with _lock:
        old, _settings = _settings, new
        push_policy()
    return old


#: How the compiled CPU kernels read the settings (``dropkit::set_policy``'s modes).
_NEVER, _ALWAYS, _AUTO = 0, 1, 2


def push_policy(available: bool | None = None) -> None:
    """Hand the settings for CPU tensors to the compiled kernels, when they are loaded.

    Their operator entry points run without Python: they take the compiled kernel when this
    policy says so and otherwise call the Python implementation, which reads the settings.
    ``available`` says whether the kernels may be used (default: what the build reported).
    """
    if not hasattr(torch.ops.dropkit, "set_policy"):
        return
    if available is None:
        from dropkit._kernels.build import cpu_kernels_available

        available = cpu_kernels_available()
    current = _settings
    if not available:
        mode = _NEVER
    elif current.forced == "cpu":
        mode = _ALWAYS
    elif current.forced is None and "cpu" in current.allowed:
        mode = _AUTO
    else:
        mode = _NEVER
    torch.ops.dropkit.set_policy(mode, current.min_elements)


def use(name: str | None) -> None:
    """Force ``name`` (``"cpu"``, ``"triton"`` or ``"reference"``) from now on; None: automatic.

    A forced backend runs at every size on the tensors of its device (``"cpu"`` on CPU tensors,
    ``"triton"`` on CUDA tensors), and raises a RuntimeError when it cannot be used here;
    tensors on other devices take the reference path.
    """
    _swap(replace(_settings, forced=None if name is None else _check_name(name)))


def set_min_elements(count: int) -> None:
    """Tensors with fewer elements than ``count`` take the reference path (unless forced)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"min_elements must be an int >= 0, got {count!r}")
    _swap(replace(_settings, min_elements=count))


def set_allowed(name: str, allowed: bool) -> None:
    """Allow or forbid the ``"cpu"`` or ``"triton"`` backend from now on."""
    if _check_name(name) == "reference":
        raise ValueError("the 'reference' backend cannot be forbidden: it is the fallback")
    current = set(_settings.allowed)
    if allowed:
        current.add(name)
    else:
        current.discard(name)
    _swap(replace(_settings, allowed=frozenset(current)))


@contextmanager
def force(name: str) -> Iterator[None]:
    """Within the block, use the backend ``name`` as :func:`use` does, then restore."""
    old = _swap(replace(_settings, forced=_check_name(name)))
    try:
        yield
    finally:
        _swap(old)


@contextmanager
def forbid(*names: str) -> Iterator[None]:
    """Within the block, never use the backends ``names`` (``"cpu"``, ``"triton"``)."""
    for name in names:
        if _check_name(name) == "reference":
            raise ValueError("the 'reference' backend cannot be forbidden: it is the fallback")
    old = _swap(replace(_settings, allowed=_settings.allowed - set(names)))
    try:
        yield
    finally:
        _swap(old)


@contextmanager
def min_elements(count: int) -> Iterator[None]:
    """Within the block, use :func:`set_min_elements` ``(count)``, then restore."""
    old = _settings
    set_min_elements(count)
    try:
        yield
    finally:
        _swap(old)


@functools.cache
def triton_installed() -> bool:
    """Whether the ``triton`` package can be imported (looked up once)."""
    return importlib.util.find_spec("triton") is not None


def _native(x: Tensor) -> str | None:
    """The compiled backend for ``x``'s device, or None."""
    if x.device.type == "cpu":
        return "cpu"
    if x.device.type == "cuda":
        return "triton"
    return None


def _ready(name: str) -> bool:
    if name == "cpu":
        from dropkit._kernels.build import cpu_kernels_available

        return cpu_kernels_available()
    return triton_installed()


def selected(x: Tensor) -> str:
    """The backend an op on ``x`` uses now: ``"cpu"``, ``"triton"`` or ``"reference"``."""
    current = _settings
    native = _native(x)
    if current.forced == "triton" and _TRITON_ON_CPU and x.device.type == "cpu":
        native = "triton"
    if current.forced is not None:
        if current.forced == "reference" or native != current.forced:
            return "reference"
        if not _ready(native):
            raise RuntimeError(
                f"dropkit.backends: the {native!r} backend is forced but cannot be used here "
                + (
                    "(no C++ compiler, or the build failed)"
                    if native == "cpu"
                    else "(triton is not installed)"
                )
            )
        return native
    if native is None or native not in current.allowed or x.numel() < current.min_elements:
        return "reference"
    return native if _ready(native) else "reference"
