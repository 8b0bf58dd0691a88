"""CLIP ViT's patch embedding (a convolution with stride = kernel) as one
matrix product, which cuDNN's general convolution is slower at (on an H200,
a tenth of the bf16 ViT-B/16 encoder's time). Only the module's class
changes, not parameter names.
"""
import torch
import torch.nn.functional as F
from torch import nn


def is_patchify(conv: nn.Conv2d) -> bool:
    """Whether ``conv`` cuts its input into non-overlapping patches larger
    than a pixel (1x1 convolutions, as in CLIP's ResNets, are left alone).
    """
    return (tuple(conv.stride) == tuple(conv.kernel_size)
            and tuple(conv.kernel_size) != (1, 1)
            and tuple(conv.padding) == (0, 0)
            and tuple(conv.dilation) == (1, 1) and conv.groups == 1
            and conv.padding_mode == 'zeros')


class PatchEmbedding(nn.Conv2d):
    """``nn.Conv2d`` with ``stride == kernel_size``, computed as a matrix
    product; any other configuration runs ``nn.Conv2d.forward``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, D, H // p, W // p)`` patch embeddings of ``(N, C, H, W)``
        images, channels-last, so that CLIP's flattening copies nothing."""
        if not is_patchify(self) or x.dim() != 4:
            return super().forward(x)
        n, c, h, w = x.shape
        ph, pw = self.kernel_size
        gh, gw = h // ph, w // pw
        # A strided convolution ignores the rows and columns past the last
        # whole patch.
        x = x[:, :, :gh * ph, :gw * pw]
        patches = x.reshape(n, c, gh, ph, gw, pw).permute(0, 2, 4, 1, 3, 5)
        out = F.linear(
            patches.reshape(n * gh * gw, c * ph * pw),
            self.weight.reshape(self.out_channels, -1), self.bias)
        return out.view(n, gh, gw, -1).permute(0, 3, 1, 2)


def use_patch_embedding(module: nn.Module, enable: bool = True) -> int:
    """Switch every patchifying ``nn.Conv2d`` in ``module`` to
    :class:`PatchEmbedding` (or back with ``enable=False``); returns how
    many."""
    switched = 0
    for conv in module.modules():
        if type(conv) is nn.Conv2d and enable and is_patchify(conv):
            conv.__class__ = PatchEmbedding
            switched += 1
        elif isinstance(conv, PatchEmbedding) and not enable:
            conv.__class__ = nn.Conv2d
            switched += 1
    return switched
