"""The kernel cache: verified before it is loaded, healed when damaged, clear when a build fails."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dropkit._kernels import build

needs_kernel = pytest.mark.skipif(
    not build.cpu_kernels_available(), reason="no C++ compiler: the compiled path is unavailable"
)


@pytest.mark.skipif(
    build.find_compiler() is None or sys.platform == "win32", reason="no C++ compiler on the PATH"
)
def test_where_a_compiler_is_found_the_kernels_build_and_load():
    # the tests of the compiled path skip where it is unavailable: where a compiler exists (CI),
    # a failed build must fail here instead of turning those tests into silent skips
    assert build.cpu_kernels_available()


def good_library() -> Path:
    compiler = build.find_compiler()
    assert compiler is not None
    return build.library_path(compiler)


def fake_compiler(folder: Path, body: str) -> Path:
    """A 'compiler' that runs ``body`` with the output path as $out."""
    script = folder / "fake-cxx"
    script.write_text(
        "#!/bin/sh\n"
        'out=""; while [ $# -gt 0 ]; do [ "$1" = "-o" ] && out="$2"; shift; done\n' + body
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def run_with_compiler(folder: Path, compiler_body: str, script: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a new process using ``compiler_body`` as compiler, cache in ``folder``."""
    compiler = fake_compiler(folder, compiler_body)
    env = dict(os.environ, DROPKIT_CACHE_DIR=str(folder / "cache"), CXX=str(compiler))
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


@needs_kernel
@pytest.mark.parametrize("damage", ["truncate", "zero", "garbage"])
def test_damaged_library_is_detected_without_loading_it(tmp_path, damage):
    target = tmp_path / "library.so"
    target.write_bytes(good_library().read_bytes())
    build.checksum_path(target).write_text(build._digest(target))
    assert build.verified(target)
    data = target.read_bytes()
    damaged = {
        "truncate": data[: len(data) // 2],
        "zero": b"",
        "garbage": bytes(reversed(data)),
    }[damage]
    target.write_bytes(damaged)
    assert not build.verified(target)
    target.unlink()
    assert not build.verified(target)


@needs_kernel
def test_damaged_cache_is_rebuilt_and_works(tmp_path):
    script = (
        "import torch, dropkit as dk\n"
        "from dropkit._kernels import build\n"
        "target = build.library_path(build.find_compiler())\n"
        "build._build(build.find_compiler(), target)\n"
        "good = target.read_bytes()\n"
        "for damaged in (good[: len(good) // 3], b'', b'\\x7fELF' + bytes(1000)):\n"
        "    target.write_bytes(damaged)\n"
        "    build._build(build.find_compiler(), target)\n"
        "    assert target.read_bytes() == good and build.verified(target)\n"
        "target.write_bytes(good[:100])  # and the first use heals it too\n"
        "assert build.cpu_kernels_available()\n"
        "with dk.backends.force('cpu'):\n"
        "    y = dk.functional.dropout(torch.ones(10000), 0.5)\n"
        "print(round((y == 0).float().mean().item(), 1))\n"
    )
    result = run_with_compiler(tmp_path, f'cp "{good_library()}" "$out"\n', script)
    assert result.stdout.strip() == "0.5"
    assert result.stderr.count("compiling the CPU dropout kernel") == 5
    assert "ready (built in" in result.stderr


def test_failing_compiler_gives_one_line_saying_why(tmp_path):
    script = (
        "import warnings, torch, dropkit as dk\n"
        "from dropkit._kernels import build\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    assert not build.cpu_kernels_available()\n"
        "print(str(caught[0].message))\n"
        "y = dk.functional.dropout(torch.ones(10000), 0.5)  # the reference path still works\n"
    )
    failing = 'echo "dropout.cpp:12:3: error: something is wrong" >&2\nexit 1\n'
    result = run_with_compiler(tmp_path, failing, script)
    message = result.stdout.strip()
    assert "\n" not in message
    assert message.endswith("failed: dropout.cpp:12:3: error: something is wrong)")
    assert not list((tmp_path / "cache").glob("*.so"))
