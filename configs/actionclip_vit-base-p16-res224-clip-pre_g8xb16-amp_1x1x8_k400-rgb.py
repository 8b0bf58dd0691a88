# The g8xb16 ViT-B/16 fine-tuning config with bf16 mixed precision (see the
# ViT-B/32 AMP config).
_base_ = 'actionclip_vit-base-p16-res224-clip-pre_g8xb16_1x1x8_k400-rgb.py'

# Fused AdamW: one kernel for the whole update instead of a few per tensor
# (docs/benchmark.md). For a faster step where kernel launches bound it
# (ViT-B/32 at 16 videos per GPU), add
# --cfg-options model.speedups.compile=reduce-overhead.
optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='bfloat16', optimizer=dict(fused=True))
