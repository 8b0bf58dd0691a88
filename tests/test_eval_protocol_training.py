"""tools/eval_protocol.py --train-config: base-to-novel (3 seeds) and
few-shot (K = 2, 4, 8, 16) train each model through MMAction2's training
loop (the tiny synthetic config, one epoch of one or two steps) on
generated videos and lists in ViFi-CLIP's formats, then test it; the
report's numbers equal a separate test of each trained checkpoint, and a
second run trains nothing again."""
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, mim_test_in_process, offline_env, write_video

import eval_protocol
from models.evaluation.protocol_train import train_runs

TOOL = os.path.join(ROOT, 'tools', 'eval_protocol.py')
TINY_CONFIG = os.path.join(
    ROOT, 'configs', 'actionclip_tiny-scratch_1x1x4_synthetic-actions.py')
#: The test videos of label 0 and 1 of each test list: three and one, so
#: that a model answering one class everywhere scores 75 or 25 %, not 50.
TEST_GROUPS = {0: (4, 5, 6), 1: (4, )}


def write_train_config(folder):
    """The tiny config, one epoch of batches of 4 (one or two steps), no
    checkpoints of its own (the tool saves the trained weights)."""
    path = folder / 'tiny_train.py'
    path.write_text(f'_base_ = [{TINY_CONFIG!r}]\n'
                    'train_cfg = dict(max_epochs=1)\n'
                    'train_dataloader = dict(batch_size=4)\n'
                    'test_dataloader = dict(batch_size=4)\n'
                    'default_hooks = dict(checkpoint=dict(interval=-1, '
                    'save_last=False))\n')
    return str(path)


def make_dataset(root, classes, label_csv, seed, label_names=None):
    """Videos ``<root>/videos/<Class>/v_<Class>_gXX_c01.avi`` of groups 1
    to 6 of each class, and the ``id,name`` label file ``label_csv`` of
    ``label_names`` (default: ``classes``); returns ``{class: [video file
    names]}``."""
    label_csv.parent.mkdir(parents=True, exist_ok=True)
    label_csv.write_text('id,name\r\n' + ''.join(
        f'{i},{n}\r\n' for i, n in enumerate(label_names or classes)))
    names = {}
    for k, name in enumerate(classes):
        names[name] = []
        for group in range(1, 7):
            video = f'v_{name}_g{group:02d}_c01.avi'
            path = root / 'videos' / name / video
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(str(path), num_frames=8, size=(64, 48),
                            seed=seed + 10 * k + group)
            names[name].append(video)
    return names


def write_list(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(f'{video} {label}\n' for video, label in rows))


def held_out_rows(names, classes):
    return [(names[c][group - 1], label) for label, c in enumerate(classes)
            for group in TEST_GROUPS[label]]


def plain_top1(row, texts, videos):
    """Top-1 of ``row``'s checkpoint over ``texts``, computed apart from
    the runner: the project's loading and preprocessing, argmax."""
    import torch

    from models.apis.loading import load_model
    loaded = load_model(row['checkpoint'], config=row['config'],
                        labels=texts)
    hits = []
    for path, label in videos:
        with torch.no_grad():
            scores = loaded.model.predict_scores(
                loaded.preprocess(path)[None])
        hits.append(int(scores.argmax()) == label)
    return sum(hits) / len(hits)


