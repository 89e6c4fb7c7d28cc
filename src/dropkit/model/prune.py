"""Remove, after targeted dropout training, the weights and units it targeted."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import prune as torch_prune

from dropkit._validation import check_bool
from dropkit.functional.targeted import targeted_mask
from dropkit.model._arguments import check_model
from dropkit.model._layers import NORMS, POOLS
from dropkit.nn.concrete import ConcreteDropout
from dropkit.nn.drop_block import DropBlock2d, DropBlock3d
from dropkit.nn.drop_connect import DropConnect
from dropkit.nn.drop_path import DropPath
from dropkit.nn.dropout import Dropout
from dropkit.nn.locked import LockedDropout
from dropkit.nn.noise import AlphaDropout, GaussianDropout, GaussianNoise
from dropkit.nn.spatial import SpatialDropout1d, SpatialDropout2d, SpatialDropout3d
from dropkit.nn.targeted import TargetedDropout
from dropkit.results import LEFT_OUT, Report, Result

#: Modules between two layers that act on each unit separately and keep the unit count.
ELEMENTWISE = (
    nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus,
    nn.Softsign, nn.LogSigmoid, nn.Tanhshrink,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
    Dropout, SpatialDropout1d, SpatialDropout2d, SpatialDropout3d, DropBlock2d, DropBlock3d,
    DropPath, GaussianDropout, AlphaDropout, GaussianNoise, LockedDropout,
)  # fmt: skip
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
WRAPPERS = (DropConnect, TargetedDropout, ConcreteDropout)


@dataclass(frozen=True)
class LayerPruning(Result):
    """What :func:`prune` did to one targeted-dropout layer.

    Attributes:
        name: the layer's qualified name in the model.
        mode: ``"weight"`` or ``"unit"``.
        shape_before: the weight's shape before pruning.
        shape_after: the weight's shape after pruning (smaller when units were removed, or when
            an earlier layer's removed units cut its inputs).
        sparsity: the fraction of the layer's original weights that are now zero or gone.
        units_removed: output units (rows, channels) removed or zeroed (unit mode).
        trimmed: names of the following layers whose inputs were cut to match.
        note: how the units were handled when they could not be removed.
    """

    name: str
    mode: str
    shape_before: tuple[int, ...]
    shape_after: tuple[int, ...]
    sparsity: float
    units_removed: int = 0
    trimmed: tuple[str, ...] = ()
    note: str = ""

    def __str__(self) -> str:
        text = (
            f"{self.name} ({self.mode}): {self.shape_before} -> {self.shape_after}, "
            f"sparsity {self.sparsity:.1%}"
        )
        if self.units_removed:
            text += f", {self.units_removed} units removed"
        return f"{text}; {self.note}" if self.note else text


@dataclass(frozen=True)
class PruneReport(Report[LayerPruning]):
    """The per-layer record of :func:`prune`: a :class:`~dropkit.results.Report` of
    :class:`LayerPruning` records (iterate, ``len``, index), a table as text.

    Attributes:
        layers: one entry per pruned layer, in model order.
        parameters_before: the model's parameter count before pruning.
        parameters_after: the parameter count after (removing units shrinks it; zeroing does not).
    """

    records_field = "layers"

    layers: list[LayerPruning] = field(default_factory=list)
    parameters_before: int = 0
    parameters_after: int = 0

    def __str__(self) -> str:
        lines = [f"{'layer':<24} {'mode':<6} {'shape':<28} sparsity"]
        for layer in self.layers:
            shape = f"{layer.shape_before} -> {layer.shape_after}"
            lines.append(f"{layer.name:<24} {layer.mode:<6} {shape:<28} {layer.sparsity:.1%}")
            if layer.note:
                lines.append(f"  {layer.note}")
        lines.append(f"parameters: {self.parameters_before} -> {self.parameters_after}")
        return "\n".join(lines)


@dataclass(frozen=True)
class PruneResult(Result):
    """What :func:`prune` returns: the pruned model and its :class:`PruneReport`.

    It unpacks as ``model, report = dk.prune(net)``. It was a ``NamedTuple`` up to 0.1; indexing
    it (``result[0]``) still works for one release with a ``FutureWarning``: use ``.model`` and
    ``.report``.

    Attributes:
        model: the pruned model (``to_dict()`` gives its class name).
        report: the :class:`PruneReport`.
    """

    model: nn.Module = field(metadata=LEFT_OUT)
    report: PruneReport

    def __iter__(self) -> Iterator[Any]:
        yield self.model
        yield self.report

    def __getitem__(self, index: int) -> Any:
        warnings.warn(
            "indexing the result of dk.prune is deprecated and will be removed in the next "
            "release: use result.model and result.report (or model, report = dk.prune(...))",
            FutureWarning,
            stacklevel=2,
        )
        return (self.model, self.report)[index]

    def to_dict(self) -> dict[str, Any]:
        """The report as data, and the pruned model's class name."""
        return {"model": type(self.model).__name__, **super().to_dict()}

    def __str__(self) -> str:
        return f"pruned {type(self.model).__name__}\n{self.report}"


