"""Whole-model tooling: find, set and schedule dropout, apply a placement policy, check a model
for the classic dropout bugs, and sample with MC dropout."""

from dropkit.model import schedules
from dropkit.model.check import CheckReport, Finding, check
from dropkit.model.mc import (
    MCPrediction,
    expected_calibration_error,
    mc_dropout,
    mc_predict,
    negative_log_likelihood,
)
from dropkit.model.policy import Note, Policy, PolicyReport, apply_policy
from dropkit.model.prune import LayerPruning, PruneReport, PruneResult, prune
from dropkit.model.schedules import DropoutScheduler
from dropkit.model.setting import Change, SiteKind, set_drop_path, set_dropout
from dropkit.model.sites import DropoutSite, dropout_sites

__all__ = [
    "Change",
    "CheckReport",
    "DropoutScheduler",
    "DropoutSite",
    "Finding",
    "LayerPruning",
    "MCPrediction",
    "Note",
    "Policy",
    "PolicyReport",
    "PruneReport",
    "PruneResult",
    "SiteKind",
    "apply_policy",
    "check",
    "dropout_sites",
    "expected_calibration_error",
    "mc_dropout",
    "mc_predict",
    "negative_log_likelihood",
    "prune",
    "schedules",
    "set_drop_path",
    "set_dropout",
]
