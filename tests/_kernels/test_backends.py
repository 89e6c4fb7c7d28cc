"""dk.backends: one switch for which implementation runs, defaults from the environment."""

import os
import subprocess
import sys

import pytest
import torch

import dropkit as dk
from dropkit._kernels import build


def test_force_forbid_and_threshold_choose_the_backend():
    x = torch.ones(1000)
    with dk.backends.force("reference"):
        assert dk.backends.selected(x) == "reference"
    with dk.backends.forbid("cpu"):
        assert dk.backends.selected(x) == "reference"
    with dk.backends.min_elements(1001):
        assert dk.backends.selected(x) == "reference"
        assert dk.backends.settings().min_elements == 1001
    expected = "cpu" if build.cpu_kernels_available() else "reference"
    assert dk.backends.selected(x) == expected  # restored after each block
    with dk.backends.force("triton"):
        assert dk.backends.selected(x) == "reference"  # Triton serves CUDA tensors only


def test_use_and_set_allowed_persist_until_changed():
    before = dk.backends.settings()
    try:
        dk.backends.use("reference")
        assert dk.backends.selected(torch.ones(10)) == "reference"
        dk.backends.use(None)
        dk.backends.set_allowed("cpu", False)
        assert dk.backends.selected(torch.ones(10)) == "reference"
        dk.backends.set_allowed("cpu", True)
        dk.backends.set_min_elements(5)
        assert dk.backends.settings().min_elements == 5
    finally:
        dk.backends.use(before.forced)
        dk.backends.set_min_elements(before.min_elements)
        for name in ("cpu", "triton"):
            dk.backends.set_allowed(name, name in before.allowed)
    assert dk.backends.settings() == before


def test_bad_arguments_are_refused_with_the_value():
    with pytest.raises(
        ValueError, match="name must be one of 'cpu', 'triton', 'reference', got 'gpu'"
    ):
        dk.backends.use("gpu")
    with pytest.raises(ValueError, match="'reference' backend cannot be forbidden"):
        dk.backends.set_allowed("reference", False)
    forbidden = dk.backends.forbid("reference")
    with pytest.raises(ValueError, match="'reference' backend cannot be forbidden"):
        forbidden.__enter__()
    with pytest.raises(ValueError, match="min_elements must be an int >= 0, got -1"):
        dk.backends.set_min_elements(-1)


def test_forcing_a_backend_that_cannot_run_raises(monkeypatch):
    with monkeypatch.context() as patch:
        patch.setitem(build._state, "cpu", False)  # as on a machine without a compiler
        with dk.backends.force("cpu"), pytest.raises(RuntimeError, match="'cpu' backend is forced"):
            dk.functional.dropout(torch.ones(100), 0.5)
        with dk.backends.forbid("triton"):  # not forced: falls back to the reference path
            assert dk.backends.selected(torch.ones(100)) == "reference"
    dk.backends.push_policy()  # the compiled kernels' view of the settings, as before


def test_environment_sets_the_defaults_once_at_import():
    script = (
        "import os, torch, dropkit as dk\n"
        "before = dk.backends.settings()\n"
        "os.environ['DROPKIT_MIN_ELEMENTS'] = '7'\n"
        "print(sorted(before.allowed), before.min_elements, dk.backends.settings().min_elements)\n"
        "print(dk.backends.selected(torch.ones(10 ** 6)))\n"
    )
    env = dict(os.environ, DROPKIT_CPU_KERNELS="0", DROPKIT_TRITON="off")
    env["DROPKIT_MIN_ELEMENTS"] = "4096"
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["['reference'] 4096 4096", "reference"]


def test_triton_is_looked_up_once(monkeypatch):
    import importlib.util

    lookups = []

    def find_spec(name, *args):
        lookups.append(name)
        return None

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    dk.backends.triton_installed.cache_clear()
    try:
        assert [dk.backends.triton_installed() for _ in range(3)] == [False] * 3
        assert lookups == ["triton"]
    finally:
        dk.backends.triton_installed.cache_clear()


@pytest.mark.skipif(not build.cpu_kernels_available(), reason="no C++ compiler")
def test_eager_cpu_calls_stay_in_cpp_unless_the_settings_send_them_to_python(monkeypatch):
    reached: list[tuple[int, ...]] = []
    selected = dk.backends.selected

    def recording(x: torch.Tensor) -> str:
        reached.append(tuple(x.shape))
        return selected(x)

    monkeypatch.setattr(dk.backends, "selected", recording)  # what the Python implementation asks
    x = torch.randn(4, 8, 16, 16, requires_grad=True)
    functions = [
        lambda t: dk.functional.dropout(t, 0.3),
        lambda t: dk.functional.drop_path(t, 0.3),
        lambda t: dk.functional.spatial_dropout(t, 0.3),
        lambda t: dk.functional.drop_block(t, 0.2, 3),
        lambda t: dk.functional.drop_block(t, 0.9, 15, shared_channels=True),  # dense seeds
    ]
    for function in functions:
        function(x).sum().backward()
    assert reached == []  # neither forward nor backward entered the Python implementation
    for settings in (
        dk.backends.force("reference"),
        dk.backends.forbid("cpu"),
        dk.backends.min_elements(10**6),
    ):
        with settings:
            for function in functions:
                function(x).sum().backward()
        assert len(reached) >= 2 * len(functions), settings  # forward and backward, each op
        reached.clear()
    functions[0](x).sum().backward()  # the settings restored: C++ again
    assert reached == []
