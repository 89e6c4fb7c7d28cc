"""Module forms of spatial dropout, one per input rank."""

from __future__ import annotations

from torch import Tensor

from dropkit import rng
from dropkit.functional._tracing import untraced
from dropkit.functional.spatial import spatial_dropout
from dropkit.nn._base import RateModule, check_module_rank

# the op without its Proxy check: __call__ has done it (RateModule)
_spatial_dropout = untraced(spatial_dropout)


class _SpatialDropout(RateModule):
    dropout_kind = "spatial"
    rank: int
    shape: str

    def __init__(self, p: float = 0.5, *, generator: rng.GeneratorSource = None) -> None:
        super().__init__(p, generator)

    def forward(self, x: Tensor) -> Tensor:
        check_module_rank(self, x, self.rank, self.shape)
        return _spatial_dropout(x, self.p, self.training, generator=self.draw_generator(x))


class SpatialDropout1d(_SpatialDropout):
    """Zero whole channels of ``(N, C, L)`` input with probability ``p``.

    Tompson et al. 2015 (https://arxiv.org/abs/1411.4280); see
    :func:`dropkit.functional.spatial_dropout`. Only 3-dimensional (batched) input is accepted.

    Args:
        p: probability of zeroing a channel, in [0, 1].
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input: ``(N, C, L)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> dk.SpatialDropout1d(0.2)(torch.ones(4, 8, 10)).shape
        torch.Size([4, 8, 10])
    """

    rank = 3
    shape = "(N, C, L)"


class SpatialDropout2d(_SpatialDropout):
    """Zero whole feature maps of ``(N, C, H, W)`` input with probability ``p``.

    Tompson et al. 2015 (https://arxiv.org/abs/1411.4280); see
    :func:`dropkit.functional.spatial_dropout`. Only 4-dimensional (batched) input is accepted;
    unlike ``torch.nn.Dropout2d``, 3-dimensional input is never silently read as unbatched.

    Args:
        p: probability of zeroing a feature map, in [0, 1].
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input: ``(N, C, H, W)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> dk.SpatialDropout2d(0.1)
        SpatialDropout2d(p=0.1)
        >>> dk.SpatialDropout2d(0.1)(torch.ones(2, 3, 8, 8)).shape
        torch.Size([2, 3, 8, 8])
    """

    rank = 4
    shape = "(N, C, H, W)"


class SpatialDropout3d(_SpatialDropout):
    """Zero whole volumes of ``(N, C, D, H, W)`` input with probability ``p``.

    Tompson et al. 2015 (https://arxiv.org/abs/1411.4280); see
    :func:`dropkit.functional.spatial_dropout`. Only 5-dimensional (batched) input is accepted.

    Args:
        p: probability of zeroing a channel, in [0, 1].
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input: ``(N, C, D, H, W)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> dk.SpatialDropout3d(0.1)(torch.ones(2, 3, 4, 4, 4)).shape
        torch.Size([2, 3, 4, 4, 4])
    """

    rank = 5
    shape = "(N, C, D, H, W)"
