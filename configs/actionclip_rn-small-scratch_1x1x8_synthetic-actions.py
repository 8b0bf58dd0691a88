# GPU-sized: a CLIP ResNet trained from scratch on more generated videos
# (python tools/generate_videos.py --out data/synthetic_actions_large
#  --per-class 400). Everything but the image encoder and its input size
# comes from the ViT variant.
_base_ = 'actionclip_vit-small-scratch_1x1x8_synthetic-actions.py'

input_size = 128

model = dict(
    clip_arch=dict(
        image_resolution=input_size,
        vision_layers=(2, 2, 2, 2),
        vision_width=32))


def resized(pipeline):
    """The ViT variant's pipeline at this input size."""
    return [
        dict(step, scale=(input_size, input_size))
        if step.type == 'Resize' else step for step in pipeline
    ]


train_pipeline = resized(_base_.train_pipeline)
val_pipeline = resized(_base_.val_pipeline)
test_pipeline = resized(_base_.test_pipeline)

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
