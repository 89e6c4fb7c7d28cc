import pytest
import torch
from torch import nn

import dropkit as dk
from tests.model import zoo


def outputs_differ(model: nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        return not torch.equal(model(x), model(x))


def test_zero_everywhere_removes_randomness_and_attention_rate_brings_it_back():
    torch.manual_seed(0)
    model = zoo.Transformer(0.3).train()
    tokens = torch.randint(0, 50, (4, 7))
    assert outputs_differ(model, tokens)
    changes = dk.set_dropout(model, 0.0)
    assert {c.new for c in changes} == {0.0}
    assert not outputs_differ(model, tokens)
    attention = dk.set_dropout(model, 0.5, kinds=["attention"])
    assert [c.name for c in attention] == [
        "encoder.layers.0.self_attn.dropout",
        "encoder.layers.1.self_attn.dropout",
    ]
    assert model.encoder.layers[0].self_attn.dropout == 0.5
    assert model.encoder.layers[0].dropout1.p == 0.0
    assert outputs_differ(model, tokens)


def test_changes_record_old_and_new_rates():
    model = zoo.mlp(p=0.3)
    assert dk.set_dropout(model, 0.1) == [dk.Change("2", "element", 0.3, 0.1, "module")]
    assert model[2].p == 0.1


def test_names_match_exactly_by_prefix_and_by_glob():
    model = zoo.Transformer(0.1)
    exact = dk.set_dropout(model, 0.2, names=["dropout"])
    assert [c.name for c in exact] == ["dropout"]
    prefix = dk.set_dropout(model, 0.2, names=["encoder.layers.1"])
    assert all(c.name.startswith("encoder.layers.1.") for c in prefix)
    assert len(prefix) == 4
    glob = dk.set_dropout(model, 0.25, names=["*.dropout2"])
    assert [c.name for c in glob] == ["encoder.layers.0.dropout2", "encoder.layers.1.dropout2"]
    assert model.encoder.layers[0].dropout2.p == 0.25
    assert model.encoder.layers[0].dropout1.p == 0.1  # neither the prefix nor the glob


def test_dropkit_modules_are_set_through_their_validated_rate():
    model = nn.Sequential(dk.Dropout(0.5), dk.DropPath(0.1), dk.GaussianNoise(0.2))
    changes = dk.set_dropout(model, 0.3)
    assert [c.name for c in changes] == ["0"]  # drop path only when its kind is named
    assert (model[0].p, model[1].p, model[2].std) == (0.3, 0.1, 0.2)
    assert [c.name for c in dk.set_dropout(model, 0.3, kinds=["element", "path"])] == ["0", "1"]
    assert model[1].p == 0.3


def test_learned_rates_are_left_alone():
    model = nn.Sequential(dk.ConcreteDropout(nn.Linear(4, 4)), nn.Dropout(0.5))
    before = model[0].p
    assert [c.name for c in dk.set_dropout(model, 0.1)] == ["1"]
    assert model[0].p == before


def test_errors_name_the_problem():
    model = nn.Sequential(nn.Dropout(0.5), dk.GaussianNoise(0.2))
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        dk.set_dropout(model, 1.5)
    with pytest.raises(ValueError, match="kinds has unknown kind 'atention'"):
        dk.set_dropout(model, 0.1, kinds=["atention"])
    with pytest.raises(TypeError, match="kinds must be a list of strings"):
        dk.set_dropout(model, 0.1, kinds="attention")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="names entry 'head' matches no dropout site"):
        dk.set_dropout(model, 0.1, names=["head"])
    with pytest.raises(ValueError, match="'1' cannot be set: std is a noise scale"):
        dk.set_dropout(model, 0.1, names=["1"])
    with pytest.raises(TypeError, match=r"kinds must be a list of strings or 'all', got 3 \(int\)"):
        dk.set_dropout(model, 0.1, kinds=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"names must be a list of strings, got 0 \(int\)"):
        dk.set_dropout(model, 0.1, names=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"relative must be a bool, got 'yes' \(str\)"):
        dk.set_dropout(model, 0.1, relative="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"flatten must be a bool, got 1 \(int\)"):
        dk.set_dropout(model, 0.1, flatten=1)  # type: ignore[arg-type]
    assert model[0].p == 0.5


def test_kind_with_no_site_in_the_model_changes_nothing():
    model = zoo.mlp(p=0.3)
    assert dk.set_dropout(model, 0.1, kinds=["attention"]) == []
    assert model[2].p == 0.3
