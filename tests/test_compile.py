"""torch.compile(fullgraph=True) traces models built from dropkit's layers without graph breaks."""

import torch

import dropkit as dk


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.block = dk.DropBlock2d(0.2, block_size=3)
        self.spatial = dk.SpatialDropout2d(0.2)
        self.linear = torch.nn.Linear(4 * 8 * 8, 64)
        self.dropout = dk.Dropout(0.5)
        self.residual = dk.DropPathResidual(torch.nn.Linear(64, 64), p=0.3)
        self.path = dk.DropPath(0.2)

    def forward(self, x):
        x = self.spatial(self.block(self.conv(x)))
        x = self.dropout(self.linear(x.flatten(1)))
        return self.path(self.residual(x))


def test_fullgraph_compile_is_statistically_right():
    torch._dynamo.reset()
    torch.manual_seed(0)
    net = Net()
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    x = torch.randn(256, 2, 8, 8)
    out = compiled(x)
    out.sum().backward()  # backward through the compiled graph
    assert net.linear.weight.grad is not None
    net.eval()
    assert torch.allclose(compiled(x), net(x), atol=1e-5)


def test_compiled_dropout_and_drop_block_rates():
    torch._dynamo.reset()
    layers = torch.nn.Sequential(dk.Dropout(0.3), dk.DropBlock2d(0.2, block_size=3))
    compiled = torch.compile(layers, fullgraph=True, backend="aot_eager")
    torch.manual_seed(0)
    x = torch.ones(64, 16, 16, 16)
    y = compiled(x)
    n = x.numel()
    dropped = (y == 0).double().mean().item()
    # independent: 1 - (1 - 0.3) * (1 - realised DropBlock fraction); DropBlock's realised
    # fraction sits a little below 0.2 because blocks overlap
    assert 1 - 0.7 * (1 - 0.2) - 0.02 < dropped < 1 - 0.7 * (1 - 0.2) + 5 * (0.25 / n) ** 0.5
    assert len(y.unique()) == 2  # zeros and one common scale: 1 / 0.7 times DropBlock's scale
