# Test config of the released ViT-B/32 model, 8 frames: the weights come
# from --checkpoint, so CLIP is built without downloading anything. The
# training configs inherit it. ActionClip's default data preprocessor is
# CLIP's (its mean and std on 0-255 pixels, NCHW).
_base_ = 'mmaction::_base_/default_runtime.py'

# After `_base_`: mmengine reads a config that imports before it as a
# lazy-import config, which cannot inherit this one.
import os  # noqa: E402

custom_imports = dict(imports='models')
# The plugin's runner (registered by `models`): safe checkpoint loading,
# atomic saving and checked resumes for the runs of this config only.
runner_type = 'ActionClipRunner'

num_segs = 8

model = dict(
    type='ActionClip',
    clip_arch='ViT-B/32',
    num_adapter_segs=num_segs,
    num_adapter_layers=6,
    pretrained=False,
    labels_or_label_file='configs/label_map_k400.txt',
    # None: ActionCLIP's 16 templates; or one ('a video of {}'), a list, or
    # a file with one template a line.
    template=None)

dataset_type = 'TolerantVideoDataset'
data_root_val = 'data/kinetics400/videos_val'
ann_file_val = 'data/kinetics400/kinetics400_val_list_videos.txt'

file_client_args = dict(io_backend='disk')
test_pipeline = [
    dict(type='VideoInit', **file_client_args),
    dict(
        type='SampleFrames',
        clip_len=1,
        frame_interval=1,
        num_clips=num_segs,
        test_mode=True),
    # PyAV, decoding only what the sampled frames need: decord's frames,
    # a third faster (docs/decoding.md); decord where it cannot promise them.
    dict(type='VideoDecode', backend='pyav'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]

# Data workers per GPU process: this process's CPUs (slurm and taskset
# already narrow them to its share) divided among the GPU processes torchrun
# starts on this host, one left for the main process, at most 32 (beyond
# that each worker's memory costs more than it gains). Decoding bounds
# `mim test` (docs/data_path.md), so a fixed 2 or 8 leaves cores idle.
# Override with --cfg-options test_dataloader.num_workers=N.
_cpus = (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
         else os.cpu_count() or 2)
data_workers = min(
    32, max(1, _cpus // int(os.environ.get('LOCAL_WORLD_SIZE', 1)) - 1))

# 16 videos a batch: each video is one view of num_segs frames, so the
# batch stacks, and the scores are those of batch 1 (tests/
# test_test_batching.py). Pinned memory lets the copy to the GPU overlap.
test_dataloader = dict(
    batch_size=16,
    num_workers=data_workers,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root_val),
        pipeline=test_pipeline,
        test_mode=True))

test_cfg = dict(type='TestLoop')
# Annotations with classes the label file lacks stop the run before it
# starts, instead of lowering the accuracy silently.
custom_hooks = [dict(type='LabelSetCheckHook')]
test_evaluator = dict(type='TolerantAccMetric')
