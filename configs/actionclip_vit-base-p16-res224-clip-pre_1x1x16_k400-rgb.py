# Test config of the released ViT-B/16 model, 16 frames.
_base_ = 'actionclip_vit-base-p16-res224-clip-pre_1x1x8_k400-rgb.py'

num_segs = 16

model = dict(num_adapter_segs=num_segs)

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

test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
