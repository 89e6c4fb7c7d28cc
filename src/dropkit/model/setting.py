"""Change the drop rate at a model's dropout sites."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal, get_args

from torch import nn

from dropkit._validation import check_bool, check_non_negative, check_probability
from dropkit.model._base_rates import base_rate, remember
from dropkit.model._pretrained import warn_refused_attention, warn_unsaved
from dropkit.model.sites import OPT_IN_KINDS, DropoutSite, dropout_sites, rate_value
from dropkit.results import Result
from dropkit.rules import depth_rates

#: The kinds of site dropkit knows (a ``Literal`` type); a model may add its own through a
#: module's ``dropout_kind``, so ``kinds=`` also takes other strings.
SiteKind = Literal[
    "attention",
    "block",
    "concrete",
    "element",
    "embedding",
    "layer",
    "locked",
    "mask",
    "noise",
    "path",
    "spatial",
    "targeted",
    "weight",
]
KNOWN_KINDS: tuple[SiteKind, ...] = get_args(SiteKind)


@dataclass(frozen=True)
class Change(Result):
    """One rate changed by :func:`dropkit.set_dropout` (or a schedule or policy).

    Attributes:
        name: the site's qualified name (see :class:`dropkit.DropoutSite`).
        kind: the site's kind.
        old: the rate before (0.0 where a policy added the dropout; None for a config field
            that was unset).
        new: the rate after.
        location: ``"module"``, ``"attribute"`` or ``"config"``.
        action: ``"set"`` (a rate changed) or ``"added"`` (a policy attached a new dropout).
        detail: where a policy put it and why, for people; empty for plain rate changes.

    Example:
        >>> import dropkit as dk
        >>> change = dk.Change("0", "element", 0.5, 0.1, "module")
        >>> print(change)
        set 0 (element, module) from 0.5 to 0.1
        >>> change.to_dict()["new"]
        0.1
    """

    name: str
    kind: str
    old: float | None
    new: float
    location: str
    action: str = "set"
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.action} {self.name} ({self.kind}, {self.location})"
        old = "None" if self.old is None else f"{self.old:g}"
        text += f" at {self.new:g}" if self.action == "added" else f" from {old} to {self.new:g}"
        return f"{text}: {self.detail}" if self.detail else text


def set_dropout(
    model: nn.Module,
    p: float,
    *,
    kinds: Iterable[SiteKind | str] | str | None = None,
    names: Iterable[str] | None = None,
    relative: bool = False,
    flatten: bool = False,
) -> list[Change]:
    """Set the drop rate ``p`` at every matching dropout site of ``model``, in place.

    Writes where the running code reads: a dropout module's ``p``, the float that attention code
    passes to SDPA / flash attention at call time (``nn.MultiheadAttention.dropout``,
    ``attention_dropout`` ...; a module's ``.p`` that attention code reads is set with the module),
    and the Hugging Face config fields (``hidden_dropout_prob``, ``attention_probs_dropout_prob``,
    ``attn_pdrop`` ...) so ``save_pretrained`` / ``from_pretrained`` keep the new rate. Sites
    that are not settable (``GaussianNoise``'s ``std``, learned concrete-dropout rates) are left
    alone. Config fields hold one rate per model, so they are written only when ``names`` is not
    given or names them (``"config.*"``).

    Without ``kinds``, only dropout of activations is set (element, attention, spatial, embedding
    ... dropout): LayerDrop (``"layer"``), stochastic depth (``"path"``) and SpecAugment masking
    (``"mask"``) change what the model computes and are set only when named in ``kinds`` (or by
    their exact site name); ``kinds="all"`` takes every kind. Giving different drop-path rates
    (depth-linear ones) one absolute rate above 0 raises unless ``flatten=True``: use
    ``relative=True`` to scale them, or :func:`dropkit.set_drop_path` for the linear rule.

    On a Hugging Face model, a ``UserWarning`` names each rate set here that a save and reload
    would not keep (a rate with no config field, such as ``names=["dropout"]`` on BERT or an
    attention-only rate on T5), and one warns when attention dropout goes to a model whose
    attention implementation refuses it (``flex_attention``).

    Srivastava et al. 2014 (https://jmlr.org/papers/v15/srivastava14a.html) define ``p``; the
    conventions of :func:`dropkit.dropout_sites` say which sites have which kind.

    Args:
        model: any ``nn.Module``.
        p: the new rate, in [0, 1]; with ``relative=True``, a factor >= 0 for each site's base
            rate.
        kinds: only sites of these kinds (``["attention"]`` touches attention only); None for
            activation dropout (every kind but ``"layer"``, ``"path"``, ``"mask"``); ``"all"``.
        names: only sites whose qualified name equals one of these, lies under one of them
            (``"encoder"`` matches ``"encoder.layer.0.dropout"``), or matches it as a glob
            (``"*.attn_dropout"``); None for all.
        relative: scale each site's base rate by ``p``, as ``LambdaLR`` scales each group's
            initial learning rate. The base rate is the rate a site had when dropkit first
            scaled it, or the one last set absolutely (or by other code) since: repeated
            relative calls do not compound, and ``p=1.0`` restores the base rates.
        flatten: allow one absolute rate over drop-path sites whose rates differ.

    Returns:
        One :class:`Change` per site written, in site order.

    Raises:
        ValueError: on a bad ``p``, an unknown kind, a name that matches no site, a name that
            names a site whose rate cannot be set, a scaled rate above 1, or a flattening of
            depth-dependent drop-path rates without ``flatten=True``.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> layer = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1)
        >>> [c.name for c in dk.set_dropout(layer, 0.2, kinds=["attention"])]
        ['self_attn.dropout']
        >>> layer.self_attn.dropout, layer.dropout1.p
        (0.2, 0.1)
        >>> encoder = dk.nn.TransformerEncoder(3, 8, 2, 16, drop_path=0.2)
        >>> _ = dk.set_dropout(encoder, 0.5, kinds=["path"], relative=True)
        >>> [layer.drop_path.p for layer in encoder.layers]
        [0.0, 0.05, 0.1]
    """
    check_bool(relative, "relative")
    check_bool(flatten, "flatten")
    sites = select_sites(model, kinds=kinds, names=names)
    if relative:
        factor = check_non_negative(p, "p")
        rates = scaled_rates(sites, factor)
    else:
        rate = check_probability(p)
        if not flatten:
            check_not_flattened(sites, rate)
        rates = [rate] * len(sites)
    warn_refused_attention(model, [(s.name, s.kind, r) for s, r in zip(sites, rates, strict=True)])
    changes = write_rates(sites, rates, keep_base=relative)
    warn_unsaved(model, changes)
    return changes


def set_drop_path(
    model: nn.Module, max_rate: float, *, names: Iterable[str] | None = None
) -> list[Change]:
    """Set stochastic-depth rates rising linearly over depth, from 0 to ``max_rate``.

    The linear rule of Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016
    (https://arxiv.org/abs/1603.09382), as :func:`dropkit.depth_rates` gives it: the drop-path
    sites (kind ``"path"``: dropkit's ``DropPath`` / ``DropPathResidual``, timm's and
    torchvision's ``DropPath`` / ``StochasticDepth``) in the order the model registers them
    (the order of depth), block ``i`` of ``n`` getting ``max_rate * i / (n - 1)``. Sites held by
    one block (timm's ``drop_path1`` and ``drop_path2``) are one depth and share a rate. A
    Hugging Face config's ``drop_path_rate`` (which the model spreads over depth the same way) is
    set to ``max_rate``, so a save and reload keep the rates.

    Args:
        model: any ``nn.Module`` with drop-path sites.
        max_rate: the rate of the deepest block, in [0, 1].
        names: only sites matching these names (see :func:`dropkit.set_dropout`); None for all.

    Returns:
        One :class:`Change` per site written, in site order.

    Raises:
        ValueError: on a bad ``max_rate``, or when the model has no settable drop-path site.

    Example:
        >>> import dropkit as dk
        >>> encoder = dk.nn.TransformerEncoder(5, 8, 2, 16)
        >>> _ = dk.set_drop_path(encoder, 0.2)
        >>> [layer.drop_path.p for layer in encoder.layers]
        [0.0, 0.05, 0.1, 0.15, 0.2]
    """
    max_rate = check_probability(max_rate, "max_rate")
    sites = select_sites(model, kinds=["path"], names=names)
    blocks = [site for site in sites if site.location != "config"]
    configs = [site for site in sites if site.location == "config"]
    if not blocks and not configs:
        raise ValueError(f"model has no settable drop-path site to give max_rate={max_rate}")
    depths = {name: index for index, name in enumerate(dict.fromkeys(map(block_of, blocks)))}
    linear = depth_rates(max_rate, len(depths)) if depths else []
    rates = {id(site): linear[depths[block_of(site)]] for site in blocks}
    changes = write_rates(sites, [rates.get(id(site), max_rate) for site in sites])
    warn_unsaved(model, changes)
    return changes


def block_of(site: DropoutSite) -> str:
    """The block a drop-path site belongs to: the module holding it (a block of its own for a
    site wrapping its branch, like ``DropPathResidual``)."""
    if any(True for _ in site.owner.children()):
        return site.name
    return site.name.rpartition(".")[0]


def select_sites(
    model: nn.Module,
    *,
    kinds: Iterable[SiteKind | str] | str | None = None,
    names: Iterable[str] | None = None,
) -> list[DropoutSite]:
    """The settable sites of ``model`` that match ``kinds`` and ``names`` (see set_dropout)."""
    sites = filter_sites(dropout_sites(model), kinds, names, setting=True)
    if names is not None:
        patterns = list(names)
        sites = [site for site in sites if site.location != "config" or explicit(site, patterns)]
    return [site for site in sites if site.settable]


def filter_sites(
    sites: Sequence[DropoutSite],
    kinds: Iterable[SiteKind | str] | str | None,
    names: Iterable[str] | None,
    *,
    setting: bool,
) -> list[DropoutSite]:
    """The one selection of sites by ``kinds`` and ``names``, in site order, for every tool.

    A name that matches no site raises. For ``setting`` (a setter's selection), a name that
    exactly names a site whose rate cannot be set raises too, and without ``kinds`` the opt-in
    kinds (LayerDrop, drop path, masking) are left out unless a name gives a site exactly."""
    kind_list = check_kinds(kinds, sites)
    name_list = check_names(names)
    if kind_list is not None:
        sites = [site for site in sites if site.kind in kind_list]
    left_out = OPT_IN_KINDS if setting and kinds is None else ()
    if name_list is None:
        return [site for site in sites if site.kind not in left_out]
    matched: list[DropoutSite] = []
    for pattern in name_list:
        hits = [site for site in sites if name_matches(site.name, pattern)]
        hits = [site for site in hits if site.kind not in left_out or site.name == pattern]
        if not hits:
            raise ValueError(
                f"names entry {pattern!r} matches no dropout site"
                + (f" of kinds {sorted(kind_list)}" if kind_list is not None else "")
                + f"; sites are: {', '.join(site.name for site in sites) or 'none'}"
            )
        for site in hits:
            if setting and not site.settable and site.name == pattern:
                raise ValueError(f"dropout site {site.name!r} cannot be set: {site.note}")
        known = {id(site) for site in matched}
        matched.extend(site for site in hits if id(site) not in known)
    order = {id(site): index for index, site in enumerate(sites)}
    return sorted(matched, key=lambda site: order[id(site)])


def scaled_rates(sites: Sequence[DropoutSite], factor: float) -> list[float]:
    """Each site's base rate times ``factor``; a product above 1 raises, naming the site."""
    rates = []
    for site in sites:
        rate = round(base_rate(site) * factor, 12)
        if rate > 1.0:
            raise ValueError(
                f"p={factor!r} scales the base rate {base_rate(site):g} of {site.name} to "
                f"{rate:g}, above 1"
            )
        rates.append(rate)
    return rates


def check_not_flattened(sites: Sequence[DropoutSite], rate: float) -> None:
    """Refuse to give one rate above 0 to drop-path sites whose rates differ (depth-linear
    rates); 0 turns them off, which the linear rule would do too."""
    paths = [site for site in sites if site.kind == "path" and site.location != "config"]
    if rate > 0.0 and len({site.p for site in paths}) > 1:
        shown = ", ".join(f"{site.name}={site.p:g}" for site in paths[:4])
        raise ValueError(
            f"p={rate:g} would give one rate to drop-path sites whose rates differ by depth "
            f"({shown}{' ...' if len(paths) > 4 else ''}); use dk.set_drop_path(model, {rate:g}) "
            "for the linear rule over depth, relative=True to scale each rate, or flatten=True "
            "for one rate everywhere"
        )


def write_rate(sites: Sequence[DropoutSite], p: float) -> list[Change]:
    """Write ``p`` (already validated) at each site."""
    return write_rates(sites, [p] * len(sites))


def write_rates(
    sites: Sequence[DropoutSite], rates: Sequence[float], *, keep_base: bool = False
) -> list[Change]:
    """Write ``rates[i]`` (already validated) at ``sites[i]``: the one path every setter goes
    through. Records each site's base rate: kept when ``keep_base`` (a scaled write), else the
    new rate."""
    changes = []
    for site, rate in zip(sites, rates, strict=True):
        old = rate_value(site.owner, site.attribute)
        base = base_rate(site) if keep_base else rate
        setattr(site.owner, site.attribute, rate)
        remember(site, base, rate_value(site.owner, site.attribute))
        changes.append(Change(site.name, site.kind, old, rate, site.location))
    return changes


def check_kinds(
    kinds: Iterable[SiteKind | str] | str | None, sites: Sequence[DropoutSite]
) -> set[str] | None:
    """Validate ``kinds`` against the known kinds and those present in the model; ``"all"``
    gives every kind."""
    if kinds is None:
        return None
    if kinds == "all":
        return set(KNOWN_KINDS) | {site.kind for site in sites}
    if isinstance(kinds, str):
        raise TypeError(f"kinds must be a list of strings or 'all', got the string {kinds!r}")
    if not isinstance(kinds, Iterable):
        raise TypeError(
            f"kinds must be a list of strings or 'all', got {kinds!r} ({type(kinds).__name__})"
        )
    kind_set = set(kinds)
    allowed = set(KNOWN_KINDS) | {site.kind for site in sites}
    for kind in sorted(kind_set):
        if not isinstance(kind, str):
            raise TypeError(f"kinds must contain strings, got {kind!r}")
        if kind not in allowed:
            options = ", ".join(repr(name) for name in sorted(allowed))
            raise ValueError(f"kinds has unknown kind {kind!r}; known kinds are {options}")
    return kind_set


def check_names(names: Iterable[str] | None) -> list[str] | None:
    """Validate ``names``: a list of strings, never a bare string."""
    if names is None:
        return None
    if isinstance(names, str):
        raise TypeError(f"names must be a list of strings, got the string {names!r}")
    if not isinstance(names, Iterable):
        raise TypeError(f"names must be a list of strings, got {names!r} ({type(names).__name__})")
    name_list = list(names)
    for name in name_list:
        if not isinstance(name, str):
            raise TypeError(f"names must contain strings, got {name!r}")
    return name_list


def name_matches(name: str, pattern: str) -> bool:
    """Exact name, a name under ``pattern``, or a glob match."""
    return name == pattern or name.startswith(pattern + ".") or fnmatchcase(name, pattern)


def explicit(site: DropoutSite, patterns: Sequence[str]) -> bool:
    """Whether a config site is named by a pattern that speaks of configs."""
    return any("config" in pattern and name_matches(site.name, pattern) for pattern in patterns)
