"""``DeviceAugmentDataPreprocessor`` with the K400 fine-tuning config's
pipeline: the device path against MMAction2's CPU transforms on the same
draws, batches of mixed sizes, the val/test path, and one training step.

Bounds, in 0-255 pixel levels (compared after both paths' normalisation,
so divided by CLIP's std there):

* against MMAction2's ``Fuse`` (one crop and one OpenCV resize on the CPU,
  the same operation): ``FUSE_BOUND`` = 1, OpenCV's uint8 rounding and
  11-bit weights (tests/test_crop_resize.py);
* against the eager pipeline shipped before (resize the frame, crop twice,
  resize the crop): for K400's 340x256 frames the first resize keeps the
  size and the crops are whole pixels, so it is the same operation:
  ``FUSE_BOUND`` again. For frames the first resize scales, the eager
  pipeline resamples twice where the device resamples once (MMAction2's
  lazy mode, by design): on random pixels that differs by up to about
  200 levels (no bound is claimed there, only against ``Fuse``); on
  decoded videos it is a blur's difference, 2.9 to 7.0 levels on the
  mean in 12 draws of noisy-textured test videos (most at edges), so
  ``VIDEO_MEAN_BOUND`` = 8 on the mean. (A one-pixel shift or a wrong
  flip costs tens of levels.) K400's videos as distributed have a short
  side of 256, which the first resize keeps: the first case.
"""
import copy
import os
import os.path as osp
import random

import numpy as np
import pytest
import torch
from conftest import TINY_ARCH, write_video
from mmaction.registry import MODELS
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import init_default_scope

from models.data_preprocessors.device_augment import \
    DeviceAugmentDataPreprocessor
from models.datasets.augment_params import FUSE_PARAMS_KEY
from models.recognizers.actionclip import CLIP_MEAN, CLIP_STD

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = [
    osp.join(ROOT, 'configs', f'actionclip_vit-base-{arch}-res224-clip-pre_'
             f'g8xb16{amp}_1x1x8_k400-rgb.py') for arch in ('p32', 'p16')
    for amp in ('', '-amp')
]
READING = ('VideoInit', 'SampleFrames', 'VideoDecode')
FUSE_BOUND = 1.0
VIDEO_MEAN_BOUND = 8.0
STD = torch.tensor(CLIP_STD).view(-1, 1, 1)


@pytest.fixture(scope='module')
def cfg():
    init_default_scope('mmaction')
    return Config.fromfile(CONFIGS[0])


def pipelines(cfg, reading=False):
    """The config's training pipeline (device), the eager one shipped
    before it, and the same lazy one with MMAction2's CPU ``Fuse``."""
    steps = [s for s in cfg.train_pipeline
             if reading or s['type'] not in READING]
    device = copy.deepcopy(steps)
    eager, fuse = [], []
    for step in copy.deepcopy(steps):
        if step['type'] == 'FuseOnDevice':
            fuse.append(dict(type='Fuse'))
            continue
        if step['type'] == 'PackActionInputs':
            step.pop('meta_keys')
        fuse.append(copy.deepcopy(step))
        step.pop('lazy', None)
        eager.append(step)
    return [Compose(p) for p in (device, eager, fuse)]


def run(pipeline, results, seed):
    random.seed(seed)
    np.random.seed(seed)
    return pipeline(copy.deepcopy(results))


def preprocess(preprocessor, packed, training=True):
    data = dict(inputs=[p['inputs'] for p in packed],
                data_samples=[p['data_samples'] for p in packed])
    with torch.no_grad():
        return preprocessor(data, training=training)['inputs']


def clip_preprocessors(cfg):
    device = MODELS.build(cfg.model.data_preprocessor)
    plain = MODELS.build(
        dict(type='ActionDataPreprocessor', mean=list(CLIP_MEAN),
             std=list(CLIP_STD), format_shape='NCHW'))
    return device, plain


