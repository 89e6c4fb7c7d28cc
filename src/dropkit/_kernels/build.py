"""Build, cache and load the compiled CPU kernels (``csrc/*.cpp``) on first use.

The library is compiled once per machine, torch version and source into a cache directory
(``$DROPKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/dropkit`` or ``~/.cache/dropkit``), with a message
on stderr while it builds. The build is written aside, moved into place by an atomic rename, and
its SHA-256 recorded next to it (``<name>.so.sha256``); a cached library is loaded only when its
checksum matches, so a truncated, empty or corrupted file is rebuilt instead of loaded (loading a
truncated shared library can kill the process). Where no C++ compiler is found or the build fails
(with a one-line warning saying why), :func:`cpu_kernels_available` returns False and the ops use
the pure-PyTorch path, which computes the same masks. Whether the kernel is *used* is decided by
:mod:`dropkit.backends` (``DROPKIT_CPU_KERNELS=0`` forbids it).

The builder calls the compiler directly rather than ``torch.utils.cpp_extension.load``, which
needs the ``ninja`` build tool installed and loads whatever it finds in its cache unverified.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import torch

SOURCES = Path(__file__).with_name("csrc")
_lock = threading.Lock()
_state: dict[str, bool] = {}


def cache_dir() -> Path:
    """Where compiled kernels are kept."""
    configured = os.environ.get("DROPKIT_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dropkit"


def find_compiler() -> str | None:
    """The C++ compiler to use: ``$CXX``, else the first of c++, g++, clang++ on the PATH."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def _cpu_signature() -> str:
    """What -march=native depends on, so a cache shared between machines stays safe."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.processor()


def _commands(compiler: str, output: Path) -> tuple[list[list[str]], list[str]]:
    """One compile command per source (run side by side), then the link into ``output``."""
    from torch.utils import cpp_extension

    includes = [f"-I{path}" for path in cpp_extension.include_paths()]
    library = cpp_extension.library_paths()[0]
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    flags = ["-O3", "-march=native", "-std=c++20", "-fPIC", "-fopenmp"]
    sources = sorted(SOURCES.glob("*.cpp"))
    objects = [output.with_name(f"{source.stem}.o") for source in sources]
    define = f"-D_GLIBCXX_USE_CXX11_ABI={abi}"
    compiles = [
        [compiler, *flags, define, *includes, "-c", str(source), "-o", str(obj)]
        for source, obj in zip(sources, objects, strict=True)
    ]
    link = [compiler, "-shared", "-fopenmp", *(str(obj) for obj in objects), f"-L{library}"]
    link += ["-lc10", "-ltorch_cpu", f"-Wl,-rpath,{library}", "-o", str(output)]
    return compiles, link


def _run_build(compiler: str, output: Path) -> None:
    """Compile the sources in parallel and link them; BuildError with the first error."""
    compiles, link = _commands(compiler, output)
    running = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command in compiles
    ]
    errors = [(process.communicate()[1], process.returncode) for process in running]
    for stderr, code in errors:
        if code != 0:
            raise BuildError(f"{compiler} failed: {_first_error(stderr)}")
    result = subprocess.run(link, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"{compiler} failed: {_first_error(result.stderr)}")


def library_path(compiler: str) -> Path:
    """The cache file for these sources, torch version, compiler and CPU."""
    digest = hashlib.sha256()
    for path in sorted(SOURCES.iterdir()):
        if path.suffix in (".cpp", ".h"):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    for part in (torch.__version__.encode(), compiler.encode()):
        digest.update(part)
    digest.update(_cpu_signature().encode())
    digest.update(sys.version.encode())
    return cache_dir() / f"dropkit_cpu_{digest.hexdigest()[:16]}.so"


class BuildError(RuntimeError):
    """The compiler failed; the message is its first error line."""


def checksum_path(target: Path) -> Path:
    """Where the SHA-256 of a built library is recorded."""
    return target.with_name(target.name + ".sha256")


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified(target: Path) -> bool:
    """True when ``target`` exists and matches the checksum recorded when it was built."""
    try:
        recorded = checksum_path(target).read_text(encoding="ascii").strip()
        return target.stat().st_size > 0 and recorded == _digest(target)
    except OSError:
        return False


def _first_error(stderr: str) -> str:
    """The compiler's first error line, else its last non-empty line, else a generic reason."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower():
            return line
    return lines[-1] if lines else "the compiler exited with an error and printed nothing"


def _build(compiler: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.with_suffix(".lock")
    with open(lock_path, "w") as lock_file:
        try:
            import fcntl

            fcntl.flock(lock_file, fcntl.LOCK_EX)  # another process may be building it
        except ImportError:  # pragma: no cover - not POSIX
            pass
        if verified(target):
            return
        print(
            "dropkit: compiling the CPU dropout kernels (first use only; about 30 s on two cores) "
            f"into {target}",
            file=sys.stderr,
            flush=True,
        )
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            partial = Path(scratch) / target.name
            _run_build(compiler, partial)
            digest = _digest(partial)
            os.replace(partial, target)
            record = Path(scratch) / "checksum"
            record.write_text(digest + "\n", encoding="ascii")
            os.replace(record, checksum_path(target))
        print(
            f"dropkit: CPU dropout kernels ready (built in {time.perf_counter() - started:.1f} s)",
            file=sys.stderr,
            flush=True,
        )


def cpu_kernels_available() -> bool:
    """Build (once) and load the CPU kernels; False when they cannot be used here."""
    if "cpu" in _state:
        return _state["cpu"]
    with _lock:
        if "cpu" not in _state:
            _state["cpu"] = _load()
    return _state["cpu"]


def _load() -> bool:
    if torch._C._dispatch_has_kernel_for_dispatch_key("dropkit::draw_drop_block", "AutogradCPU"):
        # the newest registration: these sources are loaded
        _push_policy()
        return True
    compiler = find_compiler()
    if compiler is None or sys.platform == "win32":
        return False
    try:
        target = library_path(compiler)
        if not verified(target):  # missing, or truncated, empty or corrupted: never load it
            _build(compiler, target)
        torch.ops.load_library(str(target))
    except Exception as error:  # a failed build must never break training
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        warnings.warn(
            f"dropkit: the CPU dropout kernel could not be built or loaded, using the "
            f"pure-PyTorch path instead ({reason})",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    _push_policy()
    return True


def _push_policy() -> None:
    from dropkit import backends
    from dropkit._kernels import ops

    backends.push_policy(available=True)
    ops.enable_draw()
