# Test config of the released ViT-B/16 model, 8 frames.
_base_ = 'actionclip_vit-base-p32-res224-clip-pre_1x1x8_k400-rgb.py'

model = dict(clip_arch='ViT-B/16')
