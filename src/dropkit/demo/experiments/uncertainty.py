"""Experiments on dropout as a posterior: E8 (MC dropout's spread grows away from the data) and
E9 (concrete dropout learns a lower rate as the training set grows)."""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

import dropkit as dk
from dropkit.demo.data import Split
from dropkit.demo.experiments.base import Finding, Panel, band_over_seeds, interval_dict
from dropkit.demo.statistics import mean_interval, paired_interval
from dropkit.demo.training import fit, regression_metrics, seeded

SEEDS = (0, 1, 2)


def _gap_data(count: int, seed: int) -> Split:
    """y = sin(2x) + noise on x in [-3, -1] and [1, 3]: nothing in the gap (-1, 1)."""
    generator = torch.Generator().manual_seed(seed)
    side = torch.rand(count, 1, generator=generator) * 2 + 1
    sign = torch.where(torch.rand(count, 1, generator=generator) < 0.5, -1.0, 1.0)
    x = side * sign
    y = torch.sin(2 * x) + 0.1 * torch.randn(count, 1, generator=generator)
    return Split(x, y, x, y)


def mc_spread(quick: bool = False) -> Finding:
    """E8: the MC-dropout predictive spread is larger away from the data than on it.

    Gal and Ghahramani 2016 (https://arxiv.org/abs/1506.02142).
    """
    count, width, epochs, samples, rate = (
        (64, 32, 20, 20, 0.2) if quick else (256, 128, 300, 100, 0.2)
    )
    grid = torch.linspace(-5, 5, 101)[:, None]
    inside = ((grid.abs() >= 1) & (grid.abs() <= 3)).squeeze(1)
    distance = torch.clamp(torch.maximum(1 - grid.abs(), grid.abs() - 3), min=0).squeeze(1)
    away = distance >= 0.75
    spreads, ratios = [], []
    for seed in SEEDS:
        split = _gap_data(count, seed)
        with seeded(seed):
            model = nn.Sequential(
                nn.Linear(1, width),
                nn.ReLU(),
                dk.Dropout(rate),
                nn.Linear(width, width),
                nn.ReLU(),
                dk.Dropout(rate),
                nn.Linear(width, 1),
            )
            fit(
                model,
                split,
                epochs=epochs,
                batch_size=32,
                lr=3e-3,
                seed=seed,
                loss=nn.functional.mse_loss,
                metrics=regression_metrics,
                every=epochs,
            )
            prediction = dk.mc_predict(model, grid, samples=samples, task="regression")
        std = prediction.std.squeeze(1)
        spreads.append(std.tolist())
        ratios.append(float(std[away].mean() / std[inside].mean()))
    ratio = mean_interval(ratios)
    return Finding(
        name="E8",
        title="MC dropout's predictive spread grows away from the training data",
        effect="mean predictive std at least 0.75 away from the data (in the gap |x| <= 0.25 "
        "and beyond |x| >= 3.75) / on the data 1 <= |x| <= 3",
        estimate=ratio,
        criterion="the ratio's 95% interval lies above 1",
        passed=ratio.low > 1,
        reference="Gal and Ghahramani 2016: MC dropout's predictive uncertainty grows away from "
        "the observed data (their CO2 extrapolation figure)",
        settings={
            "data": f"{count} points y = sin(2x) + N(0, 0.1^2), x uniform on [-3, -1] and [1, 3]",
            "model": f"MLP 1-{width}-{width}-1, ReLU, dk.Dropout({rate}) after each hidden layer",
            "training": f"Adam lr 3e-3, batch 32, {epochs} epochs, mean squared error",
            "prediction": f"dk.mc_predict, {samples} samples, on 101 points of [-5, 5]",
            "seeds": list(SEEDS),
        },
        panels=[
            Panel(
                "MC-dropout predictive std (data on 1 <= |x| <= 3)",
                "x",
                "std",
                [band_over_seeds("std", grid.squeeze(1).tolist(), spreads)],
            )
        ],
    )


def _regression(count: int, seed: int) -> Split:
    generator = torch.Generator().manual_seed(1000 + seed)
    x = torch.randn(count + 500, 8, generator=generator)
    truth = torch.randn(8, 1, generator=torch.Generator().manual_seed(7))
    y = torch.tanh(x @ truth) + 0.3 * torch.randn(count + 500, 1, generator=generator)
    return Split(x[:count], y[:count], x[count:], y[count:])


def concrete_rates(quick: bool = False) -> Finding:
    """E9: concrete dropout learns a lower dropout rate as the training set grows.

    Gal, Hron and Kendall 2017 (https://arxiv.org/abs/1705.07832).
    """
    sizes = (32, 512) if quick else (64, 256, 1024, 4096)
    width, steps, length = (16, 60, 1e-2) if quick else (64, 1500, 1e-2)
    learned: list[list[float]] = []
    for seed in SEEDS:
        rates = []
        for count in sizes:
            split = _regression(count, seed)
            with seeded(seed):
                concrete = partial(
                    dk.ConcreteDropout,
                    init_p=0.1,
                    weight_regularizer=length**2 / count,
                    dropout_regularizer=2.0 / count,
                )
                model = nn.Sequential(
                    concrete(nn.Linear(8, width)),
                    nn.ReLU(),
                    concrete(nn.Linear(width, width)),
                    nn.ReLU(),
                    nn.Linear(width, 1),
                )
                batch = min(32, count)
                epochs = max(1, math.ceil(steps * batch / count))
                fit(
                    model,
                    split,
                    epochs=epochs,
                    batch_size=batch,
                    lr=3e-3,
                    seed=seed,
                    loss=nn.functional.mse_loss,
                    penalty=dk.concrete_regularization,
                    metrics=None,
                )
            layers = [m for m in model.modules() if isinstance(m, dk.ConcreteDropout)]
            rates.append(sum(float(layer.p) for layer in layers) / len(layers))
        learned.append(rates)
    difference = paired_interval([r[0] for r in learned], [r[-1] for r in learned])
    return Finding(
        name="E9",
        title="concrete dropout learns a lower rate as the training set grows",
        effect=f"learned rate at N={sizes[0]} minus at N={sizes[-1]} (mean of the layers)",
        estimate=difference,
        criterion="the paired 95% interval lies above 0",
        passed=difference.low > 0,
        reference="Gal, Hron and Kendall 2017: the learned rate falls as data grows (their "
        "UCI and MNIST figures); the regulariser scales as 1/N",
        settings={
            "data": "y = tanh(x . w) + N(0, 0.3^2), x ~ N(0, I_8), N training points",
            "model": f"MLP 8-{width}-{width}-1, dk.ConcreteDropout on both hidden layers, "
            "init_p 0.1, temperature 0.1",
            "regulariser": f"weight l^2/N with l = {length:g}, dropout 2/N",
            "training": f"Adam lr 3e-3, batch 32, about {steps} steps per N",
            "sizes": list(sizes),
            "seeds": list(SEEDS),
        },
        numbers={
            f"learned rate N={n}": interval_dict([r[i] for r in learned])
            for i, n in enumerate(sizes)
        },
        panels=[
            Panel(
                "learned dropout rate against training set size",
                "training points N",
                "learned p",
                [band_over_seeds("learned p", sizes, learned, "errorbar")],
                log_x=True,
            ),
        ],
    )
