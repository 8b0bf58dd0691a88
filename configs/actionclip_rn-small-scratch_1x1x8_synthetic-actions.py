# GPU-sized: a CLIP ResNet trained from scratch on more generated videos
# (python tools/generate_videos.py --out data/synthetic_actions_large
#  --per-class 400). Everything but the image encoder and its input size
# comes from the ViT variant.
_base_ = 'actionclip_vit-small-scratch_1x1x8_synthetic-actions.py'

num_segs = 8
input_size = 128

model = dict(
    clip_arch=dict(
        image_resolution=input_size,
        vision_layers=(2, 2, 2, 2),
        vision_width=32))

file_client_args = dict(io_backend='disk')
train_pipeline = [
    dict(type='VideoInit', **file_client_args),
    dict(
        type='SampleFrames', clip_len=1, frame_interval=1, num_clips=num_segs),
    dict(type='VideoDecode'),
    dict(
        type='RandomResizedCrop',
        area_range=(0.7, 1.0),
        aspect_ratio_range=(0.8, 1.25)),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='VideoInit', **file_client_args),
    dict(
        type='SampleFrames',
        clip_len=1,
        frame_interval=1,
        num_clips=num_segs,
        test_mode=True),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
test_pipeline = val_pipeline

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
