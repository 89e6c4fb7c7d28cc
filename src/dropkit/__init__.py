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

from dropkit import functional, nn
from dropkit.nn import (
    AlphaDropout,
    DropBlock2d,
    DropBlock3d,
    Dropout,
    DropPath,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1d,
    SpatialDropout2d,
    SpatialDropout3d,
)
from dropkit.rules import depth_rates, widen

__version__ = "0.1.0"

__all__ = [
    "AlphaDropout",
    "DropBlock2d",
    "DropBlock3d",
    "DropPath",
    "Dropout",
    "GaussianDropout",
    "GaussianNoise",
    "SpatialDropout1d",
    "SpatialDropout2d",
    "SpatialDropout3d",
    "__version__",
    "depth_rates",
    "functional",
    "nn",
    "widen",
]
