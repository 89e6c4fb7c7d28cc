"""Scaling base rates, depth-linear drop path, and which kinds a bare set_dropout touches."""

import pytest
import torch
from torch import nn

import dropkit as dk
from tests.model import zoo


def path_rates(model: nn.Module) -> list[float]:
    return [site.p for site in dk.dropout_sites(model) if site.kind == "path"]


def test_relative_scaling_keeps_depth_linear_rates_and_does_not_compound():
    model = zoo.TimmStyleVit(depth=12, drop_path_rate=0.2)
    base = path_rates(model)
    assert base[2] == pytest.approx(0.2 / 11) and base[-1] == pytest.approx(0.2)
    dk.set_dropout(model, 0.5, kinds=["path"], relative=True)
    assert path_rates(model) == pytest.approx([rate * 0.5 for rate in base])
    dk.set_dropout(model, 0.25, kinds=["path"], relative=True)  # of the base, not of the last
    assert path_rates(model) == pytest.approx([rate * 0.25 for rate in base])
    dk.set_dropout(model, 1.0, kinds=["path"], relative=True)
    assert path_rates(model) == pytest.approx(base)


def test_a_rate_changed_by_hand_becomes_the_new_base():
    model = nn.Sequential(dk.Dropout(0.4))
    dk.set_dropout(model, 0.5, relative=True)
    assert model[0].p == pytest.approx(0.2)
    model[0].p = 0.3
    dk.set_dropout(model, 0.5, relative=True)
    assert model[0].p == pytest.approx(0.15)
    dk.set_dropout(model, 0.6)  # an absolute rate is the new base too
    dk.set_dropout(model, 0.5, relative=True)
    assert model[0].p == pytest.approx(0.3)


def test_relative_errors_name_the_site():
    model = nn.Sequential(nn.Dropout(0.6))
    with pytest.raises(ValueError, match=r"scales the base rate 0.6 of 0 to 1.2, above 1"):
        dk.set_dropout(model, 2.0, relative=True)
    with pytest.raises(ValueError, match="p must be a finite number >= 0, got -1.0"):
        dk.set_dropout(model, -1.0, relative=True)
    assert model[0].p == 0.6


def test_one_absolute_rate_over_depth_linear_rates_needs_flatten():
    model = zoo.TimmStyleVit(depth=4, drop_path_rate=0.2)
    with pytest.raises(ValueError, match=r"rates differ by depth .*dk.set_drop_path\(model, 0.3\)"):
        dk.set_dropout(model, 0.3, kinds=["path"])
    with pytest.raises(ValueError, match="flatten=True"):
        dk.DropoutScheduler(model, dk.schedules.constant(0.1), kinds=["path"])
    assert path_rates(model)[-1] == pytest.approx(0.2)
    dk.set_dropout(model, 0.3, kinds=["path"], flatten=True)
    assert set(path_rates(model)) == {0.3}


def test_set_drop_path_applies_the_linear_rule_by_block():
    model = zoo.TimmStyleVit(depth=5, drop_path_rate=0.0)
    changes = dk.set_drop_path(model, 0.2)
    assert len(changes) == 10
    expected = [0.0, 0.0, 0.05, 0.05, 0.1, 0.1, 0.15, 0.15, 0.2, 0.2]  # drop_path1, drop_path2
    assert path_rates(model) == pytest.approx(expected)
    encoder = dk.nn.TransformerEncoder(3, 8, 2, 16)
    dk.set_drop_path(encoder, 0.4)
    assert [layer.drop_path.p for layer in encoder.layers] == [0.0, 0.2, 0.4]
    with pytest.raises(ValueError, match="no settable drop-path site to give max_rate=0.1"):
        dk.set_drop_path(zoo.mlp(), 0.1)
    with pytest.raises(ValueError, match=r"max_rate must be a probability in \[0, 1\], got 2"):
        dk.set_drop_path(encoder, 2)


def test_scheduler_scales_base_rates_and_resumes_them():
    encoder = dk.nn.TransformerEncoder(3, 8, 2, 16, drop_path=0.2)
    schedule = dk.schedules.early(1.0, until=4)
    scheduler = dk.DropoutScheduler(encoder, schedule, kinds=["path"], relative=True)
    assert scheduler.base_rates == [0.0, 0.1, 0.2]
    scheduler.step()
    assert [layer.drop_path.p for layer in encoder.layers] == pytest.approx([0.0, 0.075, 0.15])
    state = scheduler.state_dict()
    fresh = dk.nn.TransformerEncoder(3, 8, 2, 16, drop_path=0.2)
    resumed = dk.DropoutScheduler(fresh, schedule, kinds=["path"], relative=True)
    resumed.load_state_dict(state)
    resumed.step()
    assert [layer.drop_path.p for layer in fresh.layers] == pytest.approx([0.0, 0.05, 0.1])


def test_scheduler_validates_before_advancing():
    model = nn.Sequential(nn.Dropout(0.5))
    scheduler = dk.DropoutScheduler(model, lambda step: 0.1 if step < 2 else 1.5)
    scheduler.step()
    with pytest.raises(ValueError, match=r"schedule\(step\) must be a probability"):
        scheduler.step()
    assert scheduler.state_dict()["step"] == 1 and model[0].p == 0.1
    with pytest.raises(ValueError, match="start_step must be an int >= 0, got -1"):
        dk.schedules.late(0.2, start_step=-1)


def test_bare_set_dropout_leaves_structural_kinds_alone():
    model = nn.Sequential(dk.Dropout(0.2), dk.DropPath(0.1))
    assert [c.name for c in dk.set_dropout(model, 0.0)] == ["0"]
    assert model[1].p == 0.1
    assert [c.name for c in dk.set_dropout(model, 0.0, names=["1"])] == ["1"]  # by exact name
    assert [c.name for c in dk.set_dropout(model, 0.3, kinds="all")] == ["0", "1"]
    with pytest.raises(TypeError, match="kinds must be a list of strings or 'all'"):
        dk.set_dropout(model, 0.1, kinds="path")  # type: ignore[arg-type]


def test_mc_predict_names_an_empty_batch():
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
    with pytest.raises(ValueError, match=r"x is an empty batch \(0 rows along dim 0\)"):
        dk.mc_predict(model, torch.empty(0, 4), samples=2)


def test_mc_dropout_selects_sites_as_set_dropout_does():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), dk.DropPath(0.2))
    with (
        pytest.raises(ValueError, match="names entry 'head' matches no dropout site"),
        dk.mc_dropout(model, names=["head"]),
    ):
        pass
    with dk.mc_dropout(model.eval(), kinds=["path"]):
        assert (model[1].training, model[2].training) == (False, True)
