# Fine-tune OpenAI's CLIP ViT-B/16 on Kinetics-400 with 8 frames, 8 GPUs x 16.
_base_ = 'actionclip_vit-base-p32-res224-clip-pre_g8xb16_1x1x8_k400-rgb.py'

model = dict(clip_arch='ViT-B/16')
