"""dropkit's ops under torch.compile (inductor), torch.export, torch.fx and torch.jit.trace."""

import os

import pytest
import torch

import dropkit as dk
from dropkit._kernels import build
from tests.helpers import saved_bytes


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


def test_fullgraph_compile_draws_the_eager_masks_and_gradients():
    torch._dynamo.reset()
    torch.manual_seed(0)
    net = Net()
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    x = torch.randn(256, 2, 8, 8)
    grads = []
    outputs = []
    for model in (compiled, net):  # the same seed: the same masks, compiled or not
        torch.manual_seed(1)
        out = model(x)
        out.sum().backward()  # backward through the compiled graph, then the eager one
        outputs.append(out.detach())
        grads.append([parameter.grad.clone() for parameter in net.parameters()])
        net.zero_grad()
    torch.testing.assert_close(outputs[0], outputs[1])
    for compiled_grad, eager_grad in zip(*grads, strict=True):
        torch.testing.assert_close(compiled_grad, eager_grad)
    # DropPath, last, drops whole rows of the output at its rate: 256 samples, p = 0.2
    dropped = (outputs[0] == 0).all(1).double().mean().item()
    assert abs(dropped - 0.2) < 5 * (0.2 * 0.8 / 256) ** 0.5
    torch.manual_seed(2)
    assert not torch.equal(compiled(x), outputs[0])  # another seed, other masks
    net.eval()
    torch.testing.assert_close(compiled(x), net(x), atol=1e-5, rtol=0)


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


@pytest.mark.skipif(not build.cpu_kernels_available(), reason="no C++ compiler")
def test_inductor_keeps_the_kernel_and_its_memory_saving():
    torch._dynamo.reset()
    x = torch.randn(1 << 16, requires_grad=True)

    def function(t):
        return dk.functional.dropout(t, 0.5)

    compiled = torch.compile(function, fullgraph=True)
    eager_bytes, compiled_bytes = saved_bytes(function, x), saved_bytes(compiled, x)
    assert eager_bytes == compiled_bytes == 8  # the seed only, under compile as in eager
    torch_eager = saved_bytes(lambda t: torch.nn.functional.dropout(t, 0.5), x)
    assert torch_eager >= x.numel()  # torch's eager dropout keeps a mask per element
    torch.manual_seed(0)
    y = compiled(x)
    y.sum().backward()
    assert torch.equal(x.grad == 0, y == 0)
    graph_ops = []

    def backend(graph, inputs):
        graph_ops.extend(str(node.target) for node in graph.graph.nodes)
        return graph.forward

    torch._dynamo.reset()
    torch.compile(function, fullgraph=True, backend=backend)(x)
    assert "dropkit.dropout.default" in graph_ops or "dropkit::dropout" in str(graph_ops)


@pytest.mark.parametrize("training", [True, False])
def test_export_in_train_and_eval_mode(training):
    torch.manual_seed(0)
    net = Net().train(training)
    x = torch.randn(16, 2, 8, 8)
    program = torch.export.export(net, (x,))
    exported = program.module()
    if training:
        a, b = exported(x), exported(x)
        assert a.shape == (16, 64) and not torch.equal(a, b)  # fresh masks per call
        assert "dropkit" in str(program.graph)
    else:
        assert torch.allclose(exported(x), net(x), atol=1e-6)


