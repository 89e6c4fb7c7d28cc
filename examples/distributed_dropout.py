"""Dropout randomness under data and tensor parallelism, on CPU with the gloo backend.

Launch one process per rank with torchrun (or any launcher that sets RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT):

    torchrun --nproc-per-node 4 examples/distributed_dropout.py masks --out run/
    torchrun --nproc-per-node 2 examples/distributed_dropout.py train --out run/
    torchrun --nproc-per-node 2 examples/distributed_dropout.py resume --out run/

- ``masks``: a 2-D mesh (data-parallel x tensor-parallel, tensor-parallel size 2) seeded with
  ``dk.rng.seed_from_mesh``; a tensor-parallel MLP block drops its sharded hidden units in the
  ``"tensor-parallel"`` stream and its replicated output in the default stream.
- ``train``: DistributedDataParallel training for ``--steps`` steps, ranks seeded with
  ``dk.rng.seed_parallel``; after step ``--save-at`` it saves the model, the optimizer and
  ``dk.rng.state_dict()`` (one file per rank).
  It then takes one FSDP (``fully_shard``) step, seeded with ``dk.rng.seed_from_mesh``, and
  compares its gradients with the all-reduced gradients of the unsharded model.
- ``resume``: a fresh process loads that checkpoint and runs the remaining steps, which match the
  uninterrupted run exactly.

Each rank writes what it saw to ``OUT/<command>-rank<rank>.pt``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel

import dropkit as dk

SEED = 1234
WIDTH = 16


def masks(out: Path) -> None:
    """Replicated activations share masks across a tensor-parallel pair; sharded ones do not."""
    world, rank = dist.get_world_size(), dist.get_rank()
    mesh = init_device_mesh("cpu", (world // 2, 2), mesh_dim_names=("dp", "tp"))
    torch.manual_seed(0)  # the same full weights on every rank, before seeding for dropout
    first, second = nn.Linear(WIDTH, 4 * WIDTH), nn.Linear(4 * WIDTH, WIDTH, bias=False)
    dk.rng.seed_from_mesh(SEED, mesh)
    tp_rank, tp_group = mesh.get_local_rank("tp"), mesh.get_group("tp")
    # Column-parallel first layer, row-parallel second layer: each rank holds half the hidden units.
    rows = slice(tp_rank * 2 * WIDTH, (tp_rank + 1) * 2 * WIDTH)
    hidden_dropout = dk.Dropout(0.5, generator="tensor-parallel")  # sharded: masks differ
    output_dropout = dk.Dropout(0.5)  # replicated: the same mask on both ranks of the pair
    x = torch.ones(4, WIDTH)  # the pair sees the same batch
    with torch.no_grad():
        hidden = torch.relu(nn.functional.linear(x, first.weight[rows], first.bias[rows]))
        partial = nn.functional.linear(hidden_dropout(hidden), second.weight[:, rows])
        dist.all_reduce(partial, group=tp_group)
        block_output = output_dropout(partial)
        with dk.rng.stream("tensor-parallel"):  # any torch random call, e.g. sharded attention
            forked = nn.functional.dropout(torch.ones(64), 0.5)
    result = {
        "dp": mesh.get_local_rank("dp"),
        "tp": tp_rank,
        "hidden_mask": hidden_dropout(torch.ones(64)) == 0,
        "forked_mask": forked == 0,
        "block_output": block_output,
    }
    torch.save(result, out / f"masks-rank{rank}.pt")


def build() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(WIDTH, 32),
        nn.ReLU(),
        dk.Dropout(0.3),  # the default stream: different masks on each data-parallel rank
        nn.Linear(32, 32),
        dk.Dropout(0.2, generator="tensor-parallel"),  # a stream: saved and resumed alike
        nn.Linear(32, 1),
    )
    model = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return model, optimizer


def step(model: nn.Module, optimizer: torch.optim.Optimizer, number: int) -> dict[str, object]:
    """One training step on this rank's batch; returns what the test compares."""
    rank = dist.get_rank()
    data = torch.Generator().manual_seed(1000 * number + rank)  # each rank's own batch
    x = torch.randn(8, WIDTH, generator=data)
    y = x.sum(dim=1, keepdim=True)
    # The mask this rank's dropout would draw now on an all-ones input (the state is put back).
    state = torch.get_rng_state()
    probe = model.module[2](torch.ones(256)) == 0
    torch.set_rng_state(state)
    seen: list[torch.Tensor] = []
    hook = model.module[2].register_forward_hook(lambda _m, _i, output: seen.append(output == 0))
    loss = nn.functional.mse_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()  # DDP all-reduces the gradients here
    hook.remove()
    grads = [parameter.grad.clone() for parameter in model.parameters()]
    optimizer.step()
    parameters = [parameter.detach().clone() for parameter in model.parameters()]
    return {
        "loss": loss.detach(),
        "probe": probe,
        "mask": seen[0],
        "grads": grads,
        "parameters": parameters,
    }


