"""Time dropkit's ops against their peers, forward plus backward, side by side in one process.

    python benchmarks/bench.py                      # the grid: ops x sizes x dtypes x layouts
    python benchmarks/bench.py --quick --json       # small sizes; JSON only on standard output
    python benchmarks/bench.py --ops dropout --sizes 16M --dtypes float32 --rounds 7
    python benchmarks/bench.py --modules --quick    # the module forms against the peers' modules

For every case each implementation (dropkit, its peers, and the unavoidable-copies floor) is timed
in short blocks of calls that alternate between the implementations, in a rotating order, so that
a burst of noise from the machine falls on all of them alike; a round's time for an
implementation is the median of its blocks in that round. Ratios are formed within a round (peer
time / dropkit time: above 1, dropkit is faster), and the report gives the worst round as well as
the median, so a claim holds in every round rather than in a good one. Timings run with the
process's torch thread count (``--threads``; torch's own default otherwise) and the garbage
collector paused, as ``timeit`` does. The floor is what forward plus backward cannot avoid: two
reads and two writes of the tensor (``x * 2`` and ``grad * 2``); ``vs_floor`` is dropkit's time
over it. ``saved_B_per_elem`` is what each implementation keeps for backward. The environment
that can move timings (threads, transparent huge pages, allocator settings, dropkit's backend) is
printed with the results.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder's peers.py; a script
import peers as peer_loading

import dropkit as dk

REPOSITORY = Path(__file__).resolve().parent.parent
SHAPES = {  # (N, C, H, W): every op reads 4-D input so that every layout applies
    "1K": (2, 8, 8, 8),
    "16K": (4, 16, 16, 16),
    "64K": (4, 16, 32, 32),
    "256K": (8, 32, 32, 32),
    "1M": (16, 64, 32, 32),
    "4M": (16, 64, 64, 64),
    "16M": (32, 128, 64, 64),
    "64M": (64, 256, 64, 64),
}
OPS: dict[str, Callable[[Tensor], Tensor]] = {
    "dropout": lambda t: dk.functional.dropout(t, 0.3),
    "spatial_dropout": lambda t: dk.functional.spatial_dropout(t, 0.3),
    "drop_block": lambda t: dk.functional.drop_block(t, 0.1, 7),
    "drop_block_shared": lambda t: dk.functional.drop_block(t, 0.1, 7, shared_channels=True),
    "drop_path": lambda t: dk.functional.drop_path(t, 0.2),
}
# The module forms (not in the default grid: --ops dropout_module,... or --modules), timed
# against the peers' modules: what a model pays per layer, module call included.
MODULES: dict[str, Callable[[Tensor], Tensor]] = {
    "dropout_module": dk.nn.Dropout(0.3),
    "spatial_dropout_module": dk.nn.SpatialDropout2d(0.3),
    "drop_block_module": dk.nn.DropBlock2d(0.1, 7),
    "drop_path_module": dk.nn.DropPath(0.2),
}
CASES = {**OPS, **MODULES}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
LAYOUTS = ("contiguous", "channels_last", "transposed")
QUICK_SIZES = ("1K", "16K", "256K", "1M")


def make_input(shape: Sequence[int], dtype: torch.dtype, layout: str) -> Tensor:
    """A random tensor of ``shape``: contiguous, channels_last, or a transposed view."""
    generator = torch.Generator().manual_seed(0)
    if layout == "transposed":
        n, c, h, w = shape
        return torch.randn(n, c, w, h, generator=generator).to(dtype).transpose(-1, -2)
    x = torch.randn(*shape, generator=generator).to(dtype)
    return x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x


def make_gradient(x: Tensor) -> Tensor:
    """A random gradient for the output of an op on ``x``: in ``x``'s layout, as the op's output
    is, so that no implementation's backward pays for a layout change."""
    values = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    return torch.empty_like(x).copy_(values)


def train_step(op: Callable[[Tensor], Tensor], x: Tensor, grad: Tensor) -> Callable[[], None]:
    """Forward plus backward of ``op`` on a fresh leaf view of ``x``."""

    def step() -> None:
        leaf = x.detach().requires_grad_()
        op(leaf).backward(grad)

    return step


def floor_step(x: Tensor, grad: Tensor) -> Callable[[], None]:
    """Two reads and two writes of the tensor: what forward plus backward cannot avoid."""

    def step() -> None:
        torch.mul(x, 2.0)
        torch.mul(grad, 2.0)

    return step


