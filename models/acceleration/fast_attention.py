"""CLIP's self-attention through ``F.scaled_dot_product_attention`` (flash
or memory-efficient kernels; the text encoder's causal mask as
``is_causal``). Only the modules' class changes, not parameter names.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def is_causal_mask(mask: Optional[torch.Tensor]) -> bool:
    """Whether ``mask`` is CLIP's additive causal mask (``-inf`` above the
    diagonal, 0 elsewhere)."""
    if mask is None or mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
        return False
    causal = torch.ones(mask.shape, dtype=torch.bool,
                        device=mask.device).triu(1)
    return bool(
        torch.isneginf(mask[causal]).all() and (mask[~causal] == 0).all())


class FastSelfAttention(nn.MultiheadAttention):
    """``nn.MultiheadAttention`` computing CLIP's sequence-first
    ``attn(x, x, x, need_weights=False, attn_mask=...)`` with
    ``F.scaled_dot_product_attention``; other calls go to the parent.
    ``causal`` (set by :func:`use_fast_attention` for checked masks) passes
    the mask as ``is_causal=True``, which lets the flash kernel run."""

    causal: bool = False

    def forward(self,
                query: torch.Tensor,
                key: torch.Tensor,
                value: torch.Tensor,
                key_padding_mask: Optional[torch.Tensor] = None,
                need_weights: bool = True,
                attn_mask: Optional[torch.Tensor] = None,
                average_attn_weights: bool = True,
                is_causal: bool = False
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Self-attention of ``query`` (see ``nn.MultiheadAttention``):
        the ``(L, N, E)`` output and None (no weights)."""
        if (need_weights or key_padding_mask is not None
                or not (query is key is value) or query.dim() != 3
                or self.batch_first or self.bias_k is not None
                or self.add_zero_attn or not self._qkv_same_embed_dim):
            return super().forward(
                query, key, value, key_padding_mask=key_padding_mask,
                need_weights=need_weights, attn_mask=attn_mask,
                average_attn_weights=average_attn_weights,
                is_causal=is_causal)
        length, batch, width = query.shape
        heads = self.num_heads
        qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)
        # (L, N, 3E) -> 3 x (N, H, L, E / H), the layout the kernels take.
        q, k, v = qkv.view(length, batch, 3, heads,
                           width // heads).permute(2, 1, 3, 0, 4).unbind(0)
        causal = attn_mask is not None and self.causal
        if causal:
            attn_mask = None
        elif attn_mask is not None and attn_mask.dtype == torch.bool:
            # True means "masked out" here, "may attend" to the kernel.
            attn_mask = ~attn_mask
        elif attn_mask is not None:
            attn_mask = attn_mask.to(q.dtype)
        out = F.scaled_dot_product_attention(
            q, k, v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=causal or is_causal)
        out = out.permute(2, 0, 1, 3).reshape(length, batch, width)
        return F.linear(out, self.out_proj.weight, self.out_proj.bias), None


def use_fast_attention(module: nn.Module, enable: bool = True) -> int:
    """Switch the ``attn`` of every residual block in ``module`` to
    :class:`FastSelfAttention` (or back with ``enable=False``); returns
    how many. Each block's ``attn_mask`` is checked here once: call again
    after changing one."""
    switched = 0
    for parent in module.modules():
        attn = getattr(parent, 'attn', None)
        if not isinstance(attn, nn.MultiheadAttention):
            continue
        if enable:
            attn.__class__ = FastSelfAttention
            attn.causal = is_causal_mask(getattr(parent, 'attn_mask', None))
        elif isinstance(attn, FastSelfAttention):
            attn.__class__ = nn.MultiheadAttention
            attn.__dict__.pop('causal', None)
        else:
            continue
        switched += 1
    return switched
