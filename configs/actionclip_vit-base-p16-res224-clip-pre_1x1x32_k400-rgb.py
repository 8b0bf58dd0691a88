# Test config of the released ViT-B/16 model, 32 frames: the 8-frame
# config sampling 32 frames.
_base_ = 'actionclip_vit-base-p16-res224-clip-pre_1x1x8_k400-rgb.py'

num_segs = 32

model = dict(num_adapter_segs=num_segs)

test_pipeline = [
    dict(step, num_clips=num_segs) if step.type == 'SampleFrames' else step
    for step in _base_.test_pipeline
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