def saved_bytes_per_element(op: Callable[[Tensor], Tensor], x: Tensor) -> float:
    """Bytes of distinct storages saved for backward by ``op(x)``, the input excluded."""
    storages: dict[int, int] = {}
    leaf = x.detach().requires_grad_()

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = op(leaf)
    storages.pop(leaf.untyped_storage().data_ptr(), None)
    del out
    return sum(storages.values()) / x.numel()


BLOCKS = 8  # blocks per implementation and round


def calls_per_block(step: Callable[[], None], seconds: float) -> int:
    """How many calls of ``step`` take about ``seconds`` (at least one)."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            step()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 4 or calls >= 1 << 20:
            return max(1, round(calls * seconds / max(elapsed, 1e-9)))
        calls *= 2


def time_round(steps: dict[str, Callable[[], None]], calls: dict[str, int]) -> dict[str, float]:
    """Seconds per call of each step in one round: the median of ``BLOCKS`` blocks of calls,
    the steps alternating block by block in a rotating order."""
    names = list(steps)
    blocks: dict[str, list[float]] = {name: [] for name in names}
    collecting = gc.isenabled()
    gc.disable()
    try:
        for block in range(BLOCKS):
            shift = block % len(names)
            for name in names[shift:] + names[:shift]:
                step, count = steps[name], calls[name]
                start = time.perf_counter()
                for _ in range(count):
                    step()
                blocks[name].append((time.perf_counter() - start) / count)
    finally:
        if collecting:
            gc.enable()
    return {name: statistics.median(values) for name, values in blocks.items()}


def run_case(
    op: str,
    size: str,
    dtype: str,
    layout: str,
    peers: dict[str, Callable[[Tensor], Tensor]],
    rounds: int,
    min_run_time: float,
) -> dict[str, Any]:
    """Every implementation of one case, interleaved over ``rounds``; ratios formed per round."""
    x = make_input(SHAPES[size], DTYPES[dtype], layout)
    grad = make_gradient(x)
    steps = {"dropkit": train_step(CASES[op], x, grad), "floor": floor_step(x, grad)}
    steps.update({name: train_step(function, x, grad) for name, function in peers.items()})
    for step in steps.values():  # warm-up: first calls build kernels and caches
        step()
    calls = {name: calls_per_block(step, min_run_time / BLOCKS) for name, step in steps.items()}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, seconds in time_round(steps, calls).items():
            times[name].append(seconds)
    ours = times["dropkit"]
    result: dict[str, Any] = {
        "op": op,
        "size": size,
        "elements": x.numel(),
        "dtype": dtype,
        "layout": layout,
        "dropkit_ms": round(statistics.median(ours) * 1e3, 4),
        "vs_floor": _spread(
            [mine / floor for mine, floor in zip(ours, times["floor"], strict=True)]
        ),
        "saved_B_per_elem": {"dropkit": round(saved_bytes_per_element(CASES[op], x), 3)},
        "peers": {},
    }
    for name, function in peers.items():
        ratios = [theirs / mine for theirs, mine in zip(times[name], ours, strict=True)]
        result["peers"][name] = {"speedup": _spread(ratios)}
        result["saved_B_per_elem"][name] = round(saved_bytes_per_element(function, x), 3)
    return result


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "worst": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "best": round(max(values), 3),
    }


# glibc's mallopt parameters: the heap top it keeps instead of returning it to the system, and
# the size from which it maps blocks of their own. mallopt takes C ints, and ctypes passes a
# larger Python int cut to its low 32 bits without a word (1 << 40 would arrive as 0: trim on
# every free), so the trim threshold is the largest int; 32 MiB is the largest mapping
# threshold glibc allows on 64-bit.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
STEADY_TRIM, STEADY_MMAP = 2**31 - 1, 32 << 20


def steady_allocator() -> str:
    """Fix glibc's heap thresholds for the process, or say why not.

    glibc moves its thresholds as blocks are freed and returns the top of the heap to the system
    past the trim threshold, so whether an implementation's multi-megabyte outputs come back as
    recycled memory or as fresh pages (a page fault each 4 KiB) depends on the order of earlier
    allocations: a 1M-element case could take twice as long for one implementation in one run
    and not in the next. With the thresholds fixed, blocks up to 32 MiB are always recycled and
    larger ones always mapped afresh, alike for every implementation.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return "system (no C library found)"
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "system (not glibc)"
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    if not (mallopt(M_TRIM_THRESHOLD, STEADY_TRIM) and mallopt(M_MMAP_THRESHOLD, STEADY_MMAP)):
        return "system (mallopt refused)"
    return "steady (glibc: no heap trimming, own mappings from 32 MiB)"


