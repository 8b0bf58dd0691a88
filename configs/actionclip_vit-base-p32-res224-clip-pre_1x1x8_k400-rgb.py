# Test config of the released ViT-B/32 model, 8 frames: the weights come
# from --checkpoint, so CLIP is built without downloading anything. The
# training configs inherit it. ActionClip's default data preprocessor is
# CLIP's (its mean and std on 0-255 pixels, NCHW).
_base_ = 'mmaction::_base_/default_runtime.py'

custom_imports = dict(imports='models')

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
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]

test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
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
