"""tools/eval_moments.py end to end: a short long video of each set, a tiny
random model, the report's figures consistent with the ground truth and
with find_moments' own documents; the ground truth as predictions is
perfect; mismatched inputs are refused."""
import copy
import csv
import json
import os
import os.path as osp
import subprocess
import sys

import eval_moments
import generate_videos
import pytest
from conftest import ROOT, make_tiny_config, offline_env

from models.evaluation.moment_metrics import evaluate_moments

TOOL = osp.join(ROOT, 'tools', 'eval_moments.py')
SETS = ('trained', 'zeroshot')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """One 24-second long video per set, and a tiny model."""
    root = tmp_path_factory.mktemp('moments')
    out = str(root / 'long')
    generate_videos.generate_long(out, 1, minutes=0.4, seed=3, workers=1,
                                  progress=False, size_scale=0.5)
    config, checkpoint = make_tiny_config(str(root))
    # the model's labels are the trained classes, as the quickstart's are
    with open(config) as f:
        text = f.read()
    with open(config, 'w') as f:
        f.write(text.replace('data/not_here/label_map.txt',
                             osp.join(out, 'label_map.txt')))
    truths = {
        name: osp.join(out, f'ground_truth_{name}.json') for name in SETS
    }
    return dict(root=str(root), truths=truths, config=config,
                checkpoint=checkpoint)


def load(path):
    with open(path) as f:
        return json.load(f)


def in_unit(value):
    return value is None or 0 <= value <= 1


def as_result(truth_path, drop=0):
    """A find_moments document whose segments are the ground truth's
    (``drop`` true segments left out of the first video)."""
    truth = load(truth_path)
    folder = osp.dirname(truth_path)
    videos = []
    for k, video in enumerate(truth['videos']):
        segments = video['segments'][drop:] if k == 0 else video['segments']
        videos.append(dict(
            video=osp.join(folder, video['video']),
            duration_s=video['duration_s'], fps=video['fps'],
            num_frames=video['num_frames'], windows=[], scores={},
            segments={
                label: [dict(start_s=s['start_s'], end_s=s['end_s'],
                             score=1.0, peak_s=s['start_s'])
                        for s in segments if s['label'] == label]
                for label in truth['labels']
            }))
    return dict(model=dict(name='ground truth'), queries=truth['labels'],
                window_s=None, stride_s=None, score='truth',
                threshold=None, videos=videos, failures={})


def write_json(path, document):
    with open(path, 'w') as f:
        json.dump(document, f)
    return path


