import pytest
import torch
from torch import nn

import dropkit as dk
from tests.model import zoo

IMAGES = torch.randn(4, 3, 8, 8)


def feeds_batchnorm(model: nn.Module, x: torch.Tensor) -> bool:
    return any(f.kind == "dropout_before_batchnorm" for f in dk.check(model, x))


def spatial_rates(model: nn.Module) -> list[float]:
    return [m.p for m in model.modules() if isinstance(m, dk.SpatialDropout2d)]


def test_sequential_cnn_gets_rising_spatial_dropout_and_a_head_dropout():
    model = zoo.cnn()
    keys = set(model.state_dict())
    report = dk.apply_policy(model, dk.Policy.recommended())
    assert spatial_rates(model) == [0.1, 0.2, 0.3]
    assert [m.p for m in model.modules() if type(m) is dk.Dropout] == [0.5]
    assert len(report) == 4 and all(line.startswith("added") for line in report)
    assert set(model.state_dict()) == keys  # only parameter-free modules were wrapped
    assert not feeds_batchnorm(model, IMAGES)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(IMAGES), model(IMAGES))


def test_resnet_style_model_gets_dropout_after_stages_never_inside_blocks():
    model = zoo.ResNet()
    report = dk.apply_policy(model, dk.Policy.recommended())
    assert spatial_rates(model) == [0.1, 0.2, 0.3]
    assert isinstance(model.layer1[-1], dk.SpatialDropout2d)
    assert not any(isinstance(m, dk.SpatialDropout2d) for m in model.layer1[0].modules())
    assert any("fc.1" in line for line in report)  # the head's parameters moved, and it says so
    assert not feeds_batchnorm(model, IMAGES)
    assert model(IMAGES).shape == (4, 5)


def test_dropout_is_never_put_directly_before_batchnorm():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)
    )
    dk.apply_policy(model, dk.Policy(conv=0.2))
    assert [type(m).__name__ for m in model] == [
        "Conv2d",
        "ReLU",
        "BatchNorm2d",
        "SpatialDropout2d",
        "Conv2d",
        "BatchNorm2d",
        "SpatialDropout2d",
    ]  # after each block's BatchNorm
    assert not feeds_batchnorm(model, IMAGES)
    blocks = nn.Sequential(zoo.Block(3), nn.BatchNorm2d(3))
    report = dk.apply_policy(blocks, dk.Policy(conv=0.2))
    assert spatial_rates(blocks) == []
    assert report.notes == [
        "no dropout after conv block stage ending at 0: it would feed the BatchNorm after 0 "
        "directly"
    ]


def test_mlp_existing_dropout_is_retuned_and_the_head_gets_one():
    model = zoo.mlp(p=0.3)
    report = dk.apply_policy(model, dk.Policy.recommended())
    assert report.changes[0] == "set the dropout before linear 3 from 0.3 to 0.2"
    assert model[2].p == 0.2
    assert [m.p for m in model.modules() if isinstance(m, dk.Dropout)] == [0.5]


def test_dry_run_changes_nothing():
    model = zoo.cnn()
    before = repr(model)
    report = dk.apply_policy(model, dk.Policy.recommended(), dry_run=True)
    assert report.dry_run and len(report) == 4
    assert repr(model) == before
    assert str(report).startswith("planned (dry run):")


def test_retune_only_policy_inserts_nothing():
    model = zoo.cnn()
    assert len(dk.apply_policy(model, dk.Policy(conv=0.2, head=0.5, insert=False))) == 0
    assert dk.dropout_sites(model) == []


def test_transformer_roles_are_retuned():
    model = zoo.Transformer(0.0)
    dk.apply_policy(model, dk.Policy(attention=0.05, residual=0.1, embedding=0.2, head=0.3))
    layer = model.encoder.layers[0]
    assert layer.self_attn.dropout == 0.05
    assert (layer.dropout.p, layer.dropout1.p, layer.dropout2.p) == (0.1, 0.1, 0.1)
    assert model.dropout.p == 0.2
    assert isinstance(model.head, nn.Sequential) and model.head[0].p == 0.3


def test_hugging_face_model_is_retuned_with_its_config_and_not_restructured():
    pytest.importorskip("transformers")
    model = zoo.tiny_bert(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    structure = [name for name, _ in model.named_modules()]
    dk.apply_policy(model, dk.Policy.recommended())
    assert [name for name, _ in model.named_modules()] == structure
    assert model.config.attention_probs_dropout_prob == 0.1
    assert model.config.hidden_dropout_prob == 0.1
    assert model.config.classifier_dropout == 0.5
    assert model.dropout.p == 0.5
    assert model.bert.embeddings.dropout.p == 0.1
    assert model.bert.encoder.layer[0].attention.self.dropout.p == 0.1


def test_policy_validates_rates():
    with pytest.raises(ValueError, match=r"head must be a probability in \[0, 1\], got 2"):
        dk.Policy(head=2)
    with pytest.raises(ValueError, match="conv must be a rate or a"):
        dk.Policy(conv=(0.1, 0.2, 0.3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="policy must be a dropkit.Policy"):
        dk.apply_policy(zoo.cnn(), {"conv": 0.1})  # type: ignore[arg-type]
