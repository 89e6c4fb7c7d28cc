"""What one training step of a small transformer block holds for backward, per dropout.

    python benchmarks/memory.py [--json]

A pre-norm block with eager attention and attention dropout on the (batch, heads, length, length)
weights, the largest tensor dropout sees in a transformer. Counted through
``torch.autograd.graph.saved_tensors_hooks``: the distinct storages saved for backward, the
input and the parameters excluded.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

import dropkit as dk


class Block(torch.nn.Module):
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


def held_for_backward(block: torch.nn.Module, x: Tensor) -> int:
    """Bytes of distinct storages saved for backward by ``block(x)``, input and weights aside."""
    storages: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    leaf = x.detach().requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = block(leaf).sum()
    for tensor in (leaf, *block.parameters()):
        storages.pop(tensor.untyped_storage().data_ptr(), None)
    del out
    return sum(storages.values())


def compare(batch: int, length: int, width: int, heads: int, p: float = 0.1) -> list[dict]:
    """MiB held by the block with torch's and with dropkit's attention dropout."""
    x = torch.randn(batch, length, width)
    rows = []
    for name, dropout in (
        ("torch F.dropout", lambda t: F.dropout(t, p)),
        ("dropkit", lambda t: dk.functional.dropout(t, p)),
    ):
        torch.manual_seed(0)
        block = Block(width, heads, dropout)
        rows.append(
            {
                "block": f"{batch}x{length}x{width}, {heads} heads, attention dropout {p}",
                "implementation": name,
                "held_for_backward_MiB": round(held_for_backward(block, x) / 2**20, 1),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/memory.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller block")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    args = parser.parse_args(argv)
    rows = compare(*((4, 256, 128, 4) if args.quick else (8, 512, 256, 4)))
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"{row['block']}: {row['implementation']:<16} {row['held_for_backward_MiB']} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