def test_end_to_end_with_a_tiny_model(data, tmp_path, capsys):
    report_path = str(tmp_path / 'report.json')
    results = str(tmp_path / 'results')
    proc = subprocess.run(
        [sys.executable, TOOL, data['truths']['trained'],
         data['truths']['zeroshot'], '--config', data['config'],
         '--checkpoint', data['checkpoint'], '--out', report_path,
         '--results-dir', results, '--no-progress'],
        cwd=ROOT, env=offline_env(), capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    report = load(report_path)
    assert [s['set'] for s in report['sets']] == list(SETS)
    assert report['iou_thresholds'] == [0.3, 0.5, 0.7]
    assert report['machine']['cpus'] == os.cpu_count()
    for one in report['sets']:
        truth = load(data['truths'][one['set']])
        assert one['queries'] == truth['labels']
        segments = [s for v in truth['videos'] for s in v['segments']]
        overall = one['overall']
        assert overall['num_truth'] == len(segments) > 0
        assert sum(f['num_truth'] for f in one['per_label'].values()) == \
            len(segments)
        for label, figures in one['per_label'].items():
            assert figures['num_truth'] == sum(
                s['label'] == label for s in segments)
        for figures in [overall, *one['per_label'].values()]:
            assert in_unit(figures['mean_best_iou'])
            for row in figures['at'].values():
                assert all(in_unit(row[k])
                           for k in ('recall', 'precision', 'f1'))
                assert row['matched'] <= min(figures['num_truth'],
                                             figures['num_predicted'])
        # the model's defaults for a 4-frame model, and its own score
        assert (one['window_s'], one['stride_s']) == (2.0, 1.0)
        background = ' and 19 background labels' * (one['set'] == 'zeroshot')
        assert one['score'] == (f'probability among the '
                                f'{len(truth["labels"])} queries{background}')
        assert one['ground_truth'] == data['truths'][one['set']]
        # the figures are those of find_moments' own document
        result = load(osp.join(results, f'{one["set"]}.json'))
        windows = sum(len(v['windows']) for v in result['videos'])
        assert one['timing']['windows'] == windows > 10
        assert one['timing']['windows_embedded'] == windows
        assert one['timing']['videos_from_cache'] == 0
        assert one['timing']['windows_per_s'] == pytest.approx(
            windows / one['timing']['seconds'])
        found = {
            osp.relpath(v['video'], osp.dirname(data['truths'][one['set']])):
            v['segments'] for v in result['videos']
        }
        expected = evaluate_moments(
            found, {v['video']: v['segments'] for v in truth['videos']},
            truth['labels'])
        assert one['overall'] == expected['overall']
        assert overall['num_predicted'] == sum(
            len(s) for v in result['videos'] for s in v['segments'].values())
    assert 'recall' in proc.stdout and 'windows/s' in proc.stdout

    # The saved documents evaluated again, without a model, as CSV
    table = str(tmp_path / 'report.csv')
    assert eval_moments.main([
        data['truths']['trained'], data['truths']['zeroshot'],
        '--predictions', osp.join(results, 'trained.json'),
        osp.join(results, 'zeroshot.json'), '--out', table
    ]) == 0
    with open(table) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * (2 + 19 + 3)  # thresholds x (overall + labels)
    for one in report['sets']:
        row = next(r for r in rows if r['set'] == one['set']
                   and r['label'] == '(all)' and r['iou'] == '0.5')
        assert int(row['matched']) == one['overall']['at']['0.5']['matched']
        assert int(row['num_truth']) == one['overall']['num_truth']


def test_windows_of_frames_and_labels_of_a_file(data, tmp_path):
    report_path = str(tmp_path / 'report.json')
    results = str(tmp_path / 'results')
    truth = load(data['truths']['zeroshot'])
    all_labels = osp.join(osp.dirname(data['truths']['zeroshot']),
                          'label_map_all.txt')
    model = ['--config', data['config'], '--checkpoint', data['checkpoint'],
             '--no-progress', '--out', report_path]
    # the trained labels asked too: they can only be false positives
    assert eval_moments.main([data['truths']['zeroshot'], *model,
                              '--label-file', all_labels]) == 0
    (one, ) = load(report_path)['sets']
    assert one['queries'] == generate_videos.split_classes(
        generate_videos.DEFAULT_HELDOUT)[0] + truth['labels']
    assert one['score'] == 'probability among the 22 queries'
    assert len(one['per_label']) == 22
    assert sum(one['per_label'][label]['num_truth']
               for label in truth['labels']) == one['overall']['num_truth']
    assert eval_moments.main([
        data['truths']['zeroshot'], *model, '--window-frames', '12',
        '--results-dir', results, '--no-background'
    ]) == 0
    (one, ) = load(report_path)['sets']
    assert one['score'] == 'probability among the 3 queries'
    assert (one['window_frames'], one['stride_frames']) == (12, 6)
    (video, ) = load(osp.join(results, 'zeroshot.json'))['videos']
    fps = truth['videos'][0]['fps']
    starts = [start for start, _ in video['windows']]
    assert {round((end - start) * fps, 6)
            for start, end in video['windows']} == {12}
    assert round((starts[1] - starts[0]) * fps, 6) == 6
    assert one['timing']['windows'] == len(video['windows'])
    # As before find_moments took window_frames: each video searched with
    # the window and stride in seconds of its frame rate.
    from models.apis.moments import STILL_SUFFIX, find_moments
    from models.apis.video_scoring import load_scoring_model
    scorer = load_scoring_model(config=data['config'],
                                checkpoint=data['checkpoint'])
    folder = osp.dirname(data['truths']['zeroshot'])
    path = osp.normpath(osp.join(folder, truth['videos'][0]['video']))
    before = find_moments(scorer, [path], truth['labels'],
                          window_s=12 / fps, stride_s=6 / fps, topk=1000,
                          progress=False, background=[])
    assert before['videos'] == [video]
    # --subtract-still is passed through
    assert eval_moments.main([
        data['truths']['zeroshot'], *model, '--window-frames', '12',
        '--no-background', '--subtract-still'
    ]) == 0
    (still, ) = load(report_path)['sets']
    assert still['score'] == 'probability among the 3 queries' + STILL_SUFFIX
    assert still['timing']['windows'] == len(video['windows'])


def test_ground_truth_as_predictions_is_perfect(data, tmp_path):
    report_path = str(tmp_path / 'perfect.json')
    predictions = [
        write_json(str(tmp_path / f'{name}.json'),
                   as_result(data['truths'][name])) for name in SETS
    ]
    assert eval_moments.main([
        *data['truths'].values(), '--predictions', *predictions, '--out',
        report_path, '--iou', '0.5', '0.9'
    ]) == 0
    for one in load(report_path)['sets']:
        assert one['overall']['num_truth'] > 0
        for row in one['overall']['at'].values():
            assert row['recall'] == row['precision'] == 1.0
    # one true segment left out: one miss, no false positive
    write_json(predictions[0], as_result(data['truths']['trained'], drop=1))
    assert eval_moments.main([
        data['truths']['trained'], '--predictions', predictions[0], '--out',
        report_path
    ]) == 0
    (one, ) = load(report_path)['sets']
    total = one['overall']['num_truth']
    assert one['overall']['at']['0.5']['recall'] == (total - 1) / total
    assert one['overall']['at']['0.5']['precision'] == 1.0


def test_predictions_that_do_not_answer_the_ground_truth(
        data, tmp_path, capsys):
    truth = data['truths']['zeroshot']
    good = as_result(truth)
    cases = []
    other_queries = copy.deepcopy(good)
    other_queries['queries'] = other_queries['queries'][::-1]
    cases.append((other_queries, 'not the labels'))
    no_video = copy.deepcopy(good)
    no_video['videos'] = []
    cases.append((no_video, 'has no entry for'))
    longer = copy.deepcopy(good)
    longer['videos'][0]['duration_s'] += 3
    cases.append((longer, 'not the video the ground truth describes'))
    for document, message in cases:
        path = write_json(str(tmp_path / 'p.json'), document)
        capsys.readouterr()
        assert eval_moments.main([truth, '--predictions', path]) == 2
        assert message in capsys.readouterr().err
    # a ground truth whose video is missing, or malformed
    broken = load(truth)
    broken['videos'][0]['segments'][0]['end_s'] = -1
    path = write_json(osp.join(osp.dirname(truth), 'broken.json'), broken)
    assert eval_moments.main([path, '--predictions', path]) == 2
    assert 'start_s < end_s' in capsys.readouterr().err
    broken = load(truth)
    broken['set'] = '../elsewhere'
    write_json(path, broken)
    assert eval_moments.main([path, '--predictions', path]) == 2
    assert '"set" must be a plain name' in capsys.readouterr().err
    broken = load(truth)
    broken['videos'][0]['video'] = 'zeroshot/gone.mp4'
    write_json(path, broken)
    assert eval_moments.main([path, '--predictions', path]) == 2
    assert 'does not exist' in capsys.readouterr().err
    # the report may not overwrite an input
    assert eval_moments.main(
        [truth, '--predictions', truth, '--out', truth]) == 2
    assert 'same file as the input' in capsys.readouterr().err


@pytest.mark.parametrize('kind', ['Latin-1', 'FIFO'])
def test_a_label_file_that_cannot_be_read(data, tmp_path, kind):
    labels = tmp_path / 'labels.txt'
    if kind == 'FIFO':
        os.mkfifo(labels)  # opening it would wait forever for a writer
        expected = 'is a FIFO, not a regular file'
    else:
        labels.write_bytes('caf\u00e9 au lait\n'.encode('latin-1'))
        expected = 'is not UTF-8 text (byte 3); save it as UTF-8'
    proc = subprocess.run(
        [sys.executable, TOOL, data['truths']['zeroshot'], '--label-file',
         str(labels), '--config', data['config'], '--checkpoint',
         data['checkpoint']], cwd=ROOT, env=offline_env(),
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.splitlines() == [
        f'eval_moments.py: error: --label-file {str(labels)!r} {expected}']


def test_an_unreadable_video_gives_no_figures(data, tmp_path, capsys):
    # a ground truth of the user's own (no "generator": no manifest needed)
    truth = load(data['truths']['zeroshot'])
    del truth['generator']
    folder = tmp_path / 'zeroshot'
    folder.mkdir()
    (folder / 'long_0000.mp4').write_bytes(b'not a video' * 100)
    path = write_json(str(tmp_path / 'truth.json'), truth)
    report = str(tmp_path / 'report.json')
    assert eval_moments.main([
        path, '--config', data['config'], '--checkpoint', data['checkpoint'],
        '--out', report, '--no-progress'
    ]) == 1
    assert 'No figures' in capsys.readouterr().err
    assert not osp.exists(report)


def with_sizes(document):
    """As find_moments writes it: each video's size in bytes too."""
    for video in document['videos']:
        video['size_bytes'] = os.path.getsize(video['video'])
    return document


def test_predictions_of_other_videos_are_refused(tmp_path, capsys):
    """Predictions made on seed 4's videos, evaluated against seed 5's
    ground truth written over them (same names, same length)."""
    out = str(tmp_path / 'long')
    generate_videos.generate_long(out, 1, minutes=0.2, seed=4, workers=1,
                                  progress=False, size_scale=0.5)
    truth = osp.join(out, 'ground_truth_zeroshot.json')
    old = write_json(str(tmp_path / 'old.json'), with_sizes(as_result(truth)))
    assert eval_moments.main([truth, '--predictions', old]) == 0
    generate_videos.generate_long(out, 1, minutes=0.2, seed=5, workers=1,
                                  progress=False, size_scale=0.5)
    capsys.readouterr()
    assert eval_moments.main([truth, '--predictions', old]) == 2
    (line, ) = capsys.readouterr().err.strip().splitlines()
    assert 'are of another video' in line and 'long_0000.mp4' in line
    new = write_json(str(tmp_path / 'new.json'), with_sizes(as_result(truth)))
    assert eval_moments.main([truth, '--predictions', new]) == 0


def test_a_set_unlike_its_manifest_is_refused(data, tmp_path, capsys):
    import shutil
    folder = tmp_path / 'set'
    shutil.copytree(osp.dirname(data['truths']['zeroshot']), folder)
    truth = str(folder / 'ground_truth_zeroshot.json')
    predictions = write_json(str(tmp_path / 'p.json'), as_result(truth))
    assert eval_moments.main([truth, '--predictions', predictions]) == 0
    # a video replaced after the set was written (here: one byte more)
    video = folder / 'zeroshot' / 'long_0000.mp4'
    before = video.read_bytes()
    video.write_bytes(before + b'\0')
    capsys.readouterr()
    assert eval_moments.main([truth, '--predictions', predictions]) == 2
    (line, ) = capsys.readouterr().err.strip().splitlines()
    assert f"{str(video)!r} is not the file the manifest" in line
    video.write_bytes(before)
    # a ground truth edited, or one the manifest does not list
    document = load(truth)
    document['videos'][0]['segments'].pop()
    write_json(truth, document)
    assert eval_moments.main([truth, '--predictions', predictions]) == 2
    assert f'{truth!r} is not the file' in capsys.readouterr().err
    other = write_json(str(folder / 'other.json'), document)
    assert eval_moments.main([other, '--predictions', predictions]) == 2
    assert 'is not listed in the manifest' in capsys.readouterr().err


def test_a_generated_set_without_its_manifest_is_refused(data, tmp_path,
                                                         capsys):
    import shutil
    folder = tmp_path / 'set'
    shutil.copytree(osp.dirname(data['truths']['zeroshot']), folder)
    truth = str(folder / 'ground_truth_zeroshot.json')
    predictions = write_json(str(tmp_path / 'p.json'), as_result(truth))
    (folder / 'manifest.json').unlink()
    capsys.readouterr()
    assert eval_moments.main([truth, '--predictions', predictions]) == 2
    (line, ) = capsys.readouterr().err.strip().splitlines()
    assert (f'{truth!r} was written by generate_videos.py with a manifest'
            in line and 'manifest.json' in line and 'is missing' in line)
    # the same file without "generator" is ground truth of the user's own
    document = load(truth)
    assert document.pop('generator') == 'generate_videos.py'
    write_json(truth, document)
    assert eval_moments.main([truth, '--predictions', predictions]) == 0
