"""The DDP worker for test_distributed_drop_path, in a module of its own so that spawned
processes import only torch and dropkit."""

import torch
import torch.distributed as dist
from torch import nn

import dropkit as dk
from tests.distributed.exit_threads import group_threads

STEPS = 5


def branch() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 8))


def worker(rank: int, port: int) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        for mode, p in (("batch", 0.5), ("row", 0.7)):
            train(rank, mode, p)
    finally:
        dist.destroy_process_group()
    # Nothing may still hold the group: its gloo threads would be torn down with the interpreter,
    # which now and then aborts a rank that has finished (see dropkit/_process_groups.py).
    left = group_threads()
    assert not left, f"rank {rank}: process-group threads still running after shutdown: {left}"


def train(rank: int, mode: str, p: float) -> None:
    """A few DDP steps; the parameters must agree across ranks after each."""
    torch.manual_seed(0)  # the same initial weights on both ranks
    model = nn.Sequential(
        nn.Linear(8, 8),
        dk.DropPathResidual(branch(), p=p, mode=mode),
        dk.DropPathResidual(branch(), p=p, mode=mode),
        nn.Linear(8, 1),
    )
    calls = [0]
    for block in (model[1], model[2]):
        block.branch.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    ddp = nn.parallel.DistributedDataParallel(model)  # find_unused_parameters=False
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    torch.manual_seed(100 + rank)  # different data and decisions on each rank
    for _ in range(STEPS):
        x = torch.randn(2, 8)
        optimizer.zero_grad()
        ddp(x).pow(2).mean().backward()
        optimizer.step()
        flat = torch.cat([parameter.detach().reshape(-1) for parameter in model.parameters()])
        gathered = [torch.empty_like(flat) for _ in range(2)]
        dist.all_gather(gathered, flat)
        assert torch.equal(gathered[0], gathered[1]), "parameters differ across ranks"
    # Some branch was skipped for the whole batch on some rank: the case that used to fail.
    skipped = torch.tensor([2 * STEPS - calls[0]])
    dist.all_reduce(skipped)
    assert skipped.item() > 0, f"no {mode} branch was skipped: the test proves nothing"
