"""Zero-shot UCF101/HMDB51 test configs: they load, point where MMAction2's
data preparation writes, number classes as its file lists do, and run in
`mim test` with the Kinetics-400 checkpoint URL their header names."""
import contextlib
import glob
import os
import pickle
import re
import runpy
import subprocess
import sys
from unittest import mock

import mmaction
import pytest
from conftest import ROOT, offline_env, write_video
from mmengine import Config

from models.backbones.pretrained import ACTIONCLIP_CHECKPOINTS

CONFIGS = sorted(
    os.path.relpath(path, ROOT)
    for path in glob.glob(
        os.path.join(ROOT, 'configs', 'actionclip_*zeroshot*.py')))
BUILD_FILE_LIST = os.path.join(
    os.path.dirname(mmaction.__file__), '.mim', 'tools', 'data',
    'build_file_list.py')
UCF101 = ('configs/actionclip_vit-base-p32-res224-clip-pre_1x1x8_'
          'k400-zeroshot_ucf101-split1-rgb.py')


def class_names(dataset):
    with open(os.path.join(ROOT, 'configs', f'classind_{dataset}.txt')) as f:
        return [line.split()[1] for line in f if line.strip()]


def build_file_list(root, dataset):
    """Run MMAction2's own list builder with the arguments data/README.md
    gives, in this process (its imports are loaded already; its ``tools``
    package is taken off ``sys.modules`` after)."""
    mim_dir = os.path.dirname(os.path.dirname(os.path.dirname(
        BUILD_FILE_LIST)))
    argv = [BUILD_FILE_LIST, dataset, f'data/{dataset}/videos/', '--level',
            '2', '--format', 'videos', '--shuffle']
    with mock.patch.object(sys, 'argv', argv), mock.patch.object(
            sys, 'path', [mim_dir, *sys.path]), mock.patch.dict(
                sys.modules), contextlib.chdir(root):
        runpy.run_path(BUILD_FILE_LIST, run_name='__main__')
    with open(os.path.join(root, 'data', dataset,
                           f'{dataset}_val_split_1_videos.txt')) as f:
        return [line.split() for line in f if line.strip()]


def make_ucf101(root, indices):
    """UCF101 as its archives unpack: videos/<Class>/v_<Class>_gXX_cYY.avi
    and annotations/{classInd,trainlist0N,testlist0N}.txt (CRLF)."""
    names = class_names('ucf101')
    ann = os.path.join(root, 'data', 'ucf101', 'annotations')
    os.makedirs(ann)
    with open(os.path.join(ann, 'classInd.txt'), 'w', newline='') as f:
        f.writelines(f'{i} {n}\r\n' for i, n in enumerate(names, 1))
    test, train = [], []
    for seed, index in enumerate(indices):
        name = names[index]
        folder = os.path.join(root, 'data', 'ucf101', 'videos', name)
        os.makedirs(folder)
        # The official files of class 37 are spelt v_HandStandPushups_*.
        stem = name.replace('HandstandPushups', 'HandStandPushups')
        for group, rows in ((1, test), (8, train)):
            video = f'v_{stem}_g{group:02d}_c01.avi'
            write_video(os.path.join(folder, video), num_frames=16,
                        size=(80, 60), seed=seed)
            rows.append((f'{name}/{video}', index + 1))
    for split in (1, 2, 3):
        with open(os.path.join(ann, f'testlist{split:02d}.txt'), 'w',
                  newline='') as f:
            f.writelines(f'{path}\r\n' for path, _ in test)
        with open(os.path.join(ann, f'trainlist{split:02d}.txt'), 'w',
                  newline='') as f:
            f.writelines(f'{path} {label}\r\n' for path, label in train)


