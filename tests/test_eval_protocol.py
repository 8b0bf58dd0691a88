"""tools/eval_protocol.py: the listing's counts come from the shipped
files, wrong input is refused before torch is imported, and the zero-shot
protocol runs end to end on a tiny UCF101-like copy, its numbers equal to
`mim test` on each split's config."""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

import pytest
from conftest import (ROOT, TINY_ARCH, mim_test_in_process, offline_env,
                      write_video)

import eval_protocol

TOOL = os.path.join(ROOT, 'tools', 'eval_protocol.py')

#: A complete test config around the tiny CLIP of conftest.
TINY_TEST_CONFIG = f'''
_base_ = 'mmaction::_base_/default_runtime.py'
custom_imports = dict(imports='models')
runner_type = 'ActionClipRunner'
model = dict(
    type='ActionClip', clip_arch={TINY_ARCH!r}, num_adapter_segs=4,
    num_adapter_layers=1, to_float32=True, pretrained=False,
    labels_or_label_file='data/not_here/label_map.txt',
    template=['a video of {{}}', '{{}}'])
test_pipeline = [
    dict(type='VideoInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=4,
         test_mode=True),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
test_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='TolerantVideoDataset', ann_file='not_here.txt',
                 data_prefix=dict(video='not_here'), pipeline=test_pipeline,
                 test_mode=True))
test_evaluator = dict(type='TolerantAccMetric')
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='LabelSetCheckHook')]
'''


def run_tool(*args, cwd=ROOT):
    """The tool in a fresh interpreter, with its imports traced."""
    return subprocess.run(
        [sys.executable, '-X', 'importtime', TOOL, *args], cwd=cwd,
        env=offline_env(), capture_output=True, text=True, timeout=120)


def torch_imported(proc):
    return re.search(r'\|\s+torch$', proc.stderr, re.M) is not None


def count_lines(path):
    with open(path, newline='') as f:
        return sum(1 for line in f if line.strip())


def test_list_json_counts_are_the_files():
    proc = run_tool('--list', '--json')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not torch_imported(proc)
    rows = json.loads(proc.stdout)
    by_key = {(r['protocol'], r['dataset'], r['name']): r for r in rows}
    assert len(rows) == len(by_key) == 48
    shipped = os.path.join(ROOT, 'data', 'protocols')
    for n in (1, 2, 3):
        row = by_key['zero-shot', 'ucf101', f'split{n}']
        assert row['test_videos'] == count_lines(
            os.path.join(shipped, 'ucf101', f'testlist0{n}.txt'))
        assert row['classes'] == 101
        k600 = by_key['zero-shot', 'k600', f'split{n}']
        assert k600['classes'] == 160
        assert k600['test_videos'] == count_lines(os.path.join(
            shipped, k600['test_list']))
    assert {r['test_videos'] for r in rows if r['dataset'] == 'hmdb51'
            and r['protocol'] == 'zero-shot'} == {1530}
    for shots in (2, 4, 8, 16):
        row = by_key['few-shot', 'ucf101', f'K={shots}']
        assert row['train_videos'] == shots * row['classes']
    assert by_key['supervised', 'k400', '4x3']['views'] == '4x3'
    assert by_key['base-to-novel', 'ssv2', 'seed2-novel'][
        'training_run'] == 'seed2'
    assert by_key['few-shot', 'ssv2', 'K=8']['training_run'] == 'K=8'
    assert by_key['zero-shot', 'k600', 'split1']['training_run'] is None


def test_list_refuses_a_broken_list(tmp_path):
    lists = tmp_path / 'lists'
    shutil.copytree(os.path.join(ROOT, 'data', 'protocols'), lists)
    (lists / 'ucf101' / 'classInd.txt').write_text('1 A\n3 B\n')
    proc = run_tool('--list', '--lists', str(lists))
    assert proc.returncode == 2
    assert 'classInd.txt: class ids must run 1, 2' in proc.stderr


@pytest.mark.parametrize('args, message', [
    (['zero-shot'], '--dataset is needed'),
    (['zero-shot', '--dataset', 'ssv2'], 'has no dataset'),
    (['one-shot', '--dataset', 'ucf101'], 'Unknown protocol'),
    (['few-shot', '--dataset', 'ucf101', '--model', 'ViT-B/16-8'],
     'pass 4 --model, in that order, got 1'),
    (['zero-shot', '--dataset', 'ucf101', '--model', 'ViT-B/16-8',
      '--model', 'ViT-B/32-8'], 'pass one --model, got 2'),
    (['zero-shot', '--dataset', 'ucf101', '--json'], '--json goes with'),
    (['zero-shot', '--dataset', 'ucf101', '--views', '4x3'],
     '--views applies to the supervised protocol only'),
    (['zero-shot', '--dataset', 'ucf101', '--model', 'nothing.pth'],
     'no such file'),
    (['zero-shot', '--dataset', 'ucf101', '--model', 'ViT-B/16-8',
      '--data-root', 'no/such/folder'], 'is not a folder'),
])
def test_refusals_before_torch(args, message):
    proc = run_tool(*args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines()
              if not line.startswith('import time:')]
    assert len(errors) == 1 and message in errors[0], errors
    assert not torch_imported(proc)


