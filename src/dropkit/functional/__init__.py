"""Stateless dropout functions: the semantics of every method live here.

Each function takes the tensor, the rate ``p`` (always the probability of dropping), ``training``
and keyword-only options including ``generator``.
"""

from dropkit.functional.drop_block import drop_block
from dropkit.functional.drop_path import drop_path
from dropkit.functional.dropout import dropout
from dropkit.functional.noise import alpha_dropout, gaussian_dropout, gaussian_noise
from dropkit.functional.spatial import spatial_dropout

__all__ = [
    "alpha_dropout",
    "drop_block",
    "drop_path",
    "dropout",
    "gaussian_dropout",
    "gaussian_noise",
    "spatial_dropout",
]
