# Fine-tune OpenAI's CLIP ViT-B/32 on Kinetics-400 with 8 frames, on 8 GPUs
# x 16 videos ("pre-train, prompt, fine-tune"): the test config's model from
# OpenAI's weights, validated and tested with its pipeline.
_base_ = 'actionclip_vit-base-p32-res224-clip-pre_1x1x8_k400-rgb.py'

# The training pipeline's crops, resize and flip run on the GPU, batched,
# in the data preprocessor (docs/data_path.md): the workers only decode.
# Batches without the augmentation's parameters (validation, test) are
# preprocessed exactly as by ActionDataPreprocessor.
model = dict(
    pretrained=True,
    to_float32=True,
    loss=dict(type='CrossEntropyLoss', loss_weight=0.5),
    data_preprocessor=dict(
        type='DeviceAugmentDataPreprocessor',
        mean=[122.771, 116.746, 104.093],
        std=[68.500, 66.632, 70.323],
        format_shape='NCHW'))

data_root = 'data/kinetics400/videos_train'
ann_file_train = 'data/kinetics400/kinetics400_train_list_videos.txt'

# lazy=True: each transform draws what it draws eagerly (same random calls,
# same image shapes) but only records it; FuseOnDevice passes the crop box,
# output size and flip to the data preprocessor instead of cropping here
# (MMAction2's Fuse would, on the CPU).
train_pipeline = [
    dict(type='VideoInit', **_base_.file_client_args),
    dict(
        type='SampleFrames',
        clip_len=1,
        frame_interval=1,
        num_clips=_base_.num_segs),
    # PyAV, decoding only what the sampled frames need: decord's frames,
    # a third faster (docs/decoding.md); decord where it cannot promise them.
    dict(type='VideoDecode', backend='pyav'),
    dict(type='Resize', scale=(-1, 256), lazy=True),
    dict(type='RandomResizedCrop', lazy=True),
    dict(
        type='MultiScaleCrop',
        input_size=224,
        scales=(1, .875, .75, .66),
        random_crop=False,
        num_fixed_crops=13,
        max_wh_scale_gap=1,
        lazy=True),
    dict(type='Resize', scale=(224, 224), keep_ratio=False, lazy=True),
    dict(type='Flip', flip_ratio=0.5, lazy=True),
    dict(type='FuseOnDevice'),
    dict(type='FormatShape', input_format='NCHW'),
    dict(
        type='PackActionInputs',
        meta_keys=('img_shape', 'img_key', 'video_id', 'timestamp',
                   'fuse_params'))
]
val_pipeline = _base_.test_pipeline

# The test config's loader (its data_workers: this process's CPUs shared
# among the GPU processes on the host, one left for the main process).
train_dataloader = dict(
    _base_.test_dataloader,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=_base_.dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = _base_.test_dataloader

val_evaluator = _base_.test_evaluator

train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=50, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')

optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=5e-6, betas=(0.9, 0.98), eps=1e-08, weight_decay=0.2),
    paramwise_cfg=dict(custom_keys=dict(adapter=dict(lr_mult=10))))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=45,
        eta_min=0,
        by_epoch=True,
        begin=5,
        end=50,
        convert_to_iter_based=True)
]

# Reseeds every epoch, so that a resumed run draws what an uninterrupted one
# would (exactly so with persistent_workers=False).
# LabelSetCheckHook: annotations with classes the label file lacks stop
# the run before it starts, instead of lowering the accuracy silently.
custom_hooks = [dict(type='EpochSeedHook'), dict(type='LabelSetCheckHook')]

# base_batch_size = (8 GPUs) x (16 videos per GPU).
auto_scale_lr = dict(enable=False, base_batch_size=128)

default_hooks = dict(
    logger=dict(interval=100), checkpoint=dict(max_keep_ckpts=5))
