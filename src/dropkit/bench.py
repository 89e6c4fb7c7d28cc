"""``dropkit bench``: time dropkit's ops against PyTorch, torchvision and timm in one process.

Each row runs forward plus backward of every implementation in turn (interleaved), takes the
median over the repeats and prints the peer's time divided by dropkit's (above 1: dropkit is
faster), with the bytes per element each keeps for backward. torchvision and timm are read from
their source files (``torchvision/ops/drop_block.py``, ``torchvision/ops/stochastic_depth.py``,
``timm/layers/drop.py``) in ``--peers-dir``, ``$DROPKIT_PEERS_DIR``, ``~/.cache/dropkit/peers``
or an installed package, without importing the packages themselves (torchvision's compiled part
must match torch's version; these files need only torch). A peer that cannot be found is
reported and its rows skipped. ``--fetch-peers`` (what ``make bench`` runs) downloads the two
wheels with ``pip download --no-deps`` and extracts just those files into the peers folder,
once; nothing else of them is installed or imported.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import dropkit as dk

PEER_FILES = {
    "torchvision.drop_block": "torchvision/ops/drop_block.py",
    "torchvision.stochastic_depth": "torchvision/ops/stochastic_depth.py",
    "timm.drop": "timm/layers/drop.py",
}


#: The wheels holding the peers' files (torchvision's version pinned to one known to load here).
PEER_WHEELS = ("torchvision==0.29.1", "timm")


def default_peers_dir(peers_dir: str | None = None) -> Path:
    """Where peer files are fetched to: ``peers_dir``, ``$DROPKIT_PEERS_DIR`` or the cache."""
    chosen = peers_dir or os.environ.get("DROPKIT_PEERS_DIR")
    return Path(chosen) if chosen else Path.home() / ".cache" / "dropkit" / "peers"


def fetch_peers(target: Path, wheels: tuple[str, ...] = PEER_WHEELS) -> list[str]:
    """Download the peers' wheels and extract their files into ``target``; returns what is missing.

    Files already in ``target`` are kept and nothing is downloaded when all are there.
    """
    missing = [relative for relative in PEER_FILES.values() if not (target / relative).is_file()]
    if not missing:
        return []
    with tempfile.TemporaryDirectory() as scratch:
        for requirement in wheels:
            print(f"  downloading {requirement} (no dependencies) ...", flush=True)
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
            command += ["--only-binary=:all:", "-d", scratch, requirement]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                print(f"  pip could not download {requirement}: {result.stderr.strip()[-500:]}")
        for wheel in sorted(Path(scratch).glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                names = set(archive.namelist())
                for relative in missing:
                    if relative in names:
                        destination = target / relative
                        destination.parent.mkdir(parents=True, exist_ok=True)
                        destination.write_bytes(archive.read(relative))
    return [relative for relative in missing if not (target / relative).is_file()]


def _peer_roots(peers_dir: str | None) -> list[Path]:
    roots = [Path(p) for p in (peers_dir, os.environ.get("DROPKIT_PEERS_DIR")) if p]
    roots.append(Path.home() / ".cache" / "dropkit" / "peers")
    for package in ("torchvision", "timm"):
        spec = importlib.util.find_spec(package)  # locates without importing
        if spec is not None and spec.submodule_search_locations:
            roots.extend(Path(p).parent for p in spec.submodule_search_locations)
    return roots


def load_peer(name: str, peers_dir: str | None = None) -> types.ModuleType | None:
    """Load one peer source file as a private module, or None when it is not found."""
    relative = PEER_FILES[name]
    for root in _peer_roots(peers_dir):
        path = root / relative
        if not path.is_file():
            continue
        package = f"_dropkit_peer_{name.split('.')[0]}"
        # torchvision's files import ``..utils._log_api_usage_once``: give them a stub parent
        for module_name in (package, f"{package}.ops", f"{package}.layers"):
            module = sys.modules.setdefault(module_name, types.ModuleType(module_name))
            module.__path__ = []
        utils = types.ModuleType(f"{package}.utils")
        utils._log_api_usage_once = lambda obj: None  # type: ignore[attr-defined]
        sys.modules[f"{package}.utils"] = utils
        module_name = f"{package}.{relative.split('/')[1]}.{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:  # a peer that does not load is reported, not fatal
            print(f"  {name}: {path} did not load ({error})")
            return None
        return module
    return None


def saved_bytes_per_element(run: Callable[[], Tensor], numel: int) -> float:
    """Bytes of tensors saved for backward by ``run()`` (distinct storages), per element.

    Tensors that only alias the graph's inputs or parameters are not counted.
    """
    storages: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = run()
    inputs = getattr(run, "inputs", ())
    for tensor in inputs:
        storages.pop(tensor.untyped_storage().data_ptr(), None)
    del out
    return sum(storages.values()) / numel


def _step(function: Callable[[Tensor], Tensor], x: Tensor, grad: Tensor) -> Callable[[], None]:
    def step() -> None:
        leaf = x.detach().requires_grad_()
        function(leaf).backward(grad)

    return step


def _median_times(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():  # warm-up, also builds the compiled kernel once
        step()
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _bytes(function: Callable[[Tensor], Tensor], x: Tensor) -> float:
    leaf = x.detach().requires_grad_()

    def run() -> Tensor:
        return function(leaf)

    run.inputs = (leaf,)  # type: ignore[attr-defined]
    return saved_bytes_per_element(run, x.numel())


def _row(
    title: str,
    x: Tensor,
    ours: Callable[[Tensor], Tensor],
    peers: dict[str, Callable[[Tensor], Tensor]],
    repeats: int,
) -> list[dict[str, Any]]:
    grad = torch.randn_like(x)
    steps = {"dropkit": _step(ours, x, grad)}
    steps.update({name: _step(function, x, grad) for name, function in peers.items()})
    medians = _median_times(steps, repeats)
    rows = []
    for name, function in [("dropkit", ours), *peers.items()]:
        rows.append(
            {
                "op": title,
                "implementation": name,
                "median_ms": round(medians[name] * 1e3, 2),
                "time_vs_dropkit": round(medians[name] / medians["dropkit"], 2),
                "saved_bytes_per_element": round(_bytes(function, x), 3),
            }
        )
    return rows


class _Block(torch.nn.Module):
    """A pre-norm transformer block with eager attention and attention dropout."""

    def __init__(self, width: int, heads: int, attention_dropout: Callable[[Tensor], Tensor]):
        super().__init__()
        self.heads = heads
        self.norm1 = torch.nn.LayerNorm(width)
        self.qkv = torch.nn.Linear(width, 3 * width)
        self.proj = torch.nn.Linear(width, width)
        self.norm2 = torch.nn.LayerNorm(width)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(width, 4 * width), torch.nn.GELU(), torch.nn.Linear(4 * width, width)
        )
        self.attention_dropout = attention_dropout

    def forward(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, length, 3, self.heads, -1).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
        weights = self.attention_dropout(scores.softmax(-1))
        attended = (weights @ v).transpose(1, 2).reshape(batch, length, width)
        x = x + self.proj(attended)
        return x + self.mlp(self.norm2(x))


def transformer_memory(quick: bool) -> list[dict[str, Any]]:
    """Bytes held for backward by one training step of a small transformer block."""
    batch, length, width, heads = (4, 256, 128, 4) if quick else (8, 512, 256, 4)
    x = torch.randn(batch, length, width)
    rows = []
    for name, dropout in (
        ("torch F.dropout", lambda t: F.dropout(t, 0.1)),
        ("dropkit", lambda t: dk.functional.dropout(t, 0.1)),
    ):
        torch.manual_seed(0)
        block = _Block(width, heads, dropout)
        leaf = x.detach().requires_grad_()

        def run(block: _Block = block, leaf: Tensor = leaf) -> Tensor:
            return block(leaf).sum()

        run.inputs = (leaf, *block.parameters())  # type: ignore[attr-defined]
        total = saved_bytes_per_element(run, 1)
        rows.append(
            {
                "op": f"transformer block {batch}x{length}x{width}, {heads} heads",
                "implementation": name,
                "held_for_backward_MiB": round(total / 2**20, 1),
            }
        )
    return rows


def run_benchmarks(quick: bool, repeats: int, peers_dir: str | None) -> list[dict[str, Any]]:
    """All rows; shapes shrink with ``quick``."""
    tv_block = load_peer("torchvision.drop_block", peers_dir)
    tv_depth = load_peer("torchvision.stochastic_depth", peers_dir)
    timm = load_peer("timm.drop", peers_dir)
    for name, module in (("torchvision", tv_block), ("timm", timm)):
        if module is None:
            print(f"  {name}'s source files were not found: its rows are skipped (see --help)")
    rows: list[dict[str, Any]] = []

    x = torch.randn(4 * 2**20 if quick else 16 * 2**20)
    print(f"dropout p=0.3 on {x.numel():,} float32 ...", flush=True)
    rows += _row(
        "dropout",
        x,
        lambda t: dk.functional.dropout(t, 0.3),
        {"torch F.dropout": lambda t: F.dropout(t, 0.3)},
        repeats,
    )

    feature = torch.randn(8 if quick else 32, 256, 56, 56)
    print(f"DropBlock p=0.1 block 7 on {tuple(feature.shape)} ...", flush=True)
    peers: dict[str, Callable[[Tensor], Tensor]] = {}
    if tv_block is not None:
        peers["torchvision drop_block2d"] = lambda t: tv_block.drop_block2d(t, 0.1, 7)
    rows += _row(
        "drop_block per-channel",
        feature,
        lambda t: dk.functional.drop_block(t, 0.1, 7),
        peers,
        repeats,
    )
    peers = {}
    if timm is not None:
        peers["timm drop_block_2d"] = lambda t: timm.drop_block_2d(t, 0.1, 7, couple_channels=True)
    rows += _row(
        "drop_block shared_channels",
        feature,
        lambda t: dk.functional.drop_block(t, 0.1, 7, shared_channels=True),
        peers,
        repeats,
    )

    tokens = torch.randn(64 if quick else 256, 197, 384)
    print(f"drop_path p=0.2 on {tuple(tokens.shape)} ...", flush=True)
    peers = {}
    if tv_depth is not None:
        peers["torchvision stochastic_depth"] = lambda t: tv_depth.stochastic_depth(t, 0.2, "row")
    if timm is not None:
        peers["timm drop_path"] = lambda t: timm.drop_path(t, 0.2, True)
    rows += _row("drop_path", tokens, lambda t: dk.functional.drop_path(t, 0.2), peers, repeats)

    torch.manual_seed(0)
    width = 256
    branch = torch.nn.Sequential(
        torch.nn.Linear(width, 4 * width), torch.nn.GELU(), torch.nn.Linear(4 * width, width)
    )
    hidden = torch.randn(64 if quick else 128, 64, width)
    print(f"drop_path_residual p=0.4 through an MLP on {tuple(hidden.shape)} ...", flush=True)
    rows += _row(
        "drop_path_residual",
        hidden,
        lambda t: dk.drop_path_residual(t, branch, 0.4),
        {"x + drop_path(branch(x))": lambda t: t + dk.functional.drop_path(branch(t), 0.4)},
        repeats,
    )
    print("transformer block memory ...", flush=True)
    rows += transformer_memory(quick)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of the rows."""
    lines = []
    for row in rows:
        if "held_for_backward_MiB" in row:
            lines.append(
                f"{row['op']:<34} {row['implementation']:<30} "
                f"held for backward {row['held_for_backward_MiB']:>8.1f} MiB"
            )
        else:
            lines.append(
                f"{row['op']:<34} {row['implementation']:<30} {row['median_ms']:>9.2f} ms "
                f"x{row['time_vs_dropkit']:<6} {row['saved_bytes_per_element']:>6} B/elem"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table (or JSON); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="dropkit bench",
        description="Time dropkit's ops against torch, torchvision and timm (forward+backward, "
        "interleaved, medians). 'x' is the peer's time over dropkit's: above 1, dropkit is "
        "faster. B/elem: bytes kept for backward per element.",
    )
    parser.add_argument("--quick", action="store_true", help="smaller tensors, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per op (7)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--peers-dir", default=None, help="folder holding the peers' sources")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument(
        "--fetch-peers",
        action="store_true",
        help="first download torchvision's and timm's wheels (pip download --no-deps) and "
        "extract their DropBlock/DropPath files into the peers folder, unless already there",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 7)
    if repeats < 1 or args.threads < 1:
        print("dropkit bench: --repeats and --threads must be >= 1", file=sys.stderr)
        return 2
    if args.fetch_peers:
        target = default_peers_dir(args.peers_dir)
        still_missing = fetch_peers(target)
        for relative in still_missing:
            print(f"  {relative} could not be fetched into {target}", file=sys.stderr)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {repeats} repeats", flush=True)
    rows = run_benchmarks(args.quick, repeats, args.peers_dir)
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
