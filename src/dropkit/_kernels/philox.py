"""The one definition of dropkit's random masks: Philox 4x32-10 in pure PyTorch.

Philox 4x32-10 is the counter-based generator of Salmon, Moraes, Dror and Shaw (2011),
"Parallel random numbers: as easy as 1, 2, 3" (SC'11, https://doi.org/10.1145/2063384.2063405):
ten rounds of two 32 x 32 -> 64-bit multiplies map a 128-bit counter and a 64-bit key to four
32-bit words. PyTorch's ``at::Philox4_32`` (CUDA's generator) and Triton's ``tl.randint4x`` use
the same rounds and constants.

A mask is a function of ``(seed, offset, element index)``:

- key: the 64-bit ``seed`` (an int64 read as two's complement), low word ``k0``, high word ``k1``.
  :func:`sample_seed` draws it from a torch generator, one ``torch.randint`` of 64 bits per mask.
- element ``i`` is the logical row-major index into the tensor, whatever its memory layout.
- counter of element ``i``: ``(g mod 2**32, g >> 32, offset mod 2**32, offset >> 32 mod 2**32)``
  with ``g = i // 4``; element ``i`` takes word ``i % 4`` of that counter's output. With
  ``offset = 0`` this is exactly Triton's ``tl.randint4x(seed, g)``; ``offset`` selects another,
  unrelated stream.
- element ``i`` is kept iff its word is below :func:`threshold` ``(p)``
  ``= min(round((1 - p) * 2**32), 2**32 - 1)`` (halves rounded up), so
  ``P(keep) = threshold / 2**32``, within ``2**-32`` of ``1 - p``.

The compiled CPU kernel (``csrc/dropout.cpp``) and the Triton kernel compute the same words, so
the same seed gives the same mask on every backend and device, with or without a compiler, and
anything that recomputes a mask from its seed (backward, checkpointing) gets it bit for bit.
Values are uint32 words held in int64 tensors; work is done in chunks, so memory stays bounded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

#: Multiplier of counter word 0 (``PHILOX_M4x32_0``).
ROUND_A = 0xD2511F53
#: Multiplier of counter word 2 (``PHILOX_M4x32_1``).
ROUND_B = 0xCD9E8D57
#: Added to key word 0 between rounds (``PHILOX_W32_0``, the golden ratio).
KEY_A = 0x9E3779B9
#: Added to key word 1 between rounds (``PHILOX_W32_1``, sqrt(3) - 1).
KEY_B = 0xBB67AE85
ROUNDS = 10
WORD = 0xFFFFFFFF
#: Counters (four elements each) computed at a time.
CHUNK = 1 << 16


def _rounds(
    c0: Tensor, c1: Tensor, c2: Tensor, c3: Tensor, k0: Tensor | int, k1: Tensor | int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    # A product of two uint32 values fits 64 bits; PyTorch's int64 multiply keeps it modulo
    # 2**64, so its bits 32-63 are the high word (the known-answer tests check this). Words
    # carry garbage above bit 31 between rounds; only the multiplied ones and the results are
    # masked.
    for round_index in range(ROUNDS):
        if round_index:
            k0 = (k0 + KEY_A) & WORD
            k1 = (k1 + KEY_B) & WORD
        product_a = (c0 & WORD).mul_(ROUND_A)
        product_b = (c2 & WORD).mul_(ROUND_B)
        c0 = (product_b >> 32).bitwise_xor_(c1).bitwise_xor_(k0)
        c2 = (product_a >> 32).bitwise_xor_(c3).bitwise_xor_(k1)
        c1, c3 = product_b, product_a
    return c0 & WORD, c1 & WORD, c2 & WORD, c3 & WORD


def philox_4x32_10(counter: Tensor, key: Tensor) -> Tensor:
    """Philox 4x32-10 of ``counter`` under ``key``, element-wise over the leading dims.

    Args:
        counter: int64 tensor ``[..., 4]`` of uint32 values (word 0 first).
        key: int64 tensor ``[..., 2]`` of uint32 values, broadcast against ``counter[..., 0]``.

    Shape:
        Returns an int64 tensor ``[..., 4]`` of uint32 values: the four output words.

    Example:
        >>> zero = torch.zeros(4, dtype=torch.int64)
        >>> [f"{word:08x}" for word in philox_4x32_10(zero, zero[:2]).tolist()]
        ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
    """
    if counter.dtype != torch.int64 or key.dtype != torch.int64:
        raise TypeError(
            f"counter and key must be int64 tensors, got {counter.dtype} and {key.dtype}"
        )
    if counter.shape[-1:] != (4,) or key.shape[-1:] != (2,):
        raise ValueError(
            f"counter must end in a dim of 4 and key in a dim of 2, got shapes "
            f"{tuple(counter.shape)} and {tuple(key.shape)}"
        )
    c0, c1, c2, c3, k0, k1 = torch.broadcast_tensors(*counter.unbind(-1), *key.unbind(-1))
    return torch.stack(_rounds(c0, c1, c2, c3, k0, k1), dim=-1)


def _key_words(seed: int | Tensor) -> tuple[Tensor | int, Tensor | int]:
    if isinstance(seed, Tensor):
        if seed.dtype != torch.int64 or seed.numel() != 1:
            raise ValueError(f"seed must be an int or a one-element int64 tensor, got {seed!r}")
        seed = seed.reshape(())
    return seed & WORD, (seed >> 32) & WORD


def _group_words(
    start: int, stop: int, seed: int | Tensor, offset: int, device: torch.device
) -> Tensor:
    """The words of counters ``start .. stop - 1`` of stream ``offset``: ``[stop - start, 4]``."""
    groups = torch.arange(start, stop, dtype=torch.int64, device=device)
    k0, k1 = _key_words(seed)
    if isinstance(k0, Tensor) and isinstance(k1, Tensor):
        k0, k1 = k0.to(device), k1.to(device)
    c1 = groups >> 32
    c2 = torch.full_like(groups, offset & WORD)
    c3 = torch.full_like(groups, (offset >> 32) & WORD)
    return torch.stack(_rounds(groups & WORD, c1, c2, c3, k0, k1), dim=-1)


def random_words(
    count: int, seed: int | Tensor, offset: int = 0, *, device: torch.device | str | None = None
) -> Tensor:
    """The 32-bit words of elements ``0 .. count - 1`` of stream ``offset`` under ``seed``.

    Args:
        count: how many elements.
        seed: the 64-bit key, an int or a one-element int64 tensor (no host synchronisation).
        offset: the stream.
        device: where to compute (default CPU).

    Shape:
        Returns an int64 tensor ``[count]`` of values in ``[0, 2**32)``.

    Example:
        >>> random_words(6, seed=0).tolist()[:4] == philox_4x32_10(
        ...     torch.zeros(4, dtype=torch.int64), torch.zeros(2, dtype=torch.int64)).tolist()
        True
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    out = torch.empty(count, dtype=torch.int64, device=device)
    _fill(out, seed, offset, lambda words: words)
    return out


