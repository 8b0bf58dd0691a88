"""Temporal adapters: fuse per-frame CLIP features into one video feature."""
import torch
import torch.nn as nn
from clip.model import Transformer
from mmengine.model import BaseModule


class TransformerAdapter(BaseModule):
    """ActionCLIP's temporal transformer ("Transf" fusion): frame position
    embeddings, a CLIP residual attention transformer with a skip around
    it, then the mean over frames; names as in the released checkpoints.
    ``embed_dim`` is the frame features' width D, ``num_segs`` the frames
    T the position table holds."""

    def __init__(self, embed_dim: int, num_segs: int, num_layers: int = 6):
        super().__init__()
        if num_segs < 1 or num_layers < 0:
            raise ValueError(f'num_adapter_segs must be >= 1 (got {num_segs}) '
                             f'and num_adapter_layers >= 0 (got {num_layers})')
        self.num_segs = num_segs
        self.frame_position_embeddings = nn.Embedding(num_segs, embed_dim)
        self.transformer = Transformer(
            width=embed_dim, layers=num_layers, heads=max(1, embed_dim // 64))
        self.init_weights()

    def init_weights(self) -> None:
        """BERT-style initialisation, as the original ActionCLIP used."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            elif isinstance(module, nn.LayerNorm):
                nn.init.zeros_(module.bias)
                nn.init.ones_(module.weight)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for block in self.transformer.resblocks:
            # nn.MultiheadAttention keeps its input projection outside of a
            # Linear module, so it needs its own initialisation.
            nn.init.normal_(block.attn.in_proj_weight, mean=0.0, std=0.02)
            nn.init.zeros_(block.attn.in_proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` video features of ``(B, num_segs, D)`` frames."""
        if x.shape[1] != self.num_segs:
            raise ValueError(
                f'The adapter was built for {self.num_segs} frames per view '
                f'but got {x.shape[1]}; set SampleFrames(num_clips=...) to a '
                'multiple of num_adapter_segs')
        fused = x + self.frame_position_embeddings.weight.to(x.dtype)
        fused = self.transformer(fused.transpose(0, 1)).transpose(0, 1)
        return (fused.to(x.dtype) + x).mean(dim=1)


class MeanPoolAdapter(nn.Module):
    """Temporal mean pooling: no parameters, so plain CLIP weights give a
    zero-shot video model (``embed_dim``, ``num_layers`` unused)."""

    def __init__(self, embed_dim: int, num_segs: int, num_layers: int = 0):
        super().__init__()
        self.num_segs = num_segs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` mean of ``(B, T, D)`` frame features."""
        return x.mean(dim=1)


#: Names accepted by ``ActionClip(temporal_adapter=...)``.
ADAPTERS = dict(transformer=TransformerAdapter, mean=MeanPoolAdapter)


def build_adapter(name: str, embed_dim: int, num_segs: int,
                  num_layers: int) -> nn.Module:
    """The temporal adapter :data:`ADAPTERS` names ``name``."""
    if name not in ADAPTERS:
        raise ValueError(f'Unknown temporal_adapter {name!r}; choose one of '
                         f'{list(ADAPTERS)}')
    return ADAPTERS[name](embed_dim, num_segs, num_layers)
