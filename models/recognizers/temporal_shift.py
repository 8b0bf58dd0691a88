"""ActionCLIP's "Shift" in-network prompt (TSM, Lin et al. 2019): part of
the channels move one frame forward and part one back at the input of
every residual branch of CLIP's image encoder, so that it sees motion with
no new parameter. Forward hooks leave the state dict untouched; they act
only inside :meth:`TemporalShift.clips_of`.
"""
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


def shift_frames(x: torch.Tensor, num_segs: int, fold_div: int,
                 frame_dim: int) -> torch.Tensor:
    """Shift 1/fold_div of the channels one frame back and another
    1/fold_div one frame forward (zeros where no frame is), in clips of
    ``num_segs`` frames of ``(N*T, C, H, W)`` images (``frame_dim=0``) or
    ``(L, N*T, C)`` tokens (``frame_dim=1``)."""
    # (N, T, C, ...) clips
    if frame_dim == 0:
        clips = x.view(-1, num_segs, *x.shape[1:])
    else:
        length, frames, width = x.shape
        clips = x.view(length, frames // num_segs, num_segs,
                       width).permute(1, 2, 3, 0)
    fold = clips.shape[2] // fold_div
    out = torch.zeros_like(clips)  # the same memory layout as clips
    # frame t takes channels [0, fold) from frame t + 1 ...
    out[:, :-1, :fold] = clips[:, 1:, :fold]
    # ... channels [fold, 2 fold) from frame t - 1, and keeps the others
    out[:, 1:, fold:2 * fold] = clips[:, :-1, fold:2 * fold]
    out[:, :, 2 * fold:] = clips[:, :, 2 * fold:]
    if frame_dim == 0:
        return out.view_as(x)
    return out.permute(3, 0, 1, 2).view_as(x)


class TemporalShift:
    """Temporal shift on the residual branches of ``clip.visual``: before
    each ``ModifiedResNet`` bottleneck's first convolution, or after each
    ``VisionTransformer`` block's first layer norm (attention only);
    1/fold_div of the channels move each way."""

    def __init__(self, visual: nn.Module, fold_div: int = 8):
        self.fold_div = fold_div
        self.num_segs = 0  # 0: not a clip, no shift
        if hasattr(visual, 'layer1'):
            for layer in (visual.layer1, visual.layer2, visual.layer3,
                          visual.layer4):
                for block in layer:
                    block.conv1.register_forward_pre_hook(
                        self._shift_conv_input)
        elif hasattr(visual, 'transformer'):
            for block in visual.transformer.resblocks:
                block.ln_1.register_forward_hook(self._shift_ln_output)
        else:
            raise TypeError(
                f'temporal_shift needs a CLIP ModifiedResNet or '
                f'VisionTransformer, got {type(visual).__name__}')

    def _shift_conv_input(self, module, args):
        if self.num_segs > 1:
            return (shift_frames(args[0], self.num_segs, self.fold_div, 0), )
        return None

    def _shift_ln_output(self, module, args, output):
        if self.num_segs > 1:
            return shift_frames(output, self.num_segs, self.fold_div, 1)
        return None

    @contextmanager
    def clips_of(self, num_segs: int) -> Iterator[None]:
        """Within the block, images come in clips of ``num_segs`` frames."""
        previous, self.num_segs = self.num_segs, num_segs
        try:
            yield
        finally:
            self.num_segs = previous