def environment(allocator: str = "system") -> dict[str, Any]:
    """What can move timings: versions, threads, huge pages, allocator and backend settings."""
    huge_pages = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return {
        "torch": torch.__version__,
        "dropkit": dk.__version__,
        "threads": torch.get_num_threads(),
        "allocator": allocator,
        "transparent_huge_pages": huge_pages.read_text().strip() if huge_pages.exists() else None,
        "settings": {
            key: value
            for key, value in sorted(os.environ.items())
            if key.startswith(("DROPKIT_", "THP_", "MALLOC_", "OMP_", "MKL_", "LD_PRELOAD"))
        },
    }


def format_row(row: dict[str, Any]) -> str:
    """One line of the text table."""
    case = f"{row['op']:<18} {row['size']:>4} {row['dtype']:<8} {row['layout']:<13}"
    floor = row["vs_floor"]
    text = f"{case} {row['dropkit_ms']:>9.3f} ms  floor x{floor['median']:<5} "
    text += f"{row['saved_B_per_elem']['dropkit']:>5} B/el"
    for name, peer in row["peers"].items():
        speed = peer["speedup"]
        text += f" | {name}: x{speed['median']} (worst x{speed['worst']})"
    return text


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/bench.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--ops", default=None, help="comma-separated ops or modules (the five ops by default)"
    )
    parser.add_argument("--modules", action="store_true", help="the module forms instead")
    parser.add_argument("--sizes", default=None, help="comma-separated sizes (1K ... 64M)")
    parser.add_argument("--dtypes", default="float32,bfloat16,float16", help="comma-separated")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated")
    parser.add_argument("--quick", action="store_true", help=f"sizes {','.join(QUICK_SIZES)}")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument(
        "--min-run-time", type=float, default=0.05, help="seconds per implementation and round"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (torch's own)")
    parser.add_argument(
        "--allocator",
        choices=("steady", "system"),
        default="steady",
        help="steady: fix glibc's heap thresholds (default); system: leave them as they are",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    sizes = args.sizes or ",".join(QUICK_SIZES if args.quick else SHAPES)
    chosen = {
        "ops": (args.ops or ",".join(MODULES if args.modules else OPS), CASES),
        "sizes": (sizes, SHAPES),
        "dtypes": (args.dtypes, DTYPES),
        "layouts": (args.layouts, LAYOUTS),
    }
    for name, (text, known) in chosen.items():
        values = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [value for value in values if value not in known]
        if not values or unknown:
            parser.error(f"--{name}: unknown {unknown or text!r}; choose from {', '.join(known)}")
        setattr(args, name, values)
    if args.rounds < 1 or args.min_run_time <= 0 or (args.threads is not None and args.threads < 1):
        parser.error("--rounds and --threads must be >= 1 and --min-run-time > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cases and print a table, or one JSON document with ``--json``."""
    args = parse_arguments(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    places = peer_loading.default_places(REPOSITORY)
    torchvision = peer_loading.load_torchvision(places)
    timm = peer_loading.load_timm(places)
    log = sys.stderr if args.json else sys.stdout
    allocator = steady_allocator() if args.allocator == "steady" else "system"
    setting = environment(allocator)
    print(json.dumps(setting), file=log, flush=True)
    missing = [name for name, found in (("torchvision", torchvision), ("timm", timm)) if not found]
    if missing:
        print(f"peers not found (their rows are left out): {', '.join(missing)}", file=log)
    rows = []
    for op in args.ops:
        peers = peer_loading.peers_for(op, torchvision, timm)
        for size in args.sizes:
            for dtype in args.dtypes:
                for layout in args.layouts:
                    row = run_case(op, size, dtype, layout, peers, args.rounds, args.min_run_time)
                    rows.append(row)
                    print(format_row(row), file=log, flush=True)
    if args.json:
        print(json.dumps({"environment": setting, "rows": rows}, allow_nan=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
