"""tools/search_videos.py as users run it (fresh interpreter, offline):
ranking by a text query, and the feature cache beside the folder that
later runs reuse."""
import csv
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import search_videos
import torch
from conftest import (ROOT, fake_scorer, make_files, make_tiny_config,
                      make_videos, offline_env)

from models.apis.feature_cache import (CACHE_MAGIC, default_cache_path,
                                       model_key, read_cache)

TOOL = osp.join(ROOT, 'tools', 'search_videos.py')

QUERY = 'a yellow square moving right'


def parse(stdout, stderr):
    counts = re.search(r'Features: (\d+) computed, (\d+) from the cache',
                       stderr)
    assert counts, stderr[-3000:]
    ranking = re.findall(r'^\s+\d+\s+(-?[0-9.]+)\s+(\S+)$', stdout, re.M)
    return (int(counts.group(1)), int(counts.group(2))), ranking


def search(folder, *args):
    """Run the tool in a fresh interpreter, offline."""
    proc = subprocess.run(
        [sys.executable, TOOL, folder, QUERY, *args, '--no-progress'],
        cwd=ROOT,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return parse(proc.stdout, proc.stderr)


def test_ranks_by_query_and_reuses_the_cache(tmp_path, capsys):
    config, checkpoint = make_tiny_config(str(tmp_path))
    folder = str(tmp_path / 'clips')
    videos = make_videos(folder, 3)
    model = ['--config', config, '--checkpoint', checkpoint]

    counts, ranking = search(folder, *model, '--topk', '2')
    assert counts == (3, 0)
    cache_path = default_cache_path(folder)  # none beside the folder
    assert not [name for name in os.listdir(tmp_path)
                if name.startswith('clips') and name != 'clips']
    assert not [name for name in os.listdir(folder) if 'cache' in name
                or name.endswith('.lock')]
    cache, problem = read_cache(cache_path)  # plain data only
    assert problem is None
    (entries, ) = cache['models'].values()
    assert sorted(entries) == ['video_0.mp4', 'video_1.mp4', 'video_2.mp4']

    # The ranking is the cosine similarity of the cached features with the
    # query, computed here in-process from the same model.
    from models.apis.video_scoring import (load_scoring_model,
                                           query_similarity,
                                           query_text_features)
    scorer = load_scoring_model(config=config, checkpoint=checkpoint)
    query = query_text_features(scorer.model, QUERY)
    similarity = query_similarity(
        torch.stack([entries[osp.basename(v)]['features'] for v in videos]),
        query)
    best = similarity.argsort(descending=True)[:2].tolist()
    assert [video for _, video in ranking] == [videos[i] for i in best]
    assert [float(s) for s, _ in ranking] == pytest.approx(
        [float(similarity[i]) for i in best], abs=1e-4)

    # Later searches in this process (the cache the command wrote is read
    # from disk: interpreter starts spared): nothing to embed again ...
    stamp = os.stat(cache_path).st_mtime_ns
    capsys.readouterr()
    assert search_videos.main(
        [folder, QUERY, *model, '--topk', '2', '--no-progress']) == 0
    counts, again = parse(*capsys.readouterr())
    assert counts == (0, 3) and again == ranking
    assert os.stat(cache_path).st_mtime_ns == stamp  # nothing to rewrite

    # ... and, after one file changed, that file alone.
    os.utime(videos[1], ns=(10**18, 10**18))
    assert search_videos.main([folder, QUERY, *model, '--no-progress']) == 0
    counts, _ = parse(*capsys.readouterr())
    assert counts == (1, 2)
    entries = read_cache(cache_path)[0]['models'][model_key(
        scorer.identity)]
    assert entries['video_1.mp4']['mtime_ns'] == 10**18


@pytest.mark.parametrize('args, message', [
    (['{video}', 'q'], 'is not a folder'),
    (['{empty}', 'q'], 'holds no video files'),
    (['{missing}', 'q'], "missing' does not exist"),
    (['{folder}', '  '], 'The query is empty'),
    (['{folder}', 'q', '--topk', '0'], '--topk must be >= 1'),
    (['{folder}', 'q', '--no-cache', '--cache', 'c.pt'], 'contradict'),
    (['{folder}', 'q', '--workers', '-2'], '--workers must be >= 0'),
    (['{folder}', 'q', '--model', 'ViT-B/32-8', '--config', 'c.py'],
     '--model and --config both choose a model'),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    folder = str(tmp_path / 'clips')
    (video, ) = make_videos(folder, 1)
    (tmp_path / 'empty').mkdir()
    fill = dict(folder=folder, video=video, empty=str(tmp_path / 'empty'),
                missing=str(tmp_path / 'missing'))
    status = search_videos.main([a.format(**fill) for a in args])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1 and ': error: ' in err, err
    assert message in err, err


# ---------------------------------------------------------------------------
# The cache path and unreadable folder entries (a fake model: see
# conftest.fake_scorer)
# ---------------------------------------------------------------------------


def run_search(monkeypatch, capsys, *args, scorer=None):
    """Run the tool in this process with a fake model; returns ``(status,
    stdout, stderr)``. Without ``scorer``, loading a model fails the test:
    the tool had to stop before."""

    def load(_):
        assert scorer is not None, 'the model was loaded'
        return scorer

    monkeypatch.setattr(search_videos, 'load_model_from_args', load)
    capsys.readouterr()
    status = search_videos.main([*args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize('kind', ['text', 'video', 'checkpoint', 'folder'])
def test_a_cache_path_that_is_not_ours_is_refused(tmp_path, monkeypatch,
                                                  capsys, kind):
    folder = str(tmp_path / 'clips')
    make_files(folder, 2)
    path = str(tmp_path / 'mine')
    if kind == 'text':
        with open(path, 'w') as f:
            f.write('my notes\n')
    elif kind == 'video':
        path = make_videos(str(tmp_path / 'v'), 1)[0]
    elif kind == 'checkpoint':
        torch.save({'state_dict': {'w': torch.ones(2)}}, path)
    else:
        os.mkdir(path)
    before = open(path, 'rb').read() if kind != 'folder' else None
    status, out, err = run_search(monkeypatch, capsys, folder, QUERY,
                                  '--cache', path)
    assert status == 2 and not out
    assert len(err.strip().splitlines()) == 1 and ': error: ' in err, err
    assert repr(osp.abspath(path)) in err and 'not a feature cache' in err
    assert 'pass another --cache' in err
    if before is not None:
        assert open(path, 'rb').read() == before


def test_a_missing_cache_folder_is_created(tmp_path, monkeypatch, capsys):
    folder = str(tmp_path / 'clips')
    make_files(folder, 2)
    cache_path = str(tmp_path / 'caches' / 'new' / 'clips.pt')
    status, out, err = run_search(monkeypatch, capsys, folder, QUERY,
                                  '--cache', cache_path, '--no-progress',
                                  scorer=fake_scorer())
    assert status == 0, err
    assert 'Features: 2 computed, 0 from the cache' in err
    assert open(cache_path, 'rb').read().startswith(CACHE_MAGIC)

    (tmp_path / 'a_file').write_text('x')
    status, out, err = run_search(monkeypatch, capsys, folder, QUERY,
                                  '--cache', str(tmp_path / 'a_file' / 'c'))
    assert status == 2 and 'Cannot create the folder' in err, err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize('no_cache', [False, True])
def test_broken_links_and_loops_are_reported_with_the_bad_videos(
        tmp_path, monkeypatch, capsys, no_cache):
    folder = tmp_path / 'clips'
    videos = make_files(str(folder), 2)
    os.symlink('missing.mp4', folder / 'dangling.mp4')
    os.symlink('loop.mp4', folder / 'loop.mp4')
    os.symlink('..', folder / 'up')
    args = [str(folder), QUERY, '--no-progress'] + (
        ['--no-cache'] if no_cache else [])
    status, out, err = run_search(monkeypatch, capsys, *args,
                                  scorer=fake_scorer())
    assert status == 1, err
    ranked = re.findall(r'^\s+\d+\s+-?[0-9.]+\s+(\S+)$', out, re.M)
    assert sorted(ranked) == videos
    assert '2 of 4 videos failed' in err
    assert re.search(r"dangling.mp4' is a broken symbolic link", err), err
    assert re.search(r"loop.mp4' is a symbolic link loop", err), err
    assert 'Traceback' not in err


@pytest.mark.parametrize('link', ['missing', 'loop'])
def test_a_folder_that_is_a_broken_link_or_loop_says_so(
        tmp_path, monkeypatch, capsys, link):
    path = tmp_path / 'clips'
    os.symlink('missing' if link == 'missing' else 'clips', path)
    status, _, err = run_search(monkeypatch, capsys, str(path), QUERY)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert ('is a broken symbolic link' if link == 'missing' else
            'is a symbolic link loop') in err, err


def test_no_progress_bar_when_nothing_is_to_embed(tmp_path, monkeypatch,
                                                  capsys):
    folder = str(tmp_path / 'clips')
    make_files(folder, 2)
    status, _, err = run_search(monkeypatch, capsys, folder, QUERY,
                                scorer=fake_scorer())
    assert status == 0 and '2/2' in err, err  # the bar of the first run
    status, _, err = run_search(monkeypatch, capsys, folder, QUERY,
                                scorer=fake_scorer())
    assert status == 0 and 'Features: 0 computed, 2 from the cache' in err
    assert 'video/s' not in err and '0/0' not in err and '0video' not in err


@pytest.mark.parametrize('ext', ['.json', '.csv'])
def test_out_writes_the_ranking(tmp_path, monkeypatch, capsys, ext):
    folder = str(tmp_path / 'clips')
    make_files(folder, 3)
    with open(osp.join(folder, 'broken.mp4'), 'wb') as f:
        f.write(b'not a video')
    scorer = fake_scorer()
    scorer.describe = lambda: dict(name='fake model')
    out = tmp_path / 'new' / f'ranking{ext}'
    status, stdout, err = run_search(monkeypatch, capsys, folder, QUERY,
                                     '--topk', '2', '--out', str(out),
                                     scorer=scorer)
    assert f'Wrote {out}' in err
    ranking = re.findall(r'^\s+(\d+)\s+(-?[0-9.]+)\s+(\S+)$', stdout, re.M)
    assert len(ranking) == 2
    if ext == '.json':
        data = json.loads(out.read_text())
        assert data['query'] == QUERY
        assert data['model'] == dict(name='fake model')
        assert [(str(r['rank']), r['video']) for r in data['results']] == [
            (rank, video) for rank, _, video in ranking
        ]
        assert [r['similarity'] for r in data['results']] == pytest.approx(
            [float(s) for _, s, _ in ranking], abs=1e-4)
        assert [f['video'] for f in data['failures']] == (
            [osp.join(folder, 'broken.mp4')] if status else [])
    else:
        rows = list(csv.reader(out.open()))
        assert rows[0] == ['rank', 'video', 'similarity']
        assert [(r[0], r[1]) for r in rows[1:]] == [
            (rank, video) for rank, _, video in ranking
        ]
    assert not [n for n in os.listdir(out.parent) if n.startswith('.')]


@pytest.mark.parametrize('target, message', [
    ('ranking.txt', 'unknown format'),
    ('{folder}/video_0.mp4', 'unknown format'),
    ('{cache}', 'unknown format'),
    ('{video_json}', 'same file as the input'),
])
def test_out_is_refused_before_the_model_loads(tmp_path, monkeypatch,
                                               capsys, target, message):
    folder = str(tmp_path / 'clips')
    make_files(folder, 2)
    # A .json name that is a link to a video: writing it would destroy
    # that video.
    link = osp.join(folder, 'video_0.mp4')
    json_link = str(tmp_path / 'out.json')
    os.symlink(link, json_link)
    path = target.format(folder=folder,
                         cache=default_cache_path(folder),
                         video_json=json_link)
    status, _, err = run_search(monkeypatch, capsys, folder, QUERY, '--out',
                                path)
    assert status == 2 and message in err, err
    assert osp.islink(json_link) and len(os.listdir(folder)) == 2
