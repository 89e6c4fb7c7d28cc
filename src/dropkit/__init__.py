"""dropkit: dropout regularization for PyTorch.

Every dropout method exact to its paper, as stateless functions (:mod:`dropkit.functional`) and
modules (:mod:`dropkit.nn`, re-exported here), plus the practice around dropout.

Example:
    >>> import torch
    >>> import dropkit as dk
    >>> net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), dk.Dropout(0.5))
    >>> net(torch.randn(4, 16)).shape
    torch.Size([4, 32])
"""

import dropkit._process_groups  # noqa: F401  (before any process group: see the module)
from dropkit import backends, functional, nn, rng
from dropkit.advisor import Diagnosis, TuneResult, diagnose, load_history, tune
from dropkit.functional.drop_path import drop_path_residual
from dropkit.model import (
    Change,
    CheckReport,
    DropoutScheduler,
    DropoutSite,
    MCPrediction,
    Policy,
    PolicyReport,
    apply_policy,
    check,
    dropout_sites,
    expected_calibration_error,
    mc_dropout,
    mc_predict,
    negative_log_likelihood,
    schedules,
    set_drop_path,
    set_dropout,
)
from dropkit.model.prune import prune
from dropkit.nn import (
    AlphaDropout,
    ConcreteDropout,
    DropBlock2d,
    DropBlock3d,
    DropConnect,
    Dropout,
    DropPath,
    DropPathResidual,
    EmbeddingDropout,
    GaussianDropout,
    GaussianNoise,
    LockedDropout,
    SpatialConcreteDropout,
    SpatialDropout1d,
    SpatialDropout2d,
    SpatialDropout3d,
    TargetedDropout,
    WeightDrop,
    concrete_regularization,
)
from dropkit.rules import depth_rates, widen

__version__ = "0.1.0"

__all__ = [
    "AlphaDropout",
    "Change",
    "CheckReport",
    "ConcreteDropout",
    "Diagnosis",
    "DropBlock2d",
    "DropBlock3d",
    "DropConnect",
    "DropPath",
    "DropPathResidual",
    "Dropout",
    "DropoutScheduler",
    "DropoutSite",
    "EmbeddingDropout",
    "GaussianDropout",
    "GaussianNoise",
    "LockedDropout",
    "MCPrediction",
    "Policy",
    "PolicyReport",
    "SpatialConcreteDropout",
    "SpatialDropout1d",
    "SpatialDropout2d",
    "SpatialDropout3d",
    "TargetedDropout",
    "TuneResult",
    "WeightDrop",
    "__version__",
    "apply_policy",
    "backends",
    "check",
    "concrete_regularization",
    "depth_rates",
    "diagnose",
    "drop_path_residual",
    "dropout_sites",
    "expected_calibration_error",
    "functional",
    "load_history",
    "mc_dropout",
    "mc_predict",
    "negative_log_likelihood",
    "nn",
    "prune",
    "rng",
    "schedules",
    "set_drop_path",
    "set_dropout",
    "tune",
    "widen",
]
