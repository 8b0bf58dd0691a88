"""N clips x M crops: MultiViewSampleFrames against SampleFrames, the
multi-view pipeline against each view read alone, and the model's score
against the mean of its views' scores."""
import numpy as np
import pytest
import torch
from conftest import TINY_ARCH, write_video
from mmaction.datasets.transforms import SampleFrames
from mmengine.dataset import Compose as _Compose
from mmengine.registry import DefaultScope

from models.datasets.multi_view import MultiViewSampleFrames
from models.evaluation.protocol_run import multi_view_pipeline
from models.recognizers.actionclip import ActionClip

T = 4
PIPELINE = [
    dict(type='VideoInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=T,
         test_mode=True),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(-1, 40)),
    dict(type='CenterCrop', crop_size=32),
    dict(type='FormatShape', input_format='NCHW'),
]


def Compose(steps):
    """MMAction2's transforms (the plugin's are registered there)."""
    with DefaultScope.overwrite_default_scope('mmaction'):
        return _Compose(steps)


@pytest.mark.parametrize('frames', [3, 8, 13, 100, 301])
def test_one_view_is_sample_frames(frames):
    results = dict(total_frames=frames, start_index=0)
    plain = SampleFrames(clip_len=1, num_clips=8, test_mode=True)
    one = MultiViewSampleFrames(clip_len=1, num_clips=8, test_mode=True)
    np.testing.assert_array_equal(one(dict(results))['frame_inds'],
                                  plain(dict(results))['frame_inds'])


def test_views_interleave_within_segments():
    inds = MultiViewSampleFrames(num_views=4, clip_len=1, num_clips=8,
                                 test_mode=True)(
        dict(total_frames=160, start_index=0))['frame_inds']
    views = inds.reshape(4, 8)
    segments = views // 20
    assert (segments == np.arange(8)).all()  # every view spans the video
    assert (np.diff(views, axis=0) > 0).all()  # views interleave
    with pytest.raises(ValueError, match='clip_len=1'):
        MultiViewSampleFrames(num_views=2, clip_len=2, num_clips=8,
                              test_mode=True)


def test_pipeline_conversion():
    steps = multi_view_pipeline(PIPELINE, 4, 3)
    assert steps[1] == dict(type='MultiViewSampleFrames', num_views=4,
                            clip_len=1, frame_interval=1, num_clips=T,
                            test_mode=True)
    assert steps[3] == dict(type='Resize', scale=(-1, 32))
    assert steps[4] == dict(type='ThreeCrop', crop_size=32)
    assert multi_view_pipeline(PIPELINE, 1, 1)[3:] == PIPELINE[3:]
    no_crop = [s for s in PIPELINE if s['type'] != 'CenterCrop']
    with pytest.raises(ValueError, match='no CenterCrop'):
        multi_view_pipeline(no_crop, 4, 3)


def test_views_read_alone_and_scores_average(tmp_path):
    video = write_video(str(tmp_path / 'v.mp4'), num_frames=24,
                        size=(64, 48), seed=3)
    clips, crops = 4, 3
    steps = multi_view_pipeline(PIPELINE, clips, crops)
    together = Compose(steps)(dict(filename=video, start_index=0,
                                   modality='RGB'))
    imgs = together['imgs']
    assert imgs.shape == (crops * clips * T, 3, 32, 32)
    inds = together['frame_inds'].reshape(clips, T)
    # Each view alone: its frame indices, decoded and cropped by the
    # same steps.
    after_sampling = Compose([s for s in steps[2:]])
    init = Compose(steps[:1])
    groups = []
    for crop in range(crops):
        for view in range(clips):
            alone = init(dict(filename=video, start_index=0, modality='RGB'))
            alone.update(frame_inds=inds[view], clip_len=1,
                         frame_interval=1, num_clips=T)
            frames = after_sampling(alone)['imgs']
            group = frames[crop * T:(crop + 1) * T]
            k = (crop * clips + view) * T
            np.testing.assert_array_equal(imgs[k:k + T], group)
            groups.append(group)
    torch.manual_seed(0)
    model = ActionClip(TINY_ARCH, T, num_adapter_layers=1, to_float32=True,
                       labels_or_label_file=['a', 'b', 'c'],
                       template=['a video of {}']).eval()
    inputs = torch.from_numpy(imgs).float()[None] / 255
    with torch.no_grad():
        scores = model.predict_scores(inputs)
        alone = torch.stack([
            model.predict_scores(torch.from_numpy(g).float()[None] / 255)
            for g in groups]).mean(0)
    torch.testing.assert_close(scores, alone, rtol=0, atol=1e-6)


def test_split_config_on_the_released_config(tmp_path):
    """A split's config inherits a released config and changes only the
    classes, the test list and, for views, the pipeline."""
    import os

    from conftest import ROOT
    from mmengine.config import Config

    from models.evaluation.protocol_run import (split_config_text,
                                                view_pipeline)
    released = os.path.join(
        ROOT, 'configs',
        'actionclip_vit-base-p16-res224-clip-pre_1x1x8_k400-rgb.py')
    pipeline = view_pipeline(released, 4, 3)
    path = tmp_path / 'config.py'
    labels, ann = str(tmp_path / 'labels.txt'), str(tmp_path / 'test.txt')
    path.write_text(split_config_text(released, labels, ann,
                                      str(tmp_path / 'videos'), workers=0,
                                      pipeline=pipeline))
    cfg = Config.fromfile(str(path))
    base = Config.fromfile(released)
    assert cfg.model.labels_or_label_file == labels
    assert cfg.model.clip_arch == base.model.clip_arch == 'ViT-B/16'
    data = cfg.test_dataloader
    assert data.dataset.ann_file == ann
    assert data.dataset.data_prefix.video == str(tmp_path / 'videos')
    assert data.num_workers == 0 and not data.persistent_workers
    types = [step['type'] for step in data.dataset.pipeline]
    assert types == [
        'VideoInit', 'MultiViewSampleFrames', 'VideoDecode', 'Resize',
        'ThreeCrop', 'FormatShape', 'PackActionInputs']
    assert data.dataset.pipeline[3]['scale'] == (-1, 224)
    assert data.dataset.pipeline[1]['num_clips'] == 8
    assert cfg.test_evaluator == base.test_evaluator
    assert cfg.runner_type == 'ActionClipRunner'
