"""The training augmentation's parameters: the K400 fine-tuning config's
lazy transforms draw exactly what the eager ones (the pipeline shipped
before) drew, and ``FuseOnDevice`` records the composed crop."""
import copy
import os
import random

import numpy as np
import pytest
from mmaction.registry import TRANSFORMS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from models.datasets.augment_params import FUSE_PARAMS_KEY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(
    ROOT, 'configs',
    'actionclip_vit-base-p32-res224-clip-pre_g8xb16_1x1x8_k400-rgb.py')
GEOMETRIC = ('Resize', 'RandomResizedCrop', 'MultiScaleCrop', 'CenterCrop',
             'Flip')
#: (height, width) of decoded videos: K400's 340x256 (the first Resize
#: keeps it), wider and portrait ones, larger and smaller ones (the first
#: Resize scales them).
SHAPES = [(256, 340), (256, 455), (340, 256), (480, 640), (48, 64)]
DRAWS = 200


@pytest.fixture(scope='module')
def steps():
    init_default_scope('mmaction')
    cfg = Config.fromfile(CONFIG)
    types = [step['type'] for step in cfg.train_pipeline]
    geometric = [s for s in cfg.train_pipeline if s['type'] in GEOMETRIC]
    # The config's pipeline: lazy geometry, then FuseOnDevice, whose
    # parameters PackActionInputs keeps.
    assert geometric and all(step['lazy'] for step in geometric)
    last = max(i for i, t in enumerate(types) if t in GEOMETRIC)
    assert types[last + 1] == 'FuseOnDevice'
    assert FUSE_PARAMS_KEY in cfg.train_pipeline[-1]['meta_keys']
    eager = [dict(copy.deepcopy(step), lazy=False) for step in geometric]
    return geometric, eager


def draw(steps, shape, seed):
    """Run shape-only transforms (no pixels: the draws depend on shapes
    alone); return what each step drew and the next random numbers."""
    random.seed(seed)
    np.random.seed(seed)
    results = dict(img_shape=shape, modality='RGB')
    record = []
    for step in steps:
        results = TRANSFORMS.build(step)(results)
        record.append((results['img_shape'],
                       tuple(results.get('crop_bbox', ())),
                       bool(results.get('flip', False)),
                       tuple(results.get('crop_quadruple', ()))))
    record.append((random.random(), float(np.random.rand())))
    return record, results


def test_lazy_draws_equal_eager_draws(steps):
    lazy, eager = steps
    flips = 0
    for shape in SHAPES:
        for seed in range(DRAWS):
            drawn_lazy, results = draw(lazy, shape, seed)
            drawn_eager, _ = draw(eager, shape, seed)
            # Every box, shape, flip and the random state after them.
            assert drawn_lazy == drawn_eager, (shape, seed)
            flips += drawn_lazy[-2][2]
            assert results['lazy']['flip'] == drawn_lazy[-2][2]
    # Flip(flip_ratio=0.5) did flip, and not always.
    assert 0.4 < flips / (len(SHAPES) * DRAWS) < 0.6


def eager_box_in_original(steps, drawn, shape):
    """Compose the eager crops (each in its input's pixels) into one box in
    the decoded frame's pixels; the first step is the short-side Resize."""
    assert steps[0]['type'] == 'Resize'
    resized_h, resized_w = drawn[0][0]
    left = top = 0.0
    width, height = resized_w, resized_h
    for step, (_, box, _, _) in zip(steps, drawn):
        if step['type'] in ('RandomResizedCrop', 'MultiScaleCrop',
                            'CenterCrop'):
            left, top = left + box[0], top + box[1]
            width, height = box[2] - box[0], box[3] - box[1]
    scale_x, scale_y = shape[1] / resized_w, shape[0] / resized_h
    return np.array([left * scale_x, top * scale_y, (left + width) * scale_x,
                     (top + height) * scale_y])


def test_fuse_params_are_the_composed_eager_crop(steps):
    lazy, eager = steps
    fuse = TRANSFORMS.build(dict(type='FuseOnDevice'))
    for shape in SHAPES:
        for seed in range(50):
            drawn, results = draw(lazy, shape, seed)
            box = results['lazy']['crop_bbox']
            np.testing.assert_allclose(
                box, eager_box_in_original(lazy, drawn, shape), atol=1e-3)
            params = fuse(results)[FUSE_PARAMS_KEY]
            assert 'lazy' not in results
            assert params['crop_bbox'] == tuple(box.round().astype(int))
            assert params['out_shape'] == (224, 224)
            assert params['flip'] == drawn[-2][2]
            assert params['flip_direction'] == (
                'horizontal' if params['flip'] else None)
            assert params['interpolation'] == 'bilinear'
            if shape == (256, 340):  # K400's size: integer crops throughout
                np.testing.assert_array_equal(params['crop_bbox'], box)


def lazy_results(shape=(48, 64), interpolation='bilinear'):
    results = dict(
        imgs=[np.zeros(shape + (3, ), np.uint8)], modality='RGB')
    for step in (dict(type='RandomResizedCrop', lazy=True),
                 dict(type='Resize', scale=(16, 16), keep_ratio=False,
                      interpolation=interpolation, lazy=True)):
        results = TRANSFORMS.build(step)(results)
    return results


def test_fuse_on_device_refusals():
    init_default_scope('mmaction')
    fuse = TRANSFORMS.build(dict(type='FuseOnDevice'))
    eager = TRANSFORMS.build(dict(type='RandomResizedCrop'))(
        dict(imgs=[np.zeros((48, 64, 3), np.uint8)], modality='RGB'))
    with pytest.raises(ValueError, match='lazy=True'):
        fuse(eager)
    with pytest.raises(ValueError, match="not 'bicubic'"):
        fuse(lazy_results(interpolation='bicubic'))
    results = lazy_results()
    results['imgs'] = [np.zeros((10, 10, 3), np.uint8)]
    with pytest.raises(ValueError, match='changed the pixels eagerly'):
        fuse(results)
    # Frames untouched, uint8, at their decoded size.
    results = fuse(lazy_results())
    assert results['imgs'][0].shape == (48, 64, 3)
    assert results['img_shape'] == (16, 16)
