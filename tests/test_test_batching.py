"""The shipped test configs batch 16 videos: the per-video scores must be
those of batch 1, through the loaders and the model step `mim test` runs."""
import os.path as osp

import pytest
import torch
from conftest import ROOT, write_video

CONFIG = osp.join(ROOT, 'configs',
                  'actionclip_vit-base-p32-res224-clip-pre_1x1x8_k400-rgb.py')
LABELS = ['abseiling', 'juggling balls', 'reading book', 'surfing water']
#: A ViT of ViT-B/32's input (224 px, 32 px patches), narrow enough for CI.
ARCH = dict(
    embed_dim=64,
    image_resolution=224,
    vision_layers=2,
    vision_width=64,
    vision_patch_size=32,
    context_length=77,
    vocab_size=49408,
    transformer_width=64,
    transformer_heads=2,
    transformer_layers=2)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    from mmengine import Config
    from mmengine.registry import init_default_scope

    import models  # noqa: F401 (registers the plugin)
    from mmaction.registry import MODELS
    folder = tmp_path_factory.mktemp('batching')
    lines = []
    # Different sizes and lengths: the pipeline's Resize and CenterCrop must
    # make them stack, and a batch must not mix one video's frames into
    # another's scores.
    for i in range(11):
        name = f'video_{i}.mp4'
        write_video(str(folder / name), num_frames=12 + 3 * i,
                    size=(176 + 24 * i, 144 - 4 * i), seed=i)
        lines.append(f'{name} {i % len(LABELS)}')
    (folder / 'ann.txt').write_text('\n'.join(lines) + '\n')
    cfg = Config.fromfile(CONFIG)
    cfg.model.update(clip_arch=ARCH, labels_or_label_file=LABELS,
                     template='a video of {}')
    cfg.test_dataloader.dataset.update(
        ann_file=str(folder / 'ann.txt'),
        data_prefix=dict(video=str(folder)))
    init_default_scope('mmaction')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    return cfg, model


def scores_at(cfg, model, batch_size):
    """Per-video scores and labels from the config's test loader."""
    import copy

    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    if batch_size is not None:
        loader_cfg.batch_size = batch_size
    loader_cfg.update(num_workers=1, persistent_workers=False,
                      pin_memory=False)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    scores, labels, sizes = [], [], []
    with torch.no_grad():
        for batch in loader:
            sizes.append(len(batch['inputs']))
            for sample in model.test_step(batch):
                scores.append(sample.pred_score)
                labels.append(int(sample.pred_label))
    return torch.stack(scores), labels, sizes


def test_config_batches_and_scores_match_batch_one(setup):
    cfg, model = setup
    assert cfg.test_dataloader.batch_size == 16
    assert cfg.test_dataloader.pin_memory is True
    assert cfg.test_dataloader.num_workers >= 1
    batched, batched_labels, sizes = scores_at(cfg, model, None)
    single, single_labels, single_sizes = scores_at(cfg, model, 1)
    assert sizes == [11] and single_sizes == [1] * 11
    assert batched.shape == (11, len(LABELS))
    assert torch.isfinite(batched).all()
    # Random weights give near one-hot scores: compare log-probabilities,
    # which keep the differences between videos visible. The videos
    # differ, so equal rows would mean mixed-up inputs.
    logs, single_logs = batched.log(), single.log()
    assert (logs[0] - logs[1]).abs().max() > 1e-2
    assert torch.allclose(logs, single_logs, atol=1e-4, rtol=1e-5)
    assert torch.allclose(batched, single, atol=1e-5, rtol=0)
    assert batched_labels == single_labels


def test_workers_follow_the_cpus(monkeypatch):
    from mmengine import Config
    cpus = (len(__import__('os').sched_getaffinity(0)))
    monkeypatch.delenv('LOCAL_WORLD_SIZE', raising=False)
    alone = Config.fromfile(CONFIG).data_workers
    assert alone == min(32, max(1, cpus - 1))
    # torchrun's ranks on one host share its CPUs.
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '4')
    assert Config.fromfile(CONFIG).data_workers == min(
        32, max(1, cpus // 4 - 1))
