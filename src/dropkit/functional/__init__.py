"""Stateless dropout functions: the semantics of every method live here.

Each function takes the tensor, the rate ``p`` (always the probability of dropping), ``training``
and keyword-only options including ``generator``. ``DropPathMode`` and ``TargetedMode`` name the
strings their ``mode`` arguments accept.
"""

from dropkit.functional.drop_block import drop_block
from dropkit.functional.drop_connect import drop_connect, drop_connect_gaussian
from dropkit.functional.drop_path import DropPathMode, drop_path, drop_path_residual
from dropkit.functional.dropout import dropout
from dropkit.functional.embedding import embedding_dropout
from dropkit.functional.locked import locked_dropout
from dropkit.functional.noise import alpha_dropout, gaussian_dropout, gaussian_noise
from dropkit.functional.spatial import spatial_dropout
from dropkit.functional.targeted import TargetedMode, targeted_dropout

__all__ = [
    "DropPathMode",
    "TargetedMode",
    "alpha_dropout",
    "drop_block",
    "drop_connect",
    "drop_connect_gaussian",
    "drop_path",
    "drop_path_residual",
    "dropout",
    "embedding_dropout",
    "gaussian_dropout",
    "gaussian_noise",
    "locked_dropout",
    "spatial_dropout",
    "targeted_dropout",
]