def compare(cfg, videos, seeds):
    """Per video: levels between the device path and the eager and Fuse
    CPU pipelines, on the same draws, all videos in one batch."""
    device_pipe, eager_pipe, fuse_pipe = pipelines(
        cfg, reading='filename' in videos[0])
    device, plain = clip_preprocessors(cfg)
    packed = [run(device_pipe, v, s) for v, s in zip(videos, seeds)]
    assert all(p['inputs'].dtype == torch.uint8 for p in packed)
    got = preprocess(device, packed)
    eager = preprocess(plain, [run(eager_pipe, v, s)
                               for v, s in zip(videos, seeds)])
    fused = preprocess(plain, [run(fuse_pipe, v, s)
                               for v, s in zip(videos, seeds)])
    assert got.shape == eager.shape == fused.shape
    assert got.shape[-2:] == (224, 224) and got.dtype == torch.float32
    return ((got - eager).abs() * STD, (got - fused).abs() * STD, packed)


def frames_results(rng, height, width, smooth=False):
    frames = rng.integers(0, 256, (8, height, width, 3), dtype=np.uint8)
    if smooth:
        import cv2
        frames = np.stack([cv2.GaussianBlur(f, (0, 0), 3) for f in frames])
    return dict(imgs=list(frames), modality='RGB', num_clips=8, clip_len=1,
                label=0)


def test_random_frames_match_the_cpu_pipelines(cfg):
    rng = np.random.default_rng(0)
    # K400's size twice, then sizes the first Resize scales (one of them
    # up): one batch of mixed sizes.
    shapes = [(256, 340), (256, 340), (120, 160), (300, 500)]
    videos = [frames_results(rng, *shape) for shape in shapes]
    for seeds in ([0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]):
        to_eager, to_fuse, packed = compare(cfg, videos, seeds)
        assert float(to_fuse.max()) <= FUSE_BOUND, seeds
        assert float(to_eager[:2].max()) <= FUSE_BOUND, seeds
        # The frames crossed as decoded, uint8, and the draws vary.
        assert packed[0]['inputs'].shape == (8, 3, 256, 340)
        assert packed[2]['inputs'].shape == (8, 3, 120, 160)
    boxes = {
        run(pipelines(cfg)[0], videos[0],
            s)['data_samples'].metainfo[FUSE_PARAMS_KEY]['crop_bbox']
        for s in range(10)
    }
    assert len(boxes) > 5


@pytest.fixture(scope='module')
def decoded_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('device_augment')
    return [
        write_video(str(folder / f'{w}x{h}.mp4'), num_frames=10,
                    size=(w, h), seed=i)
        for i, (w, h) in enumerate([(340, 256), (160, 120), (640, 480)])
    ]


def test_decoded_videos_match_the_cpu_pipelines(cfg, decoded_videos):
    videos = [dict(filename=path, label=0, start_index=0, modality='RGB')
              for path in decoded_videos]
    for seeds in ([0, 1, 2], [3, 4, 5]):
        to_eager, to_fuse, _ = compare(cfg, videos, seeds)
        assert float(to_fuse.max()) <= FUSE_BOUND
        assert float(to_eager[0].max()) <= FUSE_BOUND  # 340x256
        for resized in to_eager[1:]:
            assert float(resized.mean()) <= VIDEO_MEAN_BOUND


def test_batch_of_mixed_sizes_is_each_video_alone(cfg):
    rng = np.random.default_rng(1)
    device_pipe = pipelines(cfg)[0]
    device = clip_preprocessors(cfg)[0]
    shapes = [(256, 340), (120, 160), (256, 455), (340, 256), (256, 340)]
    packed = [
        run(device_pipe, frames_results(rng, *shape), seed)
        for seed, shape in enumerate(shapes)
    ]
    batch = preprocess(device, packed)
    assert batch.shape == (len(shapes), 8, 3, 224, 224)
    for i, one in enumerate(packed):
        alone = preprocess(device, [one])
        torch.testing.assert_close(batch[i:i + 1], alone, rtol=0, atol=1e-5)


def test_val_and_test_batches_are_action_data_preprocessor(
        cfg, decoded_videos):
    device, plain = clip_preprocessors(cfg)
    assert isinstance(device, DeviceAugmentDataPreprocessor)
    test_pipe = Compose(cfg.val_pipeline)
    packed = [
        test_pipe(dict(filename=p, label=0, start_index=0, modality='RGB'))
        for p in decoded_videos
    ]
    for training in (False, True):
        assert torch.equal(
            preprocess(device, packed, training),
            preprocess(plain, packed, training))
    # Float inputs of any size, as the tools pass them.
    inputs = [torch.rand(8, 3, 40, 30) * 255 for _ in range(2)]
    packed = [dict(inputs=x, data_samples=s['data_samples'])
              for x, s in zip(inputs, packed)]
    assert torch.equal(
        preprocess(device, packed), preprocess(plain, packed))