def prune(model: nn.Module, *, inplace: bool = False) -> PruneResult:
    """Remove for good the weights or units that each :class:`dropkit.TargetedDropout` targets.

    Gomez et al., "Learning Sparse Networks Using Targeted Dropout", 2019
    (https://arxiv.org/abs/1905.13678): training with targeted dropout makes the network robust to
    losing its targeted set, which is then pruned. The set is computed from the current weights
    exactly as in training, all before any layer is cut, and each wrapper is replaced by its plain
    layer:

    - ``mode="weight"``: the targeted weights are zeroed by a mask that stays through further
      training (:func:`torch.nn.utils.prune.custom_from_mask`: the layer gets ``weight_orig`` and
      ``weight_mask``; :func:`torch.nn.utils.prune.remove` makes it plain).
    - ``mode="unit"``: the targeted units are removed, giving a smaller layer (fewer
      ``out_features`` or ``out_channels``). Inside an ``nn.Sequential`` chain (nested ones too) the
      following layers are cut to match: element-wise activations, dropout and pooling pass through,
      BatchNorm loses those channels, ``nn.Flatten`` is followed, and the next linear or convolution
      loses those inputs. A removed unit still gave a constant (its bias through the layers in
      between); that constant is folded into the next layer's bias, so in evaluation the pruned
      model computes what the model with those units dropped computed (exactly for a following
      linear layer or unpadded convolution; a padded convolution differs at the borders). Where no
      such chain leads on (the model's last layer, a grouped convolution, an unknown module in
      between), the units are zeroed by a mask instead, and the report says so.

    Args:
        model: the trained model holding :class:`dropkit.TargetedDropout` layers (or one itself).
        inplace: modify ``model`` itself; by default a deep copy is pruned and ``model`` stays.

    Returns:
        A :class:`PruneResult` that unpacks as ``(model, report)``: the pruned model and a
        :class:`PruneReport` with the sparsity reached per layer.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> _ = torch.manual_seed(0)
        >>> net = torch.nn.Sequential(
        ...     dk.TargetedDropout(
        ...         torch.nn.Linear(8, 16), targeted_fraction=0.5, p=0.5, mode="unit"
        ...     ),
        ...     torch.nn.ReLU(),
        ...     dk.TargetedDropout(torch.nn.Linear(16, 4), targeted_fraction=0.75, p=0.5),
        ... )
        >>> pruned, report = dk.prune(net)
        >>> pruned
        Sequential(
          (0): Linear(in_features=8, out_features=8, bias=True)
          (1): ReLU()
          (2): Linear(in_features=8, out_features=4, bias=True)
        )
        >>> [round(layer.sparsity, 2) for layer in report]  # of the weights before pruning
        [0.5, 0.92]
    """
    check_model(model)
    check_bool(inplace, "inplace")
    if not inplace:
        model = copy.deepcopy(model)
    parameters_before = _parameter_count(model)
    layers: list[LayerPruning] = []
    targets = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, TargetedDropout)
    }
    # Every targeted set comes from the weights as training saw them, before any layer is cut.
    masks = {
        id(wrapper.module): targeted_mask(
            wrapper.module.weight, wrapper.targeted_fraction, wrapper.mode
        )
        for wrapper in targets.values()
    }
    shapes = {name: tuple(wrapper.module.weight.shape) for name, wrapper in targets.items()}
    for name, wrapper in targets.items():
        layer = wrapper.module
        mask = masks[id(layer)]
        if wrapper.mode == "weight":
            torch_prune.custom_from_mask(layer, "weight", ~mask)
            entry = LayerPruning(name, "weight", shapes[name], tuple(layer.weight.shape), 0.0)
        else:
            entry = _prune_units(model, name, wrapper, mask.flatten(1).any(dim=1), masks)
        sparsity = 1.0 - int(layer.weight.count_nonzero()) / math.prod(shapes[name])
        layers.append(replace(entry, shape_before=shapes[name], sparsity=sparsity))
        model = _replace(model, name, layer)
    report = PruneReport(layers, parameters_before, _parameter_count(model))
    return PruneResult(model, report)