def make_tiny_ucf101(root, per_split=2):
    """Lists laid out as data/protocols/ (the real classInd.txt, short
    test lists in the official format) and their videos as UCF101
    unpacks: videos/<Class>/v_<Class>_gXX_cYY.avi."""
    lists = os.path.join(root, 'lists', 'ucf101')
    os.makedirs(lists)
    shutil.copy(os.path.join(ROOT, 'data', 'protocols', 'ucf101',
                             'classInd.txt'), lists)
    classes = ['ApplyEyeMakeup', 'Basketball', 'YoYo', 'Archery']
    seed = 0
    for split in (1, 2, 3):
        lines = []
        for name in classes[:per_split + split - 1]:
            video = f'{name}/v_{name}_g{split:02d}_c01.avi'
            path = os.path.join(root, 'videos', video)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_video(path, num_frames=8, size=(64, 48), seed=seed)
            seed += 1
            lines.append(f'{video}\r\n')
        with open(os.path.join(lists, f'testlist0{split}.txt'), 'w',
                  newline='') as f:
            f.writelines(lines)
    return os.path.join(root, 'lists'), os.path.join(root, 'videos')


def test_refuses_missing_videos_naming_them(tmp_path):
    lists, videos = make_tiny_ucf101(str(tmp_path))
    os.remove(os.path.join(videos, 'YoYo', 'v_YoYo_g03_c01.avi'))
    work = tmp_path / 'work'
    proc = run_tool('zero-shot', '--dataset', 'ucf101', '--model',
                    'ViT-B/16-8', '--lists', lists, '--data-root', videos,
                    '--work-dir', str(work))
    assert proc.returncode == 2
    assert 'lacks 1 of the 4 videos of split3 (e.g. YoYo/' in proc.stderr
    assert not torch_imported(proc)
    assert (work / 'missing_split3.txt').read_text() == (
        'YoYo/v_YoYo_g03_c01.avi\n')


def test_refuses_a_checkpoint_that_is_not_one(tmp_path, capsys):
    lists, videos = make_tiny_ucf101(str(tmp_path))
    config = tmp_path / 'tiny_test_config.py'
    config.write_text(TINY_TEST_CONFIG)
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'<html>not found</html>')
    status = eval_protocol.main([
        'zero-shot', '--dataset', 'ucf101', '--model', str(junk),
        '--config', str(config), '--lists', lists, '--data-root', videos,
        '--work-dir', str(tmp_path / 'work')])
    assert status == 2
    assert f'{junk} is not a PyTorch checkpoint' in capsys.readouterr().err
    assert not (tmp_path / 'work' / 'report.json').exists()


