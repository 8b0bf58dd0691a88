# The g8xb16 ViT-B/32 fine-tuning config with bf16 mixed precision: float32
# master weights, forward and backward under bf16 autocast. CLIP stays
# float32 (the base config's to_float32=True): AMP with float16 weights
# breaks the optimizer step (GradScaler refuses float16 gradients).
_base_ = 'actionclip_vit-base-p32-res224-clip-pre_g8xb16_1x1x8_k400-rgb.py'

# Fused AdamW: one kernel for the whole update instead of a few per tensor
# (docs/benchmark.md). For a faster step where kernel launches bound it
# (ViT-B/32 at 16 videos per GPU), add
# --cfg-options model.speedups.compile=reduce-overhead.
optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='bfloat16', optimizer=dict(fused=True))
