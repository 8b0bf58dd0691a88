"""Crop, resize and flip a batch of videos in one pass, as OpenCV's
bilinear resize of the cropped frames would (``Fuse`` with
``mmcv.imresize``): half-pixel positions clamped to the crop, no
antialiasing. The taps are computed on the host from each crop box, so
the batch may mix frame sizes and crop boxes.
"""
from typing import Dict, Sequence, Tuple

import numpy as np
import torch


def linear_taps(start, stop,
                out_size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source taps of resizing pixels ``[start, stop)`` (ints, or arrays
    of ``B``) of one axis to ``out_size``, as ``INTER_LINEAR``: ``(low,
    high, weight)``, each ``(..., out_size)``, the two source pixels and
    the weight of ``high`` (``low == high`` at the border)."""
    start = np.asarray(start, np.int64)[..., None]
    size = np.asarray(stop, np.int64)[..., None] - start
    position = (np.arange(out_size) + 0.5) * (size / out_size) - 0.5
    floor = np.floor(position)
    weight = (position - floor).astype(np.float32)
    floor = floor.astype(np.int64)
    low = np.clip(floor, 0, size - 1) + start
    high = np.clip(floor + 1, 0, size - 1) + start
    return low, high, weight


def batch_taps(params: Sequence[Dict]) -> Tuple[np.ndarray, np.ndarray]:
    """The taps of a batch (``FuseOnDevice``'s parameters per video, of
    one ``out_shape``), packed for one copy each: int64 ``(B, 2 * H + 2 *
    W)`` rows' low and high taps then the columns', and float32 ``(B, H +
    W)`` rows' weights then the columns'."""
    out_h, out_w = params[0]['out_shape']
    left, top, right, bottom = np.array([p['crop_bbox'] for p in params],
                                        np.int64).T
    rows = linear_taps(top, bottom, out_h)
    cols = linear_taps(left, right, out_w)
    # Flipping the resized crop reads its taps backwards.
    for taps, direction in ((rows, 'vertical'), (cols, 'horizontal')):
        flip = np.array([
            p['flip'] and (p['flip_direction'] or 'horizontal') == direction
            for p in params
        ])
        for array in taps:
            array[flip] = array[flip, ::-1]
    index = np.concatenate([rows[0], rows[1], cols[0], cols[1]], axis=1)
    weight = np.concatenate([rows[2], cols[2]], axis=1)
    return index, weight


def _blend_taps(frames: torch.Tensor, dim: int, taps: torch.Tensor,
                weight: torch.Tensor) -> torch.Tensor:
    """Frames interpolated along axis ``dim`` (non-negative) at per-video
    taps ``(B, 2 * K)`` with ``(B, K)`` weights: float32."""
    size = weight.shape[1]
    view = [frames.shape[0]] + [1] * (frames.dim() - 1)
    view[dim] = 2 * size
    shape = list(frames.shape)
    shape[dim] = 2 * size
    # One gather for both taps, in the frames' dtype (uint8 moves less)
    gathered = torch.gather(frames, dim, taps.view(view).expand(shape))
    low, high = gathered.float().split(size, dim)
    view[dim] = size
    return torch.lerp(low, high, weight.view(view))


def crop_resize_flip(frames: torch.Tensor, index: torch.Tensor,
                     weight: torch.Tensor, out_shape: Tuple[int, int]
                     ) -> torch.Tensor:
    """Crop, resize and flip ``(B, ..., H, W)`` frames (padded videos
    allowed) with :func:`batch_taps`' taps on their device: float32 ``(B,
    ..., height, width)`` of ``out_shape``."""
    out_h, out_w = out_shape
    row_taps, col_taps = index.split([2 * out_h, 2 * out_w], 1)
    row_weight, col_weight = weight.split([out_h, out_w], 1)
    row_dim, col_dim = frames.dim() - 2, frames.dim() - 1
    height, width = frames.shape[-2:]
    # Resampling is separable; the order with the smaller intermediate
    # moves fewer bytes (the results agree to float32 rounding).
    if height * out_w <= out_h * width:
        frames = _blend_taps(frames, col_dim, col_taps, col_weight)
        return _blend_taps(frames, row_dim, row_taps, row_weight)
    frames = _blend_taps(frames, row_dim, row_taps, row_weight)
    return _blend_taps(frames, col_dim, col_taps, col_weight)