def test_zero_shot_end_to_end_equals_mim_test(tmp_path, capsys):
    import torch

    from models.recognizers.actionclip import ActionClip
    lists, videos = make_tiny_ucf101(str(tmp_path))
    config = tmp_path / 'tiny_test_config.py'
    config.write_text(TINY_TEST_CONFIG)
    # Seed 4: random weights whose split3 top-5 is not 0, so that the
    # comparison with mim test below compares something.
    torch.manual_seed(4)
    model = ActionClip(TINY_ARCH, 4, num_adapter_layers=1, to_float32=True)
    checkpoint = str(tmp_path / 'tiny.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    work = tmp_path / 'work'
    status = eval_protocol.main([
        'zero-shot', '--dataset', 'ucf101', '--model', checkpoint,
        '--config', str(config), '--lists', lists, '--data-root', videos,
        '--work-dir', str(work)])
    assert status == 0
    report = json.loads((work / 'report.json').read_text())
    assert [row['split'] for row in report['splits']] == [
        'split1', 'split2', 'split3']
    assert [row['videos_tested'] for row in report['splits']] == [2, 3, 4]
    assert all(row['classes'] == 101 for row in report['splits'])
    top1 = [row['acc/top1'] for row in report['splits']]
    assert report['summary']['acc/top1']['mean'] == pytest.approx(
        statistics.fmean(top1))
    assert report['summary']['acc/top1']['std'] == pytest.approx(
        statistics.pstdev(top1))
    table = (work / 'report.md').read_text()
    assert '| mean ± std |' in table and '| split3 | 101 | 4 of 4 |' in table
    assert report['splits'][2]['acc/top5'] > 0
    # The split's config alone in mim test's script gives the report's
    # numbers.
    for row in report['splits'][2:]:
        found = mim_test_in_process(row['config'], checkpoint,
                                    str(tmp_path / 'mim'))
        assert found['acc/top1'] == pytest.approx(row['acc/top1'], abs=1e-4)
        assert found['acc/top5'] == pytest.approx(row['acc/top5'], abs=1e-4)
    # The class texts are UCF101's in words, in classInd order.
    labels = (work / 'split1' / 'labels.txt').read_text().splitlines()
    assert len(labels) == 101 and labels[0] == 'apply eye makeup'


def test_supervised_views_end_to_end_equal_mim_test(tmp_path):
    """Kinetics-400 laid out as MMAction2 writes it (videos_val/), lists
    as ViFi-CLIP's (val/<id>.mp4), five classes; 1x1, 4x3 and 10x3."""
    import torch

    from models.recognizers.actionclip import ActionClip
    lists = tmp_path / 'lists' / 'vificlip'
    (lists / 'datasets_splits' / 'k400_splits').mkdir(parents=True)
    (lists / 'labels').mkdir()
    names = ['abseiling', 'air drumming', 'archery', 'arm wrestling',
             'yoga']
    (lists / 'labels' / 'kinetics_400_labels.csv').write_text(
        'id,name\r\n' + ''.join(f'{i},{n}\r\n' for i, n in enumerate(names)))
    rows = []
    (tmp_path / 'k400' / 'videos_val').mkdir(parents=True)
    for i in range(6):
        name = f'vid{i:02d}_000001_000011.mp4'
        write_video(str(tmp_path / 'k400' / 'videos_val' / name),
                    num_frames=24, size=(128, 64), seed=10 + i)
        rows.append(f'val/{name} {i % 5}\n')
    (lists / 'datasets_splits' / 'k400_splits' / 'val.txt').write_text(
        ''.join(rows))
    config = tmp_path / 'tiny_test_config.py'
    config.write_text(TINY_TEST_CONFIG.replace(
        "dict(type='Resize', scale=(32, 32), keep_ratio=False),",
        "dict(type='Resize', scale=(-1, 40)),\n"
        "    dict(type='CenterCrop', crop_size=32),"))
    torch.manual_seed(1)
    model = ActionClip(TINY_ARCH, 4, num_adapter_layers=1, to_float32=True)
    checkpoint = str(tmp_path / 'tiny.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    work = tmp_path / 'work'
    assert eval_protocol.main([
        'supervised', '--dataset', 'k400', '--model', checkpoint,
        '--config', str(config), '--lists', str(tmp_path / 'lists'),
        '--data-root', str(tmp_path / 'k400'), '--work-dir',
        str(work)]) == 0
    report = json.loads((work / 'report.json').read_text())
    assert [r['views'] for r in report['splits']] == ['1x1', '4x3', '10x3']
    assert all(r['classes'] == 5 and r['videos_tested'] == 6
               for r in report['splits'])
    config_4x3 = (work / '4x3' / 'config.py').read_text()
    assert "'num_views': 4" in config_4x3 and 'ThreeCrop' in config_4x3
    row = report['splits'][1]
    found = mim_test_in_process(row['config'], checkpoint,
                                str(tmp_path / 'mim'))
    assert found['acc/top1'] == pytest.approx(row['acc/top1'], abs=1e-4)
    assert 0 < row['acc/top5'] and found['acc/top5'] == pytest.approx(
        row['acc/top5'], abs=1e-4)


#: The groups (videos) of each class of the base-to-novel test.
GROUPS = {0: (1, 2, 3), 1: (1, )}


def test_base_to_novel_tests_each_seed_model_exactly(tmp_path):
    """Three seed checkpoints, base and novel tests each over their own
    classes; every top-1 equals the plain computation (the project's
    loading and preprocessing, argmax over the split's classes), and the
    summary's harmonic means follow."""
    import torch

    from models.apis.loading import load_model
    from models.recognizers.actionclip import ActionClip
    folder = tmp_path / 'lists' / 'vificlip'
    splits = folder / 'datasets_splits' / 'base2novel_splits' / 'ucf_splits'
    splits.mkdir(parents=True)
    (folder / 'labels').mkdir()
    parts = {'base': ['ApplyEyeMakeup', 'Archery'],
             'novel': ['ApplyLipstick', 'YoYo']}
    seed = 20
    for part, names in parts.items():
        (folder / 'labels' / f'ucf_101_{part}_labels.csv').write_text(
            'id,name\n' + ''.join(f'{i},{n}\n' for i, n in enumerate(names)))
        rows = []
        for label, name in enumerate(names):
            # Three videos of one class, one of the other: a model that
            # answers one class everywhere scores 75 or 25 %, not 50.
            for group in GROUPS[label]:
                video = f'v_{name}_g{group:02d}_c01.avi'
                path = tmp_path / 'ucf' / name / video
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(str(path), num_frames=8, size=(64, 48),
                            seed=seed)
                seed += 1
                rows.append(f'{video} {label}\n')
        (splits / f'{part}_val.txt').write_text(''.join(rows))
    for n in (1, 2, 3):  # training lists: only counted here
        (splits / f'fs_base_s{n}_train.txt').write_text('x.avi 0\n')
    config = tmp_path / 'tiny_test_config.py'
    config.write_text(TINY_TEST_CONFIG)
    checkpoints = []
    for n in (1, 2, 3):
        torch.manual_seed(n)
        model = ActionClip(TINY_ARCH, 4, num_adapter_layers=1,
                           to_float32=True)
        checkpoints.append(str(tmp_path / f'seed{n}.pth'))
        torch.save({'state_dict': model.state_dict()}, checkpoints[-1])
    work = tmp_path / 'work'
    args = ['base-to-novel', '--dataset', 'ucf101', '--config', str(config),
            '--lists', str(tmp_path / 'lists'), '--data-root',
            str(tmp_path / 'ucf'), '--work-dir', str(work)]
    for checkpoint in checkpoints:
        args += ['--model', checkpoint]
    assert eval_protocol.main(args) == 0
    report = json.loads((work / 'report.json').read_text())
    assert [r['split'] for r in report['splits']] == [
        f'seed{n}-{part}' for n in (1, 2, 3) for part in ('base', 'novel')]
    words = {'ApplyEyeMakeup': 'apply eye makeup', 'Archery': 'archery',
             'ApplyLipstick': 'apply lipstick', 'YoYo': 'yo yo'}
    for row in report['splits']:
        seed_name, part = row['split'].split('-')
        assert row['checkpoint'] == checkpoints[int(seed_name[-1]) - 1]
        texts = [words[n] for n in parts[part]]
        loaded = load_model(row['checkpoint'], config=str(config),
                            labels=texts)
        hits = []
        for label, name in enumerate(parts[part]):
            for group in GROUPS[label]:
                video = str(tmp_path / 'ucf' / name /
                            f'v_{name}_g{group:02d}_c01.avi')
                with torch.no_grad():
                    scores = loaded.model.predict_scores(
                        loaded.preprocess(video)[None])
                hits.append(int(scores.argmax()) == label)
        assert row['acc/top1'] == pytest.approx(sum(hits) / len(hits))
        assert row['classes'] == 2 and row['videos_tested'] == 4
    summary = report['summary']
    for n in (1, 2, 3):
        base, novel = (report['splits'][2 * (n - 1) + k]['acc/top1']
                       for k in (0, 1))
        hm = 2 * base * novel / (base + novel) if base + novel else 0
        assert summary['seeds'][f'seed{n}']['hm'] == pytest.approx(hm)
    hms = [summary['seeds'][f'seed{n}']['hm'] for n in (1, 2, 3)]
    assert summary['hm']['mean'] == pytest.approx(statistics.fmean(hms))
    table = (work / 'report.md').read_text()
    assert '| seed | base top-1 (%) | novel top-1 (%) | HM (%) |' in table


def test_report_summaries_per_protocol(tmp_path):
    from models.evaluation.protocol_report import summarize, write_report
    rows = [dict(split=f'K={k}', classes=51, test_videos=10,
                 videos_tested=10, **{'acc/top1': top1, 'acc/top5': 0.9})
            for k, top1 in ((2, 0.5), (4, 0.6), (8, 0.7), (16, 0.8))]
    assert summarize('few-shot', rows) == {}  # one result per K
    write_report(str(tmp_path / 'r'), dict(protocol='few-shot',
                                           dataset='hmdb51',
                                           model=['a', 'b', 'c', 'd'],
                                           splits=rows))
    table = (tmp_path / 'r.md').read_text()
    assert '| K=16 | 51 | 10 of 10 | 80.00 | 90.00 |' in table
    assert 'mean' not in table and 'Model: `a`, `b`, `c`, `d`' in table
    zero = summarize('zero-shot', rows[:3])
    assert zero['acc/top1']['mean'] == pytest.approx(0.6)
    assert zero['acc/top1']['std'] == pytest.approx(
        statistics.pstdev([0.5, 0.6, 0.7]))
    b2n = summarize('base-to-novel', [
        dict(split='seed1-base', **{'acc/top1': 0.8}),
        dict(split='seed1-novel', **{'acc/top1': 0.4})])
    assert b2n['hm']['mean'] == pytest.approx(2 * 0.8 * 0.4 / 1.2)
    assert b2n['hm_of_means'] == pytest.approx(2 * 0.8 * 0.4 / 1.2)
