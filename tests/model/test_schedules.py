import pytest
import torch
from torch import nn

import dropkit as dk
from tests.model import zoo


def test_schedule_values():
    assert [dk.schedules.constant(0.3)(s) for s in (0, 7)] == [0.3, 0.3]
    ramp = dk.schedules.linear(0.1, 0.3, steps=4)
    assert [ramp(s) for s in range(6)] == pytest.approx([0.1, 0.15, 0.2, 0.25, 0.3, 0.3])
    early = dk.schedules.early(0.2, until=4)
    assert [early(s) for s in range(6)] == pytest.approx([0.2, 0.15, 0.1, 0.05, 0.0, 0.0])
    late = dk.schedules.late(0.4, start_step=3)
    assert [late(s) for s in range(5)] == [0.0, 0.0, 0.0, 0.4, 0.4]


def test_schedules_validate_arguments():
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.2"):
        dk.schedules.constant(1.2)
    with pytest.raises(ValueError, match=r"end_rate must be a probability"):
        dk.schedules.linear(0.0, -0.1, steps=3)
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        dk.schedules.linear(0.0, 0.1, steps=0)
    with pytest.raises(ValueError, match="until must be an int >= 1"):
        dk.schedules.early(0.1, until=0)
    with pytest.raises(ValueError, match="step must be an int >= 0, got -1"):
        dk.schedules.late(0.1, start_step=2)(-1)


def test_old_schedule_names_warn_and_mean_the_same():
    with pytest.warns(FutureWarning, match="schedules.late: 'start' is renamed 'start_step'"):
        old_late = dk.schedules.late(0.4, start=3)
    assert old_late == dk.schedules.late(0.4, start_step=3)
    with pytest.warns(FutureWarning, match="late: 'start' is renamed 'start_step'"):
        assert old_late.start == 3
    with pytest.warns(FutureWarning, match="'start' is renamed 'start_rate'"):
        old_ramp = dk.schedules.linear(start=0.1, end_rate=0.3, steps=4)
    with pytest.warns(FutureWarning, match="'end' is renamed 'end_rate'"):
        assert old_ramp == dk.schedules.linear(0.1, end=0.3, steps=4)
    assert [old_ramp(s) for s in range(6)] == [
        dk.schedules.linear(0.1, 0.3, 4)(s) for s in range(6)
    ]
    with pytest.warns(FutureWarning, match="linear: 'end' is renamed 'end_rate'"):
        assert old_ramp.end == 0.3
    with pytest.warns(FutureWarning, match="linear: 'start' is renamed 'start_rate'"):
        assert old_ramp.start == 0.1
    with pytest.raises(TypeError, match="got both 'start' and its new name 'start_step'"):
        dk.schedules.late(0.4, start=3, start_step=3)


def test_scheduler_writes_rates_through_set_dropout_path():
    model = zoo.Transformer(0.1)
    scheduler = dk.DropoutScheduler(model, dk.schedules.linear(0.0, 0.2, 2), kinds=["attention"])
    layer = model.encoder.layers[0]
    assert layer.self_attn.dropout == 0.0 and layer.dropout1.p == 0.1
    scheduler.step()
    assert layer.self_attn.dropout == pytest.approx(0.1)
    assert [c.name for c in scheduler.last_changes] == [
        "encoder.layers.0.self_attn.dropout",
        "encoder.layers.1.self_attn.dropout",
    ]
    scheduler.step()
    scheduler.step()
    assert layer.self_attn.dropout == pytest.approx(0.2)
    assert scheduler.state_dict() == {
        "step": 3,
        "rate": pytest.approx(0.2),
        "base_rates": [0.1, 0.1],
    }


def test_scheduler_resumes_from_state_dict():
    model = nn.Sequential(nn.Linear(4, 4), dk.Dropout(0.5), dk.DropPath(0.1))
    first = dk.DropoutScheduler(model, dk.schedules.early(0.4, until=4), names=["1"])
    for _ in range(3):
        first.step()
    state = first.state_dict()
    fresh = nn.Sequential(nn.Linear(4, 4), dk.Dropout(0.5), dk.DropPath(0.1))
    second = dk.DropoutScheduler(fresh, dk.schedules.early(0.4, until=4), names=["1"])
    assert fresh[1].p == 0.4
    second.load_state_dict(state)
    assert fresh[1].p == pytest.approx(0.1) and fresh[2].p == 0.1
    second.step()
    assert fresh[1].p == 0.0


def test_scheduler_rejects_bad_schedules():
    model = nn.Sequential(nn.Dropout(0.5))
    with pytest.raises(TypeError, match="schedule must be a callable"):
        dk.DropoutScheduler(model, 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"schedule\(step\) must be a probability"):
        dk.DropoutScheduler(model, lambda step: 2.0)


def test_scheduler_reaches_attention_float_of_dropkit_transformer():
    layer = dk.nn.TransformerEncoderLayer(16, 4, 32, attention_dropout=0.3)
    scheduler = dk.DropoutScheduler(
        layer, dk.schedules.late(0.2, start_step=1), kinds=["attention"]
    )
    assert layer.attention_dropout == 0.0
    scheduler.step()
    assert layer.attention_dropout == 0.2
    assert torch.is_tensor(layer(torch.randn(2, 3, 16)))
