"""The reference transformer encoder: every dropout location, training, evaluation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dropkit as dk
from dropkit.nn import TransformerEncoder, TransformerEncoderLayer


def copy_into_torch(layer: TransformerEncoderLayer, norm_first: bool) -> nn.TransformerEncoderLayer:
    reference = nn.TransformerEncoderLayer(
        16, 4, 32, dropout=0.0, activation="gelu", batch_first=True, norm_first=norm_first
    )
    with torch.no_grad():
        reference.self_attn.in_proj_weight.copy_(layer.in_proj.weight)
        reference.self_attn.in_proj_bias.copy_(layer.in_proj.bias)
        reference.self_attn.out_proj.weight.copy_(layer.out_proj.weight)
        reference.self_attn.out_proj.bias.copy_(layer.out_proj.bias)
        for name in ("linear1", "linear2", "norm1", "norm2"):
            getattr(reference, name).load_state_dict(getattr(layer, name).state_dict())
    return reference.eval()


@pytest.mark.parametrize("norm_first", [True, False])
def test_eval_matches_torch_encoder_layer_with_masks(norm_first: bool) -> None:
    torch.manual_seed(0)
    layer = TransformerEncoderLayer(16, 4, 32, norm_first=norm_first).eval()
    reference = copy_into_torch(layer, norm_first)
    x = torch.randn(3, 7, 16)
    padding = torch.zeros(3, 7, dtype=torch.bool)
    padding[0, 5:] = True
    causal = nn.Transformer.generate_square_subsequent_mask(7).isinf()
    with torch.no_grad():
        torch.testing.assert_close(layer(x), reference(x))
        torch.testing.assert_close(
            layer(x, src_key_padding_mask=padding),
            reference(x, src_key_padding_mask=padding),
        )
        torch.testing.assert_close(layer(x, src_mask=causal), reference(x, src_mask=causal))
        torch.testing.assert_close(layer(x, is_causal=True), reference(x, src_mask=causal))
        float_mask = torch.zeros(7, 7).masked_fill(causal, float("-inf"))
        float_padding = torch.zeros(3, 7).masked_fill(padding, float("-inf"))
        torch.testing.assert_close(
            layer(x, float_mask, padding), reference(x, float_mask, float_padding)
        )


def test_eval_never_applies_attention_dropout() -> None:
    torch.manual_seed(1)
    layer = TransformerEncoderLayer(16, 4, 32, attention_dropout=0.9, residual_dropout=0.5)
    layer.eval()
    x = torch.randn(2, 6, 16)
    high = layer(x)
    layer.attention_dropout = 0.0
    assert torch.equal(high, layer(x))
    assert torch.equal(layer(x), layer(x))


def test_attention_dropout_is_read_at_call_time_in_training() -> None:
    torch.manual_seed(2)
    layer = TransformerEncoderLayer(16, 4, 32, attention_dropout=0.0, residual_dropout=0.0)
    x = torch.randn(2, 6, 16)
    assert torch.equal(layer(x), layer(x))  # no dropout anywhere: deterministic in training
    layer.attention_dropout = 0.5
    assert not torch.equal(layer(x), layer(x))
    layer.attention_dropout = 0.0
    layer.feedforward_residual_dropout.p = 0.5
    assert not torch.equal(layer(x), layer(x))


def test_every_rate_is_a_settable_dropkit_site() -> None:
    layer = TransformerEncoderLayer(
        8, 2, 16, attention_dropout=0.1, residual_dropout=0.2, activation_dropout=0.3, drop_path=0.4
    )
    assert layer.attention_dropout == 0.1
    assert layer.attention_residual_dropout.p == layer.feedforward_residual_dropout.p == 0.2
    assert layer.activation_dropout.p == 0.3 and layer.drop_path.p == 0.4
    assert isinstance(layer.drop_path, dk.DropPath)
    for module in (layer.attention_residual_dropout, layer.activation_dropout, layer.drop_path):
        module.p = 0.05
        assert module.p == 0.05
    with pytest.raises(
        ValueError, match=r"attention_dropout must be a probability in \[0, 1\], got 1.5"
    ):
        layer.attention_dropout = 1.5


def test_encoder_trains_and_is_deterministic_in_eval() -> None:
    torch.manual_seed(3)
    encoder = TransformerEncoder(
        3, 16, 4, 32, attention_dropout=0.1, residual_dropout=0.1, activation_dropout=0.1,
        embedding_dropout=0.1, drop_path=0.2,
    )  # fmt: skip
    assert [layer.drop_path.p for layer in encoder.layers] == dk.depth_rates(0.2, 3)
    assert encoder.embedding_dropout.p == 0.1
    head = nn.Linear(16, 1)
    x = torch.randn(16, 5, 16)
    target = x.mean((1, 2)).unsqueeze(-1)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=3e-3)
    losses = []
    for _ in range(25):
        loss = (head(encoder(x).mean(1)) - target).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    encoder.eval()
    assert torch.equal(encoder(x), encoder(x))


def test_sequence_first_layout_and_post_norm_encoder() -> None:
    torch.manual_seed(4)
    encoder = TransformerEncoder(2, 8, 2, 16, norm_first=False, batch_first=False).eval()
    x = torch.randn(5, 3, 8)
    y = encoder(x)
    assert y.shape == (5, 3, 8)
    assert isinstance(encoder.norm, nn.Identity)
    batch_first = TransformerEncoder(2, 8, 2, 16, norm_first=False).eval()
    batch_first.load_state_dict(encoder.state_dict())
    torch.testing.assert_close(batch_first(x.transpose(0, 1)).transpose(0, 1), y)


def test_errors() -> None:
    with pytest.raises(ValueError, match="nhead must divide d_model, got d_model=10, nhead=4"):
        TransformerEncoderLayer(10, 4)
    with pytest.raises(ValueError, match="activation must be one of 'gelu', 'relu', got 'tanh'"):
        TransformerEncoderLayer(8, 2, activation="tanh")
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 2.0"):
        TransformerEncoderLayer(8, 2, residual_dropout=2.0)
    with pytest.raises(ValueError, match="layer_count must be an int >= 1, got 0"):
        TransformerEncoder(0, 8, 2)
    with pytest.raises(ValueError, match=r"max_rate must be a probability in \[0, 1\], got -0.1"):
        TransformerEncoder(2, 8, 2, drop_path=-0.1)
