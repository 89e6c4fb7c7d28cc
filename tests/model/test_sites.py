import pytest
import torch
from torch import nn

import dropkit as dk
from tests.model import zoo


class DropPath(nn.Module):
    """A stand-in for timm's DropPath: the rate lives in drop_prob."""

    def __init__(self, drop_prob: float) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def by_name(model: nn.Module) -> dict[str, dk.DropoutSite]:
    return {site.name: site for site in dk.dropout_sites(model)}


def test_torch_and_dropkit_modules_with_their_kinds():
    model = nn.Sequential(
        nn.Dropout(0.1),
        nn.Dropout2d(0.2),
        nn.AlphaDropout(0.05),
        nn.FeatureAlphaDropout(0.15),
        dk.SpatialDropout2d(0.3),
        dk.DropBlock2d(0.1, block_size=3),
        dk.DropPath(0.2),
        dk.GaussianDropout(0.25),
        DropPath(0.4),
    )
    sites = by_name(model)
    assert {name: (s.kind, s.p) for name, s in sites.items()} == {
        "0": ("element", 0.1),
        "1": ("spatial", 0.2),
        "2": ("element", 0.05),
        "3": ("spatial", 0.15),
        "4": ("spatial", 0.3),
        "5": ("block", 0.1),
        "6": ("path", 0.2),
        "7": ("noise", 0.25),
        "8": ("path", 0.4),
    }
    assert all(s.location == "module" and s.settable for s in sites.values())
    assert sites["8"].attribute == "drop_prob"


def test_clean_model_has_no_sites():
    assert dk.dropout_sites(zoo.cnn()) == []


def test_attention_rates_read_at_call_time():
    sites = by_name(zoo.Transformer(0.1))
    attention = [s for s in sites.values() if s.kind == "attention"]
    assert [s.name for s in attention] == [
        "encoder.layers.0.self_attn.dropout",
        "encoder.layers.1.self_attn.dropout",
    ]
    assert all(s.location == "attribute" and s.attribute == "dropout" for s in attention)
    assert sites["encoder.layers.0.dropout1"].kind == "element"
    assert sites["dropout"].kind == "element"


def test_dropkit_transformer_layer_rate_property_is_found():
    layer = dk.nn.TransformerEncoderLayer(16, 4, 32, attention_dropout=0.2)
    sites = by_name(layer)
    assert sites["attention_dropout"].kind == "attention"
    assert sites["attention_dropout"].p == 0.2
    assert sites["attention_residual_dropout"].kind == "element"


def test_noise_scale_and_learned_rate_are_reported_not_settable():
    model = nn.Sequential(
        dk.GaussianNoise(0.3), dk.ConcreteDropout(nn.Linear(4, 4)), nn.Dropout(0.1)
    )
    sites = by_name(model)
    assert (sites["0"].kind, sites["0"].p, sites["0"].attribute) == ("noise", 0.3, "std")
    assert not sites["0"].settable and "std" in sites["0"].note
    assert sites["1"].kind == "concrete" and not sites["1"].settable
    assert 0 < sites["1"].p < 1
    assert sites["2"].settable


def test_weight_and_sequence_kinds_come_from_dropout_kind():
    model = nn.Sequential(
        dk.DropConnect(nn.Linear(4, 4), 0.3),
        dk.LockedDropout(0.4),
        dk.EmbeddingDropout(nn.Embedding(10, 4), 0.1),
    )
    kinds = [(s.name, s.kind, s.p) for s in dk.dropout_sites(model)]
    assert kinds == [("0", "weight", 0.3), ("1", "locked", 0.4), ("2", "embedding", 0.1)]


def test_lstm_inter_layer_dropout_is_an_attribute_site():
    sites = by_name(nn.LSTM(4, 4, num_layers=2, dropout=0.25))
    assert (sites["dropout"].kind, sites["dropout"].p) == ("element", 0.25)


def test_rejects_non_modules():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        dk.dropout_sites("model")  # type: ignore[arg-type]
