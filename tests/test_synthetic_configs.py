"""The generated-data configs inherit from one another: each must still
sample as many frames as its model fuses, at its model's input size."""
import glob
import os
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import ROOT

CONFIGS = sorted(
    glob.glob(os.path.join(ROOT, 'configs', '*synthetic-actions.py')))


def pipeline_step(pipeline, name):
    (step, ) = [t for t in pipeline if t['type'] == name]
    return step


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_frames_and_sizes_agree(path):
    cfg = Config.fromfile(path)
    frames = int(re.search(r'_1x1x(\d+)_', path).group(1))  # name says
    assert cfg.model.num_adapter_segs == frames
    size = cfg.model.clip_arch['image_resolution']
    for loader in ('train', 'val', 'test'):
        pipeline = cfg[f'{loader}_dataloader'].dataset.pipeline
        assert pipeline_step(pipeline, 'SampleFrames')['num_clips'] == frames
        assert pipeline_step(pipeline, 'Resize')['scale'] == (size, size)


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_model_builds_and_encodes_a_batch(path):
    from mmaction.registry import MODELS
    import models  # noqa: F401  (registers ActionClip)
    init_default_scope('mmaction')
    cfg = Config.fromfile(path)
    cfg.model.labels_or_label_file = ['a', 'b']
    model = MODELS.build(cfg.model).eval()
    size = cfg.model.clip_arch['image_resolution']
    with torch.no_grad():
        scores = model.predict_scores(
            torch.randn(1, cfg.model.num_adapter_segs, 3, size, size))
    assert scores.shape == (1, 2)
    # only the CPU config freezes the token table
    assert bool(model.frozen) == ('tiny' in path)
    # the CPU config's two templates; the larger ones ActionCLIP's 16
    assert 'templates_or_template_file' not in cfg.model
    assert len(model.templates) == (2 if 'tiny' in path else 16)


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_template_set_on_the_config_replaces_its_own(path):
    """The seed's ``config.model.template = ...`` on each config."""
    from mmaction.registry import MODELS
    import models  # noqa: F401  (registers ActionClip)
    init_default_scope('mmaction')
    cfg = Config.fromfile(path)
    cfg.model.labels_or_label_file = ['a', 'b']
    cfg.model.template = 'a video of {}'
    model = MODELS.build(cfg.model)
    assert model.prompt_bank.templates == ['a video of {}']
