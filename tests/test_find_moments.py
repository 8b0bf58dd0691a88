"""tools/find_moments.py as users run it: segments printed per query, the
window cache reused by a second query (fresh interpreter, offline), --out
JSON/CSV, --plot and --html handed the result document, outputs refused
before the model loads, and bad input in one line with exit status 2."""
import csv
import json
import os
import os.path as osp
import re
import subprocess
import sys

import find_moments
import pytest
from conftest import ROOT, make_tiny_config, offline_env, write_video

from models.apis.video_scoring import load_scoring_model
from models.apis.feature_cache import default_window_cache_path

TOOL = osp.join(ROOT, 'tools', 'find_moments.py')
QUERIES = ['a yellow square moving right', 'a red circle']


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tiny')
    config, checkpoint = make_tiny_config(str(folder))
    clips = folder / 'clips'
    clips.mkdir()
    videos = [
        write_video(str(clips / 'a.mp4'), num_frames=40, fps=10),
        write_video(str(clips / 'b.mp4'), num_frames=25, fps=10, seed=1)
    ]
    return dict(folder=folder, config=config, checkpoint=checkpoint,
                clips=str(clips), videos=videos,
                model=['--config', config, '--checkpoint', checkpoint])


def windows_line(stderr):
    found = re.search(r'Windows: (\d+) embedded from (\d+) videos, (\d+) '
                      r'videos from', stderr)
    assert found, stderr[-3000:]
    return tuple(int(g) for g in found.groups())


def test_finds_moments_and_a_second_query_reuses_the_cache(tiny, capsys):
    # The first run here, the second in a fresh interpreter, offline.
    code = find_moments.main(
        [tiny['clips'], *QUERIES, *tiny['model'], '--no-progress'])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert windows_line(err) == (3 + 2, 2, 0)
    assert osp.isfile(default_window_cache_path(tiny['clips']))
    assert not osp.exists(tiny['clips'] + '.actionclip_moments.pt')
    for video in tiny['videos']:
        assert f'{video} (' in out
    assert re.search(r'^  a yellow square moving right: (none|\d\d:\d\d\.\d'
                     r'-\d\d:\d\d\.\d \(\d\.\d\d\))', out, re.M)
    proc = subprocess.run(
        [sys.executable, TOOL, tiny['clips'], 'a triangle growing',
         'a red circle', *tiny['model'], '--no-progress'],
        cwd=ROOT, env=offline_env(), capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    # Another question: nothing decoded or embedded.
    assert windows_line(proc.stderr) == (0, 0, 2)
    assert f'{tiny["videos"][0]} (' in proc.stdout


def run_here(monkeypatch, capsys, tiny, *args, scorer=None):
    """Run main() in this process with the tiny model (loaded once)."""
    def load(_):
        return scorer
    monkeypatch.setattr(find_moments, 'load_model_from_args', load)
    code = find_moments.main([*map(str, args), '--no-progress'])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope='module')
def scorer(tiny):
    return load_scoring_model(config=tiny['config'],
                              checkpoint=tiny['checkpoint'])


@pytest.mark.parametrize('ext', ['json', 'csv'])
def test_out_writes_the_document(tiny, scorer, monkeypatch, capsys,
                                 tmp_path, ext):
    out = tmp_path / f'r.{ext}'
    code, stdout, err = run_here(monkeypatch, capsys, tiny, tiny['videos'][0],
                                 *QUERIES, '--out', out, '--no-cache',
                                 '--threshold', '0', '--topk', '2',
                                 scorer=scorer)
    assert code == 0, err
    assert 'no cache' in err and f'Wrote {out}' in err
    if ext == 'json':
        result = json.loads(out.read_text())
        assert result['queries'] == QUERIES and result['threshold'] == 0
        assert [v['video'] for v in result['videos']] == tiny['videos'][:1]
        assert result['failures'] == {}
    else:
        rows = list(csv.reader(out.open()))
        assert rows[0] == ['video', 'query', 'rank', 'start_s', 'end_s',
                           'score', 'peak_s']
        assert [r[1:3] for r in rows[1:]] == [[q, '1'] for q in QUERIES]


def test_plot_and_html_get_the_result_document(tiny, scorer, monkeypatch,
                                               capsys, tmp_path):
    from models.visualization import contact_sheet, html_report, timeline
    calls = []

    def fake(name):
        def write(*args, **kwargs):
            calls.append((name, args))
            path = args[-1]
            with open(path, 'w') as f:
                f.write(name)
            return path
        return write

    monkeypatch.setattr(timeline, 'plot_timeline', fake('timeline'))
    monkeypatch.setattr(contact_sheet, 'write_contact_sheet', fake('sheet'))
    monkeypatch.setattr(html_report, 'write_moments_page', fake('page'))
    plots, page, out = tmp_path / 'plots', tmp_path / 'p.html', \
        tmp_path / 'r.json'
    code, _, err = run_here(monkeypatch, capsys, tiny, tiny['clips'],
                            *QUERIES, '--plot', plots, '--html', page,
                            '--out', out, '--no-cache', scorer=scorer)
    assert code == 0, err
    result = json.loads(out.read_text())
    assert [c[0] for c in calls] == ['timeline', 'sheet'] * 2 + ['page']
    assert calls[0][1] == (result['videos'][0], QUERIES,
                           str(plots / 'a_timeline.png'))
    assert calls[1][1] == (result['videos'][0],
                           str(plots / 'a_segments.jpg'))
    assert calls[-1][1] == (result, str(page))
    assert sorted(p.name for p in plots.iterdir()) == [
        'a_segments.jpg', 'a_timeline.png', 'b_segments.jpg',
        'b_timeline.png'
    ]


