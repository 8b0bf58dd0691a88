# Zero-shot test on HMDB51 (split 1) of the released Kinetics-400 ViT-B/16
# model, 8 frames; test it with the Kinetics-400 checkpoint:
#   mim test mmaction THIS_CONFIG --checkpoint https://download.openmmlab.com/mmaction/v1.0/projects/actionclip/actionclip_vit-base-p16-res224-clip-pre_1x1x8_k400-rgb/vit-b-16-8f.pth
_base_ = 'actionclip_vit-base-p32-res224-clip-pre_1x1x8_k400-zeroshot_hmdb51-split1-rgb.py'

model = dict(clip_arch='ViT-B/16')