def train(out: Path, steps: int, save_at: int) -> None:
    rank = dist.get_rank()
    model, optimizer = build()
    dk.rng.seed_parallel(SEED, data_rank=rank)
    records = {}
    for number in range(1, steps + 1):
        records[number] = step(model, optimizer, number)
        if number == save_at:
            checkpoint = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": dk.rng.state_dict(),  # streams and torch generator states, per rank
                "step": number,
            }
            torch.save(checkpoint, out / f"checkpoint-rank{rank}.pt")
    torch.save(records, out / f"train-rank{rank}.pt")


def fsdp(out: Path) -> None:
    """FSDP is data parallelism: masks per rank, gradients averaged over ranks."""
    rank, world = dist.get_rank(), dist.get_world_size()
    mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("dp",))
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Linear(WIDTH, 32), nn.ReLU(), dk.Dropout(0.5), nn.Linear(32, 1))
    sharded = copy.deepcopy(reference)
    fully_shard(sharded, mesh=mesh)
    dk.rng.seed_from_mesh(SEED, mesh)
    state = torch.get_rng_state()
    probe = sharded[2](torch.ones(256)) == 0  # this rank's mask on an input all ranks share
    x = torch.randn(8, WIDTH, generator=torch.Generator().manual_seed(rank))
    torch.set_rng_state(state)
    sharded(x).square().mean().backward()
    gradients = [parameter.grad.full_tensor() for parameter in sharded.parameters()]
    torch.set_rng_state(state)  # the unsharded model draws the same masks from the same state
    reference(x).square().mean().backward()
    averaged = []
    for parameter in reference.parameters():
        dist.all_reduce(parameter.grad)
        averaged.append(parameter.grad / world)
    result = {"probe": probe, "gradients": gradients, "averaged": averaged}
    torch.save(result, out / f"fsdp-rank{rank}.pt")
    release_groups(mesh)


def release_groups(mesh: DeviceMesh) -> None:
    """Drop the process groups a mesh holds, so that ``destroy_process_group`` frees them.

    After ``fully_shard``, torch keeps the mesh alive (it is referenced from DTensor state that
    outlives the model), and the mesh holds its process groups; the sharded model's own
    reference cycles hold them too, until a garbage collection (``main`` runs one). Groups still
    held at ``destroy_process_group`` keep their gloo threads, which are torn down while the
    interpreter exits and now and then abort the process ("terminate called without an active
    exception") after all its work is done. Call this once the mesh is no longer used.
    """
    registry = getattr(mesh, "_pg_registry", None)
    if isinstance(registry, dict):
        registry.clear()


def resume(out: Path, steps: int) -> None:
    rank = dist.get_rank()
    model, optimizer = build()
    checkpoint = torch.load(out / f"checkpoint-rank{rank}.pt", weights_only=False)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    dk.rng.load_state_dict(checkpoint["rng"])
    records = {
        number: step(model, optimizer, number)
        for number in range(checkpoint["step"] + 1, steps + 1)
    }
    torch.save(records, out / f"resume-rank{rank}.pt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("masks", "train", "resume"))
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--save-at", type=int, default=3)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dist.init_process_group("gloo", rank=int(os.environ["RANK"]))
    try:
        if args.command == "masks":
            masks(args.out)
        elif args.command == "train":
            train(args.out, args.steps, args.save_at)
            fsdp(args.out)
        else:
            resume(args.out, args.steps)
    finally:
        gc.collect()  # free the process groups that dead models' reference cycles still hold
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
