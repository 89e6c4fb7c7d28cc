import json

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
    keys = model.state_dict().keys()
    report = dk.apply_policy(model, dk.Policy.recommended())
    assert spatial_rates(model) == [0.1, 0.2, 0.3]
    assert [m.p for m in model.modules() if type(m) is dk.Dropout] == [0.5]
    assert len(report) == 4 and all(change.action == "added" for change in report)
    assert [change.name for change in report] == [
        "2.dropout_after",
        "6.dropout_after",
        "10.dropout_after",
        "12.dropout_before",
    ]
    assert list(model.state_dict()) == list(keys)  # every key kept, in order
    assert not feeds_batchnorm(model, IMAGES)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(IMAGES), model(IMAGES))


def test_resnet_style_model_gets_dropout_after_stages_never_inside_blocks():
    model = zoo.ResNet()
    pretrained = zoo.ResNet().state_dict()
    report = dk.apply_policy(model, dk.Policy.recommended())
    assert spatial_rates(model) == [0.1, 0.2, 0.3]
    assert isinstance(model.layer1[-1].dropout_after, dk.SpatialDropout2d)
    assert not any(isinstance(m, dk.SpatialDropout2d) for m in model.layer1[0].modules())
    assert "fc.dropout_before" in [change.name for change in report]
    model.load_state_dict(pretrained)  # build, apply the policy, load pretrained weights
    assert not feeds_batchnorm(model, IMAGES)
    assert model(IMAGES).shape == (4, 5)


def test_dropout_is_never_put_directly_before_batchnorm():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)
    )
    report = dk.apply_policy(model, dk.Policy(conv=0.2))
    assert [change.name for change in report] == ["2.dropout_after", "4.dropout_after"]
    assert len(model) == 5  # after each block's BatchNorm, attached, nothing inserted
    assert not feeds_batchnorm(model, IMAGES)
    blocks = nn.Sequential(zoo.Block(3), nn.BatchNorm2d(3))
    report = dk.apply_policy(blocks, dk.Policy(conv=0.2))
    assert spatial_rates(blocks) == []
    assert report.notes == [
        dk.model.Note(
            "would_feed_batchnorm",
            "0",
            "no dropout after conv block stage ending at 0: it would feed the BatchNorm after 0 "
            "directly",
        )
    ]


def test_mlp_existing_dropout_is_retuned_and_the_head_gets_one():
    model = zoo.mlp(p=0.3)
    report = dk.apply_policy(model, dk.Policy.recommended())
    assert report.changes[0] == dk.Change(
        "2", "element", 0.3, 0.2, "module", "set", "before linear 3"
    )
    assert str(report.changes[0]) == "set 2 (element, module) from 0.3 to 0.2: before linear 3"
    assert report.to_dict()["changes"][1]["action"] == "added"
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
    assert isinstance(model.head, nn.Linear) and model.head.dropout_before.p == 0.3


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
    with pytest.raises(TypeError, match=r"insert must be a bool, got 'yes' \(str\)"):
        dk.Policy(insert="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"retune must be a bool, got None \(NoneType\)"):
        dk.Policy(retune=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"dry_run must be a bool, got 'no' \(str\)"):
        dk.apply_policy(zoo.cnn(), dk.Policy(), dry_run="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got int"):
        dk.apply_policy(3, dk.Policy())  # type: ignore[arg-type]


class BatchNormAct(nn.BatchNorm2d):
    """BatchNorm with its activation as a child, as timm's BatchNormAct2d (EfficientNet's bn1)."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class EfficientStyle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv_stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = BatchNormAct(8)
        self.blocks = nn.Sequential(zoo.Block(8), zoo.Block(8))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.bn1(self.conv_stem(x)))
        return self.classifier(self.pool(x).flatten(1))


@pytest.mark.parametrize("build", [EfficientStyle, zoo.ResNet, zoo.cnn, zoo.mlp])
def test_policies_keep_every_state_dict_key(build):
    for policy in (dk.Policy.from_scratch(), dk.Policy.fine_tuning()):
        model = build()
        pretrained = build().state_dict()
        report = dk.apply_policy(model, policy)
        assert len(report) > 0
        assert list(model.state_dict()) == list(pretrained)
        model.load_state_dict(pretrained)


def test_attached_dropout_runs_in_training_follows_flags_and_survives_deepcopy():
    import copy

    model = EfficientStyle()
    dk.apply_policy(model, dk.Policy(conv=0.5, head=0.5))
    assert model.bn1.dropout_after.p == 0.5 and model.classifier.dropout_before.p == 0.5
    images = torch.randn(2, 3, 8, 8)
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(images), model(images))
    dk.set_dropout(model, 0.0)
    with torch.no_grad():
        assert torch.equal(model(images), model(images))
    clone = copy.deepcopy(model)
    dk.set_dropout(clone, 0.5)
    assert model.classifier.dropout_before.p == 0.0  # the copy has its own dropout
    with torch.no_grad():
        assert not torch.equal(clone(images), clone(images))
    clone.eval()
    with torch.no_grad():
        assert torch.equal(clone(images), clone(images))
    again = dk.apply_policy(clone, dk.Policy(conv=0.2, head=0.3))
    assert {change.action for change in again} == {"set"}  # retuned, not attached twice
    assert len(clone.classifier._forward_pre_hooks) == 1


def test_fine_tuning_preset_keeps_pretrained_rates():
    pytest.importorskip("transformers")
    bert = zoo.tiny_bert()
    report = dk.apply_policy(bert, dk.Policy.fine_tuning())
    assert len(report) == 0 and bert.dropout.p == 0.1  # not raised to 0.5
    assert bert.config.classifier_dropout is None
    llama = zoo.tiny_llama()
    assert len(dk.apply_policy(llama, dk.Policy.fine_tuning())) == 0
    assert llama.model.layers[0].self_attn.attention_dropout == 0.0
    cnn = zoo.ResNet()
    report = dk.apply_policy(cnn, dk.Policy.fine_tuning())
    assert [(c.name, c.new) for c in report] == [("fc.dropout_before", 0.1)]
    scratch = dk.apply_policy(zoo.tiny_bert(), dk.Policy.recommended())
    assert ("dropout", 0.5) in [(c.name, c.new) for c in scratch]  # the from-scratch preset
    unset = next(c for c in scratch if c.name == "config.classifier_dropout")
    assert str(unset) == "set config.classifier_dropout (element, config) from None to 0.5: head"
    assert json.loads(json.dumps(scratch.to_dict()))["changes"][-1]["old"] is None


def test_policy_warns_before_attention_dropout_on_flex_attention():
    pytest.importorskip("transformers")
    model = zoo.tiny_llama(attn_implementation="flex_attention")
    with pytest.warns(UserWarning, match="flex_attention"):
        dk.apply_policy(model, dk.Policy.from_scratch(), dry_run=True)


def test_existing_dropout_before_batchnorm_is_noted_by_the_shared_detector():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.Dropout2d(0.1), nn.ReLU(), nn.BatchNorm2d(4), nn.Flatten()
    )
    report = dk.apply_policy(model, dk.Policy(conv=0.2, insert=False))
    note = report.notes[-1]
    assert (note.kind, note.name) == ("dropout_before_batchnorm", "1")
    assert str(note) == (
        "1 feeds the BatchNorm 3 directly; move it after the BatchNorm (Li et al. 2019): "
        "left as it is"
    )  # through the ReLU, as dk.check sees it
    assert [f.name for f in dk.check(model, IMAGES)] == ["1"]