def threshold(p: float) -> int:
    """The keep threshold of drop probability ``p``: ``min(round((1 - p) * 2**32), 2**32 - 1)``.

    An element is kept iff its word is below it. Halves round up (C's ``llround``).

    Example:
        >>> threshold(0.5), threshold(0.0), threshold(1.0)
        (2147483648, 4294967295, 0)
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    return min(math.floor((1.0 - p) * 4294967296.0 + 0.5), WORD)


def keep_mask(
    shape: Sequence[int],
    p: float,
    seed: int | Tensor,
    offset: int = 0,
    *,
    device: torch.device | str | None = None,
) -> Tensor:
    """The keep mask of ``shape``: element ``i`` (row-major) is kept iff its word < threshold(p).

    Args:
        shape: the mask's shape.
        p: the drop probability, in ``[0, 1]``.
        seed: the 64-bit key, an int or a one-element int64 tensor.
        offset: the stream.
        device: where to compute (default CPU).

    Shape:
        Returns a bool tensor of ``shape``.

    Example:
        >>> mask = keep_mask((2, 3), 0.5, seed=42)
        >>> mask.shape, mask.dtype
        (torch.Size([2, 3]), torch.bool)
        >>> torch.equal(mask, keep_mask((6,), 0.5, seed=42).view(2, 3))
        True
    """
    limit = threshold(p)
    device = torch.device(device) if device is not None else torch.device("cpu")
    out = torch.empty(tuple(shape), dtype=torch.bool, device=device)
    _fill(out.view(-1), seed, offset, lambda words: words < limit)
    return out


def _fill(
    out: Tensor, seed: int | Tensor, offset: int, convert: Callable[[Tensor], Tensor]
) -> None:
    """Writes ``convert(words)`` of elements ``0 .. len(out) - 1`` into ``out``, chunk by chunk."""
    count = out.numel()
    groups = (count + 3) // 4
    for start in range(0, groups, CHUNK):
        stop = min(start + CHUNK, groups)
        words = _group_words(start, stop, seed, offset, out.device).view(-1)
        first = 4 * start
        last = min(4 * stop, count)
        out[first:last] = convert(words[: last - first])


def sample_seed(
    generator: torch.Generator | None = None, device: torch.device | str | None = None
) -> Tensor:
    """One 64-bit seed from a torch generator: a 0-dim int64 tensor on ``device``.

    Every backend draws exactly this (one ``torch.randint`` over the whole int64 range) from the
    generator of the mask's device, so the generator's state after a draw is the same whichever
    kernel then computes the mask.

    Example:
        >>> first = sample_seed(torch.Generator().manual_seed(0))
        >>> bool(first == sample_seed(torch.Generator().manual_seed(0)))
        True
    """
    return torch.randint(
        -(2**63), 2**63 - 1, (), dtype=torch.int64, device=device, generator=generator
    )
