"""Warnings for Hugging Face models: rates that a save and reload would lose, and attention
dropout that an attention implementation refuses."""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dropkit.model.sites import dropout_sites, is_config

if TYPE_CHECKING:
    from dropkit.model.setting import Change

#: Attention implementations of transformers that raise when attention dropout is on in training.
NO_DROPOUT_ATTENTION = ("flex_attention",)


def pretrained_models(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The outermost Hugging Face models in ``model`` (a config and ``save_pretrained``)."""
    found: list[str] = []
    for name, module in model.named_modules():
        if any(outer == "" or name.startswith(outer + ".") for outer in found):
            continue
        if is_config(getattr(module, "config", None)) and hasattr(module, "save_pretrained"):
            found.append(name)
            yield name, module


def reloaded_rates(module: nn.Module) -> dict[str, float] | None:
    """The rate of every module and attribute site of ``module`` rebuilt from its config (on the
    meta device, so nothing is allocated): what ``from_pretrained`` would give. None when the
    model cannot be rebuilt from its config alone."""
    config = copy.deepcopy(module.config)
    logger = logging.getLogger("transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rebuilt = type(module)(config)
    except Exception:  # models that need more than their config to build are not checked
        return None
    finally:
        logger.setLevel(level)
    return {site.name: site.p for site in dropout_sites(rebuilt) if site.location != "config"}


def warn_unsaved(model: nn.Module, changes: Sequence[Change], stacklevel: int = 3) -> None:
    """Warn, naming the sites, when a rate just set will not survive ``save_pretrained`` /
    ``from_pretrained``: no config field holds it, or a config field just written gives another
    site a rate it does not have now."""
    if not changes:
        return
    config_written = any(change.location == "config" for change in changes)
    changed = {change.name for change in changes if change.location != "config"}
    for prefix, pretrained in pretrained_models(model):
        reloaded = reloaded_rates(pretrained)
        if reloaded is None:
            continue
        lost = []
        for site in dropout_sites(pretrained):
            full = f"{prefix}.{site.name}" if prefix else site.name
            if site.location == "config" or (full not in changed and not config_written):
                continue
            after = reloaded.get(site.name)
            if after is not None and not math.isclose(after, site.p, abs_tol=1e-9):
                lost.append(f"{full} = {site.p:g} (reloads as {after:g})")
        if lost:
            shown = ", ".join(lost[:6]) + (f" and {len(lost) - 6} more" if len(lost) > 6 else "")
            warnings.warn(
                f"no config field of {type(pretrained).__name__} holds these rates, so "
                f"save_pretrained / from_pretrained will not keep them: {shown}; set them again "
                "after loading, or set the config field with the rate",
                UserWarning,
                stacklevel=stacklevel,
            )


def warn_refused_attention(
    model: nn.Module, rates: Sequence[tuple[str, str, float]], stacklevel: int = 3
) -> None:
    """Warn when attention dropout above 0 goes to a model whose attention implementation
    refuses it in training (transformers' ``flex_attention`` raises inside the forward pass).

    ``rates`` holds (site name, kind, new rate) triples."""
    named = [name for name, kind, rate in rates if kind == "attention" and rate > 0]
    if not named:
        return
    for _, pretrained in pretrained_models(model):
        implementation = attention_implementation(pretrained.config)
        if implementation in NO_DROPOUT_ATTENTION:
            warnings.warn(
                f"{type(pretrained).__name__} runs attn_implementation={implementation!r}, which "
                f"refuses attention dropout in training: a forward pass in train mode will raise "
                f"inside transformers with {named[0]} above 0; load the model with "
                "attn_implementation='sdpa' or 'eager', or keep attention dropout at 0",
                UserWarning,
                stacklevel=stacklevel,
            )
            return


def attention_implementation(config: Any) -> str | None:
    value = getattr(config, "_attn_implementation", None)
    return value if isinstance(value, str) else None
