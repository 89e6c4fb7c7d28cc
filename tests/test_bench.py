"""The benchmark scripts run, print JSON that parses, and load the peers' files from wheels."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import peers  # noqa: E402

from dropkit.cli import main  # noqa: E402


def run_script(name: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_bench_json_is_the_whole_standard_output() -> None:
    result = run_script(
        "bench.py", "--ops", "dropout,drop_path", "--sizes", "1K", "--dtypes", "float32",
        "--layouts", "contiguous,transposed", "--rounds", "2", "--min-run-time", "0.001", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["environment"]["threads"] >= 1
    rows = document["rows"]
    assert [(row["op"], row["layout"]) for row in rows] == [
        ("dropout", "contiguous"),
        ("dropout", "transposed"),
        ("drop_path", "contiguous"),
        ("drop_path", "transposed"),
    ]
    for row in rows:
        assert row["elements"] == 1024
        spread = row["vs_floor"]
        assert 0 < spread["worst"] <= spread["median"] <= spread["best"]
        assert row["saved_B_per_elem"]["dropkit"] >= 0
    torch_peer = rows[0]["peers"]["torch F.dropout"]["speedup"]
    assert torch_peer["worst"] <= torch_peer["median"] <= torch_peer["best"]
    assert rows[0]["saved_B_per_elem"]["torch F.dropout"] >= 1  # torch keeps a mask


def test_rounds_alternate_blocks_in_a_rotating_order() -> None:
    import bench

    order: list[str] = []
    steps = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    times = bench.time_round(steps, {"a": 2, "b": 1, "c": 3})
    assert set(times) == {"a", "b", "c"} and all(value > 0 for value in times.values())
    assert len(order) == 6 * bench.BLOCKS
    blocks = bench.BLOCKS
    assert [order.count(name) for name in "abc"] == [2 * blocks, blocks, 3 * blocks]
    assert order[:6] == ["a", "a", "b", "c", "c", "c"]  # block 0: a, b, c
    assert order[6:12] == ["b", "c", "c", "c", "a", "a"]  # block 1 starts one further on
    assert order[12:18] == ["c", "c", "c", "a", "a", "b"]


@pytest.mark.parametrize(
    ("step_seconds", "calls"), [(0.002, 10), (0.003, 7), (0.0001, 200), (0.03, 1), (0.5, 1)]
)
def test_calls_per_block_scales_to_the_time_asked(
    monkeypatch: pytest.MonkeyPatch, step_seconds: float, calls: int
) -> None:
    import types

    import bench

    # A simulated clock that each call advances by step_seconds: exact, whatever the load.
    now = [0.0]
    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))

    def step() -> None:
        now[0] += step_seconds

    assert bench.calls_per_block(step, 0.02) == calls


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "transposed"])
def test_the_gradient_has_the_layout_of_the_input(layout: str) -> None:
    import bench

    x = bench.make_input(bench.SHAPES["1K"], torch.float16, layout)
    grad = bench.make_gradient(x)
    assert grad.stride() == x.stride() and grad.dtype == x.dtype
    assert not torch.equal(grad, x)
    if layout == "transposed":
        assert not x.is_contiguous()


def test_bench_refuses_unknown_choices() -> None:
    result = run_script("bench.py", "--sizes", "3K")
    assert result.returncode == 2
    assert "--sizes: unknown ['3K']" in result.stderr


def test_memory_script_compares_the_two_dropouts() -> None:
    result = run_script("memory.py", "--quick", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    held = {row["implementation"]: row["held_for_backward_MiB"] for row in rows}
    assert held["dropkit"] < held["torch F.dropout"]


def fake_wheel(folder: Path) -> Path:
    wheel = folder / "torchvision-0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(
            "torchvision/ops/drop_block.py",
            "import torch\nfrom ..utils import _log_api_usage_once\n\n"
            "def drop_block2d(x, p, block_size):\n    _log_api_usage_once(drop_block2d)\n"
            "    return x * 2\n",
        )
    return wheel


def test_torchvision_files_load_from_a_wheel_without_importing_the_package(tmp_path: Path) -> None:
    import torch

    before = set(sys.modules)
    loaded = peers.load_torchvision([fake_wheel(tmp_path)])
    assert set(loaded) == {"drop_block"}
    assert torch.equal(
        loaded["drop_block"].drop_block2d(torch.ones(2), 0.1, 7), torch.full((2,), 2.0)
    )
    registered = [name for name in set(sys.modules) - before if "vision" in name or "peer" in name]
    assert registered == []
    assert peers.load_timm([tmp_path / "absent.whl"]) is None
    assert list(peers.peers_for("drop_block", loaded, None)) == ["torchvision drop_block2d"]
    with pytest.raises(ValueError, match="unknown op 'dropconnect'"):
        peers.peers_for("dropconnect", loaded, None)


def test_dropkit_bench_forwards_to_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--sizes", "nope"]) == 2  # the script's own usage error
    assert capsys.readouterr().err.strip() == (
        "dropkit bench: error: --sizes: unknown ['nope']; choose from 1K, 16K, 64K, 256K, 1M, 4M, "
        "16M, 64M (see 'dropkit bench --help')"
    )
    arguments = "--ops drop_path --sizes 16K --dtypes bfloat16 --layouts contiguous --rounds 1"
    assert main(["bench", *arguments.split(), "--min-run-time", "0.001", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(row["op"], row["elements"], row["dtype"]) for row in rows] == [
        ("drop_path", 16384, "bfloat16")
    ]


def test_dropkit_bench_outside_a_clone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dropkit.cli import bench

    monkeypatch.setattr(bench, "benchmark_script", lambda: None)
    assert main(["bench", "--quick"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        "dropkit bench: error: the benchmark lives in dropkit's source repository "
        "(benchmarks/bench.py); run it from a clone"
    )


def test_bench_times_the_module_forms_against_the_peers_modules() -> None:
    result = run_script(
        "bench.py", "--modules", "--sizes", "1K", "--dtypes", "float32", "--layouts",
        "contiguous", "--rounds", "1", "--min-run-time", "0.001", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [row["op"] for row in rows] == [
        "dropout_module",
        "spatial_dropout_module",
        "drop_block_module",
        "drop_path_module",
    ]
    assert "torch nn.Dropout" in rows[0]["peers"]
    assert "torch nn.Dropout2d" in rows[1]["peers"]
    assert rows[3]["saved_B_per_elem"]["dropkit"] == round(8 / 1024, 3)  # the seed alone
    assert list(peers.peers_for("dropout_module", {}, None)) == ["torch nn.Dropout"]


STEADY_CHECK = """
import resource, sys, torch
sys.path.insert(0, sys.argv[1])
import bench
print(bench.steady_allocator())
def cycle():
    # 24 MiB in three blocks below the mapping threshold: more than any hole in the heap, so
    # they reach its top, which glibc returns to the system when its trim threshold says so
    blocks = [torch.empty(2 << 20) for _ in range(3)]
    for block in blocks:
        block.fill_(1.0)  # touch every page
