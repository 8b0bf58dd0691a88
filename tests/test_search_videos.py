"""tools/search_videos.py as users run it (fresh interpreter, offline):
ranking by a text query, and the feature cache beside the folder that
later runs reuse."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, offline_env
from test_video_scoring import make_tiny_config, make_videos

TOOL = osp.join(ROOT, 'tools', 'search_videos.py')
sys.path.insert(0, osp.join(ROOT, 'tools'))
import search_videos  # noqa: E402

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
    cache_path = str(tmp_path / 'clips.actionclip_cache.pt')
    cache = torch.load(cache_path, weights_only=True)  # plain data only
    (entries, ) = cache['models'].values()
    assert sorted(entries) == ['video_0.mp4', 'video_1.mp4', 'video_2.mp4']

    # The ranking is the cosine similarity of the cached features with the
    # query, computed here in-process from the same model.
    from models.video_scoring import (load_scoring_model,
                                      query_similarity, query_text_features)
    scorer = load_scoring_model(config=config, checkpoint=checkpoint)
    query = query_text_features(scorer.model, QUERY)
    similarity = query_similarity(
        torch.stack([entries[osp.basename(v)]['features'] for v in videos]),
        query)
    best = similarity.argsort(descending=True)[:2].tolist()
    assert [video for _, video in ranking] == [videos[i] for i in best]
    assert [float(s) for s, _ in ranking] == pytest.approx(
        [float(similarity[i]) for i in best], abs=1e-4)

    # A second search in this process (one interpreter start less) ...
    stamp = os.stat(cache_path).st_mtime_ns
    capsys.readouterr()
    assert search_videos.main(
        [folder, QUERY, *model, '--topk', '2', '--no-progress']) == 0
    counts, again = parse(*capsys.readouterr())
    assert counts == (0, 3) and again == ranking
    assert os.stat(cache_path).st_mtime_ns == stamp  # nothing to rewrite

    # ... and a third in a fresh one, after one file changed.
    os.utime(videos[1], ns=(10**18, 10**18))
    counts, _ = search(folder, *model)
    assert counts == (1, 2)
    entries = torch.load(cache_path, weights_only=True)['models'][
        scorer.identity]
    assert entries['video_1.mp4']['mtime_ns'] == 10**18


@pytest.mark.parametrize('args, message', [
    (['{video}', 'q'], 'is not a folder'),
    (['{empty}', 'q'], 'holds no video files'),
    (['{missing}', 'q'], 'is not a folder'),
    (['{folder}', '  '], 'The query is empty'),
    (['{folder}', 'q', '--topk', '0'], '--topk must be >= 1'),
    (['{folder}', 'q', '--no-cache', '--cache', 'c.pt'], 'contradict'),
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
