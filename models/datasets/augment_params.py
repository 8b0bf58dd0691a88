"""The training augmentation's parameters, drawn in the DataLoader workers
and applied on the device.

MMAction2's geometric transforms (``Resize``, ``RandomResizedCrop``,
``MultiScaleCrop``, ``CenterCrop``, ``Flip``) have a ``lazy=True`` mode:
they draw exactly what they draw eagerly (the same calls to ``random`` and
``np.random``, from the same image shape) but only record the operation in
``results['lazy']``: one crop box in the original frame's pixels, the
output size, the flip. MMAction2's ``Fuse`` then applies that in numpy.
:class:`FuseOnDevice` takes ``Fuse``'s place: it records the same
operation in ``results['fuse_params']`` and leaves the decoded uint8
frames as they are, so that a worker only decodes, and
:class:`~models.data_preprocessors.DeviceAugmentDataPreprocessor` crops,
resizes and flips the whole batch on the model's device.
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
    applying them (what ``Fuse`` would do, deferred).

    Put it where ``Fuse`` would go: after ``Resize``/``RandomResizedCrop``/
    ``MultiScaleCrop``/``CenterCrop``/``Flip`` with ``lazy=True``, before
    ``FormatShape`` and ``PackActionInputs``, whose ``meta_keys`` must
    include ``'fuse_params'``. The frames stay uint8 at their decoded size.

    Required keys are ``imgs``, ``img_shape`` and ``lazy``; added is
    ``fuse_params``, a dict of plain Python values:

    * ``crop_bbox``: ``(left, top, right, bottom)`` in the decoded frame's
      pixels, rounded as ``Fuse`` rounds it;
    * ``out_shape``: ``(height, width)`` after the resize;
    * ``flip``: whether to flip; ``flip_direction``: ``'horizontal'`` or
      ``'vertical'`` (None without a flip);
    * ``interpolation``: ``'bilinear'``.

    ``lazy`` is removed (as ``Fuse`` removes it).
    """

    def transform(self, results: Dict) -> Dict:
        """Record the fused operation of ``results['lazy']``: ``results``
        with ``fuse_params`` and without ``lazy``."""
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
        out_h, out_w = (int(s) for s in results['img_shape'])
        flip = bool(lazyop['flip'])
        results[FUSE_PARAMS_KEY] = dict(
            crop_bbox=(left, top, right, bottom),
            out_shape=(out_h, out_w),
            flip=flip,
            flip_direction=lazyop['flip_direction'] if flip else None,
            interpolation=interpolation)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'