def test_base_to_novel_trains_each_seed(tmp_path, capsys):
    """UCF101 base-to-novel: each seed trains on its own list of base
    videos over the base classes, and is tested on base and on novel
    classes; every top-1 equals the plain computation, one split equals
    ``mim test``'s script."""
    import torch

    from models.checkpoints.safe_loading import load_checkpoint_file
    lists = tmp_path / 'lists' / 'vificlip'
    splits = lists / 'datasets_splits' / 'base2novel_splits' / 'ucf_splits'
    parts = {'base': ['ApplyEyeMakeup', 'Archery'],
             'novel': ['ApplyLipstick', 'YoYo']}
    words = {'ApplyEyeMakeup': 'apply eye makeup', 'Archery': 'archery',
             'ApplyLipstick': 'apply lipstick', 'YoYo': 'yo yo'}
    videos = {}
    for part, classes in parts.items():
        names = make_dataset(tmp_path, classes, lists / 'labels' /
                             f'ucf_101_{part}_labels.csv',
                             seed=100 * len(videos))
        videos.update(names)
        write_list(splits / f'{part}_val.txt', held_out_rows(names, classes))
    for n in (1, 2, 3):  # seed n: two of groups 1-3 of each base class
        write_list(splits / f'fs_base_s{n}_train.txt', [
            (videos[c][group - 1], label)
            for label, c in enumerate(parts['base'])
            for group in (1, 2, 3) if group != n])
    work = tmp_path / 'work'
    assert eval_protocol.main([
        'base-to-novel', '--dataset', 'ucf101', '--train-config',
        write_train_config(tmp_path), '--lists', str(tmp_path / 'lists'),
        '--data-root', str(tmp_path / 'videos'), '--work-dir', str(work),
        '--workers', '0']) == 0
    assert 'seed3: training on 4 videos' in capsys.readouterr().err
    report = json.loads((work / 'report.json').read_text())
    assert [r['split'] for r in report['splits']] == [
        f'seed{n}-{part}' for n in (1, 2, 3) for part in ('base', 'novel')]
    assert report['train_config'] == str(tmp_path / 'tiny_train.py')
    assert report['init'] is None
    trained = [str(work / f'seed{n}' / 'trained.pth') for n in (1, 2, 3)]
    assert report['model'] == trained
    weights = []
    for n, path in enumerate(trained, 1):
        checkpoint = load_checkpoint_file(path)
        # Trained over the base classes, on the seed's own list.
        assert checkpoint['meta']['labels'] == [
            words[c] for c in parts['base']]
        assert (work / f'seed{n}' / 'train_list.txt').read_text() == ''.join(
            f'{c}/{videos[c][group - 1]} {label}\n'
            for label, c in enumerate(parts['base'])
            for group in (1, 2, 3) if group != n)
        weights.append(checkpoint['state_dict'])
    # The same start (the config's seed), different training lists.
    assert any(not torch.equal(value, weights[1][key])
               for key, value in weights[0].items())
    for row in report['splits']:
        seed, part = row['split'].split('-')
        assert row['checkpoint'] == trained[int(seed[-1]) - 1]
        assert row['classes'] == 2 and row['videos_tested'] == 4
        classes = parts[part]
        tests = [(str(tmp_path / 'videos' / c / videos[c][group - 1]), label)
                 for label, c in enumerate(classes)
                 for group in TEST_GROUPS[label]]
        assert row['acc/top1'] == pytest.approx(plain_top1(
            row, [words[c] for c in classes], tests))
    row = report['splits'][-1]  # seed3-novel
    found = mim_test_in_process(row['config'], row['checkpoint'],
                                str(tmp_path / 'mim'))
    assert found['acc/top1'] == pytest.approx(row['acc/top1'], abs=1e-4)
    assert found['acc/top5'] == pytest.approx(row['acc/top5'], abs=1e-4)
    summary = report['summary']
    assert set(summary['seeds']) == {'seed1', 'seed2', 'seed3'}


