"""One validating descriptor, one functional contract, one naming rule: the checks they share."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, get_args

import pytest
import torch
import torch.nn.functional as torch_functional
from torch import Tensor, nn

import dropkit as dk
from dropkit import functional as F
from dropkit._validation import Validated
from tests.helpers import generator

X2 = torch.randn(4, 6)
X3 = torch.randn(2, 3, 5)
X4 = torch.randn(2, 3, 8, 8)
WEIGHT = torch.randn(6, 4)

# Every module attribute that is validated: (module, attribute, good value, bad value, error,
# message). Assigning the bad value must raise naming the attribute and keep the old value.
ASSIGNMENTS: list[tuple[Callable[[], nn.Module], str, Any, Any, type[Exception], str]] = [
    (lambda: dk.Dropout(0.5), "p", 0.25, 1.5, ValueError, r"^p must be a probability"),
    (lambda: dk.Dropout(0.5), "broadcast_dims", (1,), "1", TypeError, "^broadcast_dims must be"),
    (lambda: dk.DropBlock2d(), "block_size", 3, 0, ValueError, "^block_size must be an int >= 1"),
    (lambda: dk.DropBlock3d(), "block_size", (1, 2, 3), (1, 2), ValueError, "^block_size must"),
    (lambda: dk.DropBlock2d(), "shared_channels", True, "no", TypeError, "^shared_channels must"),
    (lambda: dk.DropPath(), "mode", "batch", "rows", ValueError, "^mode must be one of"),
    (lambda: dk.DropPathResidual(nn.Identity()), "mode", "batch", 1, ValueError, "^mode must be"),
    (lambda: dk.LockedDropout(), "batch_first", False, 1, TypeError, "^batch_first must be a bool"),
    (lambda: dk.GaussianNoise(0.1), "std", 0.2, -1.0, ValueError, "^std must be a finite number"),
    (lambda: dk.DropConnect(nn.Linear(2, 2)), "inference", "gaussian", "x", ValueError, "^infer"),
    (lambda: dk.DropConnect(nn.Linear(2, 2)), "samples", 7, 0, ValueError, "^samples must be"),
    (lambda: dk.DropConnect(nn.Linear(2, 2)), "activation", torch.relu, 3, TypeError, "^activa"),
    (lambda: dk.TargetedDropout(nn.Linear(2, 2)), "targeted_fraction", 0.1, 2, ValueError, "^tar"),
    (lambda: dk.TargetedDropout(nn.Linear(2, 2)), "mode", "unit", "row", ValueError, "^mode must"),
    (lambda: dk.ConcreteDropout(nn.Linear(2, 2)), "temperature", 0.5, 0, ValueError, "^temper"),
    (lambda: dk.ConcreteDropout(nn.Linear(2, 2)), "weight_regularizer", 1.0, -1, ValueError, "^w"),
    (
        lambda: dk.nn.TransformerEncoderLayer(8, 2, 16),
        "attention_dropout",
        0.2,
        2,
        ValueError,
        "^a",
    ),
    (
        lambda: dk.nn.TransformerEncoderLayer(8, 2, 16),
        "activation",
        "relu",
        "tanh",
        ValueError,
        "^",
    ),
    (lambda: dk.nn.TransformerEncoderLayer(8, 2, 16), "norm_first", False, "no", TypeError, "^n"),
    (lambda: dk.Dropout(), "generator", torch.Generator(), 7, TypeError, "^generator must be"),
    (
        lambda: dk.WeightDrop(nn.GRU(2, 2)),
        "weights",
        "weight_ih_l0",
        ("x",),
        ValueError,
        "^weights",
    ),
]


@pytest.mark.parametrize(
    ("make", "attribute", "good", "bad", "error", "message"),
    ASSIGNMENTS,
    ids=[f"{row[1]}-{index}" for index, row in enumerate(ASSIGNMENTS)],
)
def test_every_validated_attribute_is_checked_on_assignment(
    make: Callable[[], nn.Module],
    attribute: str,
    good: Any,
    bad: Any,
    error: type[Exception],
    message: str,
) -> None:
    module = make()
    assert isinstance(getattr(type(module), attribute), Validated)
    setattr(module, attribute, good)
    kept = getattr(module, attribute)
    with pytest.raises(error, match=message) as raised:
        setattr(module, attribute, bad)
    assert attribute in str(raised.value)
    assert getattr(module, attribute) is kept


def test_validated_attributes_are_settable_properties_and_follow_copies() -> None:
    layer = dk.DropBlock2d(0.2, block_size=3)
    assert isinstance(dk.DropBlock2d.p, property) and dk.DropBlock2d.p.fset is not None
    assert layer.block_size == (3, 3)  # stored as checked, one size per spatial dim
    clone = copy.deepcopy(layer)
    clone.p = 0.4
    assert (layer.p, clone.p) == (0.2, 0.4)
    assert dk.Dropout(0.3).state_dict() == {}  # plain attributes, never state


# Every functional op with a rate: (name, call(p, training)).
OPS: list[tuple[str, Callable[[float, Any], Tensor], Tensor]] = [
    ("dropout", lambda p, t: F.dropout(X2, p, t), X2),
    ("drop_block", lambda p, t: F.drop_block(X4, p, 3, t), X4),
    ("drop_path", lambda p, t: F.drop_path(X2, p, t), X2),
    ("spatial_dropout", lambda p, t: F.spatial_dropout(X3, p, t), X3),
    ("locked_dropout", lambda p, t: F.locked_dropout(X3, p, t), X3),
    ("gaussian_dropout", lambda p, t: F.gaussian_dropout(X2, p, t), X2),
    ("alpha_dropout", lambda p, t: F.alpha_dropout(X2, p, t), X2),
    ("drop_connect", lambda p, t: F.drop_connect(WEIGHT, p, t), WEIGHT),
    ("embedding_dropout", lambda p, t: F.embedding_dropout(WEIGHT, p, t), WEIGHT),
]


@pytest.mark.parametrize(("name", "call", "x"), OPS, ids=[row[0] for row in OPS])
def test_every_op_keeps_the_one_contract(name: str, call: Callable[..., Tensor], x: Tensor) -> None:
    assert call(0.5, False) is x
    assert call(0.0, True) is x
    assert torch.equal(call(1.0, True), torch.zeros_like(x))
    with pytest.raises(TypeError, match=r"^training must be a bool, got 'yes' \(str\)"):
        call(0.5, "yes")
    with pytest.raises(TypeError, match=r"^training must be a bool, got 1 \(int\)"):
        call(0.5, 1)
    with pytest.raises(ValueError, match=r"^p must be a probability in \[0, 1\], got 1.5"):
        call(1.5, True)


@pytest.mark.parametrize(
    "call",
    [
        lambda: F.drop_path_residual(X2, torch.relu, 0.5, "yes"),
        lambda: F.targeted_dropout(WEIGHT, 0.5, 0.5, "yes"),
        lambda: F.gaussian_noise(X2, 0.1, "yes"),
    ],
    ids=["drop_path_residual", "targeted_dropout", "gaussian_noise"],
)
def test_ops_outside_the_rate_contract_refuse_a_non_bool_training(call: Callable[[], Any]) -> None:
    with pytest.raises(TypeError, match="^training must be a bool, got 'yes'"):
        call()


def test_rate_one_gives_zeros_with_a_zero_gradient() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    F.gaussian_dropout(x, 1.0).sum().backward()
    assert x.grad is not None and torch.equal(x.grad, torch.zeros(3, 4))


def test_functional_rates_have_the_modules_defaults() -> None:
    for function, module in (
        (F.gaussian_dropout, dk.GaussianDropout()),
        (F.alpha_dropout, dk.AlphaDropout()),
        (F.dropout, dk.Dropout()),
    ):
        expected = function(X2, module.p, generator=generator(1))
        assert torch.equal(function(X2, generator=generator(1)), expected)
    weight = torch.randn(3, 6)
    torch.manual_seed(0)
    default = F.drop_connect_gaussian(X2, weight, None)
    torch.manual_seed(0)
    assert torch.equal(default, F.drop_connect_gaussian(X2, weight, None, 0.5))
    assert dk.DropConnect(nn.Linear(6, 3)).p == 0.5


def test_drop_block_shared_channels_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match=r"^shared_channels must be a bool, got 'no' \(str\)"):
        F.drop_block(X4, 0.2, 3, shared_channels="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^shared_channels must be a bool, got 'no'"):
        dk.DropBlock2d(0.2, 3, shared_channels="no")  # type: ignore[arg-type]


def test_embedding_tokens_must_be_indices() -> None:
    layer = dk.EmbeddingDropout(nn.Embedding(10, 3), 0.5)
    with pytest.raises(TypeError, match="^tokens must be an int64 or int32 tensor of indices"):
        layer(torch.tensor([[1.0, 2.0]]))
    with pytest.raises(TypeError, match="^tokens must be an int64 or int32 tensor of indices"):
        layer.eval()(torch.tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="^lookup is used only with tokens"):
        F.embedding_dropout(WEIGHT, 0.5, lookup=torch_functional.embedding)


def test_embedding_module_runs_its_functional_with_tokens() -> None:
    embedding = nn.Embedding(50, 4, max_norm=1.0)
    tokens = torch.randint(0, 50, (3, 7), generator=generator(2), dtype=torch.int32)
    layer = dk.EmbeddingDropout(embedding, 0.5)
    torch.manual_seed(3)
    rows = layer(tokens)
    torch.manual_seed(3)
    expected = F.embedding_dropout(
        embedding.weight, 0.5, tokens=tokens, lookup=lambda t, w: torch_functional.embedding(t, w)
    )
    assert torch.equal(rows, expected)
    looked_up = embedding.weight[tokens.long().unique()]
    assert looked_up.norm(dim=1).max() <= 1.0 + 1e-6  # the lookup applied max_norm
    ones = torch.ones(50, 4, requires_grad=True)
    zeros = F.embedding_dropout(ones, 1.0, tokens=tokens.long())
    zeros.sum().backward()
    assert zeros.shape == (3, 7, 4) and not zeros.any() and not ones.grad.any()  # type: ignore[union-attr]


def test_drop_connect_gaussian_names_mismatched_shapes() -> None:
    with pytest.raises(
        ValueError,
        match=r"^layer\(x, weight, bias\) failed for x of shape \(4, 6\), weight of shape \(3, 5\)",
    ):
        F.drop_connect_gaussian(X2, torch.randn(3, 5), None, 0.5)
    with pytest.raises(TypeError, match="^bias must be a torch.Tensor, got float"):
        F.drop_connect_gaussian(X2, torch.randn(3, 6), 0.5)  # type: ignore[arg-type]


def test_mode_and_kind_types_list_the_accepted_values() -> None:
    assert get_args(F.DropPathMode) == ("row", "batch")
    assert get_args(F.TargetedMode) == ("weight", "unit")
    assert get_args(dk.nn.DropConnectInference) == ("mean", "gaussian")
    assert get_args(dk.nn.TransformerActivation) == ("gelu", "relu")
    for name in ("DropPathMode", "TargetedMode"):
        assert name in F.__all__
    for name in ("DropConnectInference", "TransformerActivation"):
        assert name in dk.nn.__all__


def test_plot_curves_takes_the_doctors_metric_names(tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    from dropkit.advisor.compare import compare_rates
    from dropkit.report import plot_curves

    history = [{"train_acc": 0.9, "val_acc": 0.8, "train_loss": 0.3, "val_loss": 0.5}] * 3
    runs = compare_rates([{"p": 0.0, "history": history}, {"p": 0.5, "history": history}])
    assert plot_curves(runs, tmp_path / "accuracy.png").exists()
    assert plot_curves(runs, tmp_path / "loss.png", metric="loss").exists()
    with pytest.warns(FutureWarning, match="plot_curves: 'kind' is renamed 'metric'"):
        assert plot_curves(runs, tmp_path / "old.png", kind="acc").exists()  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="^metric 'f1' is not in any of the histories"):
        plot_curves(runs, tmp_path / "f1.png", metric="f1")