def every_module():
    linear = torch.nn.Linear(8, 8)
    conv = torch.nn.Conv2d(3, 3, 1)
    return [
        (dk.Dropout(0.3), torch.randn(4, 8)),
        (dk.AlphaDropout(0.3), torch.randn(4, 8)),
        (dk.GaussianDropout(0.3), torch.randn(4, 8)),
        (dk.GaussianNoise(0.3), torch.randn(4, 8)),
        (dk.DropPath(0.3), torch.randn(4, 8)),
        (dk.DropPathResidual(torch.nn.Linear(8, 8), p=0.3), torch.randn(4, 8)),
        (dk.DropBlock2d(0.2, 3), torch.randn(2, 3, 8, 8)),
        (dk.DropBlock3d(0.2, 3), torch.randn(2, 3, 6, 6, 6)),
        (dk.SpatialDropout1d(0.3), torch.randn(2, 3, 8)),
        (dk.SpatialDropout2d(0.3), torch.randn(2, 3, 8, 8)),
        (dk.SpatialDropout3d(0.3), torch.randn(2, 3, 4, 4, 4)),
        (dk.DropConnect(torch.nn.Linear(8, 8), 0.3), torch.randn(4, 8)),
        (dk.WeightDrop(torch.nn.Linear(8, 8), 0.3, ["weight"]), torch.randn(4, 8)),
        (dk.TargetedDropout(linear, 0.5, 0.5), torch.randn(4, 8)),
        (dk.EmbeddingDropout(torch.nn.Embedding(10, 4), 0.3), torch.randint(10, (3, 5))),
        (dk.LockedDropout(0.3), torch.randn(5, 3, 8)),
        (dk.ConcreteDropout(torch.nn.Linear(8, 8)), torch.randn(4, 8)),
        (dk.SpatialConcreteDropout(conv), torch.randn(2, 3, 4, 4)),
        (dk.nn.TransformerEncoderLayer(8, 2, 16), torch.randn(2, 5, 8)),
    ]


@pytest.mark.parametrize("index", range(len(every_module())))
def test_fx_symbolic_trace_of_a_model_containing_each_module(index):
    module, x = every_module()[index]
    model = torch.nn.Sequential(torch.nn.Identity(), module)
    traced = torch.fx.symbolic_trace(model)
    torch.manual_seed(1)
    out = traced(x)
    torch.manual_seed(1)
    expected = model(x)
    assert torch.equal(out, expected)  # the same ops, called at run time with the same draws
    # each dropkit module or op is one leaf node of the graph
    leaves = [
        node
        for node in traced.graph.nodes
        if (node.op == "call_module" and node.target.startswith("1"))
        or getattr(node.target, "__module__", "").startswith("dropkit.")
    ]
    assert leaves


def test_graphs_built_from_proxies_by_hand_record_the_ops_and_modules():
    # outside symbolic_trace no tracer flag is set: a Proxy passed first is still recognised
    from torch.fx.proxy import GraphAppendingTracer

    graph = torch.fx.Graph()
    tracer = GraphAppendingTracer(graph)
    x = torch.fx.Proxy(graph.placeholder("x"), tracer)
    y = dk.functional.drop_path(dk.functional.dropout(x, 0.3), 0.2)
    graph.output(y.node)
    targets = [node.target for node in graph.nodes if node.op == "call_function"]
    assert targets == [dk.functional.dropout, dk.functional.drop_path]
    module = torch.fx.GraphModule(torch.nn.Module(), graph)
    torch.manual_seed(3)
    out = module(torch.ones(6, 50))
    torch.manual_seed(3)
    expected = dk.functional.drop_path(dk.functional.dropout(torch.ones(6, 50), 0.3), 0.2)
    assert torch.equal(out, expected)


def test_an_fx_transformer_keeps_dropkit_modules_as_leaves():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), dk.Dropout(0.3), dk.DropPath(0.2))
    transformed = torch.fx.Transformer(torch.fx.symbolic_trace(model)).transform()
    kinds = [node.op for node in transformed.graph.nodes]
    assert kinds.count("call_module") == 3
    x = torch.randn(4, 8)
    torch.manual_seed(4)
    out = transformed(x)
    torch.manual_seed(4)
    assert torch.equal(out, model(x))


def test_jit_trace_of_a_training_module_draws_fresh_masks():
    traced = torch.jit.trace(dk.Dropout(0.5), torch.ones(1000), check_trace=False)
    first, second = traced(torch.ones(1000)), traced(torch.ones(1000))
    assert not torch.equal(first, second)
    assert 0.4 < (first == 0).double().mean().item() < 0.6


