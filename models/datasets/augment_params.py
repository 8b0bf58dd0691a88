"""The training augmentation's parameters, drawn in the DataLoader workers
and applied on the device: MMAction2's ``lazy=True`` transforms draw what
they draw eagerly but only record the operation; :class:`FuseOnDevice`
keeps it for :class:`~models.data_preprocessors.DeviceAugmentDataPreprocessor`
instead of applying it as ``Fuse`` does.
"""
from typing import Dict

from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

#: The metainfo key of the parameters (``PackActionInputs``' meta_keys
#: must name it).
FUSE_PARAMS_KEY = 'fuse_params'

#: Interpolations the device path reproduces (cv2's INTER_LINEAR).
DEVICE_INTERPOLATIONS = ('bilinear', )


@TRANSFORMS.register_module()
class FuseOnDevice(BaseTransform):
    """Record the lazy operations for the data preprocessor instead of
    applying them: put it where ``Fuse`` would go, with
    ``'fuse_params'`` in ``PackActionInputs``' ``meta_keys``.

    It replaces ``lazy`` with ``fuse_params``: ``crop_bbox`` (``(left,
    top, right, bottom)`` in decoded pixels, rounded as ``Fuse`` rounds
    it), ``out_shape`` (``(height, width)``), ``flip``,
    ``flip_direction`` (None without a flip) and ``interpolation``.
    """

    def transform(self, results: Dict) -> Dict:
        """Record the fused operation of ``results['lazy']``."""
        if 'lazy' not in results:
            raise ValueError(
                'FuseOnDevice found no lazy operation: set lazy=True on the '
                'Resize, crop and Flip transforms before it')
        lazyop = results.pop('lazy')
        interpolation = lazyop['interpolation'] or 'bilinear'
        if interpolation not in DEVICE_INTERPOLATIONS:
            raise ValueError(
                f'FuseOnDevice reproduces {DEVICE_INTERPOLATIONS} '
                f'interpolation on the device, not {interpolation!r}: use '
                "interpolation='bilinear' in the lazy Resize, or Fuse")
        height, width = (int(s) for s in lazyop['original_shape'])
        frames = results.get('imgs')
        if frames is not None and len(frames) and \
                tuple(frames[0].shape[:2]) != (height, width):
            raise ValueError(
                f'FuseOnDevice: the frames are {frames[0].shape[:2]} but the '
                f'lazy operations started from {(height, width)}: a '
                'transform between them changed the pixels eagerly')
        # As Fuse crops: the box rounded, then numpy's slicing bounds.
        left, top, right, bottom = (
            int(v) for v in lazyop['crop_bbox'].round().astype(int))
        left, right = min(max(left, 0), width), min(max(right, 0), width)
        top, bottom = min(max(top, 0), height), min(max(bottom, 0), height)
        if right <= left or bottom <= top:
            raise ValueError(
                f'FuseOnDevice: empty crop {lazyop["crop_bbox"].tolist()} '
                f'of a {width}x{height} frame')
        flip = bool(lazyop['flip'])
        results[FUSE_PARAMS_KEY] = dict(
            crop_bbox=(left, top, right, bottom),
            out_shape=tuple(int(s) for s in results['img_shape']),
            flip=flip,
            flip_direction=lazyop['flip_direction'] if flip else None,
            interpolation=interpolation)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'