def test_plot_names_are_numbered_where_stems_repeat():
    paths = find_moments.plot_paths('d', ['x/a.mp4', 'y/a.mp4', 'b.avi'])
    assert [osp.basename(p[0]) for p in paths.values()] == [
        'a_timeline.png', 'a_2_timeline.png', 'b_timeline.png'
    ]


def test_an_output_that_is_an_input_is_refused_before_loading(
        tiny, monkeypatch, capsys, tmp_path):
    def load(_):
        raise AssertionError('the model must not load')
    monkeypatch.setattr(find_moments, 'load_model_from_args', load)
    for option, video, ext in (('--out', tiny['videos'][0], '.csv'),
                               ('--html', tiny['videos'][1], '.html')):
        # The same file through another name: a link to an input.
        link = str(tmp_path / f'link{ext}')
        os.symlink(video, link)
        code = find_moments.main(
            [tiny['clips'], 'q', option, link, '--no-cache'])
        err = capsys.readouterr().err
        assert code == 2 and 'input' in err, err


@pytest.mark.parametrize('args, message', [
    (['--window', '1', '--stride', '2'], 'longer than --window'),
    (['--window', '0'], '--window must be a positive'),
    (['--threshold', 'nan'], '--threshold must be a number'),
    (['--chunk-frames', '0'], '--chunk-frames'),
    (['--workers', '2'], '--workers is not used'),
    (['--html', 'page.txt'], 'unknown format'),
    (['--background', 'no_such_labels.txt'], 'no such file'),
    (['--cache', 'c.pt', '--no-cache'], 'contradict'),
    (['--window-frames', '30', '--window', '2'], 'replaces --window'),
    (['--window-frames', '1'], '--window-frames must be >= 2'),
])
def test_bad_input_is_one_line_and_exit_2(tiny, capsys, args, message):
    code = find_moments.main([tiny['clips'], 'q', *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and 'Traceback' not in err, err


def test_one_query_without_labels_asks_for_a_threshold(
        tiny, scorer, monkeypatch, capsys):
    code, _, err = run_here(monkeypatch, capsys, tiny, tiny['videos'][0],
                            'a square', '--no-cache', scorer=scorer)
    assert code == 2 and 'cosine similarities' in err, err
    code, out, err = run_here(monkeypatch, capsys, tiny, tiny['videos'][0],
                              'a square', '--no-cache', '--threshold', '-1',
                              scorer=scorer)
    assert code == 0 and 'score: cosine similarity' in err, err
    assert '  a square: 00:00.0-00:04.0' in out


def test_unreadable_videos_are_listed_and_exit_1(tiny, scorer, monkeypatch,
                                                 capsys, tmp_path):
    folder = tmp_path / 'mixed'
    folder.mkdir()
    good = write_video(str(folder / 'good.mp4'), num_frames=20, fps=10)
    (folder / 'bad.mp4').write_bytes(b'not a video')
    code, out, err = run_here(monkeypatch, capsys, tiny, folder, *QUERIES,
                              scorer=scorer)
    assert code == 1, err
    assert f'{good} (' in out
    assert '1 of 2 videos failed' in err and 'bad.mp4' in err


def test_a_missing_label_file_is_said_once_and_recorded(
        tiny, scorer, monkeypatch, capsys, tmp_path):
    # The tiny config names data/not_here/label_map.txt, which is missing.
    out = tmp_path / 'r.json'
    code, _, err = run_here(monkeypatch, capsys, tiny, tiny['clips'],
                            *QUERIES, '--no-cache', '--out', out,
                            scorer=scorer)
    assert code == 0, err
    lines = [line for line in err.splitlines() if 'warning' in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("find_moments.py: warning: The model's "
                               "label file 'data/not_here/label_map.txt'")
    assert 'WITHOUT background' in lines[0]
    assert '--background FILE' in lines[0]
    background = json.loads(out.read_text())['background']
    assert background['missing_label_file'] == 'data/not_here/label_map.txt'
    labels = tmp_path / 'labels.txt'
    labels.write_text('a triangle\na green circle\n')
    code, _, err = run_here(monkeypatch, capsys, tiny, tiny['clips'],
                            *QUERIES, '--no-cache', '--out', out,
                            '--background', labels, scorer=scorer)
    assert code == 0 and 'warning' not in err, err
    assert json.loads(out.read_text())['background'] == dict(source='given',
                                                             labels=2)


def test_window_frames_and_subtract_still(tiny, scorer, monkeypatch, capsys,
                                          tmp_path):
    from models.apis.moments import STILL_SUFFIX
    out = tmp_path / 'r.json'
    code, _, err = run_here(monkeypatch, capsys, tiny, tiny['clips'],
                            *QUERIES, '--no-cache', '--out', out,
                            '--window-frames', '16', '--subtract-still',
                            scorer=scorer)
    assert code == 0, err
    assert 'window 16 frames, stride 8 frames' in err
    result = json.loads(out.read_text())
    assert (result['window_frames'], result['stride_frames']) == (16, 8)
    assert result['score'].endswith(STILL_SUFFIX)
    # 40 frames at 10 fps: windows 0-16, 8-24, 16-32, 24-40.
    assert result['videos'][0]['windows'] == [[0.0, 1.6], [0.8, 2.4],
                                              [1.6, 3.2], [2.4, 4.0]]
