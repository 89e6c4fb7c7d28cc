"""Time dropkit's CUDA paths against torch's fused CUDA dropout and the peers, in one run.

    PYTHONPATH=src python benchmarks/cuda_check.py [--out results.json] [--launch-sweep]
    PYTHONPATH=src python benchmarks/cuda_check.py --dry-run  # CPU, tiny shapes

Forward+backward medians by CUDA events (with and without the host's launch overhead), bytes
saved for backward per element, and peak memory of a transformer block's training step. Peers
(torchvision, timm) are used where importable. ``--launch-sweep`` also times the Triton
dropout's launch shapes (it sets the kernel module's private constants: for kernel tuning only).
``--dry-run`` runs the same code on CPU with tiny shapes, to check the script without a GPU.

Correctness on CUDA is checked by the tests, which run on every available device:
``PYTHONPATH=src python -m pytest tests/test_devices.py tests/functional/test_devices.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F

import dropkit as dk

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # this folder's modules
import bench
import memory as memory_benchmark

results: dict[str, object] = {}
SMALL = False  # set by --dry-run: tiny shapes
LAUNCH_SWEEP = False  # set by --launch-sweep


def size(large: int, small: int) -> int:
    return small if SMALL else large


def reference_paths() -> object:
    """A context in which dropkit takes its pure-PyTorch paths (no Triton)."""
    return dk.backends.force("reference")


def cuda_time(step: Callable[[], None], repeats: int = 20, busy: bool = False) -> float:
    """Median ms of ``step`` between CUDA events.

    With ``busy``, the GPU is first kept busy (``torch.cuda._sleep``) while the host queues the
    step, so the events time the GPU's work alone, without the host's launch overhead.
    """
    for _ in range(3):
        step()
    if SMALL:  # CPU dry run
        import time

        start = time.perf_counter()
        step()
        return (time.perf_counter() - start) * 1e3
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        if busy:
            torch.cuda._sleep(20_000_000)  # about 10 ms, longer than queueing the step
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _reference(function: Callable, t: torch.Tensor, *args: object) -> torch.Tensor:
    with reference_paths():
        return function(t, *args)


def sweep(device: torch.device) -> None:
    """Forward+backward ms of the Triton dropout for a few launch shapes (float32, 64M)."""
    from dropkit._kernels import triton_dropout as kernel

    x = torch.randn(size(1 << 26, 1 << 16), device=device)
    grad = torch.randn_like(x)
    default = (kernel.GROUPS, kernel.NUM_WARPS)
    row = {}
    for sub_block, warps in ((512, 4), (1024, 4), (1024, 8), (2048, 8), (2048, 16), (4096, 16)):
        kernel.GROUPS, kernel.NUM_WARPS = sub_block, warps

        def step() -> None:
            leaf = x.detach().requires_grad_()
            dk.functional.dropout(leaf, 0.3).backward(grad)

        row[f"sub_block {sub_block}, {warps} warps"] = round(cuda_time(step, busy=True), 3)
    kernel.GROUPS, kernel.NUM_WARPS = default
    results["triton dropout launch sweep, fwd+bwd GPU ms, float32 64M"] = row
    print("sweep", row, flush=True)


def timings(device: torch.device) -> None:
    def pair(title: str, x: torch.Tensor, ours: Callable, peers: dict[str, Callable]) -> None:
        grad = torch.randn_like(x)
        row = {}
        for name, function in [("dropkit", ours), *peers.items()]:

            def step(function: Callable = function) -> None:
                leaf = x.detach().requires_grad_()
                function(leaf).backward(grad)

            row[name] = round(cuda_time(step), 3)
            row[name + " GPU only"] = round(cuda_time(step, busy=True), 3)
            row[name + " B/elem"] = round(bench.saved_bytes_per_element(function, x), 3)
        results[title] = row
        print(title, row, flush=True)

    big, huge = size(1 << 24, 1 << 15), size(1 << 26, 1 << 16)
    for dtype, n in ((torch.float32, big), (torch.float32, huge), (torch.bfloat16, huge)):
        x = torch.randn(n, device=device, dtype=dtype)
        pair(
            f"dropout fwd+bwd ms {dtype} {n}",
            x,
            lambda t: dk.functional.dropout(t, 0.3),
            {"torch F.dropout": lambda t: F.dropout(t, 0.3)},
        )
    if LAUNCH_SWEEP:
        sweep(device)
    feature = torch.randn(size(32, 2), size(256, 4), 56, 56, device=device)
    peers: dict[str, Callable] = {}
    try:
        import torchvision.ops

        peers["torchvision drop_block2d"] = lambda t: torchvision.ops.drop_block2d(t, 0.1, 7)
    except Exception as error:
        print("torchvision unavailable:", error)
    peers["dropkit dense two-pass reference"] = lambda t: _reference(
        dk.functional.drop_block, t, 0.1, 7
    )
    pair(
        "drop_block per-channel fwd+bwd ms",
        feature,
        lambda t: dk.functional.drop_block(t, 0.1, 7),
        peers,
    )
    peers = {}
    try:
        from timm.layers.drop import drop_block_2d, drop_path

        peers["timm drop_block_2d"] = lambda t: drop_block_2d(t, 0.1, 7, couple_channels=True)
    except Exception as error:
        drop_path = None
        print("timm unavailable:", error)
    pair(
        "drop_block shared fwd+bwd ms",
        feature,
        lambda t: dk.functional.drop_block(t, 0.1, 7, shared_channels=True),
        peers,
    )
    tokens = torch.randn(size(256, 8), 197, 384, device=device)
    peers = {"timm drop_path": lambda t: drop_path(t, 0.2, True)} if drop_path else {}
    try:
        import torchvision.ops

        peers["torchvision stochastic_depth"] = lambda t: torchvision.ops.stochastic_depth(
            t, 0.2, "row"
        )
    except Exception as error:
        print("torchvision unavailable:", error)
    peers["dropkit two-pass reference"] = lambda t: _reference(dk.functional.drop_path, t, 0.2)
    pair("drop_path fwd+bwd ms", tokens, lambda t: dk.functional.drop_path(t, 0.2), peers)
    maps = torch.randn(size(64, 2), 256, 28, 28, device=device)
    pair(
        "spatial_dropout fwd+bwd ms",
        maps,
        lambda t: dk.functional.spatial_dropout(t, 0.2),
        {"torch F.dropout2d": lambda t: F.dropout2d(t, 0.2)},
    )
    torch.manual_seed(0)
    branch = torch.nn.Sequential(
        torch.nn.Linear(1024, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 1024)
    ).to(device)
    hidden = torch.randn(size(256, 4), 128, 1024, device=device)
    pair(
        "drop_path_residual fwd+bwd ms (p=0.4, MLP branch)",
        hidden,
        lambda t: dk.drop_path_residual(t, branch, 0.4),
        {"x + drop_path(branch(x))": lambda t: t + dk.functional.drop_path(branch(t), 0.4)},
    )
    memory = {}
    for name, dropout in (
        ("torch F.dropout", lambda t: F.dropout(t, 0.1)),
        ("dropkit", lambda t: dk.functional.dropout(t, 0.1)),
    ):
        torch.manual_seed(0)
        block = memory_benchmark.Block(512, 8, dropout).to(device)
        x = torch.randn(8, size(1024, 64), 512, device=device, requires_grad=True)
        block(x).sum().backward()
        if SMALL:
            continue
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        block(x).sum().backward()
        torch.cuda.synchronize()
        memory[name] = round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)
    results["transformer block 8x1024x512, 8 heads: peak MiB above resting"] = memory
    print("peak memory", memory, flush=True)


def compiled_triton(device: torch.device) -> None:
    """``torch.compile(fullgraph=True)`` of the Triton path, against eager.

    On CUDA the operators are traced into their Triton kernels (``torch.library.wrap_triton``),
    so inductor's code should launch them by name; the compiled step must give eager's masks for
    the same seed. Records whether it does, whether the kernel is launched by name, and the
    forward+backward ms of both (facts for the record; the tests hold the correctness).
    """
    from torch._inductor.utils import run_and_get_code

    rows = size(256, 16)
    x = torch.randn(rows, size(1 << 16, 256), device=device)
    grad = torch.randn_like(x)
    cases = {
        "dropout": (lambda t: dk.functional.dropout(t, 0.3), "_dropout_kernel"),
        "drop_path": (lambda t: dk.functional.drop_path(t, 0.2), "_mask_kernel"),
    }
    for name, (function, kernel) in cases.items():
        compiled = torch.compile(function, fullgraph=True)
        torch.manual_seed(0)
        eager = function(x)
        torch.manual_seed(0)
        traced, codes = run_and_get_code(compiled, x)
        row: dict[str, object] = {"equals eager": torch.equal(traced, eager)}
        if device.type == "cuda":
            row[f"launches {kernel}"] = any(kernel in code for code in codes)
        for label, step_function in (("eager", function), ("compiled", compiled)):

            def step(step_function: Callable = step_function) -> None:
                leaf = x.detach().requires_grad_()
                step_function(leaf).backward(grad)

            row[label] = round(cuda_time(step), 3)
            row[label + " GPU only"] = round(cuda_time(step, busy=True), 3)
        results[f"compiled {name} fwd+bwd ms, float32 {x.numel()}"] = row
        print(f"compiled {name}", row, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--out", default=os.path.join(os.environ.get("OUT", "."), "cuda_results.json")
    )
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes: check the script")
    parser.add_argument(
        "--launch-sweep", action="store_true", help="also time the Triton dropout's launch shapes"
    )
    args = parser.parse_args()
    global SMALL, LAUNCH_SWEEP
    SMALL, LAUNCH_SWEEP = args.dry_run, args.launch_sweep
    if not torch.cuda.is_available() and not SMALL:
        print("no CUDA device")
        return 1
    device = torch.device("cpu" if SMALL else "cuda")
    results["device"] = "cpu (dry run)" if SMALL else torch.cuda.get_device_name()
    results["torch"] = torch.__version__
    try:
        import triton

        results["triton"] = triton.__version__
    except ImportError:
        results["triton"] = None
    print(results, flush=True)
    try:
        timings(device)
        compiled_triton(device)
    finally:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
