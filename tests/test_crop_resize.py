"""The device crop-resize-flip against OpenCV's resize of the cropped frames
(what MMAction2's ``Fuse`` runs), on random pixels and boxes.

The bound: OpenCV resizes uint8 frames in fixed point (11-bit weights)
and rounds to uint8; the device path blends in float32 with exact weights.
Rounding alone is up to 0.5; the weights' quantisation adds at most
255 x 2^-11 per axis, 0.25 for both: below 0.75 in all, so 1.0 is asserted
(a wrong tap, a one-pixel shift or a wrong flip on random pixels is off by
tens).
"""
import cv2
import numpy as np
import pytest
import torch

from models.data_preprocessors.crop_resize import (batch_taps,
                                                   crop_resize_flip,
                                                   linear_taps)

BOUND = 1.0


def opencv_fuse(frames: np.ndarray, param: dict) -> np.ndarray:
    """``Fuse``'s crop, ``cv2.resize`` INTER_LINEAR and flip, per frame of
    ``(N, H, W, C)`` frames."""
    left, top, right, bottom = param['crop_bbox']
    out_h, out_w = param['out_shape']
    out = np.stack([
        cv2.resize(
            frame[top:bottom, left:right], (out_w, out_h),
            interpolation=cv2.INTER_LINEAR) for frame in frames
    ])
    if param['flip']:
        axis = 1 if param['flip_direction'] == 'vertical' else 2
        out = np.flip(out, axis)
    return out


def device_fuse(videos, params) -> np.ndarray:
    """The device path on the CPU, ``(B, N, H, W, C)`` float32."""
    from mmengine.model import stack_batch
    frames = stack_batch([
        torch.from_numpy(np.ascontiguousarray(v)).permute(0, 3, 1, 2)
        for v in videos
    ])
    index, weight = batch_taps(params)
    out = crop_resize_flip(frames, torch.from_numpy(index),
                           torch.from_numpy(weight), params[0]['out_shape'])
    return out.permute(0, 1, 3, 4, 2).numpy()


def random_param(rng, height, width, out_shape):
    box_w = int(rng.integers(1, width + 1))
    box_h = int(rng.integers(1, height + 1))
    left = int(rng.integers(0, width - box_w + 1))
    top = int(rng.integers(0, height - box_h + 1))
    flip = bool(rng.integers(0, 2))
    return dict(
        crop_bbox=(left, top, left + box_w, top + box_h),
        out_shape=out_shape,
        flip=flip,
        flip_direction=str(rng.choice(['horizontal', 'vertical']))
        if flip else None)


def test_taps_are_opencv_half_pixel_positions():
    # Downscaling 4 -> 2 reads pixels (0, 1) and (2, 3) half and half.
    low, high, weight = linear_taps(10, 14, 2)
    assert low.tolist() == [10, 12] and high.tolist() == [11, 13]
    np.testing.assert_allclose(weight, [0.5, 0.5])
    # Upscaling 2 -> 4: the borders replicate the crop's edge pixels,
    # never a pixel outside the crop.
    low, high, weight = linear_taps(5, 7, 4)
    assert low.min() >= 5 and high.max() <= 6
    assert (low[0], high[0]) == (5, 5) and (low[-1], high[-1]) == (6, 6)
    np.testing.assert_allclose(weight[1:3], [0.25, 0.75])
    # The same size is a copy.
    low, high, weight = linear_taps(3, 9, 6)
    assert low.tolist() == list(range(3, 9)) and not weight.any()


@pytest.mark.parametrize('out_shape', [(224, 224), (32, 48)])
def test_matches_opencv_on_random_boxes(out_shape):
    rng = np.random.default_rng(0)
    sizes = [(256, 340), (256, 455), (48, 64), (31, 17), (300, 256)]
    for trial in range(4):
        videos, params = [], []
        for height, width in sizes:
            videos.append(
                rng.integers(0, 256, (2, height, width, 3), dtype=np.uint8))
            params.append(random_param(rng, height, width, out_shape))
        got = device_fuse(videos, params)
        for video, param, out in zip(videos, params, got):
            expected = opencv_fuse(video, param).astype(np.float32)
            diff = np.abs(out - expected).max()
            assert diff <= BOUND, (trial, param, diff)


def test_flips_are_the_mirrored_output():
    rng = np.random.default_rng(1)
    video = rng.integers(0, 256, (1, 40, 60, 3), dtype=np.uint8)
    plain = dict(crop_bbox=(5, 3, 50, 37), out_shape=(20, 30), flip=False,
                 flip_direction=None)
    flips = [dict(plain, flip=True, flip_direction=d)
             for d in ('horizontal', 'vertical')]
    base, horizontal, vertical = device_fuse([video] * 3, [plain] + flips)
    np.testing.assert_array_equal(horizontal, base[:, :, ::-1])
    np.testing.assert_array_equal(vertical, base[:, ::-1])


def test_float_frames_and_extra_dims():
    """Float frames and more leading dimensions than one video's frames."""
    rng = np.random.default_rng(2)
    frames = torch.from_numpy(rng.random((2, 3, 2, 3, 20, 24),
                                         dtype=np.float32))
    params = [random_param(rng, 20, 24, (10, 12)) for _ in range(2)]
    index, weight = batch_taps(params)
    out = crop_resize_flip(frames, torch.from_numpy(index),
                           torch.from_numpy(weight), (10, 12))
    assert out.shape == (2, 3, 2, 3, 10, 12) and out.dtype == torch.float32
    for i, param in enumerate(params):
        video = frames[i].reshape(-1, 20, 24).numpy()
        expected = opencv_fuse(video, param)
        np.testing.assert_allclose(
            out[i].reshape(-1, 10, 12).numpy(), expected, atol=1e-5)