@pytest.mark.parametrize("shared", [False, True])
def test_jit_trace_of_drop_block_draws_fresh_blocks(shared):
    module = dk.DropBlock2d(0.3, 3, shared_channels=shared)
    traced = torch.jit.trace(module, torch.ones(4, 6, 12, 12), check_trace=False)
    kinds = {node.kind() for node in traced.inlined_graph.nodes()}
    assert "dropkit::draw_drop_block" in kinds, kinds  # the seed is drawn inside the trace
    first, second = traced(torch.ones(4, 6, 12, 12)), traced(torch.ones(4, 6, 12, 12))
    assert not torch.equal(first, second)
    for out in (first, second):
        assert 0.15 < (out == 0).double().mean().item() < 0.45
        if shared:  # one mask per sample, shared by its channels
            assert torch.equal(out == 0, (out[:, :1] == 0).expand_as(out))


def test_jit_trace_of_shared_masks_with_an_explicit_generator():
    # the Python path (explicit generator) passes the mask shape as plain sizes to the tracer
    generator = torch.Generator().manual_seed(0)
    module = dk.DropPath(0.5, generator=generator)
    traced = torch.jit.trace(module, torch.ones(8, 3, 10), check_trace=False)
    out = traced(torch.ones(8, 3, 10)).flatten(1)
    assert bool(((out == 0) | (out == 2)).all())
    assert bool((out == out[:, :1]).all())  # each sample kept or dropped whole


def test_jit_trace_of_drop_path_residual():
    # its keep mask takes traced sizes too; skipped samples are the input, kept ones add the
    # branch scaled by 1 / (1 - p)
    branch = torch.nn.Linear(10, 10)
    traced = torch.jit.trace(dk.DropPathResidual(branch, 0.5), torch.ones(8, 10), check_trace=False)
    x = torch.randn(8, 10)
    out = traced(x)
    with torch.no_grad():
        full = x + branch(x) * 2
    skipped = torch.isclose(out, x).all(1)
    kept = torch.isclose(out, full).all(1)
    assert bool((skipped | kept).all())


def test_a_saved_trace_of_every_drop_module_loads_and_runs_without_the_compiled_library(tmp_path):
    # the trace records one operator defined from Python (before, drop_path's and spatial
    # dropout's mask shapes failed inside the tracer), so the saved program loads where the
    # compiled library was never built and draws a fresh mask per call
    import subprocess
    import sys
    import textwrap

    model = torch.nn.Sequential(dk.Dropout(0.5), dk.DropPath(0.3), dk.SpatialDropout1d(0.2))
    traced = torch.jit.trace(model, torch.ones(4, 3, 100), check_trace=False)
    kinds = {node.kind() for node in traced.inlined_graph.nodes()}
    assert {kind for kind in kinds if kind.startswith("dropkit::")} == {"dropkit::draw_dropout"}
    torch.jit.save(traced, str(tmp_path / "traced.pt"))
    script = textwrap.dedent(
        f"""
        import torch, dropkit
        loaded = torch.jit.load({str(tmp_path / "traced.pt")!r})
        first, second = loaded(torch.ones(4, 3, 100)), loaded(torch.ones(4, 3, 100))
        assert first.shape == (4, 3, 100) and not torch.equal(first, second)
        compiled = torch._C._dispatch_has_kernel_for_dispatch_key(
            "dropkit::draw_dropout", "AutogradCPU"
        )
        print("compiled library loaded:", compiled)
        """
    )
    environment = {**os.environ, "DROPKIT_CPU_KERNELS": "0"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment
    )
    assert result.returncode == 0, result.stderr
    assert "compiled library loaded: False" in result.stdout


def test_modules_call_their_op_without_a_second_proxy_check():
    from dropkit.functional._tracing import untraced

    assert untraced(dk.functional.drop_path) is dk.functional.drop_path.__wrapped__
    assert untraced(len) is len  # not decorated: itself
    # a module still records itself as one leaf with its op inside it, never the op alone
    traced = torch.fx.symbolic_trace(torch.nn.Sequential(dk.SpatialDropout2d(0.2)))
    assert [node.op for node in traced.graph.nodes] == ["placeholder", "call_module", "output"]
