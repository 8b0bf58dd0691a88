"""CI-sized `mim train`, `mim test` from its checkpoint, then `--resume`, on
a tiny generated set, through the same commands users run."""
import glob
import os
import re
import subprocess
import sys

import torch

from conftest import ROOT, offline_env

sys.path.insert(0, os.path.join(ROOT, 'tools'))
import generate_videos as gen  # noqa: E402

CONFIG = 'configs/actionclip_tiny-scratch_1x1x4_synthetic-actions.py'


def data_options(data):
    options = [f'model.labels_or_label_file={data}/label_map.txt']
    for split, loader in (('train', 'train'), ('val', 'val'),
                          ('test', 'test')):
        options += [
            f'{loader}_dataloader.dataset.ann_file='
            f'{data}/{split}_list_videos.txt',
            f'{loader}_dataloader.dataset.data_prefix.video='
            f'{data}/videos/{split}',
            f'{loader}_dataloader.batch_size=8',
            f'{loader}_dataloader.num_workers=0',
            f'{loader}_dataloader.persistent_workers=False',
        ]
    return options


def mim(*args, options=()):
    cmd = [sys.executable, '-m', 'mim', *args]
    if options:
        cmd += ['--cfg-options', *options]
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def test_train_test_resume(tmp_path):
    data = str(tmp_path / 'data')
    gen.generate(
        data,
        seed=1,
        per_class=dict(train=1, val=1, test=1, zeroshot=1),
        workers=1,
        progress=False)
    work = str(tmp_path / 'work')
    options = data_options(data) + ['default_hooks.logger.interval=1']

    out = mim('train', 'mmaction', CONFIG, '--work-dir', work,
              options=options + ['train_cfg.max_epochs=2'])
    assert 'Epoch(val) [2]' in out and 'acc/top1' in out
    assert re.search(r'loss_v2t: [0-9.]+', out)
    last = os.path.join(work, 'epoch_2.pth')
    assert os.path.isfile(last)
    assert glob.glob(os.path.join(work, 'best_acc_top1_epoch_*.pth'))

    # the checkpoint needs no unsafe unpickling
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(last)
    assert not [g for g in unsafe if not g.startswith('torch.')], unsafe

    out = mim('test', 'mmaction', CONFIG, '--checkpoint', last,
              '--work-dir', work, options=options)
    assert re.search(r'acc/top1: [0-9.]+', out)
    assert re.search(r'acc/mean1: [0-9.]+', out)

    out = mim('train', 'mmaction', CONFIG, '--work-dir', work, '--resume',
              options=options + ['train_cfg.max_epochs=3'])
    assert 'resumed epoch: 2' in out, out[-3000:]
    assert 'Epoch(train)  [3]' in out or 'Epoch(train) [3]' in out
    assert os.path.isfile(os.path.join(work, 'epoch_3.pth'))
