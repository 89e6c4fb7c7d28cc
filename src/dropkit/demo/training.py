"""The one small training loop behind the demo and the evidence experiments.

Every run is seeded without touching the caller's random state: :func:`seeded` forks torch's CPU
generator, seeds the fork, and restores the caller's state afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from dropkit._validation import check_positive_int
from dropkit.demo.data import Split

__all__ = ["classification_metrics", "fit", "regression_metrics", "seeded"]

Metrics = Callable[[nn.Module, Split], dict[str, float]]
Loss = Callable[[Tensor, Tensor], Tensor]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded with ``seed``; restore it afterwards.

    Model initialisation and dropout masks drawn inside the block are reproducible, and the
    caller's global random state is the same after the block as before it.

    Example:
        >>> import torch
        >>> from dropkit.demo import seeded
        >>> before = torch.random.get_rng_state()
        >>> with seeded(3):
        ...     a = torch.rand(2)
        >>> with seeded(3):
        ...     b = torch.rand(2)
        >>> torch.equal(a, b), torch.equal(torch.random.get_rng_state(), before)
        (True, True)
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def classification_metrics(model: nn.Module, split: Split) -> dict[str, float]:
    """Accuracy and mean cross-entropy (NLL) of ``model`` in eval mode on both sets of ``split``."""
    was_training = model.training
    model.eval()
    numbers: dict[str, float] = {}
    for prefix, x, y in (
        ("train", split.x_train, split.y_train),
        ("val", split.x_val, split.y_val),
    ):
        logits = model(x)
        numbers[f"{prefix}_loss"] = nn.functional.cross_entropy(logits, y).item()
        numbers[f"{prefix}_acc"] = (logits.argmax(dim=1) == y).float().mean().item()
    model.train(was_training)
    return numbers


@torch.no_grad()
def regression_metrics(model: nn.Module, split: Split) -> dict[str, float]:
    """Mean squared error of ``model`` in eval mode on both sets of ``split``."""
    was_training = model.training
    model.eval()
    numbers = {
        "train_loss": nn.functional.mse_loss(model(split.x_train), split.y_train).item(),
        "val_loss": nn.functional.mse_loss(model(split.x_val), split.y_val).item(),
    }
    model.train(was_training)
    return numbers


def fit(
    model: nn.Module,
    split: Split,
    *,
    epochs: int,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    weight_decay: float = 0.0,
    loss: Loss = nn.functional.cross_entropy,
    penalty: Callable[[nn.Module], Tensor] | None = None,
    metrics: Metrics | None = classification_metrics,
    every: int = 1,
    on_epoch: Callable[[int, dict[str, float]], Any] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` with Adam on ``split``'s training set; measure it as it goes.

    The batch order comes from a generator seeded with ``seed``; dropout masks come from torch's
    global generator, so run this inside :func:`seeded` for a reproducible run.

    Args:
        model: the model, trained in place.
        split: the data (``x_train``, ``y_train`` train; ``x_val``, ``y_val`` are only measured).
        epochs: passes over the training set.
        batch_size: examples per step.
        lr: Adam's learning rate.
        seed: the seed of the batch order.
        weight_decay: Adam's weight decay.
        loss: the training loss of ``(output, target)``.
        penalty: a function of the model added to the loss (a regulariser), or None.
        metrics: measures the model after an epoch (a dict of numbers), or None to skip.
        every: measure every ``every`` epochs (and always after the last).
        on_epoch: called with ``(epoch, record)`` after every epoch; the record holds
            ``epoch``, the training loss averaged over the epoch's steps (``step_loss``) and,
            on measured epochs, what ``metrics`` returned.

    Returns:
        The records of the measured epochs (``epoch`` counts from 1).

    Example:
        >>> import torch
        >>> from dropkit.demo import Split, fit, seeded
        >>> x = torch.randn(64, 4)
        >>> split = Split(x, (x[:, 0] > 0).long(), x, (x[:, 0] > 0).long())
        >>> with seeded(0):
        ...     model = torch.nn.Linear(4, 2)
        ...     records = fit(model, split, epochs=20, batch_size=16, lr=0.05)
        >>> records[-1]["train_acc"] > 0.9, sorted(records[-1])
        (True, ['epoch', 'step_loss', 'train_acc', 'train_loss', 'val_acc', 'val_loss'])
    """
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    every = check_positive_int(every, "every")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    count = len(split.y_train)
    records: list[dict[str, float]] = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(count, generator=generator)
        total, steps = 0.0, 0
        for start in range(0, count, batch_size):
            batch = order[start : start + batch_size]
            value = loss(model(split.x_train[batch]), split.y_train[batch])
            if penalty is not None:
                value = value + penalty(model)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            total, steps = total + value.item(), steps + 1
        record = {"epoch": float(epoch), "step_loss": total / steps}
        if metrics is not None and (epoch % every == 0 or epoch == epochs):
            record.update(metrics(model, split))
            records.append(record)
        elif metrics is None:
            records.append(record)
        if on_epoch is not None:
            on_epoch(epoch, record)
    model.eval()
    return records