@pytest.mark.parametrize('config', CONFIGS)
def test_config_loads_and_points_at_mmaction_layout(config):
    assert len(CONFIGS) == 4
    cfg = Config.fromfile(os.path.join(ROOT, config))
    dataset = 'ucf101' if 'ucf101' in config else 'hmdb51'
    arch = 'ViT-B/16' if 'p16' in config else 'ViT-B/32'
    assert cfg.model.clip_arch == arch and cfg.model.num_adapter_segs == 8
    assert cfg.model.labels_or_label_file == (
        f'configs/label_map_{dataset}.txt')
    # ActionCLIP's 16 templates, set (to one) by the template key alone
    assert cfg.model.template is None
    assert 'templates_or_template_file' not in cfg.model
    with open(os.path.join(ROOT, cfg.model.labels_or_label_file)) as f:
        labels = f.read().splitlines()
    assert len(set(labels)) == len(labels) == {'ucf101': 101,
                                               'hmdb51': 51}[dataset]
    data = cfg.test_dataloader.dataset
    assert data.ann_file == f'data/{dataset}/{dataset}_val_split_1_videos.txt'
    assert data.data_prefix.video == f'data/{dataset}/videos'
    assert cfg.test_pipeline[1].num_clips == 8
    # The checkpoint its header names is the released model of its arch.
    with open(os.path.join(ROOT, config)) as f:
        urls = re.findall(r'--checkpoint (\S+)', f.read())
    assert urls == [ACTIONCLIP_CHECKPOINTS[f'{arch}-8']['url']]


def test_hmdb51_file_list_numbers_classes_as_the_label_map(tmp_path):
    """MMAction2 numbers HMDB51's sorted class folders; line i of the label
    map must name the class of label i."""
    names = class_names('hmdb51')
    ann = tmp_path / 'data' / 'hmdb51' / 'annotations'
    ann.mkdir(parents=True)
    for name in reversed(names):  # creation order must not matter
        folder = tmp_path / 'data' / 'hmdb51' / 'videos' / name
        folder.mkdir(parents=True)
        rows = []
        for video, role in ((f'{name}_a.avi', 1), (f'{name}_b.avi', 2)):
            (folder / video).write_bytes(b'')  # only the names are read
            rows.append(f'{video} {role} \n')
        for split in (1, 2, 3):
            (ann / f'{name}_test_split{split}.txt').write_text(''.join(rows))
    entries = build_file_list(str(tmp_path), 'hmdb51')
    assert len(entries) == 51
    for path, label in entries:
        assert names[int(label)] == path.split('/')[0]


def test_mim_test_ucf101_zero_shot(tmp_path, torch_home):
    """The documented command on a copy of UCF101's layout: file lists by
    MMAction2's builder, the checkpoint URL from torch hub's cache."""
    indices = [0, 36, 100]  # ApplyEyeMakeup, HandstandPushups, YoYo
    make_ucf101(str(tmp_path), indices)
    entries = build_file_list(str(tmp_path), 'ucf101')
    assert sorted(int(label) for _, label in entries) == indices
    os.symlink(os.path.join(ROOT, 'configs'), tmp_path / 'configs')
    dump = tmp_path / 'work' / 'predictions.pkl'
    mim = os.path.join(os.path.dirname(sys.executable), 'mim')
    cmd = [
        mim, 'test', 'mmaction', UCF101, '--checkpoint',
        ACTIONCLIP_CHECKPOINTS['ViT-B/32-8']['url'], '--work-dir',
        str(tmp_path / 'work'), '--dump',
        str(dump), '--cfg-options',
        # 101 labels x 16 templates take ~45 s to encode on 2 CPU cores;
        # one template exercises the same path.
        'model.template=a video of {}',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ]
    proc = subprocess.run(
        cmd,
        cwd=str(tmp_path),
        env=offline_env(TORCH_HOME=torch_home),
        capture_output=True,
        text=True,
        timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert re.search(r'acc/top1: [0-9.]+', output), output[-4000:]
    with open(dump, 'rb') as f:
        results = pickle.load(f)
    assert sorted(int(r['gt_label']) for r in results) == indices
    assert all(r['pred_score'].shape == (101, ) for r in results)
