from collections.abc import Callable

import torch
from torch import Tensor, nn

import dropkit as dk
from tests.model import zoo


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it, so hooks must find the bug."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.drop = nn.Dropout2d(0.2)
        self.act = nn.ReLU()
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        if y.sum() > -1e9:
            y = self.act(self.drop(y))
        return self.bn(y)


class FunctionalBeforeNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 6)
        self.bn = nn.BatchNorm1d(6)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(nn.functional.dropout(self.linear(x), 0.2, self.training))


class DropkitFunctionalAlwaysOn(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return dk.functional.dropout(x, 0.3)


X = torch.randn(4, 3, 8, 8)


def test_clean_models_give_empty_reports():
    for model, x in [
        (zoo.cnn(), X),
        (zoo.ResNet(), X),
        (zoo.mlp(p=0.5), torch.randn(3, 12)),
        (zoo.Transformer(0.1), torch.randint(0, 50, (2, 5))),
    ]:
        report = dk.check(model, x)
        assert list(report) == [], str(report)
        assert len(report) == 0 and str(report) == "no dropout problems found"


def test_planted_functional_dropout_in_eval_is_named():
    model = nn.Sequential(nn.Linear(8, 8), zoo.AlwaysOn())
    report = dk.check(model, torch.randn(3, 8))
    assert [(f.kind, f.name, f.severity) for f in report] == [("active_in_eval", "1", "error")]
    assert "training=self.training" in report[0].advice


def test_module_forced_into_train_mode_is_named():
    report = dk.check(nn.Sequential(zoo.ForcedTrain()), torch.randn(3, 8))
    assert [(f.kind, f.name) for f in report] == [("active_in_eval", "0.drop")]


def test_dropkit_functional_left_on_in_eval_is_named_as_dropkit_op():
    report = dk.check(nn.Sequential(DropkitFunctionalAlwaysOn()), torch.randn(3, 8))
    assert [(f.kind, f.name) for f in report] == [("active_in_eval", "0")]
    assert report[0].message.startswith("dropkit.functional.dropout runs with training=True in 0")
    root = dk.check(DropkitFunctionalAlwaysOn(), torch.randn(3, 8))
    assert [(f.kind, f.name) for f in root] == [("active_in_eval", "")]  # the model itself


def test_every_dropkit_functional_left_on_is_recognised():
    calls = {
        "drop_path": lambda x: dk.functional.drop_path(x, 0.5),
        "spatial_dropout": lambda x: dk.functional.spatial_dropout(x, 0.5),
        "drop_block": lambda x: dk.functional.drop_block(x, 0.5, block_size=3),
        "gaussian_dropout": lambda x: dk.functional.gaussian_dropout(x, 0.5),
        "alpha_dropout": lambda x: dk.functional.alpha_dropout(x, 0.5),
        "locked_dropout": lambda x: dk.functional.locked_dropout(x.flatten(2), 0.5),
    }
    for name, function in calls.items():
        model = nn.Sequential(nn.Identity(), nn.Sequential(Calls(function)))
        report = dk.check(model, X)
        assert [(f.kind, f.name) for f in report] == [("active_in_eval", "1.0")], name
        assert f"dropkit.functional.{name} " in report[0].message


class Calls(nn.Module):
    """A module whose forward is one function call."""

    def __init__(self, function: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.function = function

    def forward(self, x: Tensor) -> Tensor:
        return self.function(x)


class RegisteredOpAlwaysOn(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.dropkit.check_probe_noise(x, 0.3, True)


def test_operators_in_the_dropkit_namespace_are_recognised():
    @torch.library.custom_op("dropkit::check_probe_noise", mutates_args=())
    def probe(x: Tensor, p: float, training: bool) -> Tensor:
        return x * (torch.rand_like(x) > p) if training else x.clone()

    model = nn.Sequential(nn.Linear(8, 8), RegisteredOpAlwaysOn())
    report = dk.check(model, torch.randn(3, 8))
    assert [(f.kind, f.name) for f in report] == [("active_in_eval", "1")]
    assert report[0].message.startswith("torch.ops.dropkit.check_probe_noise")


class NumpyNoise(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        import numpy as np

        return x + torch.from_numpy(np.random.default_rng().normal(size=x.shape)).float()


def test_randomness_of_unknown_origin_is_traced_to_its_module():
    model = nn.Sequential(nn.Linear(8, 8), nn.Sequential(nn.ReLU(), NumpyNoise()), nn.Linear(8, 2))
    report = dk.check(model, torch.randn(3, 8))
    assert [(f.kind, f.name) for f in report] == [("active_in_eval", "1.1")]
    assert "The first module to differ is 1.1." in report[0].message


class DropkitBeforeNorm(nn.Module):
    def __init__(self, branchy: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 6)
        self.bn = nn.BatchNorm1d(6)
        self.branchy = branchy

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x)
        if self.branchy and y.sum() < -1e9:  # data-dependent: no fx trace
            y = y * 2
        return self.bn(torch.relu(dk.functional.dropout(y, 0.2, self.training)))


def test_dropout_before_batchnorm_from_an_fx_trace():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), dk.SpatialDropout2d(0.1), nn.ReLU(), nn.BatchNorm2d(4)
    )
    report = dk.check(model, X)
    assert report.traced == "fx"
    assert [(f.kind, f.name) for f in report] == [("dropout_before_batchnorm", "2")]
    assert "feeds the BatchNorm 4" in report[0].message


def test_dropout_before_batchnorm_from_hooks_when_fx_cannot_trace():
    report = dk.check(Branchy(), X)
    assert report.traced == "hooks"
    assert [(f.kind, f.name) for f in report] == [("dropout_before_batchnorm", "drop")]


def test_functional_dropout_before_batchnorm():
    report = dk.check(FunctionalBeforeNorm(), torch.randn(4, 6))
    assert report.kinds() == ["dropout_before_batchnorm"]


def test_dropkit_functional_before_batchnorm_traced_and_watched():
    for branchy, traced in ((False, "fx"), (True, "hooks")):
        report = dk.check(DropkitBeforeNorm(branchy), torch.randn(4, 6))
        assert report.traced == traced
        assert report.kinds() == ["dropout_before_batchnorm"], traced


def test_rates_outside_their_kind_range():
    model = nn.Sequential(nn.Dropout(0.8), nn.Dropout(0.5), nn.Dropout2d(1.0), dk.DropPath(0.6))
    report = dk.check(model, torch.randn(2, 3, 4, 4))
    found = [(f.kind, f.name, f.severity) for f in report]
    assert found == [
        ("rate_out_of_range", "0", "warning"),
        ("rate_out_of_range", "2", "error"),
        ("rate_out_of_range", "3", "warning"),
    ]
    layer = zoo.Transformer(0.1)
    dk.set_dropout(layer, 0.4, kinds=["attention"])
    names = [f.name for f in dk.check(layer, torch.randint(0, 50, (2, 5)))]
    assert names == ["encoder.layers.0.self_attn.dropout", "encoder.layers.1.self_attn.dropout"]


def test_check_leaves_the_model_as_found():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), zoo.ForcedTrain()).train()
    model[1].eval()
    flags = [m.training for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 8)
    rng = torch.get_rng_state()
    dk.check(model, x)
    assert [m.training for m in model.modules()] == flags
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)
