"""Find every place a model applies dropout: modules, attention rates read at call time, and
Hugging Face config fields."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from dropkit.model._arguments import check_model
from dropkit.results import LEFT_OUT, Result

#: torch.nn dropout modules and the kind of dropout each one applies.
TORCH_KINDS: dict[type[nn.Module], str] = {
    nn.Dropout: "element",
    nn.AlphaDropout: "element",
    nn.Dropout1d: "spatial",
    nn.Dropout2d: "spatial",
    nn.Dropout3d: "spatial",
    nn.FeatureAlphaDropout: "spatial",
}

#: Names of float attributes and config fields that hold a drop rate.
RATE_NAME = re.compile(
    r"(dropout|pdrop|drop_prob|drop_rate|drop_path|layerdrop|mask_time_prob|mask_feature_prob)",
    re.IGNORECASE,
)

#: Kinds that change what a model computes rather than dropping activations: LayerDrop (whole
#: layers), stochastic depth (whole residual branches) and SpecAugment-style masking of spans of
#: audio features. :func:`dropkit.set_dropout` touches them only when named in ``kinds``.
OPT_IN_KINDS = ("layer", "mask", "path")

#: Words in an attribute's name that mark a rate applied outside the attention weights.
NOT_ATTENTION_WORDS = frozenset(
    (
        "resid",
        "residual",
        "proj",
        "out",
        "output",
        "hidden",
        "ffn",
        "mlp",
        "activation",
        "layerdrop",
    )
)

#: Foreign modules (timm, torchvision), known by class name: the attributes that hold the rate.
FOREIGN_RATE_ATTRIBUTES = ("p", "drop_prob", "drop_rate")


@dataclass(frozen=True)
class DropoutSite(Result):
    """One place where a model applies dropout, and where its rate lives.

    Found by :func:`dropout_sites`. ``location`` says where the rate is read from:

    - ``"module"``: a dropout module's attribute (``owner.p`` for torch and dropkit modules; ``std``
      for :class:`dropkit.GaussianNoise`, whose scale is not a probability and is not settable);
    - ``"attribute"``: a float attribute that attention or layer code reads at call time (such as
      ``nn.MultiheadAttention.dropout`` or a Llama attention's ``attention_dropout``);
    - ``"config"``: a Hugging Face config field, read when the model is built, so writing it keeps
      the rate through ``save_pretrained`` / ``from_pretrained``.

    Attributes:
        name: the qualified name: the module's name for module sites, ``"<owner>.<attribute>"``
            for attribute sites, ``"config.<field>"`` for config fields.
        kind: what is dropped: ``"element"``, ``"spatial"``, ``"block"``, ``"path"``,
            ``"attention"``, ``"embedding"``, ``"weight"``, ``"noise"``, ``"layer"`` (LayerDrop),
            ``"mask"`` (SpecAugment masking of time steps or features) ...
        p: the current rate (the noise scale for ``GaussianNoise``).
        location: ``"module"``, ``"attribute"`` or ``"config"``.
        attribute: the attribute of ``owner`` that holds the rate.
        owner: the module or config object holding the rate (left out of ``to_dict()``).
        settable: whether :func:`dropkit.set_dropout` may change it.
        note: why it is not settable, or other remarks.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.2))
        >>> site = dk.dropout_sites(net)[0]
        >>> site.name, site.kind, site.p, site.location
        ('1', 'element', 0.2, 'module')
    """

    name: str
    kind: str
    p: float
    location: str
    attribute: str
    owner: Any = field(repr=False, compare=False, metadata=LEFT_OUT)
    settable: bool = True
    note: str = ""

    def __str__(self) -> str:
        rate = "std" if self.attribute == "std" else "p"
        text = f"{self.name} ({self.kind}, {self.location}): {rate} = {self.p:g}"
        if not self.settable:
            text += " (not settable)"
        return f"{text}: {self.note}" if self.note else text


def dropout_sites(model: nn.Module) -> list[DropoutSite]:
    """Every place ``model`` applies dropout, in module order, config fields last.

    Finds torch.nn and dropkit dropout modules (any :class:`dropkit.nn.RateModule`, by its
    ``dropout_kind``), timm/torchvision drop-path and DropBlock modules, float rates that attention
    and layer code read at call time (``nn.MultiheadAttention.dropout``, ``attention_dropout``,
    ``dropout_p`` ...), and Hugging Face config fields (``hidden_dropout_prob``,
    ``attention_probs_dropout_prob``, ``attn_pdrop``, ``classifier_dropout`` ...; fields set to
    ``None`` are skipped; ``mask_time_prob`` / ``mask_feature_prob`` have kind ``"mask"``,
    ``drop_path_rate`` kind ``"path"``). A dropout module or float inside an attention module
    (class name containing "Attention"/"Attn", or an attribute named ``attn_*``/``attention_*``),
    other than an output projection's dropout, has kind ``"attention"``: SDPA and flash attention
    read its rate at call time, so the rate is what counts, not the module. Kinds follow where the
    dropout acts: a sub-layer wrapper that holds an attention module and drops its output before
    the residual add (T5's ``T5LayerSelfAttention.dropout``) is ``"element"``, not attention.

    Args:
        model: any ``nn.Module``.

    Returns:
        A list of :class:`DropoutSite`.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> layer = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1)
        >>> [(s.name, s.kind) for s in dk.dropout_sites(layer)]  # doctest: +NORMALIZE_WHITESPACE
        [('self_attn.dropout', 'attention'), ('dropout', 'element'), ('dropout1', 'element'),
         ('dropout2', 'element')]
    """
    check_model(model)
    sites: list[DropoutSite] = []
    configs: list[tuple[str, Any]] = []
    seen_configs: set[int] = set()
    for name, module in model.named_modules():
        parent_name, _, attribute = name.rpartition(".")
        parent = model.get_submodule(parent_name) if name else None
        site = module_site(name, module, parent, attribute)
        if site is not None:
            sites.append(site)  # its own attributes are the module's settings, not more sites
        else:
            sites.extend(attribute_sites(name, module))
        config = getattr(module, "config", None)
        if is_config(config) and id(config) not in seen_configs:
            seen_configs.add(id(config))
            configs.append((f"{name}.config" if name else "config", config))
    for prefix, config in configs:
        sites.extend(config_sites(prefix, config))
    return sites


def module_site(
    name: str, module: nn.Module, parent: nn.Module | None, attribute: str
) -> DropoutSite | None:
    """The site of a dropout module, or None when ``module`` is not one."""
    kind = getattr(type(module), "dropout_kind", None)
    if isinstance(kind, str):
        if hasattr(module, "p"):
            settable = has_rate_setter(module) and kind != "concrete"
            note = "" if settable else "the rate is learned during training; it is not set"
            if kind == "element" and parent is not None and is_attention_owner(parent, attribute):
                kind = "attention"
            return DropoutSite(
                name, kind, rate_value(module, "p"), "module", "p", module, settable, note
            )
        if hasattr(module, "std"):
            note = "std is a noise scale, not a drop probability: set module.std directly"
            return DropoutSite(
                name, kind, rate_value(module, "std"), "module", "std", module, False, note
            )
        return None
    for torch_type, torch_kind in TORCH_KINDS.items():
        if isinstance(module, torch_type):
            if parent is not None and is_attention_owner(parent, attribute):
                torch_kind = "attention"
            return DropoutSite(name, torch_kind, rate_value(module, "p"), "module", "p", module)
    return foreign_site(name, module)


def foreign_site(name: str, module: nn.Module) -> DropoutSite | None:
    """DropPath / StochasticDepth / DropBlock modules from other libraries, by class name."""
    class_name = type(module).__name__.lower()
    if "droppath" in class_name or "stochasticdepth" in class_name:
        kind = "path"
    elif "dropblock" in class_name:
        kind = "block"
    else:
        return None
    for attribute in FOREIGN_RATE_ATTRIBUTES:
        value = vars(module).get(attribute)
        if is_rate(value):
            return DropoutSite(name, kind, rate_value(value), "module", attribute, module)
    return None


def attribute_sites(name: str, module: nn.Module) -> Iterator[DropoutSite]:
    """Float rates stored as plain attributes of ``module`` and read when it runs."""
    if isinstance(getattr(type(module), "dropout_kind", None), str):
        return  # a dropkit module: its rate is reported as a module site
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return
    for attribute in rate_attributes(module):
        value = getattr(module, attribute)
        if not is_rate(value):
            continue
        qualified = f"{name}.{attribute}" if name else attribute
        yield DropoutSite(
            qualified,
            rate_kind(attribute, module),
            rate_value(value),
            "attribute",
            attribute,
            module,
        )


def rate_attributes(module: nn.Module) -> list[str]:
    """Public attributes and settable properties of ``module`` whose names speak of a rate."""
    names = [name for name in vars(module) if not name.startswith("_")]
    for klass in type(module).__mro__:
        for name, value in vars(klass).items():
            if isinstance(value, property) and value.fset is not None and name not in names:
                names.append(name)
    return [name for name in names if not name.startswith("_") and RATE_NAME.search(name)]


def config_sites(prefix: str, config: Any) -> Iterator[DropoutSite]:
    """Rate fields of a Hugging Face config and of the configs nested in it (one level)."""
    for attribute, value in vars(config).items():
        if attribute.startswith("_"):
            continue
        if is_config(value):
            yield from config_sites(f"{prefix}.{attribute}", value)
        elif RATE_NAME.search(attribute) and is_rate(value):
            yield DropoutSite(
                f"{prefix}.{attribute}",
                rate_kind(attribute, None),
                rate_value(value),
                "config",
                attribute,
                config,
            )


def rate_kind(attribute: str, owner: nn.Module | None) -> str:
    """The kind of a float rate from its name and, for attributes, its owner."""
    lowered = attribute.lower()
    if "layerdrop" in lowered:
        return "layer"
    if lowered.startswith("mask_") and lowered.endswith("_prob"):
        return "mask"
    if "drop_path" in lowered:
        return "path"
    if owner is not None and is_attention_owner(owner, attribute):
        return "attention"
    if owner is None and ("attention" in lowered or "attn" in lowered):
        return "attention"
    return "element"


def is_attention_owner(owner: nn.Module, attribute: str) -> bool:
    """Whether the rate ``owner.<attribute>`` is applied to attention weights."""
    words = attribute.lower().split("_")
    if any(word in NOT_ATTENTION_WORDS for word in words):
        return False
    if any(word.startswith(("attn", "attention")) for word in words):
        return True
    if not is_attention_class(owner):
        return False
    # A wrapper holding the attention module itself drops the sub-layer's output (residual).
    return not any(is_attention_class(child) for child in owner.children())


def is_attention_class(module: nn.Module) -> bool:
    """Whether ``module`` is an attention module, by type or class name."""
    class_name = type(module).__name__.lower()
    return (
        isinstance(module, nn.MultiheadAttention)
        or "attention" in class_name
        or "attn" in class_name
    )


def rate_value(owner: Any, attribute: str | None = None) -> float:
    """A rate as a Python float (a 0-dim tensor is read with .item())."""
    value = owner if attribute is None else getattr(owner, attribute)
    return float(value.detach().item()) if isinstance(value, Tensor) else float(value)


def is_rate(value: object) -> bool:
    """A number in [0, 1] (bools refused)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0


def is_config(value: object) -> bool:
    """Whether ``value`` looks like a Hugging Face ``PretrainedConfig`` (checked without importing
    transformers)."""
    return (
        value is not None
        and hasattr(value, "to_dict")
        and hasattr(value, "__dict__")
        and type(value).__name__.endswith("Config")
    )


def has_rate_setter(module: nn.Module) -> bool:
    """Whether ``module.p`` can be assigned (a property without setter cannot)."""
    prop = getattr(type(module), "p", None)
    return not isinstance(prop, property) or prop.fset is not None
