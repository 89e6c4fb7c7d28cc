"""Dropout modules: each holds its hyper-parameters, reads ``self.training`` and calls
:mod:`dropkit.functional`."""

from dropkit.nn._base import RateModule
from dropkit.nn.concrete import ConcreteDropout, SpatialConcreteDropout, concrete_regularization
from dropkit.nn.drop_block import DropBlock2d, DropBlock3d
from dropkit.nn.drop_connect import DropConnect, DropConnectInference
from dropkit.nn.drop_path import DropPath
from dropkit.nn.dropout import Dropout
from dropkit.nn.embedding import EmbeddingDropout
from dropkit.nn.locked import LockedDropout
from dropkit.nn.noise import AlphaDropout, GaussianDropout, GaussianNoise
from dropkit.nn.residual import DropPathResidual
from dropkit.nn.spatial import SpatialDropout1d, SpatialDropout2d, SpatialDropout3d
from dropkit.nn.targeted import TargetedDropout
from dropkit.nn.transformer import (
    TransformerActivation,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from dropkit.nn.weight_drop import WeightDrop

__all__ = [
    "AlphaDropout",
    "ConcreteDropout",
    "DropBlock2d",
    "DropBlock3d",
    "DropConnect",
    "DropConnectInference",
    "DropPath",
    "DropPathResidual",
    "Dropout",
    "EmbeddingDropout",
    "GaussianDropout",
    "GaussianNoise",
    "LockedDropout",
    "RateModule",
    "SpatialConcreteDropout",
    "SpatialDropout1d",
    "SpatialDropout2d",
    "SpatialDropout3d",
    "TargetedDropout",
    "TransformerActivation",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "WeightDrop",
    "concrete_regularization",
]
