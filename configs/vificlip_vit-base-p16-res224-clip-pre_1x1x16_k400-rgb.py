# Test config of ViFi-CLIP's fully supervised Kinetics-400 ViT-B/16 model
# (16 frames), once converted:
#   python tools/convert_vificlip_checkpoint.py VIFI_CKPT vificlip_k400_16f.pth
#   mim test mmaction THIS_CONFIG --checkpoint vificlip_k400_16f.pth
# ViFi-CLIP averages CLIP's frame features (mean pooling, no adapter
# weights), prompts 'a photo of a {}.', scales cosines by its learned
# exp(logit_scale) and normalises pixels with ImageNet's mean and std
# (github.com/muzairkhattak/ViFi-CLIP, trainers/vificlip.py and
# datasets/build.py). It reports 4 clips x 3 crops: tools/eval_protocol.py
# supervised --views 4x3.
_base_ = 'actionclip_vit-base-p16-res224-clip-pre_1x1x8_k400-rgb.py'

num_segs = 16

model = dict(
    num_adapter_segs=num_segs,
    temporal_adapter='mean',
    test_logit_scale='learned',
    template='a photo of a {}.',
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCHW'))

test_pipeline = [
    dict(step, num_clips=num_segs) if step.type == 'SampleFrames' else step
    for step in _base_.test_pipeline
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
