"""Check and time dropkit's CUDA paths against torch's fused CUDA dropout, in one run.

    PYTHONPATH=src python benchmarks/cuda_check.py [--out results.json]
    TRITON_INTERPRET=1 PYTHONPATH=src python benchmarks/cuda_check.py --dry-run  # CPU, tiny

Correctness first (drop fractions, the regenerated backward mask, gradcheck, checkpoint replay,
DropBlock's dense path, drop_path and spatial dropout by the one-pass mask kernel against the
two-pass reference, drop_path_residual), then forward+backward medians by CUDA events, a sweep
of the Triton dropout's launch shape, and peak memory of a transformer block's training step.
Peers (torchvision, timm) are used where importable. ``--dry-run`` runs the same code on CPU
with tiny shapes, to check the script itself without a GPU.
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
from torch.utils.checkpoint import checkpoint

import dropkit as dk

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # this folder's modules
import bench
import memory as memory_benchmark

results: dict[str, object] = {}
SMALL = False  # set by --dry-run: tiny shapes


def size(large: int, small: int) -> int:
    return small if SMALL else large


def reference_paths() -> object:
    """A context in which dropkit takes its pure-PyTorch paths (no Triton)."""
    return dk.backends.force("reference")


def check(name: str, condition: bool, detail: object = "") -> None:
    results[f"check: {name}"] = bool(condition)
    print(f"{'ok  ' if condition else 'FAIL'} {name} {detail}", flush=True)


def correctness(device: torch.device) -> None:
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        x = torch.randn(size(1 << 22, 1 << 16), device=device, dtype=dtype)
        x = x.add_(8).requires_grad_()
        y = dk.functional.dropout(x, 0.3)
        fraction = (y == 0).float().mean().item()
        check(
            f"dropout {dtype} drop fraction",
            abs(fraction - 0.3) < 5 * (0.21 / x.numel()) ** 0.5,
            fraction,
        )
        check(f"dropout {dtype} path", True, type(y.grad_fn).__name__)
        y.backward(torch.ones_like(y))
        check(f"dropout {dtype} backward mask == forward mask", torch.equal(x.grad == 0, y == 0))
        keep = (y != 0).float()
        for lag in (1, 1024, 4096):
            both = (keep[lag:] * keep[:-lag]).mean().item()
            check(
                f"dropout {dtype} pairs {lag} apart independent",
                abs(both - 0.49) < 5 * (0.49 * 0.51 / keep.numel()) ** 0.5,
                both,
            )
    results["dropout grad_fn"] = type(y.grad_fn).__name__
    saved: list[torch.Tensor] = []
    x = torch.randn(1 << 20, device=device, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        dk.functional.dropout(x, 0.5)
    check(
        "dropout saved bytes per element",
        True,
        sum(t.numel() * t.element_size() for t in saved) / x.numel(),
    )
    t = torch.randn(64, device=device, dtype=torch.float64, requires_grad=True)
    generator = lambda: torch.Generator(device=device).manual_seed(0)  # noqa: E731
    check(
        "dropout gradcheck",
        torch.autograd.gradcheck(
            lambda s: dk.functional.dropout(s, 0.3, generator=generator()), (t,)
        ),
    )
    x = torch.randn(1 << 20, device=device, requires_grad=True)
    weight = torch.randn(1 << 20, device=device)
    block = lambda s: dk.functional.dropout(s * weight, 0.5)  # noqa: E731
    torch.manual_seed(1)
    block(x).sum().backward()
    plain = x.grad.clone()
    x.grad = None
    torch.manual_seed(1)
    checkpoint(block, x, use_reentrant=False).sum().backward()
    check("dropout under checkpoint replays the mask", torch.equal(plain, x.grad))
    for shared in (False, True):
        # 512 masks either way: the fraction's spread shrinks to a few tenths of a percent
        shape = (256, 2) if shared else (8, 64)
        f = torch.rand(*shape, 56, 56, device=device).add_(1).requires_grad_()
        y = dk.functional.drop_block(f, 0.1, 7, shared_channels=shared)
        y.backward(torch.ones_like(y))
        fraction = (y == 0).float().mean().item()
        check(
            f"drop_block shared={shared} fraction near 0.1 (overlaps lower it)",
            0.08 < fraction < 0.105,
            fraction,
        )
        check(
            f"drop_block shared={shared} gradient zero on blocks", torch.equal(f.grad == 0, y == 0)
        )
    mask_kernels(device, generator)
    branch = torch.nn.Linear(32, 32).to(device)
    h = torch.randn(64, 32, device=device)
    a = dk.drop_path_residual(h, branch, 0.4, generator=generator())
    b = h + dk.functional.drop_path(branch(h), 0.4, generator=generator())
    check("drop_path_residual equals x + drop_path(branch(x))", torch.allclose(a, b, atol=1e-5))


def mask_kernels(device: torch.device, generator: Callable[[], torch.Generator]) -> None:
    """The one-pass mask kernel equals the two-pass reference, output and gradient, bit for bit."""
    cases = {
        "drop_path row": lambda t, g: dk.functional.drop_path(t, 0.3, generator=g),
        "drop_path batch": lambda t, g: dk.functional.drop_path(t, 0.3, mode="batch", generator=g),
        "spatial_dropout": lambda t, g: dk.functional.spatial_dropout(t, 0.3, generator=g),
        "dropout broadcast_dims=(2, 3)": lambda t, g: dk.functional.dropout(
            t, 0.3, broadcast_dims=(2, 3), generator=g
        ),
        "drop_block dense p=0.9 block 4": lambda t, g: dk.functional.drop_block(
            t, 0.9, 4, generator=g
        ),
        "drop_block dense shared": lambda t, g: dk.functional.drop_block(
            t, 0.9, 4, shared_channels=True, generator=g
        ),
    }
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(32, 16, 24, 24, device=device, dtype=dtype)
        x[:, :, 0, 0] = float("inf")
        grad = torch.randn_like(x)
        for name, function in cases.items():

            def run(
                function: Callable = function, x: torch.Tensor = x, grad: torch.Tensor = grad
            ) -> tuple[torch.Tensor, torch.Tensor, str]:
                leaf = x.detach().requires_grad_()
                y = function(leaf, generator())
                y.backward(grad)
                return y.detach(), leaf.grad, type(y.grad_fn).__name__

            y, gx, path = run()
            with reference_paths():
                y_ref, gx_ref, path_ref = run()
            check(
                f"{name} {dtype}: one-pass kernel equals reference",
                torch.equal(y, y_ref) and torch.equal(gx, gx_ref) and not y.isnan().any(),
                f"{path} vs {path_ref}",
            )
    tokens = torch.randn(4096, 64, device=device).add_(3).requires_grad_()
    y = dk.functional.drop_path(tokens, 0.3)
    rows = (y == 0).all(1)
    check(
        "drop_path rows whole and rate",
        bool(((y != 0).all(1) | rows).all())
        and abs(rows.float().mean().item() - 0.3) < 5 * (0.21 / 4096) ** 0.5,
        rows.float().mean().item(),
    )
    y.backward(torch.ones_like(y))
    check("drop_path backward mask == forward mask", torch.equal(tokens.grad == 0, y == 0))


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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--out", default=os.path.join(os.environ.get("OUT", "."), "cuda_results.json")
    )
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes: check the script")
    args = parser.parse_args()
    global SMALL
    SMALL = args.dry_run
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
        correctness(device)
        timings(device)
    finally:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0 if all(v for k, v in results.items() if k.startswith("check:")) else 1


if __name__ == "__main__":
    sys.exit(main())


def compiled_triton(device: torch.device) -> None:
    """``torch.compile(fullgraph=True)`` of the Triton path, against eager.

    On CUDA the operators are traced into their Triton kernels (``torch.library.wrap_triton``),
    so inductor's code should launch them by name; the compiled step must give eager's masks for
    the same seed. Records forward+backward ms of both. Not called by ``main``; run it with
    ``python -c "import cuda_check, torch; cuda_check.compiled_triton(torch.device('cuda'))"``
    from ``benchmarks/`` (``src`` on ``PYTHONPATH``).
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
        check(f"compiled {name} equals eager", torch.equal(traced, eager))
        if device.type == "cuda":
            check(f"compiled {name} launches {kernel}", any(kernel in code for code in codes))
        row = {}
        for label, step_function in (("eager", function), ("compiled", compiled)):

            def step(step_function: Callable = step_function) -> None:
                leaf = x.detach().requires_grad_()
                step_function(leaf).backward(grad)

            row[label] = round(cuda_time(step), 3)
            row[label + " GPU only"] = round(cuda_time(step, busy=True), 3)
        results[f"compiled {name} fwd+bwd ms, float32 {x.numel()}"] = row
        print(f"compiled {name}", row, flush=True)
