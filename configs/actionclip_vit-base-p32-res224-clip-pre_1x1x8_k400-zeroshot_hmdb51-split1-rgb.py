# Zero-shot test on HMDB51 (split 1) of the released Kinetics-400 ViT-B/32
# model, 8 frames, as in the ActionCLIP paper: no fine-tuning, only the class
# names change. Test it with the Kinetics-400 checkpoint:
#   mim test mmaction THIS_CONFIG --checkpoint https://download.openmmlab.com/mmaction/v1.0/projects/actionclip/actionclip_vit-base-p32-res224-clip-pre_1x1x8_k400-rgb/vit-b-32-8f.pth
# Data layout: data/README.md. Label indices follow the sorted class folders,
# as MMAction2's build_file_list.py numbers them.
_base_ = 'actionclip_vit-base-p32-res224-clip-pre_1x1x8_k400-rgb.py'

split = 1  # the official test lists are 1, 2 and 3
data_root_val = 'data/hmdb51/videos'
ann_file_val = f'data/hmdb51/hmdb51_val_split_{split}_videos.txt'

model = dict(labels_or_label_file='configs/label_map_hmdb51.txt')

test_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root_val)))
