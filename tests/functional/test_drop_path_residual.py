import pytest
import torch

import dropkit as dk


def make_branch():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 6))


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_equals_drop_path_on_the_branch(mode):
    branch = make_branch()
    x = torch.randn(16, 3, 6, dtype=torch.float64)
    branch.double()
    for seed in range(5):
        ours = dk.drop_path_residual(
            x, branch, 0.4, mode=mode, generator=torch.Generator().manual_seed(seed)
        )
        full = x + dk.functional.drop_path(
            branch(x), 0.4, mode=mode, generator=torch.Generator().manual_seed(seed)
        )
        assert torch.allclose(ours, full)


def test_gradients_equal_full_compute():
    branch = make_branch().double()
    x = torch.randn(16, 6, dtype=torch.float64, requires_grad=True)
    ours = dk.drop_path_residual(x, branch, 0.5, generator=torch.Generator().manual_seed(2))
    ours.square().sum().backward()
    ours_grads = [x.grad.clone()] + [p.grad.clone() for p in branch.parameters()]
    x.grad = None
    branch.zero_grad()
    full = x + dk.functional.drop_path(branch(x), 0.5, generator=torch.Generator().manual_seed(2))
    full.square().sum().backward()
    full_grads = [x.grad] + [p.grad for p in branch.parameters()]
    for a, b in zip(ours_grads, full_grads, strict=True):
        assert torch.allclose(a, b)


def test_branch_runs_only_on_kept_samples():
    seen = []

    def branch(t):
        seen.append(t.shape[0])
        return t * 2

    x = torch.ones(10_000, 1)
    y = dk.drop_path_residual(x, branch, 0.4, generator=torch.Generator().manual_seed(0))
    kept = (y != 1).sum().item()
    assert seen == [kept]
    assert abs(kept / 10_000 - 0.6) < 5 * (0.24 / 10_000) ** 0.5
    assert torch.allclose(y[y != 1], torch.tensor(1 + 2 / 0.6))


def test_gradcheck():
    branch = make_branch().double()
    x = torch.randn(8, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: dk.drop_path_residual(t, branch, 0.3, generator=torch.Generator().manual_seed(0)),
        (x,),
    )


def test_eval_edges_and_errors():
    branch = make_branch()
    x = torch.randn(4, 6)
    assert torch.allclose(dk.drop_path_residual(x, branch, 0.3, training=False), x + branch(x))
    assert torch.equal(dk.drop_path_residual(x, branch, 1.0), x)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        dk.drop_path_residual(x, branch, 1.5)
    with pytest.raises(ValueError, match="mode must be one of 'row', 'batch', got 'sample'"):
        dk.drop_path_residual(x, branch, 0.1, mode="sample")
    with pytest.raises(TypeError, match="branch must be a callable"):
        dk.drop_path_residual(x, 3, 0.1)
    with pytest.raises(ValueError, match="branch must return a tensor shaped like its input"):
        dk.drop_path_residual(x, lambda t: t[:, :2], 0.5, generator=torch.manual_seed(0))


def test_module_form():
    block = dk.DropPathResidual(make_branch(), p=0.25, mode="batch")
    assert "p=0.25, mode='batch'" in repr(block)
    assert block.dropout_kind == "path"
    assert isinstance(block.branch, torch.nn.Module)  # registered: optimisers see its weights
    block.eval()
    x = torch.randn(3, 6)
    assert torch.allclose(block(x), x + block.branch(x))
    with pytest.raises(ValueError, match="p must be a probability"):
        block.p = -0.1