def _prune_units(
    model: nn.Module,
    name: str,
    wrapper: TargetedDropout,
    units: Tensor,
    masks: dict[int, Tensor],
) -> LayerPruning:
    layer: Any = wrapper.module
    shape_before = tuple(layer.weight.shape)
    count = int(units.sum())
    follow = _following(model, name)
    note = ""
    if count == 0:
        return LayerPruning(name, "unit", shape_before, shape_before, 0.0)
    if isinstance(layer, CONVOLUTIONS) and layer.groups != 1:
        follow = None
        note = "grouped convolution: units zeroed, not removed"
    if follow is not None:
        plan = _plan(layer, follow)
        if plan is None:
            note = "no following layer to trim in an nn.Sequential: units zeroed, not removed"
        else:
            between, consumer_name, consumer, spatial = plan
            _remove_units(layer, between, consumer, spatial, units, masks)
            norms = tuple(n for n, m in between if isinstance(m, NORMS))
            shape_after = tuple(layer.weight.shape)
            trimmed = (*norms, consumer_name)
            return LayerPruning(name, "unit", shape_before, shape_after, 0.0, count, trimmed)
    elif not note:
        note = "not inside an nn.Sequential chain: units zeroed, not removed"
    keep = (~units).reshape(-1, *([1] * (layer.weight.dim() - 1))).expand_as(layer.weight)
    torch_prune.custom_from_mask(layer, "weight", keep.clone())
    return LayerPruning(name, "unit", shape_before, shape_before, 0.0, count, (), note)


def _following(model: nn.Module, name: str) -> list[tuple[str, nn.Module]] | None:
    """The leaf modules after ``name`` in its chain of (nested) ``nn.Sequential``; None if none."""
    modules = dict(model.named_modules())
    result: list[tuple[str, nn.Module]] = []
    current = name
    found = False
    while current:
        parent_name, _, child = current.rpartition(".")
        parent = modules[parent_name]
        if not isinstance(parent, nn.Sequential):
            break
        found = True
        keys = list(parent._modules)
        for key in keys[keys.index(child) + 1 :]:
            full = f"{parent_name}.{key}" if parent_name else key
            child_module = parent._modules[key]
            if child_module is not None:
                result.extend(_leaves(full, child_module))
        current = parent_name
    return result if found else None


