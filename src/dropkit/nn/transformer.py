"""A reference transformer encoder with every dropout location exposed and adjustable."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, cast, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dropkit import rng
from dropkit._validation import Validated, check_bool, check_positive_int, check_probability, one_of
from dropkit.nn._base import RandomModule
from dropkit.nn.drop_path import DropPath
from dropkit.nn.dropout import Dropout
from dropkit.rules import depth_rates

#: The feed-forward non-linearity of :class:`TransformerEncoderLayer`.
TransformerActivation = Literal["gelu", "relu"]
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"gelu": F.gelu, "relu": F.relu}


def _attention_mask(
    attn_mask: Tensor | None, key_padding_mask: Tensor | None, dtype: torch.dtype
) -> Tensor | None:
    """Merge torch-style masks (bool True = not allowed, or additive floats) for SDPA."""
    masks = []
    if attn_mask is not None:
        masks.append(attn_mask)
    if key_padding_mask is not None:
        masks.append(key_padding_mask[:, None, None, :])
    if not masks:
        return None
    if all(mask.dtype == torch.bool for mask in masks):
        allowed = ~masks[0]
        for mask in masks[1:]:
            allowed = allowed & ~mask
        return allowed
    total: Tensor | None = None
    for mask in masks:
        if mask.dtype == torch.bool:
            mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
                mask, float("-inf")
            )
        total = mask.to(dtype) if total is None else total + mask.to(dtype)
    return total


class TransformerEncoderLayer(RandomModule):
    """A transformer encoder block with attention, residual and activation dropout, and DropPath.

    Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (https://arxiv.org/abs/1706.03762);
    stochastic depth from Huang et al. 2016 (https://arxiv.org/abs/1603.09382). Dropout locations:

    - ``attention_dropout`` (a float): on the attention weights, through
      :func:`torch.nn.functional.scaled_dot_product_attention`'s ``dropout_p``, read at every call
      and passed only in training: evaluation never drops attention weights.
    - ``attention_residual_dropout``, ``feedforward_residual_dropout`` (:class:`dropkit.Dropout`):
      on each sub-layer's output before it joins the residual stream.
    - ``activation_dropout`` (:class:`dropkit.Dropout`): inside the feed-forward network, after its
      non-linearity.
    - ``drop_path`` (:class:`dropkit.DropPath`): drops each sub-layer's whole branch per sample.

    Every rate can be changed after construction: ``layer.attention_dropout = 0.2`` (validated),
    ``layer.attention_residual_dropout.p = 0.2`` and so on.

    Args:
        d_model: the model width.
        nhead: the number of attention heads; must divide ``d_model``.
        dim_feedforward: the feed-forward network's hidden width.
        attention_dropout: the rate on attention weights, in [0, 1].
        residual_dropout: the rate on both sub-layer outputs, in [0, 1].
        activation_dropout: the rate inside the feed-forward network, in [0, 1].
        drop_path: the stochastic depth rate of both branches, in [0, 1].
        norm_first: pre-norm ``x + f(norm(x))`` when True, post-norm ``norm(x + f(x))`` if False.
        batch_first: ``(N, L, E)`` input when True, ``(L, N, E)`` when False.
        activation: ``"gelu"`` or ``"relu"``.
        layer_norm_eps: the epsilon of both layer norms.
        generator: where every dropout site of the block draws from: None (the global
            generator), a ``torch.Generator``, or a :mod:`dropkit.rng` stream (its name or a
            :class:`dropkit.rng.Stream`). Assigning ``layer.generator`` sets every site; a
            site's own ``generator`` may then be set apart (the attention weights use the
            layer's).

    Shape:
        - Input: ``(N, L, E)`` (or ``(L, N, E)``). Output: same shape.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> layer = dk.nn.TransformerEncoderLayer(16, 4, 32, attention_dropout=0.1)
        >>> x = torch.randn(2, 5, 16)
        >>> layer(x).shape
        torch.Size([2, 5, 16])
        >>> layer.attention_dropout = 0.2  # read at call time
        >>> _ = layer.eval()
        >>> torch.equal(layer(x), layer(x))  # no dropout of any kind in evaluation
        True
    """

    attention_dropout = Validated(
        check_probability, "The rate on attention weights, given to SDPA in training only."
    )
    activation = Validated[TransformerActivation](
        one_of(tuple(get_args(TransformerActivation))), "The feed-forward non-linearity."
    )
    norm_first = Validated(check_bool, "Pre-norm when True, post-norm when False.")
    batch_first = Validated(check_bool, "(N, L, E) input when True, (L, N, E) when False.")

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        *,
        attention_dropout: float = 0.1,
        residual_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        drop_path: float = 0.0,
        norm_first: bool = True,
        batch_first: bool = True,
        activation: TransformerActivation = "gelu",
        layer_norm_eps: float = 1e-5,
        generator: rng.GeneratorSource = None,
    ) -> None:
        super().__init__()
        d_model = check_positive_int(d_model, "d_model")
        nhead = check_positive_int(nhead, "nhead")
        dim_feedforward = check_positive_int(dim_feedforward, "dim_feedforward")
        if d_model % nhead:
            raise ValueError(f"nhead must divide d_model, got d_model={d_model}, nhead={nhead}")
        self.d_model, self.nhead = d_model, nhead
        self.norm_first, self.batch_first = norm_first, batch_first
        self.activation = activation
        self.attention_dropout = attention_dropout
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.attention_residual_dropout = Dropout(residual_dropout)
        self.feedforward_residual_dropout = Dropout(residual_dropout)
        self.activation_dropout = Dropout(activation_dropout)
        self.drop_path = DropPath(drop_path)
        self.generator = generator

    def generator_sites(self) -> Iterable[RandomModule]:
        """The dropout modules that follow ``layer.generator`` (attention reads it directly)."""
        return (
            self.attention_residual_dropout,
            self.feedforward_residual_dropout,
            self.activation_dropout,
            self.drop_path,
        )

    def _attention(self, x: Tensor, mask: Tensor | None, is_causal: bool) -> Tensor:
        batch, length, _ = x.shape
        head_dim = self.d_model // self.nhead
        qkv = self.in_proj(x).view(batch, length, 3, self.nhead, head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        dropout_p = self.attention_dropout if self.training else 0.0
        # SDPA takes no generator: a stream or generator seeds the global one for the call.
        with rng.stream(self.generator if dropout_p > 0.0 else None, x.device):
            attended = F.scaled_dot_product_attention(
                query,
                key,
                value,
                attn_mask=mask,
                dropout_p=dropout_p,
                is_causal=is_causal and mask is None,
            )
        return self.out_proj(attended.transpose(1, 2).reshape(batch, length, self.d_model))

    def _feedforward(self, x: Tensor) -> Tensor:
        hidden = self.activation_dropout(ACTIVATIONS[self.activation](self.linear1(x)))
        return self.linear2(hidden)

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        """Run the block. Masks follow ``torch.nn.TransformerEncoderLayer``: a boolean True marks a
        position that may not be attended to, a float mask is added to the attention scores."""
        x = src if self.batch_first else src.transpose(0, 1)
        if is_causal and (src_mask is not None or src_key_padding_mask is not None):
            length = x.shape[1]
            causal = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
            src_mask = causal if src_mask is None else _merge_causal(src_mask, causal)
        mask = _attention_mask(src_mask, src_key_padding_mask, x.dtype)

        def attention_branch(inp: Tensor) -> Tensor:
            out = self._attention(inp, mask, is_causal)
            return self.drop_path(self.attention_residual_dropout(out))

        def feedforward_branch(inp: Tensor) -> Tensor:
            return self.drop_path(self.feedforward_residual_dropout(self._feedforward(inp)))

        if self.norm_first:
            x = x + attention_branch(self.norm1(x))
            x = x + feedforward_branch(self.norm2(x))
        else:
            x = self.norm1(x + attention_branch(x))
            x = self.norm2(x + feedforward_branch(x))
        return x if self.batch_first else x.transpose(0, 1)

    def extra_repr(self) -> str:
        return self.with_generator(
            f"d_model={self.d_model}, nhead={self.nhead}, "
            f"attention_dropout={self.attention_dropout}, norm_first={self.norm_first}, "
            f"batch_first={self.batch_first}, activation={self.activation!r}"
        )


def _merge_causal(mask: Tensor, causal: Tensor) -> Tensor:
    if mask.dtype == torch.bool:
        return mask | causal
    return mask.masked_fill(causal, float("-inf"))


class TransformerEncoder(RandomModule):
    """A stack of :class:`TransformerEncoderLayer` with embedding dropout and depth-linear DropPath.

    Vaswani et al. 2017 (https://arxiv.org/abs/1706.03762) apply dropout to the sum of embeddings
    and positions before the first block; Huang et al. 2016 (https://arxiv.org/abs/1603.09382) let
    the stochastic depth rate rise linearly with depth, here by :func:`dropkit.depth_rates` from
    0 at the first block to ``drop_path`` at the last. With ``norm_first`` a final layer norm closes
    the stack, as pre-norm models do.

    Args:
        layer_count: the number of blocks, >= 1.
        d_model, nhead, dim_feedforward: as :class:`TransformerEncoderLayer`.
        attention_dropout, residual_dropout, activation_dropout: every block's rates.
        embedding_dropout: the rate on the input embeddings (:class:`dropkit.Dropout` named
            ``embedding_dropout``), in [0, 1].
        drop_path: the last block's stochastic depth rate, in [0, 1].
        norm_first, batch_first, activation, layer_norm_eps: as :class:`TransformerEncoderLayer`.
        generator: where every dropout site of the stack draws from (see
            :class:`TransformerEncoderLayer`); assigning ``encoder.generator`` sets them all.

    Shape:
        - Input: ``(N, L, E)`` embeddings (positions already added), or ``(L, N, E)``. Output: same.

    Example:
        >>> import torch
        >>> import dropkit as dk
        >>> encoder = dk.nn.TransformerEncoder(3, 16, 4, 32, drop_path=0.2)
        >>> [layer.drop_path.p for layer in encoder.layers]
        [0.0, 0.1, 0.2]
        >>> encoder(torch.randn(2, 7, 16)).shape
        torch.Size([2, 7, 16])
    """

    def __init__(
        self,
        layer_count: int,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        *,
        attention_dropout: float = 0.1,
        residual_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        embedding_dropout: float = 0.1,
        drop_path: float = 0.0,
        norm_first: bool = True,
        batch_first: bool = True,
        activation: TransformerActivation = "gelu",
        layer_norm_eps: float = 1e-5,
        generator: rng.GeneratorSource = None,
    ) -> None:
        super().__init__()
        layer_count = check_positive_int(layer_count, "layer_count")
        self.embedding_dropout = Dropout(embedding_dropout)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(
                d_model,
                nhead,
                dim_feedforward,
                attention_dropout=attention_dropout,
                residual_dropout=residual_dropout,
                activation_dropout=activation_dropout,
                drop_path=rate,
                norm_first=norm_first,
                batch_first=batch_first,
                activation=activation,
                layer_norm_eps=layer_norm_eps,
            )
            for rate in depth_rates(drop_path, layer_count)
        )
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps) if norm_first else nn.Identity()
        self.generator = generator

    def generator_sites(self) -> Iterable[RandomModule]:
        """The embedding dropout and every layer: they follow ``encoder.generator``."""
        return (self.embedding_dropout, *(cast(RandomModule, layer) for layer in self.layers))

    def extra_repr(self) -> str:
        return "" if self.generator is None else f"generator={rng.describe(self.generator)}"

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        """Run every block; masks as :meth:`TransformerEncoderLayer.forward`."""
        x = self.embedding_dropout(src)
        for layer in self.layers:
            x = layer(x, mask, src_key_padding_mask, is_causal)
        return self.norm(x)
