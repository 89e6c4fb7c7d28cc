"""Train a small over-parameterised MLP across dropout rates, with and without the width rule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from dropkit._validation import check_positive_int, check_probability
from dropkit.demo.data import Split
from dropkit.nn import Dropout
from dropkit.rules import widen

EpochCallback = Callable[["DemoRun", int, dict[str, float]], None]


@dataclass
class DemoRun:
    """One training run of the sweep.

    Attributes:
        p: the dropout rate.
        width: the hidden width used.
        widened: whether the width came from the width rule (``dk.widen``).
        records: one dict per epoch: ``epoch``, ``train_loss``, ``train_acc``, ``val_loss``,
            ``val_acc`` (both sets measured in eval mode, dropout off, after the epoch).
    """

    p: float
    width: int
    widened: bool
    records: list[dict[str, float]] = field(default_factory=list)

    @property
    def label(self) -> str:
        rule = "widened" if self.widened else "plain"
        return f"p={self.p:g} {rule} (width {self.width})"


def build_mlp(
    features: int, classes: int, width: int, p: float, *, depth: int = 2
) -> nn.Sequential:
    """An MLP: ``depth`` hidden layers of ``width`` units, each followed by ReLU and dropout.

    Example:
        >>> from dropkit.demo import build_mlp
        >>> build_mlp(64, 10, 32, 0.5, depth=1)
        Sequential(
          (0): Linear(in_features=64, out_features=32, bias=True)
          (1): ReLU()
          (2): Dropout(p=0.5)
          (3): Linear(in_features=32, out_features=10, bias=True)
        )
    """
    width = check_positive_int(width, "width")
    depth = check_positive_int(depth, "depth")
    p = check_probability(p)
    layers: list[nn.Module] = []
    size = features
    for _ in range(depth):
        layers += [nn.Linear(size, width), nn.ReLU(), Dropout(p)]
        size = width
    layers.append(nn.Linear(size, classes))
    return nn.Sequential(*layers)


def train_classifier(
    model: nn.Module,
    split: Split,
    *,
    epochs: int,
    batch_size: int = 25,
    lr: float = 1e-3,
    seed: int = 0,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train with Adam and cross-entropy; measure both sets after every epoch, dropout off.

    Returns one record per epoch (``epoch`` counts from 1).

    Example:
        >>> import torch
        >>> from dropkit.demo import build_mlp, load_digits_split, train_classifier
        >>> torch.manual_seed(0) and None
        >>> split = load_digits_split(50, 100)
        >>> records = train_classifier(build_mlp(64, 10, 32, 0.1), split, epochs=2)
        >>> [sorted(r) for r in records][0]
        ['epoch', 'train_acc', 'train_loss', 'val_acc', 'val_loss']
    """
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    count = len(split.y_train)
    records: list[dict[str, float]] = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(count, generator=generator)
        for start in range(0, count, batch_size):
            batch = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(model(split.x_train[batch]), split.y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        record = {"epoch": float(epoch)}
        record.update(_measure(model, split.x_train, split.y_train, "train"))
        record.update(_measure(model, split.x_val, split.y_val, "val"))
        records.append(record)
        if on_epoch is not None:
            on_epoch(epoch, record)
    return records


def run_sweep(
    split: Split,
    rates: Sequence[float],
    *,
    width: int = 256,
    depth: int = 2,
    epochs: int = 60,
    batch_size: int = 25,
    lr: float = 1e-3,
    seed: int = 0,
    with_width_rule: bool = True,
    on_epoch: EpochCallback | None = None,
) -> list[DemoRun]:
    """Train a model per rate at ``width`` and (``with_width_rule``) at ``dk.widen(width, p)``.

    Every run starts from the same seed, so runs differ only by rate and width. A widened run
    whose width equals the plain one (p = 0) is not trained twice.

    Example:
        >>> from dropkit.demo import load_digits_split, run_sweep
        >>> runs = run_sweep(load_digits_split(50, 100), [0.0, 0.5], width=16, epochs=2)
        >>> [(run.p, run.width, run.widened, len(run.records)) for run in runs]
        [(0.0, 16, False, 2), (0.5, 16, False, 2), (0.5, 32, True, 2)]
    """
    plans: list[DemoRun] = []
    for p in rates:
        plans.append(DemoRun(check_probability(p, "rate"), width, False))
    if with_width_rule:
        for p in rates:
            wide = widen(width, p) if p < 1.0 else width
            if wide != width:
                plans.append(DemoRun(float(p), wide, True))
    for run in plans:
        torch.manual_seed(seed)
        model = build_mlp(split.features, split.classes, run.width, run.p, depth=depth)

        def report(epoch: int, record: dict[str, float], run: DemoRun = run) -> None:
            if on_epoch is not None:
                on_epoch(run, epoch, record)

        run.records = train_classifier(
            model, split, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, on_epoch=report
        )
    return plans


@torch.no_grad()
def _measure(model: nn.Module, x: torch.Tensor, y: torch.Tensor, prefix: str) -> dict[str, float]:
    model.eval()
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    return {f"{prefix}_loss": loss, f"{prefix}_acc": accuracy}
