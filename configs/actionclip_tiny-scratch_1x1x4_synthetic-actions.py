# CPU-sized: a small CLIP trained from scratch on the generated action videos
# (python tools/generate_videos.py --size-scale 0.667). `make quickstart` runs
# it end to end.
_base_ = 'mmaction::_base_/default_runtime.py'

custom_imports = dict(imports='models')
# The plugin's runner (registered by `models`): safe checkpoint loading,
# atomic saving and checked resumes for the runs of this config only.
runner_type = 'ActionClipRunner'

# Four frames, not eight: a CPU step costs half as much, and the same
# minutes train more epochs.
num_segs = 4
input_size = 64
data_root = 'data/synthetic_actions'

model = dict(
    type='ActionClip',
    # A small CLIP ViT (4x4 patches of 16 px) learns this set faster than a
    # CLIP ResNet of the same cost.
    clip_arch=dict(
        embed_dim=128,
        image_resolution=input_size,
        vision_layers=4,
        vision_width=128,
        vision_patch_size=16,
        transformer_width=128,
        transformer_heads=2,
        transformer_layers=2),
    num_adapter_segs=num_segs,
    num_adapter_layers=2,
    # 6.3M of the 8.1M weights are the 49,408-token table, of which the
    # labels use a few dozen rows; kept random and fixed, it costs no
    # gradient and no optimizer step.
    frozen=('clip.token_embedding', ),
    pretrained=False,
    to_float32=True,
    labels_or_label_file=f'{data_root}/label_map.txt',
    template=['a video of {}', '{}'],
    loss=dict(type='CrossEntropyLoss', loss_weight=0.5),
    # Many videos of one class share a batch here: every text of a video's
    # class counts as a positive.
    contrastive_targets='same_label',
    # Frames mix inside the image encoder, so that it sees which way things
    # move (ActionCLIP's in-network Shift prompt).
    temporal_shift=True)

dataset_type = 'TolerantVideoDataset'
file_client_args = dict(io_backend='disk')

# Each video is decoded once, whole, into a uint8 cache of its frames in the
# user's cache folder (models/datasets/frame_cache.py: the same frames as
# VideoInit + VideoDecode); the epochs after the first read the cache.
# No flips: they would turn "moving left" into "moving right".
train_pipeline = [
    dict(type='CachedVideoInit'),
    dict(
        type='SampleFrames', clip_len=1, frame_interval=1, num_clips=num_segs),
    dict(type='CachedVideoDecode'),
    dict(
        type='RandomResizedCrop',
        area_range=(0.7, 1.0),
        aspect_ratio_range=(0.8, 1.25)),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='CachedVideoInit'),
    dict(
        type='SampleFrames',
        clip_len=1,
        frame_interval=1,
        num_clips=num_segs,
        test_mode=True),
    dict(type='CachedVideoDecode'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]


# The test pipeline reads videos as they are, not through the frame cache:
# it tests once, and the tools read new videos through the checkpoint's
# test pipeline.
test_pipeline = [
    dict(type=step['type'][len('Cached'):])
    if step['type'].startswith('Cached') else step for step in val_pipeline
]

# Frames come from the frame cache (0.6 ms a video): loading them in the
# training process is faster on 2 cores than workers whose threads preempt
# the step's (185-195 against 216-230 ms a step). Without workers a resumed
# run ends with the same weights as an uninterrupted one (EpochSeedHook).
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=f'{data_root}/train_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=f'{data_root}/val_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos/val'),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(
        val_dataloader['dataset'],
        ann_file=f'{data_root}/test_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos/test'),
        pipeline=test_pipeline))

val_evaluator = dict(
    type='TolerantAccMetric',
    metric_list=('top_k_accuracy', 'mean_class_accuracy'))
test_evaluator = val_evaluator

max_epochs = 16
train_cfg = dict(
    type='EpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_begin=1,
    val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    # fused: one kernel a tensor, 2.0 instead of 6.7 ms of CPU a step
    optimizer=dict(
        type='AdamW', lr=5e-4, betas=(0.9, 0.98), eps=1e-08,
        weight_decay=0.05, fused=True),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.05,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - 1,
        eta_min=1e-5,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        convert_to_iter_based=True)
]

# The default runtime's hooks (mmaction::_base_/default_runtime.py), changed
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=2))

# LabelSetCheckHook: annotations with classes the label file lacks stop
# the run before it starts, instead of lowering the accuracy silently.
# FillFrameCacheHook decodes the videos into the frame cache before the
# first epoch, faster than the workers do beside the training step.
custom_hooks = [
    dict(type='EpochSeedHook'),
    dict(type='LabelSetCheckHook'),
    dict(type='FillFrameCacheHook')
]

randomness = dict(seed=0, deterministic=False)