def test_few_shot_trains_each_k_once(tmp_path, capsys):
    """HMDB51 few-shot: each K trains on its list over all classes and is
    tested on split 1; the report's top-1 per K equals the plain
    computation; a second run takes the trained weights, and a changed
    config is refused."""
    lists = tmp_path / 'lists' / 'vificlip'
    classes = ['brush hair', 'cartwheel']
    names = make_dataset(tmp_path, ['brush_hair', 'cartwheel'],
                         lists / 'labels' / 'hmdb_51_labels.csv', seed=50,
                         label_names=classes)
    folder = lists / 'datasets_splits' / 'hmdb_splits'
    write_list(folder / 'val1.txt', held_out_rows(names, list(names)))
    shots = {2: 1, 4: 2, 8: 3, 16: 3}  # videos per class here
    for k, count in shots.items():
        write_list(folder / f'train1_few_shot_{k}.txt', [
            (names[c][group], label) for label, c in enumerate(names)
            for group in range(count)])
    config = write_train_config(tmp_path)
    work = tmp_path / 'work'
    args = ['few-shot', '--dataset', 'hmdb51', '--train-config', config,
            '--lists', str(tmp_path / 'lists'), '--data-root',
            str(tmp_path / 'videos'), '--work-dir', str(work),
            '--workers', '0']
    assert eval_protocol.main(args) == 0
    err = capsys.readouterr().err
    for k, count in shots.items():
        assert f'K={k}: training on {2 * count} videos' in err
    report = json.loads((work / 'report.json').read_text())
    assert [r['split'] for r in report['splits']] == [
        'K=2', 'K=4', 'K=8', 'K=16']
    tests = [(str(tmp_path / 'videos' / c / names[c][group - 1]), label)
             for label, c in enumerate(names)
             for group in TEST_GROUPS[label]]
    for row in report['splits']:
        assert row['checkpoint'] == str(work / row['split'] / 'trained.pth')
        assert row['classes'] == 2 and row['videos_tested'] == 4
        assert row['acc/top1'] == pytest.approx(
            plain_top1(row, classes, tests))
    assert '| K=16 | 2 | 4 of 4 |' in (work / 'report.md').read_text()

    # Again: nothing is trained (the tests that follow are the ones
    # above, run again).
    stamp = os.stat(work / 'K=2' / 'trained.pth').st_mtime_ns
    checked = eval_protocol.build_parser().parse_args(args)
    eval_protocol.check_args(checked)
    assert train_runs(checked, str(work)) == {
        row['split']: (row['checkpoint'], str(
            work / row['split'] / 'train_config.py'))
        for row in report['splits']}
    err = capsys.readouterr().err
    assert 'training on' not in err
    assert f'K=8: {work}/K=8/trained.pth exists, trained with this ' \
        'config: not trained again' in err
    assert os.stat(work / 'K=2' / 'trained.pth').st_mtime_ns == stamp

    # A changed training config: the old weights are not taken for it.
    with open(config, 'a') as f:
        f.write('optim_wrapper = dict(optimizer=dict(lr=1e-4))\n')
    assert eval_protocol.main(args) == 2
    err = capsys.readouterr().err
    assert f'{work}/K=2/trained.pth was not trained with this run' in err


@pytest.mark.parametrize('args, message', [
    (['zero-shot', '--dataset', 'ucf101', '--train-config', 'x.py'],
     'the zero-shot protocol trains nothing'),
    (['few-shot', '--dataset', 'ucf101', '--train-config', 'no/such.py'],
     "--train-config 'no/such.py': no such file"),
    (['few-shot', '--dataset', 'ucf101', '--train-config', TINY_CONFIG,
      '--config', TINY_CONFIG], '--config and --train-config both'),
    (['base-to-novel', '--dataset', 'ucf101', '--train-config',
      TINY_CONFIG, '--model', 'ViT-B/16-8', '--model', 'ViT-B/16-8'],
     'pass one at most, got 2'),
    (['base-to-novel', '--dataset', 'ucf101', '--train-config',
      TINY_CONFIG, '--model', 'no_such.pth'], 'no such file'),
    (['few-shot', '--dataset', 'hmdb51'], 'or --train-config to train'),
])
def test_training_refusals_before_torch(args, message):
    proc = subprocess.run(
        [sys.executable, '-X', 'importtime', TOOL, *args], cwd=ROOT,
        env=offline_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines()
              if not line.startswith('import time:')]
    assert len(errors) == 1 and message in errors[0], errors
    assert not re.search(r'\|\s+torch$', proc.stderr, re.M)


def test_missing_training_videos_are_named(tmp_path):
    """A training list's video the copy lacks stops the run before
    anything loads, listed in missing_<run>_train.txt."""
    lists = tmp_path / 'lists' / 'vificlip'
    names = make_dataset(tmp_path, ['brush_hair', 'cartwheel'],
                         lists / 'labels' / 'hmdb_51_labels.csv', seed=70)
    folder = lists / 'datasets_splits' / 'hmdb_splits'
    write_list(folder / 'val1.txt', held_out_rows(names, list(names)))
    for k in (2, 4, 8, 16):
        write_list(folder / f'train1_few_shot_{k}.txt',
                   [(names['cartwheel'][0], 1)]
                   + ([('gone.avi', 0)] if k == 8 else []))
    proc = subprocess.run(
        [sys.executable, '-X', 'importtime', TOOL, 'few-shot', '--dataset',
         'hmdb51', '--train-config', TINY_CONFIG, '--lists',
         str(tmp_path / 'lists'), '--data-root', str(tmp_path / 'videos'),
         '--work-dir', str(tmp_path / 'work')], cwd=ROOT, env=offline_env(),
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'lacks 1 of the 2 videos of the K=8 training list' in proc.stderr
    assert not re.search(r'\|\s+torch$', proc.stderr, re.M)
    assert (tmp_path / 'work' / 'missing_K=8_train.txt').read_text() == (
        'gone.avi\n')
