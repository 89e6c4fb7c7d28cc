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
