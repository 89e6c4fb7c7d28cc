"""MC dropout: sample a model with only its dropout on, and score the predictions."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dropkit._validation import (
    check_bool,
    check_choice,
    check_floating,
    check_positive_int,
    real_number,
)
from dropkit.model._arguments import check_model
from dropkit.model._layers import NORMS
from dropkit.model.setting import filter_sites
from dropkit.model.sites import DropoutSite, dropout_sites
from dropkit.results import Result

#: Kinds whose mask is shared by the whole batch: replicas of an input in one batch would all
#: see the same mask, so mc_predict runs them one forward pass per sample.
BATCH_SHARED_KINDS = frozenset(("weight", "layer", "embedding"))

#: Layers whose own training flag decides whether their children's dropout runs at all
#: (their eval fast path skips dropout entirely).
FAST_PATH_LAYERS = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class MCPrediction(Result):
    """The summary of MC-dropout samples of a model's output.

    Values per sample are tensors (on the model's output device, float32); scalar scores such as
    :func:`expected_calibration_error` are Python floats. ``to_dict()`` gives nested lists.

    Attributes:
        mean: the mean over samples (of the class probabilities, for classification).
        std: the standard deviation over samples (population form: 0 for one sample).
        entropy: for classification, the predictive entropy ``H[mean]`` in nats, shape ``(N,)``;
            None for regression.
        mutual_information: for classification, BALD's mutual information
            ``H[mean] - mean(H[sample])`` in nats (the part of the uncertainty that comes from
            the model, not the data), shape ``(N,)``; None for regression.
        samples: the stacked samples ``(samples, N, ...)`` when asked for, else None.
    """

    mean: Tensor
    std: Tensor
    entropy: Tensor | None = None
    mutual_information: Tensor | None = None
    samples: Tensor | None = None

    def __str__(self) -> str:
        rows = self.mean.shape[0] if self.mean.dim() else 1
        text = f"MC-dropout prediction for {rows} rows: mean {tuple(self.mean.shape)}"
        text += f", mean std {float(self.std.float().mean()):.4g}"
        if self.entropy is not None and self.mutual_information is not None:
            text += (
                f", mean entropy {float(self.entropy.mean()):.4g} nats, mean mutual "
                f"information {float(self.mutual_information.mean()):.4g} nats"
            )
        if self.samples is not None:
            text += f", {self.samples.shape[0]} samples kept"
        return text


@contextmanager
def mc_dropout(
    model: nn.Module,
    *,
    kinds: Iterable[str] | None = None,
    names: Iterable[str] | None = None,
) -> Iterator[nn.Module]:
    """Turn on only the dropout of ``model``, for MC-dropout sampling; restore every flag on exit.

    Gal & Ghahramani, "Dropout as a Bayesian Approximation", ICML 2016
    (https://arxiv.org/abs/1506.02142). Inside the block the model is in eval mode except its
    dropout sites: dropout modules, and the modules whose code reads an attention rate only in
    training (``dropout=self.p if self.training else 0.0``, as Hugging Face attention does), so
    attention dropout samples too. BatchNorm and everything else stay in eval, so running
    statistics are never touched. Each module's ``training`` flag is restored on exit, also when
    the block raises. No rate is changed.

    Args:
        model: the model.
        kinds: only sites of these kinds (see :func:`dropkit.set_dropout`); None for all.
        names: only sites matching these names; None for all.

    Yields:
        The model.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
        ...                           torch.nn.Dropout(0.5)).train()
        >>> with dk.mc_dropout(net):
        ...     net[1].training, net[2].training
        (False, True)
        >>> net[1].training
        True
    """
    check_model(model)
    flags = [(module, module.training) for module in model.modules()]
    parents = {id(child): module for module in model.modules() for child in module.children()}
    sites = mc_sites(model, kinds, names)
    try:
        model.eval()
        active = 0
        for site in sites:
            for module in modules_to_train(site, parents):
                if not isinstance(module, NORMS):
                    module.training = True
            active += site.p > 0
        if active == 0:
            warnings.warn(
                "mc_dropout found no dropout site with a rate above 0: samples will not differ",
                UserWarning,
                stacklevel=3,
            )
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


def mc_sites(
    model: nn.Module, kinds: Iterable[str] | None, names: Iterable[str] | None
) -> list[DropoutSite]:
    """The module and attribute sites that mc_dropout turns on (every kind unless ``kinds``
    says; a name that matches nothing raises, as in :func:`dropkit.set_dropout`)."""
    sites = [site for site in dropout_sites(model) if site.location != "config"]
    return filter_sites(sites, kinds, names, setting=False)


def modules_to_train(site: DropoutSite, parents: Mapping[int, nn.Module]) -> list[nn.Module]:
    """The modules whose training flag must be on for ``site`` to drop."""
    modules = [site.owner]
    parent = parents.get(id(site.owner))
    if parent is not None and (site.kind == "attention" and site.location == "module"):
        modules.append(parent)  # attention code reads the dropout module's .p under its own flag
    for module in list(modules):
        above = parents.get(id(module))
        if isinstance(above, FAST_PATH_LAYERS):
            modules.append(above)
    return modules


def mc_predict(
    model: nn.Module,
    x: Tensor | tuple[Tensor, ...] | Mapping[str, Tensor],
    samples: int = 50,
    *,
    batch_size: int | None = None,
    task: str = "classification",
    from_logits: bool = True,
    keep_samples: bool = False,
) -> MCPrediction:
    """Predict with MC dropout: ``samples`` stochastic passes under :func:`mc_dropout`, summarised.

    Gal & Ghahramani 2016 (https://arxiv.org/abs/1506.02142) for the mean and spread; Houlsby et
    al. 2011 (https://arxiv.org/abs/1112.5745) for the mutual information (BALD). With
    ``batch_size``, the input is replicated so that each forward pass carries up to
    ``batch_size`` rows (``batch_size // N`` samples at once); models with a dropout whose mask is
    shared by the whole batch (DropConnect, weight drop, embedding dropout, LayerDrop) are run
    one sample per pass, since replicas would share a mask.

    Args:
        model: the model; called as ``model(x)``, ``model(*x)`` for a tuple, ``model(**x)`` for a
            mapping. Its output may be a tensor, a tuple (first item used) or an object with
            ``logits`` (Hugging Face outputs).
        x: the input batch, ``N`` rows along dim 0 (every tensor of a tuple or mapping).
        samples: the number of stochastic passes, >= 1.
        batch_size: the most rows one forward pass may carry; None runs one sample per pass.
        task: ``"classification"`` (outputs are class scores on the last dim) or
            ``"regression"``.
        from_logits: for classification, whether outputs are logits (softmax applied) or already
            probabilities.
        keep_samples: also return every sample.

    Returns:
        An :class:`MCPrediction`.

    Shape:
        - Output of the model: ``(N, *)``; ``mean`` and ``std``: ``(N, *)``; ``entropy`` and
          ``mutual_information``: ``(N, *)`` less the class dim; ``samples``: ``(samples, N, *)``.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> _ = torch.manual_seed(0)
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(),
        ...                           torch.nn.Dropout(0.5), torch.nn.Linear(16, 3)).eval()
        >>> prediction = dk.mc_predict(net, torch.randn(5, 4), samples=20, batch_size=50)
        >>> prediction.mean.shape, prediction.entropy.shape
        (torch.Size([5, 3]), torch.Size([5]))
        >>> bool((prediction.mutual_information >= 0).all()), net.training
        (True, False)
    """
    check_model(model)
    samples = check_positive_int(samples, "samples")
    check_bool(from_logits, "from_logits")
    check_bool(keep_samples, "keep_samples")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    check_choice(task, "task", TASKS)
    rows = batch_rows(x)
    per_pass = 1 if batch_size is None else max(1, min(samples, batch_size // rows))
    if per_pass > 1 and any(
        site.kind in BATCH_SHARED_KINDS or getattr(site.owner, "mode", None) == "batch"
        for site in mc_sites(model, None, None)
        if site.p > 0
    ):
        per_pass = 1
    outputs: list[Tensor] = []
    with mc_dropout(model), torch.no_grad():
        done = 0
        while done < samples:
            count = min(per_pass, samples - done)
            output = model_output(call(model, replicate(x, count)))
            outputs.append(output.reshape(count, rows, *output.shape[1:]))
            done += count
    stacked = torch.cat(outputs).float()
    if task == "regression":
        return MCPrediction(
            stacked.mean(0), stacked.std(0, correction=0), samples=stacked if keep_samples else None
        )
    probabilities = stacked.softmax(-1) if from_logits else stacked
    mean = probabilities.mean(0)
    entropy = entropy_of(mean)
    expected = entropy_of(probabilities).mean(0)
    return MCPrediction(
        mean,
        probabilities.std(0, correction=0),
        entropy,
        (entropy - expected).clamp_min(0.0),
        probabilities if keep_samples else None,
    )


def entropy_of(probabilities: Tensor) -> Tensor:
    """Shannon entropy in nats over the last dim (0 log 0 = 0)."""
    return -torch.special.xlogy(probabilities, probabilities).sum(-1)


def batch_rows(x: Any) -> int:
    """The number of rows (dim 0) of the input batch."""
    tensors = input_tensors(x)
    if not tensors:
        raise TypeError("x must be a tensor, a tuple of tensors or a mapping of tensors")
    if any(tensor.dim() == 0 for tensor in tensors):
        raise ValueError("x must hold tensors with a batch dimension (dim 0); got a 0-dim tensor")
    rows = {tensor.shape[0] for tensor in tensors}
    if len(rows) != 1:
        raise ValueError(
            f"every tensor of x must have the same rows along dim 0, got {sorted(rows)}"
        )
    if 0 in rows:
        raise ValueError("x is an empty batch (0 rows along dim 0): nothing to predict")
    return rows.pop()


def input_tensors(x: Any) -> list[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    values = x.values() if isinstance(x, Mapping) else x if isinstance(x, (tuple, list)) else []
    return [value for value in values if isinstance(value, Tensor)]


def replicate(x: Any, count: int) -> Any:
    """``count`` copies of the batch stacked along dim 0 (the batch itself for one copy)."""
    if count == 1:
        return x
    if isinstance(x, Tensor):
        return torch.cat([x] * count)
    if isinstance(x, Mapping):
        return {key: replicate(value, count) for key, value in x.items()}
    return tuple(replicate(value, count) if isinstance(value, Tensor) else value for value in x)


def call(model: nn.Module, x: Any) -> Any:
    if isinstance(x, Mapping):
        return model(**x)
    if isinstance(x, (tuple, list)):
        return model(*x)
    return model(x)


def model_output(output: Any) -> Tensor:
    """The prediction tensor in a model's output."""
    if isinstance(output, Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return output[0]
    raise TypeError(
        f"cannot find the prediction in the model's output of type {type(output).__name__}: "
        "return a tensor, a tuple starting with one, or an object with .logits"
    )


def expected_calibration_error(probs: Tensor, labels: Tensor, *, bins: int = 15) -> float:
    """The expected calibration error of class probabilities, with equal-width confidence bins.

    Guo et al., "On Calibration of Modern Neural Networks", ICML 2017
    (https://arxiv.org/abs/1706.04599), Eq. 3: ``sum_b |B_b| / N * |acc(B_b) - conf(B_b)|`` over
    bins of the top-class confidence ``((b - 1) / bins, b / bins]``.

    Args:
        probs: class probabilities, ``(N, C)``, rows summing to 1.
        labels: true classes, ``(N,)`` integers in ``[0, C)``.
        bins: the number of bins, >= 1.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
        >>> round(dk.expected_calibration_error(probs, torch.tensor([0, 1, 1]), bins=10), 4)
        0.3
    """
    bins = check_positive_int(bins, "bins")
    check_classification(probs, labels)
    confidence, prediction = probs.detach().float().max(dim=-1)
    correct = (prediction == labels).float()
    index = (confidence * bins).ceil().long().clamp(1, bins) - 1
    accuracy = torch.zeros(bins).index_add_(0, index.cpu(), correct.cpu())
    confident = torch.zeros(bins).index_add_(0, index.cpu(), confidence.cpu())
    gap = (accuracy - confident).abs().sum() / len(labels)
    return float(gap)


def negative_log_likelihood(probs: Tensor, labels: Tensor, *, eps: float = 1e-12) -> float:
    """The mean negative log-likelihood of the true classes under predicted probabilities.

    The proper scoring rule MC-dropout predictions are compared by (Gal & Ghahramani 2016,
    https://arxiv.org/abs/1506.02142; Lakshminarayanan et al. 2017,
    https://arxiv.org/abs/1612.01474): ``-mean(log probs[i, labels[i]])`` in nats, each
    probability clamped to at least ``eps`` so a confident mistake costs ``-log(eps)``, not inf.

    Args:
        probs: class probabilities, ``(N, C)``.
        labels: true classes, ``(N,)`` integers in ``[0, C)``.
        eps: the smallest probability used, > 0.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> probs = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
        >>> round(dk.negative_log_likelihood(probs, torch.tensor([0, 1])), 4)
        0.4904
    """
    eps = real_number(eps, "eps", "a float in (0, 1)")
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must be a float in (0, 1), got {eps!r}")
    check_classification(probs, labels)
    chosen = probs.detach().double().gather(1, labels.long().unsqueeze(1)).squeeze(1)
    return float(-chosen.clamp_min(eps).log().mean())


def check_classification(probs: Tensor, labels: Tensor) -> None:
    """probs ``(N, C)`` floating and labels ``(N,)`` integers in range."""
    check_floating(probs, "probs")
    if probs.dim() != 2:
        raise ValueError(f"probs must have shape (N, C), got {tuple(probs.shape)}")
    if not isinstance(labels, Tensor):
        raise TypeError(
            f"labels must be a 1-dimensional integer tensor of classes, got {type(labels).__name__}"
        )
    if labels.dtype.is_floating_point or labels.is_complex() or labels.dim() != 1:
        raise ValueError(
            "labels must be a 1-dimensional integer tensor of classes, got shape "
            f"{tuple(labels.shape)} and dtype {labels.dtype}"
        )
    if labels.shape[0] != probs.shape[0] or labels.shape[0] == 0:
        raise ValueError(
            f"labels has {labels.shape[0]} rows but probs has {probs.shape[0]}; both need N >= 1"
        )
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise ValueError(f"labels must lie in [0, {probs.shape[1]}), got {labels.tolist()[:8]}")
