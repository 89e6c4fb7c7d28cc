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


def test_random_draw_outside_torch_dropout_is_found():
    report = dk.check(nn.Sequential(DropkitFunctionalAlwaysOn()), torch.randn(3, 8))
    assert [(f.kind, f.name) for f in report] == [("random_in_eval", "0")]


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
