"""`mim test` on a seed test config over generated videos, as users run it
(the project root on PYTHONPATH, the checkpoint from torch hub's cache)."""
import os
import re
import subprocess
import sys

from conftest import ROOT, offline_env, write_video

CONFIG = 'configs/actionclip_vit-base-p32-res224-clip-pre_1x1x8_k400-rgb.py'


def make_video_dataset(root, labels):
    """Write one mp4 per label and a VideoDataset annotation list."""
    videos = os.path.join(root, 'videos')
    os.makedirs(videos)
    lines = []
    for i, label in enumerate(labels):
        name = f'video_{i}.mp4'
        write_video(os.path.join(videos, name), num_frames=20,
                    size=(160 + 16 * i, 128), seed=i)
        lines.append(f'{name} {label}')
    ann = os.path.join(root, 'ann.txt')
    with open(ann, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return videos, ann


def test_mim_test_prints_top1_top5(tmp_path, torch_home):
    videos, ann = make_video_dataset(str(tmp_path), [0, 5, 17, 399])
    checkpoint = os.path.join(torch_home, 'hub', 'checkpoints',
                              'vit-b-32-8f.pth')
    mim = os.path.join(os.path.dirname(sys.executable), 'mim')
    # One template, from a file as users give theirs: the default 16 took
    # most of the run (400 labels x 16 prompts through CLIP's text encoder)
    # and mim test reads them alike.
    templates = tmp_path / 'templates.txt'
    templates.write_text('a video of {}\n')
    cmd = [
        mim, 'test', 'mmaction', CONFIG, '--checkpoint', checkpoint,
        '--work-dir',
        str(tmp_path / 'work'), '--cfg-options',
        f'test_dataloader.dataset.ann_file={ann}',
        f'test_dataloader.dataset.data_prefix.video={videos}',
        f'model.template={templates}'
    ]
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env=offline_env(TORCH_HOME=torch_home),
        capture_output=True,
        text=True,
        timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    top1 = re.search(r'acc/top1: ([0-9.]+)', output)
    top5 = re.search(r'acc/top5: ([0-9.]+)', output)
    assert top1 and top5, output[-4000:]
    assert 0 <= float(top1.group(1)) <= float(top5.group(1)) <= 1
