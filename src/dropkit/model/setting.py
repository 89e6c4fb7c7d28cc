"""Change the drop rate at a model's dropout sites."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from torch import nn

from dropkit._validation import check_probability
from dropkit.model.sites import DropoutSite, dropout_sites, rate_value

#: Kinds dropkit knows; a model may add its own through a module's ``dropout_kind``.
KNOWN_KINDS = (
    "attention",
    "block",
    "concrete",
    "element",
    "embedding",
    "layer",
    "locked",
    "noise",
    "path",
    "spatial",
    "targeted",
    "weight",
)


@dataclass(frozen=True)
class Change:
    """One rate changed by :func:`dropkit.set_dropout` (or a schedule or policy).

    Attributes:
        name: the site's qualified name (see :class:`dropkit.DropoutSite`).
        kind: the site's kind.
        old: the rate before.
        new: the rate after.
        location: ``"module"``, ``"attribute"`` or ``"config"``.

    Example:
        >>> import dropkit as dk
        >>> dk.Change("0", "element", 0.5, 0.1, "module")
        Change(name='0', kind='element', old=0.5, new=0.1, location='module')
    """

    name: str
    kind: str
    old: float
    new: float
    location: str


def set_dropout(
    model: nn.Module,
    p: float,
    *,
    kinds: Iterable[str] | None = None,
    names: Iterable[str] | None = None,
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

    Srivastava et al. 2014 (https://jmlr.org/papers/v15/srivastava14a.html) define ``p``; the
    conventions of :func:`dropkit.dropout_sites` say which sites have which kind.

    Args:
        model: any ``nn.Module``.
        p: the new rate, in [0, 1].
        kinds: only sites of these kinds (``["attention"]`` touches attention only); None for all.
        names: only sites whose qualified name equals one of these, lies under one of them
            (``"encoder"`` matches ``"encoder.layer.0.dropout"``), or matches it as a glob
            (``"*.attn_dropout"``); None for all.

    Returns:
        One :class:`Change` per site written, in site order.

    Raises:
        ValueError: on a bad ``p``, an unknown kind, a name that matches no site, or a name that
            names a site whose rate cannot be set.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> layer = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1)
        >>> [c.name for c in dk.set_dropout(layer, 0.2, kinds=["attention"])]
        ['self_attn.dropout']
        >>> layer.self_attn.dropout, layer.dropout1.p
        (0.2, 0.1)
    """
    p = check_probability(p)
    return write_rate(select_sites(model, kinds=kinds, names=names), p)


def select_sites(
    model: nn.Module,
    *,
    kinds: Iterable[str] | None = None,
    names: Iterable[str] | None = None,
) -> list[DropoutSite]:
    """The settable sites of ``model`` that match ``kinds`` and ``names`` (see set_dropout)."""
    sites = dropout_sites(model)
    kind_list = check_kinds(kinds, sites)
    name_list = check_names(names)
    if kind_list is not None:
        sites = [site for site in sites if site.kind in kind_list]
    if name_list is not None:
        matched: list[DropoutSite] = []
        for pattern in name_list:
            hits = [site for site in sites if name_matches(site.name, pattern)]
            if not hits:
                raise ValueError(
                    f"names entry {pattern!r} matches no dropout site"
                    + (f" of kinds {sorted(kind_list)}" if kind_list is not None else "")
                    + f"; sites are: {', '.join(site.name for site in sites) or 'none'}"
                )
            for site in hits:
                if not site.settable and site.name == pattern:
                    raise ValueError(f"dropout site {site.name!r} cannot be set: {site.note}")
            known = {id(site) for site in matched}
            matched.extend(site for site in hits if id(site) not in known)
        order = {id(site): index for index, site in enumerate(sites)}
        sites = sorted(matched, key=lambda site: order[id(site)])
        sites = [site for site in sites if site.location != "config" or explicit(site, name_list)]
    return [site for site in sites if site.settable]


def write_rate(sites: Sequence[DropoutSite], p: float) -> list[Change]:
    """Write ``p`` (already validated) at each site; the one path every setter goes through."""
    changes = []
    for site in sites:
        old = rate_value(site.owner, site.attribute)
        setattr(site.owner, site.attribute, p)
        changes.append(Change(site.name, site.kind, old, p, site.location))
    return changes


def check_kinds(kinds: Iterable[str] | None, sites: Sequence[DropoutSite]) -> set[str] | None:
    """Validate ``kinds`` against the known kinds and those present in the model."""
    if kinds is None:
        return None
    if isinstance(kinds, str):
        raise TypeError(f"kinds must be a list of strings, got the string {kinds!r}")
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
