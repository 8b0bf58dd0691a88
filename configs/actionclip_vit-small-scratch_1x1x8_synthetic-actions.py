# GPU-sized: a larger CLIP ViT trained from scratch on more generated videos
# (python tools/generate_videos.py --out data/synthetic_actions_large
#  --per-class 400).
_base_ = 'actionclip_tiny-scratch_1x1x4_synthetic-actions.py'

num_segs = 8
input_size = 112
data_root = 'data/synthetic_actions_large'

model = dict(
    clip_arch=dict(
        embed_dim=256,
        image_resolution=input_size,
        vision_layers=6,
        vision_width=256,
        vision_patch_size=16,
        transformer_width=256,
        transformer_heads=4,
        transformer_layers=4),
    num_adapter_segs=num_segs,
    num_adapter_layers=4,
    frozen=(),
    # Frames mix inside the image encoder, so it sees which way things move
    # (without it, the direction of a translation is a guess).
    temporal_shift=True,
    template=None,  # ActionCLIP's 16 templates, not the tiny config's two
    labels_or_label_file=f'{data_root}/label_map.txt')


def sized(pipeline):
    """The tiny config's pipeline at this frame count and input size."""
    return [
        dict(step, num_clips=num_segs) if step.type == 'SampleFrames' else
        dict(step, scale=(input_size, input_size)) if step.type == 'Resize'
        else step for step in pipeline
    ]


train_pipeline = sized(_base_.train_pipeline)
val_pipeline = sized(_base_.val_pipeline)
test_pipeline = sized(_base_.test_pipeline)


def loader(split, pipeline):
    """A data loader of this config's ``split``, 64 videos a batch."""
    return dict(
        batch_size=64,
        num_workers=7,
        dataset=dict(
            ann_file=f'{data_root}/{split}_list_videos.txt',
            data_prefix=dict(video=f'{data_root}/videos/{split}'),
            pipeline=pipeline))


train_dataloader = loader('train', train_pipeline)
val_dataloader = loader('val', val_pipeline)
test_dataloader = loader('test', test_pipeline)

max_epochs = 14
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=5e-4))
# The tiny config's schedule with two warm-up epochs, then the cosine decay
# to 1e-6.
param_scheduler = [
    dict(_base_.param_scheduler[0], end=2),
    dict(
        _base_.param_scheduler[1],
        T_max=max_epochs - 2,
        eta_min=1e-6,
        begin=2,
        end=max_epochs)
]
default_hooks = dict(logger=dict(interval=50))
