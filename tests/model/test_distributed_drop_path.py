"""DropPathResidual under DistributedDataParallel with its default settings (2 processes, gloo)."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import dropkit as dk
from tests.helpers import free_port
from tests.model._distributed import branch, worker


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not built")
def test_skipped_branches_train_under_ddp_with_default_settings():
    # Both modes run in one process group; workers are spawned (forking a process that has used
    # OpenMP threads can hang).
    mp.spawn(worker, args=(free_port(),), nprocs=2, join=True)


def test_a_skipped_branch_gives_zero_gradients_not_none():
    block = dk.DropPathResidual(branch(), p=1.0, mode="batch")
    x = torch.randn(3, 8, requires_grad=True)
    y = block(x)
    assert torch.equal(y, x)
    y.sum().backward()
    assert x.grad is not None and torch.equal(x.grad, torch.ones_like(x))
    for parameter in block.parameters():
        assert parameter.grad is not None and not parameter.grad.any()
    with torch.no_grad():
        assert torch.equal(block(x), x)
