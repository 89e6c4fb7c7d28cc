"""Small models built in code for the model-tooling tests."""

from __future__ import annotations

import torch
from torch import Tensor, nn

import dropkit as dk


def cnn() -> nn.Sequential:
    """A Sequential CNN with BatchNorm and a classifier head, no dropout."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )


def mlp(p: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(12, 32), nn.ReLU()]
    if p:
        layers.append(nn.Dropout(p))
    layers += [nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4)]
    return nn.Sequential(*layers)


class Block(nn.Module):
    """A residual block whose ReLU module runs twice, as torchvision's BasicBlock."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)


class ResNet(nn.Module):
    """A ResNet-style CNN built in code: stem, two stages of blocks, pooled linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(Block(8), Block(8))
        self.layer2 = nn.Sequential(Block(8), Block(8))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Transformer(nn.Module):
    """A small encoder classifier on torch.nn.TransformerEncoder."""

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.embedding = nn.Embedding(50, 16)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, tokens: Tensor) -> Tensor:
        hidden = self.encoder(self.dropout(self.embedding(tokens)))
        return self.head(hidden.mean(1))


class AlwaysOn(nn.Module):
    """The classic bug: functional dropout without training=self.training."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.dropout(self.linear(x), 0.3)  # training defaults to True


class ForcedTrain(nn.Module):
    """A model whose train() keeps its dropout on."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)
        self.drop = dk.Dropout(0.3)

    def train(self, mode: bool = True) -> ForcedTrain:
        super().train(mode)
        self.drop.train()
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.linear(x))


def tiny_bert(**overrides: float) -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    settings = dict(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=3,
    )
    settings.update(overrides)
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(**settings))


def tiny_gpt2(**overrides: float) -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    settings = dict(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=32)
    settings.update(overrides)
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(bos_token_id=0, eos_token_id=0, **settings))


def tiny_llama(**overrides: float) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    settings = dict(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    settings.update(overrides)
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**settings))


def tiny_hf(config_name: str, model_name: str, **settings: object) -> nn.Module:
    """A Hugging Face model of the given classes from a tiny config (nothing is downloaded)."""
    import transformers

    torch.manual_seed(0)
    config = getattr(transformers, config_name)(**settings)
    return getattr(transformers, model_name)(config)


def tiny_bart(**overrides: object) -> nn.Module:
    settings: dict[str, object] = dict(
        vocab_size=100,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=32,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    settings.update(overrides)
    return tiny_hf("BartConfig", "BartForSequenceClassification", **settings)


def tiny_t5(**overrides: object) -> nn.Module:
    settings: dict[str, object] = dict(
        vocab_size=100, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2
    )
    settings.update(overrides)
    return tiny_hf("T5Config", "T5ForConditionalGeneration", **settings)


def tiny_wav2vec2(**overrides: object) -> nn.Module:
    settings: dict[str, object] = dict(
        vocab_size=10,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 2),
        conv_kernel=(10, 3),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        mask_time_length=2,
    )
    settings.update(overrides)
    return tiny_hf("Wav2Vec2Config", "Wav2Vec2ForCTC", **settings)


def tiny_whisper(**overrides: object) -> nn.Module:
    settings: dict[str, object] = dict(
        vocab_size=100,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_mel_bins=8,
        max_source_positions=16,
        max_target_positions=16,
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=0,
        decoder_start_token_id=0,
    )
    settings.update(overrides)
    return tiny_hf("WhisperConfig", "WhisperForConditionalGeneration", **settings)


def tiny_vit(**overrides: object) -> nn.Module:
    settings: dict[str, object] = dict(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=16,
        patch_size=8,
        num_labels=3,
    )
    settings.update(overrides)
    return tiny_hf("ViTConfig", "ViTForImageClassification", **settings)


class DropPath(nn.Module):
    """Stochastic depth as timm's ``timm.layers.DropPath`` holds it: a ``drop_prob`` float."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        return dk.functional.drop_path(x, self.drop_prob, self.training)


class VitBlock(nn.Module):
    """A pre-norm block laid out as timm's ``vision_transformer.Block``."""

    def __init__(self, dim: int, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, 2, dropout=0.0, batch_first=True)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm1(x)
        x = x + self.drop_path1(self.attn(y, y, y, need_weights=False)[0])
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class TimmStyleVit(nn.Module):
    """A small vision transformer with timm's layout and depth-linear drop-path rates
    (``torch.linspace(0, drop_path_rate, depth)``, as ``timm.create_model`` gives them)."""

    def __init__(self, depth: int = 12, drop_path_rate: float = 0.2, dim: int = 16) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, 4, stride=4)
        self.pos_drop = nn.Dropout(0.0)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.Sequential(*(VitBlock(dim, rate) for rate in rates))
        self.norm = nn.LayerNorm(dim)
        self.head_drop = nn.Dropout(0.0)
        self.head = nn.Linear(dim, 5)

    def forward(self, images: Tensor) -> Tensor:
        x = self.pos_drop(self.patch_embed(images).flatten(2).transpose(1, 2))
        x = self.norm(self.blocks(x))
        return self.head(self.head_drop(x.mean(1)))
