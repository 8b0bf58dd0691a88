# Zero-shot test on UCF101 (split 1) of ViFi-CLIP's Kinetics-400 ViT-B/16
# zero-shot model (32 frames), once converted:
#   python tools/convert_vificlip_checkpoint.py VIFI_CKPT vificlip_k400_zs_32f.pth
#   mim test mmaction THIS_CONFIG --checkpoint vificlip_k400_zs_32f.pth
# Splits 2 and 3, and ViFi-CLIP's own label files: tools/eval_protocol.py.
_base_ = 'vificlip_vit-base-p16-res224-clip-pre_1x1x16_k400-rgb.py'

num_segs = 32
split = 1  # the official test lists are 1, 2 and 3
data_root_val = 'data/ucf101/videos'
ann_file_val = f'data/ucf101/ucf101_val_split_{split}_videos.txt'

model = dict(
    num_adapter_segs=num_segs,
    labels_or_label_file='configs/label_map_ucf101.txt')

test_pipeline = [
    dict(step, num_clips=num_segs) if step.type == 'SampleFrames' else step
    for step in _base_.test_pipeline
]
test_dataloader = dict(
    dataset=dict(
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root_val),
        pipeline=test_pipeline))