def test_refusals(cfg):
    device_pipe = pipelines(cfg)[0]
    device = clip_preprocessors(cfg)[0]
    rng = np.random.default_rng(2)
    packed = [run(device_pipe, frames_results(rng, 64, 80), s)
              for s in range(2)]
    # A pipeline whose PackActionInputs dropped the parameters.
    dropped = copy.deepcopy(packed)
    for one in dropped:
        one['data_samples'].set_metainfo({FUSE_PARAMS_KEY: None})
    with pytest.raises(ValueError, match='half|1 of the 2'):
        preprocess(device, [packed[0], dropped[1]])
    bare = [dict(p, data_samples=type(p['data_samples'])(
        metainfo=dict(img_shape=(224, 224)))) for p in packed]
    with pytest.raises(ValueError, match="meta_keys must include"):
        preprocess(device, bare)
    # A crop box outside the frames.
    outside = copy.deepcopy(packed)
    params = dict(outside[0]['data_samples'].metainfo[FUSE_PARAMS_KEY],
                  crop_bbox=(0, 0, 81, 64))
    outside[0]['data_samples'].set_metainfo({FUSE_PARAMS_KEY: params})
    with pytest.raises(ValueError, match='not inside its 80x64'):
        preprocess(device, outside)
    with pytest.raises(ValueError, match='NCHW'):
        DeviceAugmentDataPreprocessor(format_shape='NCTHW')


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_configs_augment_on_the_device(path):
    config = Config.fromfile(path)
    preprocessor = config.model.data_preprocessor
    assert preprocessor.type == 'DeviceAugmentDataPreprocessor'
    assert tuple(preprocessor.mean) == CLIP_MEAN
    assert tuple(preprocessor.std) == CLIP_STD
    types = [step['type'] for step in config.train_pipeline]
    assert 'FuseOnDevice' in types and 'Fuse' not in types
    assert FUSE_PARAMS_KEY in config.train_pipeline[-1]['meta_keys']
    # Validation and test keep the CPU pipeline (no lazy steps).
    for pipeline in (config.val_pipeline, config.test_pipeline):
        assert not any(step.get('lazy') for step in pipeline)


def test_training_step_with_the_config(cfg, decoded_videos, tmp_path):
    """The config's training dataloader and model (a tiny CLIP for its
    ViT-B/32) take one optimiser step on the CPU."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner
    ann_file = tmp_path / 'train.txt'
    ann_file.write_text(''.join(
        f'{osp.basename(p)} {i}\n' for i, p in enumerate(decoded_videos)))
    loader = copy.deepcopy(cfg.train_dataloader)
    loader.update(batch_size=3, num_workers=0, persistent_workers=False)
    loader.dataset.update(ann_file=str(ann_file),
                          data_prefix=dict(video=osp.dirname(
                              decoded_videos[0])))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.update(
        clip_arch=dict(TINY_ARCH, image_resolution=224,
                       vision_patch_size=32),
        pretrained=False, num_adapter_layers=1,
        labels_or_label_file=['a', 'b', 'c'], template='a video of {}')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    assert isinstance(model.data_preprocessor, DeviceAugmentDataPreprocessor)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    data = next(iter(Runner.build_dataloader(loader, seed=0)))
    assert {tuple(x.shape) for x in data['inputs']} <= {
        (8, 3, 256, 340), (8, 3, 120, 160), (8, 3, 480, 640)}
    before = model.adapter.frame_position_embeddings.weight.detach().clone()
    model.train()
    losses = model.train_step(data, optim_wrapper)
    assert all(torch.isfinite(v).all() for v in losses.values())
    after = model.adapter.frame_position_embeddings.weight
    assert not torch.equal(before, after)
    assert os.path.isfile(decoded_videos[0])
