"""Train an MLP across dropout rates and seeds, with and without the width rule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from torch import nn

from dropkit._validation import check_positive_int, check_probability
from dropkit.demo.data import Split
from dropkit.demo.training import fit, seeded
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
        seed: the run's seed (initialisation, batch order and dropout masks).
        records: one dict per measured epoch: ``epoch``, ``step_loss``, ``train_loss``,
            ``train_acc``, ``val_loss``, ``val_acc`` (both sets measured in eval mode).
    """

    p: float
    width: int
    widened: bool
    seed: int = 0
    records: list[dict[str, float]] = field(default_factory=list)

    @property
    def label(self) -> str:
        rule = "widened" if self.widened else "plain"
        return f"p={self.p:g} {rule} (width {self.width}) seed {self.seed}"


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


def plan_sweep(
    rates: Sequence[float], width: int, seeds: Sequence[int], *, with_width_rule: bool = True
) -> list[DemoRun]:
    """The runs of a sweep, untrained: every rate at ``width`` and, with the width rule, at
    ``dk.widen(width, p)`` (skipped where that equals ``width``), each over every seed.

    Example:
        >>> from dropkit.demo import plan_sweep
        >>> [(r.p, r.width, r.seed) for r in plan_sweep([0.0, 0.5], 16, [0, 1])]
        [(0.0, 16, 0), (0.0, 16, 1), (0.5, 16, 0), (0.5, 16, 1), (0.5, 32, 0), (0.5, 32, 1)]
    """
    width = check_positive_int(width, "width")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    arms = [(check_probability(p, "rate"), width, False) for p in rates]
    if with_width_rule:
        arms += [
            (p, widen(width, p), True) for p, _, _ in arms if p < 1.0 and widen(width, p) != width
        ]
    return [DemoRun(p, size, wide, int(seed)) for p, size, wide in arms for seed in seeds]


def run_sweep(
    split: Split,
    rates: Sequence[float],
    *,
    width: int = 128,
    depth: int = 2,
    epochs: int = 60,
    batch_size: int = 100,
    lr: float = 1e-3,
    seeds: Sequence[int] = (0,),
    with_width_rule: bool = True,
    every: int = 1,
    on_epoch: EpochCallback | None = None,
) -> list[DemoRun]:
    """Train a model per rate, width and seed (see :func:`plan_sweep`).

    Runs with the same seed share their batch order, their dropout random stream and, where the
    shapes agree, their initialisation: arms are paired by seed. The caller's global random state
    is left as it was.

    Example:
        >>> from dropkit.demo import load_digits_split, run_sweep
        >>> runs = run_sweep(load_digits_split(50, 100), [0.0, 0.5], width=16, epochs=2)
        >>> [(run.p, run.width, run.widened, len(run.records)) for run in runs]
        [(0.0, 16, False, 2), (0.5, 16, False, 2), (0.5, 32, True, 2)]
    """
    depth = check_positive_int(depth, "depth")
    plans = plan_sweep(rates, width, seeds, with_width_rule=with_width_rule)
    for run in plans:

        def report(epoch: int, record: dict[str, float], run: DemoRun = run) -> None:
            if on_epoch is not None:
                on_epoch(run, epoch, record)

        with seeded(run.seed):
            model = build_mlp(split.features, split.classes, run.width, run.p, depth=depth)
            run.records = fit(
                model,
                split,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                seed=run.seed,
                every=every,
                on_epoch=report,
            )
    return plans
