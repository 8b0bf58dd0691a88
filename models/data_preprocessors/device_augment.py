"""The data preprocessor that augments training batches on the device.

With a training pipeline whose geometric transforms are lazy and end in
:class:`~models.datasets.augment_params.FuseOnDevice`, a DataLoader worker
only decodes: each video arrives as its uint8 frames at their decoded size
with the crop box, output size and flip its transforms drew. This
preprocessor moves the frames to the model's device (asynchronously from
pinned memory), crops, resizes and flips the whole batch there in float32
(:mod:`.crop_resize`, OpenCV's bilinear resize), then does what
``ActionDataPreprocessor`` does: stacking, ``to_rgb``, normalisation,
blending. Batches without those parameters (validation and test
pipelines) go through ``ActionDataPreprocessor`` unchanged.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmaction.models.data_preprocessors import ActionDataPreprocessor
from mmaction.registry import MODELS
from mmaction.utils import SampleList
from mmengine.model import stack_batch

from models.data_preprocessors.crop_resize import batch_taps, crop_resize_flip
from models.datasets.augment_params import FUSE_PARAMS_KEY


@MODELS.register_module()
class DeviceAugmentDataPreprocessor(ActionDataPreprocessor):
    """``ActionDataPreprocessor`` that also crops, resizes and flips on the
    device what :class:`~models.datasets.augment_params.FuseOnDevice`
    recorded.

    Args:
        mean (Sequence[float], optional): Per-channel mean, 0-255 pixels.
        std (Sequence[float], optional): Per-channel standard deviation.
        to_rgb (bool): Reverse the channels. Defaults to False.
        to_float32 (bool): Without ``mean``/``std``, cast to float32.
            Defaults to True.
        blending (dict, optional): Batch blending (MixUp, CutMix) config.
        format_shape (str): Only ``'NCHW'`` (frames of each video stacked,
            the layout ``ActionClip`` reads). Defaults to ``'NCHW'``.
        non_blocking (bool): Copy to the device asynchronously (with the
            DataLoader's ``pin_memory=True`` the copy overlaps the work
            queued before it). Defaults to True.
    """

    def __init__(self,
                 mean: Optional[Sequence[Union[float, int]]] = None,
                 std: Optional[Sequence[Union[float, int]]] = None,
                 to_rgb: bool = False,
                 to_float32: bool = True,
                 blending: Optional[dict] = None,
                 format_shape: str = 'NCHW',
                 non_blocking: bool = True) -> None:
        if format_shape != 'NCHW':
            raise ValueError(
                'DeviceAugmentDataPreprocessor reads NCHW frames (FormatShape'
                f"(input_format='NCHW')), not format_shape={format_shape!r}")
        super().__init__(
            mean=mean,
            std=std,
            to_rgb=to_rgb,
            to_float32=to_float32,
            blending=blending,
            format_shape=format_shape)
        self._non_blocking = non_blocking

    def preprocess(self,
                   inputs: List[torch.Tensor],
                   data_samples: SampleList,
                   training: bool = False) -> Tuple:
        """Augment the videos that carry ``fuse_params``, then stack and
        normalise as ``ActionDataPreprocessor`` (blending when
        ``training``): ``(inputs, data_samples)``, inputs float32 ``(B, N,
        C, h, w)``."""
        inputs = list(inputs)
        params = [
            sample.metainfo.get(FUSE_PARAMS_KEY) for sample in data_samples
        ]
        if all(param is None for param in params):
            check_frames_match_img_shape(inputs, data_samples)
            return super().preprocess(inputs, data_samples, training)
        if any(param is None for param in params):
            raise ValueError(
                f'{sum(p is None for p in params)} of the {len(params)} '
                f"videos of a batch have no '{FUSE_PARAMS_KEY}': one "
                'pipeline made the batch, so its PackActionInputs must keep '
                f"'{FUSE_PARAMS_KEY}' for all or none")
        fused = augment_batch(inputs, params)
        return super().preprocess(list(fused.unbind(0)), data_samples,
                                  training)


def augment_batch(inputs: Sequence[torch.Tensor],
                  params: Sequence[dict]) -> torch.Tensor:
    """Crop, resize and flip a batch of videos (per video ``(N, C, H, W)``
    uint8 or float frames on one device, sizes may differ) as their
    ``FuseOnDevice`` parameters say: float32 ``(B, N, C, h, w)`` on the
    frames' device."""
    out_shapes = {tuple(param['out_shape']) for param in params}
    if len(out_shapes) != 1:
        raise ValueError(
            f'The videos of a batch resize to different sizes {out_shapes}; '
            'one pipeline gives one size (its last Resize)')
    lead_shapes = {tuple(frames.shape[:-2]) for frames in inputs}
    if len(lead_shapes) != 1:
        raise ValueError(
            'The videos of a batch have different numbers of frames or '
            f'channels {sorted(lead_shapes)}; check SampleFrames')
    for i, (frames, param) in enumerate(zip(inputs, params)):
        height, width = frames.shape[-2:]
        left, top, right, bottom = param['crop_bbox']
        if not (0 <= left < right <= width and 0 <= top < bottom <= height):
            raise ValueError(
                f'Video {i} of the batch: crop box {param["crop_bbox"]} is '
                f'not inside its {width}x{height} frames')
    # Padding (right and bottom) only when sizes differ; the taps of each
    # video stay within its own frames.
    frames = stack_batch(list(inputs))
    index, weight = batch_taps(params)
    device = frames.device
    index = torch.from_numpy(index).to(device, non_blocking=True)
    weight = torch.from_numpy(weight).to(device, non_blocking=True)
    return crop_resize_flip(frames, index, weight, out_shapes.pop())


def check_frames_match_img_shape(inputs: Sequence[torch.Tensor],
                                 data_samples: SampleList) -> None:
    """Refuse uint8 frames whose size is not the pipeline's ``img_shape``.

    That is what a pipeline ending in ``FuseOnDevice`` gives when
    ``PackActionInputs`` drops ``fuse_params``: uncropped frames, which
    must not reach the model as if they were augmented.
    """
    for frames, sample in zip(inputs, data_samples):
        img_shape = sample.metainfo.get('img_shape')
        if frames.dtype != torch.uint8 or img_shape is None:
            continue
        if tuple(frames.shape[-2:]) != tuple(int(s) for s in img_shape):
            raise ValueError(
                f'Frames of {tuple(frames.shape[-2:])} pixels where the '
                f'pipeline says img_shape={tuple(img_shape)}: with '
                "FuseOnDevice, PackActionInputs' meta_keys must include "
                f"'{FUSE_PARAMS_KEY}'")
