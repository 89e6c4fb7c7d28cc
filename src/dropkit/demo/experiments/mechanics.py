"""Experiments on dropout's mechanics, without training: E2 (weight scaling and the geometric
mean of all masks), E4 (element against spatial dropout on correlated maps), E5 (variance shift
before BatchNorm) and E7 (the expected depth of stochastic depth)."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

import dropkit as dk
from dropkit.demo.experiments.base import Finding, Line, Panel, band_over_seeds, interval_dict
from dropkit.demo.statistics import mean_interval
from dropkit.demo.training import seeded

SEEDS = (0, 1, 2)


def geometric_mean(quick: bool = False) -> Finding:
    """E2: weight scaling equals the normalised geometric mean over all masks, exactly.

    Srivastava et al. 2014, Sec. 7.5 (https://jmlr.org/papers/v15/srivastava14a.html).
    """
    units, rate = (6, 0.5) if quick else (12, 0.5)
    counts = [1, 4, 16, 64] if quick else [1, 4, 16, 64, 256, 1024, 4096]
    exact_errors, distances, mc_errors = [], [], []
    for seed in SEEDS:
        with seeded(seed):
            weight = torch.randn(5, units, dtype=torch.float64)
            bias = torch.randn(5, dtype=torch.float64)
            x = torch.randn(units, dtype=torch.float64) * 2
            masks = torch.tensor(
                list(itertools.product((0.0, 1.0), repeat=units)), dtype=torch.float64
            )
            chance = torch.where(masks > 0, 1 - rate, rate).prod(dim=1)
            logits = (x * masks / (1 - rate)) @ weight.T + bias
            log_probs = torch.log_softmax(logits, dim=1)
            geometric = torch.softmax((chance[:, None] * log_probs).sum(0), dim=0)
            arithmetic = (chance[:, None] * log_probs.exp()).sum(0)
            layer = dk.Dropout(rate)
            layer.train()
            scaled = torch.softmax(weight @ x + bias, dim=0)  # eval: dropout off (inverted form)
            exact_errors.append(float((geometric - scaled).abs().max()))
            distances.append(float((arithmetic - scaled).abs().max()))
            errors = []
            for k in counts:
                samples = torch.stack(
                    [torch.softmax(weight @ layer(x) + bias, dim=0) for _ in range(k)]
                )
                errors.append(float((samples.mean(0) - arithmetic).abs().max()))
            mc_errors.append(errors)
    worst = max(exact_errors)
    slopes = [
        (math.log(e[-1]) - math.log(e[0])) / (math.log(counts[-1]) - math.log(counts[0]))
        for e in mc_errors
    ]
    slope = mean_interval(slopes)
    return Finding(
        name="E2",
        title="weight scaling = normalised geometric mean over all 2^N masks",
        effect="largest |geometric mean - weight-scaled| over classes and seeds (float64)",
        estimate=mean_interval(exact_errors),
        criterion="the largest difference is below 1e-12, and the Monte Carlo error of the "
        "arithmetic mean falls with k (log-log slope below -0.3)",
        passed=worst < 1e-12 and slope.mean < -0.3,
        reference="Srivastava et al. 2014, Sec. 7.5: for one layer before a softmax, weight "
        "scaling gives the normalised geometric mean exactly; about 50 sampled sub-networks "
        "match weight scaling on MNIST",
        settings={
            "model": f"one dk.Dropout(p={rate}) layer on {units} inputs, a 5-class linear layer "
            "and softmax, random weights (float64)",
            "enumeration": f"all 2^{units} = {2**units} masks, weighted by their probability",
            "Monte Carlo": f"k sampled masks, k in {counts}",
            "seeds": list(SEEDS),
        },
        numbers={
            "largest geometric-mean difference": worst,
            "arithmetic mean - weight scaling (max)": interval_dict(distances),
            "Monte Carlo log-log slope": slope.to_dict(),
        },
        panels=[
            Panel(
                "Monte Carlo average of k masks against the exact arithmetic mean",
                "masks sampled k",
                "max |error|",
                [band_over_seeds("MC error", counts, mc_errors)],
                log_x=True,
                log_y=True,
            )
        ],
    )


def _smooth_maps(batch: int, channels: int, size: int, width: float) -> torch.Tensor:
    """Feature maps whose neighbours are strongly correlated: white noise blurred by a Gaussian."""
    noise = torch.randn(batch * channels, 1, size + 16, size + 16)
    grid = torch.arange(-8, 9, dtype=torch.float32)
    kernel = torch.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * width**2))
    kernel = (kernel / kernel.square().sum().sqrt())[None, None]
    return nn.functional.conv2d(noise, kernel).reshape(batch, channels, size + 0, size + 0)


def correlated_maps(quick: bool = False) -> Finding:
    """E4: on correlated maps a 3x3 filter averages element dropout's noise away, not spatial's.

    Tompson et al. 2015 (https://arxiv.org/abs/1411.4280).
    """
    batch, channels, size, samples, rate = (4, 4, 8, 20, 0.3) if quick else (16, 8, 16, 200, 0.3)
    ratios = []
    for seed in SEEDS:
        with seeded(seed):
            maps = _smooth_maps(batch, channels, size, width=4.0)
            smooth = torch.full((1, 1, 3, 3), 1.0 / 9.0).repeat(channels, 1, 1, 1)
            clean = nn.functional.conv2d(maps, smooth, groups=channels)
            variance = {}
            for label, layer in (
                ("element", dk.Dropout(rate)),
                ("spatial", dk.SpatialDropout2d(rate)),
            ):
                layer.train()
                outputs = torch.stack(
                    [
                        nn.functional.conv2d(layer(maps), smooth, groups=channels)
                        for _ in range(samples)
                    ]
                )
                variance[label] = float(((outputs - clean) ** 2).mean())
            ratios.append(variance["spatial"] / variance["element"])
    ratio = mean_interval(ratios)
    return Finding(
        name="E4",
        title="after a 3x3 filter spatial dropout's noise survives, element dropout's averages out",
        effect="noise variance reaching the next layer: spatial / element dropout (same p)",
        estimate=ratio,
        criterion="the ratio's 95% interval lies above 4 (a 3x3 mean of correlated maps keeps "
        "spatial noise whole and divides element noise by up to 9)",
        passed=ratio.low > 4,
        reference="Tompson et al. 2015: neighbouring activations are correlated, so element "
        "dropout barely regularises conv features; spatial dropout drops whole maps",
        settings={
            "inputs": f"{batch}x{channels} maps of {size}x{size}, white noise blurred by a "
            "Gaussian of width 4 (strong neighbour correlation)",
            "next layer": "a fixed 3x3 mean filter per channel",
            "arms": f"dk.Dropout({rate}) and dk.SpatialDropout2d({rate}), {samples} masks each",
            "seeds": list(SEEDS),
        },
        panels=[
            Panel(
                "noise variance ratio spatial / element, per seed",
                "seed",
                "ratio",
                [Line("ratio", [float(s) for s in SEEDS], ratios, kind="bar")],
            )
        ],
    )


def variance_shift(quick: bool = False) -> Finding:
    """E5: dropout before BatchNorm makes its running variance disagree with inference.

    Li et al. 2019 (https://arxiv.org/abs/1801.05134).
    """
    features, steps, batch, rate, mean, variance = (
        (8, 50, 64, 0.5, 1.0, 1.0) if quick else (64, 400, 128, 0.5, 1.0, 1.0)
    )
    keep = 1 - rate
    expected = ((mean**2 + variance) / keep - mean**2) / variance
    before_ratios: list[float] = []
    after_ratios: list[float] = []
    for seed in SEEDS:
        with seeded(seed):
            for order, ratios in (("before", before_ratios), ("after", after_ratios)):
                norm = nn.BatchNorm1d(features, momentum=0.05)
                dropout = dk.Dropout(rate)
                for module in (norm, dropout):
                    module.train()
                for _ in range(steps):
                    x = mean + variance**0.5 * torch.randn(batch, features)
                    norm(dropout(x) if order == "before" else x)
                test = mean + variance**0.5 * torch.randn(4096, features)
                seen = test.var(dim=0)  # dropout is off at inference: BN's input is the data
                ratios.append(float((norm.running_var / seen).mean()))
    before, after = mean_interval(before_ratios), mean_interval(after_ratios)
    return Finding(
        name="E5",
        title="variance shift: dropout before BatchNorm, not after",
        effect="BatchNorm running variance / variance of its input at inference, dropout before BN",
        estimate=before,
        criterion=f"before: within 10% of the predicted {expected:.3g}; after: within 5% of 1",
        passed=abs(before.mean / expected - 1) < 0.1 and abs(after.mean - 1) < 0.05,
        reference="Li et al. 2019: training variance (c^2 + v)/q - c^2 against test variance v",
        settings={
            "inputs": f"{features} features ~ N({mean}, {variance}), batches of {batch}",
            "arms": f"dk.Dropout({rate}) -> BatchNorm1d, and BatchNorm1d alone (dropout after "
            "it does not reach its statistics)",
            "training": f"{steps} forward passes in training mode (momentum 0.05)",
            "seeds": list(SEEDS),
        },
        numbers={"predicted ratio before": expected, "ratio after": after.to_dict()},
        panels=[
            Panel(
                "running variance / inference variance",
                "placement",
                "ratio",
                [
                    Line(
                        "dropout before BN",
                        [0.0],
                        [before.mean],
                        [before.low],
                        [before.high],
                        "errorbar",
                    ),
                    Line(
                        "dropout after BN",
                        [1.0],
                        [after.mean],
                        [after.low],
                        [after.high],
                        "errorbar",
                    ),
                    Line("predicted before", [0.0], [expected], kind="bar"),
                ],
            )
        ],
    )


def expected_depth(quick: bool = False) -> Finding:
    """E7: with the linear rule at p_L = 0.5, (3L - 1)/4 blocks run on average, and
    ``drop_path_residual`` computes only the rows it keeps.

    Huang et al. 2016 (https://arxiv.org/abs/1603.09382).
    """
    depth, batch, passes = (4, 64, 5) if quick else (12, 256, 50)
    rule = [0.5 * (index + 1) / depth for index in range(depth)]  # Huang et al.: p_l = l/L p_L
    library = dk.depth_rates(0.5, depth)
    executed: dict[str, list[float]] = {"Huang rule": [], "dk.depth_rates": []}
    for seed in SEEDS:
        with seeded(seed):
            for label, rates in (("Huang rule", rule), ("dk.depth_rates", library)):
                rows = 0

                def branch(x: torch.Tensor) -> torch.Tensor:
                    nonlocal rows
                    rows += x.shape[0]
                    return torch.tanh(x)

                for _ in range(passes):
                    x = torch.randn(batch, 8)
                    for p in rates:
                        x = dk.drop_path_residual(x, branch, p, True)
                executed[label].append(rows / (passes * batch))
    theory = (3 * depth - 1) / 4
    measured = mean_interval(executed["Huang rule"])
    sigma = math.sqrt(sum(p * (1 - p) for p in rule) / (passes * batch))
    return Finding(
        name="E7",
        title="stochastic depth: (3L-1)/4 blocks run, and their compute only",
        effect=f"blocks whose branch computed, per sample, L = {depth} (theory {theory:g})",
        estimate=measured,
        criterion="each seed's count within 4 binomial sigma of (3L-1)/4",
        passed=all(abs(v - theory) < 4 * sigma for v in executed["Huang rule"]),
        reference="Huang et al. 2016: expected depth (3L-1)/4 at p_L = 0.5; training time -25%",
        settings={
            "model": f"{depth} residual blocks x + branch(x), dk.drop_path_residual per sample",
            "rates": "Huang's p_l = l/L * 0.5; and dk.depth_rates(0.5, L) = 0.5 * i/(L-1), "
            "which gives 3L/4",
            "measure": f"rows the branches received over {passes} passes of {batch} samples",
            "seeds": list(SEEDS),
        },
        numbers={
            "theory (3L-1)/4": theory,
            "dk.depth_rates: blocks run": interval_dict(executed["dk.depth_rates"]),
            "dk.depth_rates theory 3L/4": 3 * depth / 4,
            "binomial sigma": sigma,
        },
        panels=[
            Panel(
                "branch computations per sample",
                "rule",
                "blocks run",
                [
                    band_over_seeds(label, [float(index)], [[v] for v in values], "errorbar")
                    for index, (label, values) in enumerate(executed.items())
                ]
                + [Line("(3L-1)/4", [0.0, 1.0], [theory, theory])],
            )
        ],
    )
