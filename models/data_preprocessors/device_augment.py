"""The data preprocessor that augments training batches on the device:
a worker only decodes (the pipeline ends in ``FuseOnDevice``); this crops,
resizes and flips the batch on the model's device (:mod:`.crop_resize`),
then does what ``ActionDataPreprocessor`` does. Batches without those
parameters go through ``ActionDataPreprocessor`` unchanged.
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
    recorded. Args are ``ActionDataPreprocessor``'s (``format_shape`` only
    ``'NCHW'``) and ``non_blocking``: copy to the device asynchronously
    (mmengine's ``cast_data``; default True)."""

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
        super().__init__(mean=mean, std=std, to_rgb=to_rgb,
                         to_float32=to_float32, blending=blending,
                         format_shape=format_shape)
        self._non_blocking = non_blocking

    def preprocess(self,
                   inputs: List[torch.Tensor],
                   data_samples: SampleList,
                   training: bool = False) -> Tuple:
        """Augment the videos that carry ``fuse_params``, then as
        ``ActionDataPreprocessor``."""
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
    """Crop, resize and flip ``(N, C, H, W)`` videos (sizes may differ) as
    their ``FuseOnDevice`` parameters say: float32 ``(B, N, C, h, w)``."""
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
    # Padded where sizes differ; each video's taps stay in its frames
    frames = stack_batch(list(inputs))
    index, weight = batch_taps(params)
    device = frames.device
    index = torch.from_numpy(index).to(device, non_blocking=True)
    weight = torch.from_numpy(weight).to(device, non_blocking=True)
    return crop_resize_flip(frames, index, weight, out_shapes.pop())


def check_frames_match_img_shape(inputs: Sequence[torch.Tensor],
                                 data_samples: SampleList) -> None:
    """Refuse uint8 frames whose size is not the pipeline's ``img_shape``
    (``FuseOnDevice``'s uncropped frames without ``fuse_params``)."""
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