for _ in range(5):  # the heap grows to its working size
    cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    cycle()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_the_steady_allocator_recycles_freed_blocks_without_page_faults() -> None:
    # Blocks freed at the top of the heap are kept and handed out again: no page faults. With
    # the trim threshold cut to 0 (a value past a C int), glibc returned them on every free and
    # each cycle faulted in up to all of their 6144 pages.
    import platform

    import bench

    assert 0 < bench.STEADY_TRIM < 2**31 and 0 < bench.STEADY_MMAP < 2**31  # C ints
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt's thresholds are glibc's; this C library has none")
    result = subprocess.run(
        [sys.executable, "-c", STEADY_CHECK, str(ROOT / "benchmarks")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    setting, faults = result.stdout.split("\n")[:2]
    assert setting.startswith("steady (glibc"), setting  # on glibc the setting must take
    assert int(faults) < 2048, faults  # 20160 and more with the threshold at 0


def test_the_steady_allocator_is_set_and_reported() -> None:
    import bench

    setting = bench.steady_allocator()
    # on glibc the thresholds are fixed; elsewhere the benchmark says why they are not
    assert setting.startswith("steady (glibc") or setting.startswith("system (")
    assert bench.environment(setting)["allocator"] == setting
    assert bench.parse_arguments(["--allocator", "system"]).allocator == "system"
    assert bench.parse_arguments([]).allocator == "steady"
