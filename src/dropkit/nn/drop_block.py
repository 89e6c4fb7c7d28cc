"""Module forms of DropBlock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor

from dropkit import rng
from dropkit._validation import Validated, check_bool
from dropkit.functional._tracing import untraced
from dropkit.functional.drop_block import block_sizes, drop_block
from dropkit.nn._base import RateModule, check_module_rank

_BLOCK_SIZE = "The block's side, one size per spatial dim (clipped to the feature size)."

# the op without its Proxy check: __call__ has done it (RateModule)
_drop_block = untraced(drop_block)


def _sizes_for(spatial_dims: int) -> Callable[[Any, str], tuple[int, ...]]:
    """A check for ``block_size`` with ``spatial_dims`` spatial dims."""

    def check(value: Any, name: str) -> tuple[int, ...]:
        return block_sizes(value, spatial_dims)

    return check


class _DropBlock(RateModule):
    dropout_kind = "block"
    rank: int
    shape: str
    block_size: Validated[tuple[int, ...]]
    shared_channels = Validated(check_bool, "One mask per sample shared by all channels.")

    def __init__(
        self,
        p: float = 0.1,
        block_size: int | Sequence[int] = 7,
        shared_channels: bool = False,
        *,
        generator: rng.GeneratorSource = None,
    ) -> None:
        super().__init__(p, generator)
        self.block_size = block_size
        self.shared_channels = shared_channels

    def forward(self, x: Tensor) -> Tensor:
        check_module_rank(self, x, self.rank, self.shape)
        return _drop_block(
            x,
            self.p,
            self.block_size,
            self.training,
            shared_channels=self.shared_channels,
            generator=self.draw_generator(x),
        )

    def extra_repr(self) -> str:
        sizes = set(self.block_size)
        block = self.block_size[0] if len(sizes) == 1 else self.block_size
        return self.with_generator(
            f"p={self.p}, block_size={block}, shared_channels={self.shared_channels}"
        )


class DropBlock2d(_DropBlock):
    """DropBlock on ``(N, C, H, W)`` feature maps: zero ``block_size x block_size`` regions.

    Ghiasi, Lin and Le, "DropBlock: A regularization method for convolutional networks", NeurIPS
    2018 (https://arxiv.org/abs/1810.12890). See :func:`dropkit.functional.drop_block` for the
    exact semantics. The paper schedules the rate linearly from 0 to its final value over training
    (a fixed rate "does not work well"): use ``dropkit.schedules.linear`` or assign ``module.p``.

    Args:
        p: target fraction of dropped units, in [0, 1].
        block_size: side of the square block (or ``(height, width)``), clipped to the feature size.
        shared_channels: one mask per sample shared by all channels instead of one per channel
            (a bool).
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    ``p``, ``block_size`` and ``shared_channels`` may be reassigned; each is checked again.

    Shape:
        - Input: ``(N, C, H, W)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> layer = dk.DropBlock2d(p=0.1, block_size=7)
        >>> layer
        DropBlock2d(p=0.1, block_size=7, shared_channels=False)
        >>> layer(torch.randn(2, 16, 14, 14)).shape
        torch.Size([2, 16, 14, 14])
    """

    rank = 4
    shape = "(N, C, H, W)"
    block_size = Validated(_sizes_for(2), _BLOCK_SIZE)


class DropBlock3d(_DropBlock):
    """DropBlock on ``(N, C, D, H, W)`` volumes: zero ``block_size`` cubes.

    Ghiasi, Lin and Le 2018 (https://arxiv.org/abs/1810.12890), extended to three spatial dims as
    for video and volumetric models. See :func:`dropkit.functional.drop_block`.

    Args:
        p: target fraction of dropped units, in [0, 1].
        block_size: side of the cubic block (or ``(depth, height, width)``).
        shared_channels: one mask per sample shared by all channels instead of one per channel.
        generator: where the randomness comes from: None (the global generator), a
            ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name, e.g.
            ``"tensor-parallel"``, or a :class:`dropkit.rng.Stream`).

    Shape:
        - Input: ``(N, C, D, H, W)``. Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> dk.DropBlock3d(p=0.1, block_size=3)(torch.randn(2, 4, 6, 6, 6)).shape
        torch.Size([2, 4, 6, 6, 6])
    """

    rank = 5
    shape = "(N, C, D, H, W)"
    block_size = Validated(_sizes_for(3), _BLOCK_SIZE)
