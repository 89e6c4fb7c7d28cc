"""Dropout modules: each holds its hyper-parameters, reads ``self.training`` and calls
:mod:`dropkit.functional`."""

from dropkit.nn._base import RateModule
from dropkit.nn.drop_block import DropBlock2d, DropBlock3d
from dropkit.nn.drop_path import DropPath
from dropkit.nn.dropout import Dropout
from dropkit.nn.noise import AlphaDropout, GaussianDropout, GaussianNoise
from dropkit.nn.spatial import SpatialDropout1d, SpatialDropout2d, SpatialDropout3d

__all__ = [
    "AlphaDropout",
    "DropBlock2d",
    "DropBlock3d",
    "DropPath",
    "Dropout",
    "GaussianDropout",
    "GaussianNoise",
    "RateModule",
    "SpatialDropout1d",
    "SpatialDropout2d",
    "SpatialDropout3d",
]