def _leaves(name: str, module: nn.Module) -> list[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        out: list[tuple[str, nn.Module]] = []
        for key, child in module._modules.items():
            if child is not None:
                out.extend(_leaves(f"{name}.{key}", child))
        return out
    return [(name, module)]


def _weight_layer(module: nn.Module) -> Any:
    if isinstance(module, (nn.Linear, *CONVOLUTIONS)):
        return module
    if isinstance(module, WRAPPERS) and isinstance(module.module, (nn.Linear, *CONVOLUTIONS)):
        return module.module
    return None


def _plan(
    layer: Any, follow: list[tuple[str, nn.Module]]
) -> tuple[list[tuple[str, nn.Module]], str, nn.Module, int] | None:
    """The modules between ``layer`` and the next weight layer, that layer, and the flatten size."""
    units = layer.weight.shape[0]
    between: list[tuple[str, nn.Module]] = []
    flattened = False
    for name, module in follow:
        consumer = _weight_layer(module)
        if consumer is not None:
            if isinstance(consumer, nn.Linear):
                if consumer.in_features % units or (
                    not flattened and consumer.in_features != units
                ):
                    return None
                return between, name, module, consumer.in_features // units
            if flattened or consumer.groups != 1 or consumer.in_channels != units:
                return None
            return between, name, module, 1
        if isinstance(module, nn.Flatten):
            if flattened or module.start_dim != 1 or module.end_dim != -1:
                return None
            flattened = True
        elif isinstance(module, NORMS):
            if module.num_features != units or flattened:
                return None
        elif not isinstance(module, (*ELEMENTWISE, *POOLS)):
            return None
        between.append((name, module))
    return None


@torch.no_grad()
def _remove_units(
    layer: Any,
    between: list[tuple[str, nn.Module]],
    wrapper: nn.Module,
    spatial: int,
    units: Tensor,
    masks: dict[int, Tensor],
) -> None:
    consumer = _weight_layer(wrapper)
    assert consumer is not None
    keep = ~units
    # The constant each removed unit still outputs: its bias through the modules in between.
    bias = layer.bias if layer.bias is not None else layer.weight.new_zeros(layer.weight.shape[0])
    value = bias.reshape(1, -1, *([1] * (layer.weight.dim() - 2)))
    for _, module in between:
        if isinstance(module, (nn.Flatten, *POOLS)):
            continue
        was_training = module.training
        value = module.eval()(value)
        module.train(was_training)
    constant = value.reshape(-1)[units]
    weight = consumer.weight
    # A targeted consumer's own targeted weights are gone too: they carry nothing to fold.
    effective = weight.masked_fill(masks[id(consumer)], 0) if id(consumer) in masks else weight
    if isinstance(consumer, nn.Linear):
        columns = effective.reshape(weight.shape[0], -1, spatial)[:, units].sum(-1)
    else:
        columns = effective[:, units].flatten(2).sum(-1)
    folded = columns @ constant.to(weight.dtype)
    if bool(folded.any()):
        if consumer.bias is None:
            consumer.bias = nn.Parameter(weight.new_zeros(weight.shape[0]))
        consumer.bias.add_(folded)
    # Cut the producer's units, BatchNorm's channels and the consumer's inputs.
    layer.weight = nn.Parameter(layer.weight[keep].clone())
    if layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias[keep].clone())
    kept = int(keep.sum())
    if isinstance(layer, nn.Linear):
        layer.out_features = kept
    else:
        layer.out_channels = kept
    for _, module in between:
        if isinstance(module, NORMS):
            _cut_batch_norm(module, keep)
    if isinstance(consumer, nn.Linear):
        columns_kept = keep.repeat_interleave(spatial)
        consumer.weight = nn.Parameter(weight[:, columns_kept].clone())
        consumer.in_features = int(columns_kept.sum())
    else:
        columns_kept = keep
        consumer.weight = nn.Parameter(weight[:, keep].clone())
        consumer.in_channels = kept
    if id(consumer) in masks:  # a targeted layer further on: its set loses the same inputs
        masks[id(consumer)] = masks[id(consumer)][:, columns_kept]


def _cut_batch_norm(norm: nn.modules.batchnorm._BatchNorm, keep: Tensor) -> None:
    for name in ("weight", "bias"):
        param = getattr(norm, name)
        if param is not None:
            setattr(norm, name, nn.Parameter(param[keep].clone()))
    for name in ("running_mean", "running_var"):
        buffer = getattr(norm, name)
        if buffer is not None:
            setattr(norm, name, buffer[keep].clone())
    norm.num_features = int(keep.sum())


def _replace(model: nn.Module, name: str, module: nn.Module) -> nn.Module:
    if name == "":
        return module
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, module)
    return model


def _parameter_count(model: nn.Module) -> int:
    return sum(param.numel() for param in model.parameters())
