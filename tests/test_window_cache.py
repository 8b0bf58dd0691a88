"""The window feature cache (models/apis/feature_cache.py, through
models/apis/moments.video_windows): a second query neither decodes nor
embeds, a new or changed video is the only one embedded, windows and models
are kept apart, runs on different videos keep each other's entries, and a
file that is not ours is refused and left alone."""
import os
import os.path as osp

import pytest
import torch
from conftest import write_video

from models.apis import moments
from models.apis.feature_cache import CACHE_MAGIC, NotACacheError, read_cache
from models.apis.feature_cache import (WindowCache, default_window_cache_path,
                                       window_cache_key)


class Counter:
    """Counts the videos opened and the windows the model embeds."""

    def __init__(self, scorer, monkeypatch):
        self.opened, self.embedded = [], 0
        open_video = moments.open_video
        encode = scorer.model.encode_video

        def counting_open(scorer_, video):
            self.opened.append(video)
            return open_video(scorer_, video)

        def counting_encode(frames):
            self.embedded += len(frames)
            return encode(frames)

        monkeypatch.setattr(moments, 'open_video', counting_open)
        monkeypatch.setattr(scorer.model, 'encode_video', counting_encode)


def test_default_path_is_in_the_user_cache_folder(tmp_path, user_cache_home):
    moments = osp.join(user_cache_home, 'actionclip', 'moments')
    folder = default_window_cache_path(str(tmp_path / 'clips') + os.sep)
    assert folder == default_window_cache_path(str(tmp_path / 'clips'))
    video = default_window_cache_path(str(tmp_path / 'a.mp4'))
    assert osp.dirname(folder) == osp.dirname(video) == moments
    assert osp.basename(folder).startswith('clips-')
    assert osp.basename(video).startswith('a.mp4-')


def test_another_query_neither_decodes_nor_embeds(scorer, tmp_path,
                                                  monkeypatch):
    videos = [
        write_video(str(tmp_path / f'v{i}.mp4'), num_frames=40, fps=10,
                    seed=i) for i in range(2)
    ]
    cache = str(tmp_path / 'c.pt')
    counter = Counter(scorer, monkeypatch)
    first = moments.find_moments(scorer, videos, ['a square', 'a circle'],
                                 cache_path=cache, progress=False)
    assert counter.opened == videos and counter.embedded == 2 * 3
    with open(cache, 'rb') as f:
        assert f.read(len(CACHE_MAGIC)) == CACHE_MAGIC

    info = {}
    second = moments.find_moments(scorer, videos, ['a triangle', 'a square'],
                                  cache_path=cache, progress=False,
                                  info=info)
    assert counter.opened == videos and counter.embedded == 6
    assert info['stats'].reused == videos and not info['stats'].computed
    assert not info['stats'].saved
    for a, b in zip(first['videos'], second['videos']):
        assert a['windows'] == b['windows']
    # The cached features score exactly as fresh ones.
    fresh = moments.find_moments(scorer, videos, ['a triangle', 'a square'],
                                 progress=False)
    assert fresh['videos'] == second['videos']
    del counter.opened[:]

    # A new video is the only one embedded; a changed one is embedded again.
    videos.append(write_video(str(tmp_path / 'v2.mp4'), num_frames=40,
                              fps=10, seed=2))
    moments.find_moments(scorer, videos, ['a square'], cache_path=cache,
                         progress=False, background=['a circle'])
    assert counter.opened == [videos[2]]
    stat = os.stat(videos[0])
    os.utime(videos[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    moments.find_moments(scorer, videos, ['a square'], cache_path=cache,
                         progress=False, background=['a circle'])
    assert counter.opened[1:] == [videos[0]]

    # Another window is another entry; the first stays.
    moments.find_moments(scorer, videos[:1], ['a square'], window_s=1.0,
                         cache_path=cache, progress=False,
                         background=['a circle'])
    assert counter.opened[2:] == [videos[0]]
    cache_dict, problem = read_cache(cache)
    assert problem is None
    assert sorted(cache_dict['models']) == sorted([
        window_cache_key(scorer.identity, 2.0, 1.0),
        window_cache_key(scorer.identity, 1.0, 0.5)
    ])
    entries = cache_dict['models'][window_cache_key(scorer.identity, 2.0,
                                                    1.0)]
    assert sorted(entries) == sorted(osp.abspath(v) for v in videos)


def test_runs_on_different_videos_keep_each_others_entries(tmp_path):
    cache = str(tmp_path / 'c.pt')
    stat = os.stat(__file__)
    # Both opened before either writes, as two runs at once.
    first = WindowCache(cache, 'model', 2.0, 1.0)
    second = WindowCache(cache, 'model', 2.0, 1.0)
    windows = moments.VideoWindows('a.mp4', 20, 10.0, [(0.0, 2.0)],
                                   torch.ones(1, 1, 4))
    first.add(stat, windows)
    second.add(stat, moments.VideoWindows('b.mp4', 20, 10.0, [(0.0, 2.0)],
                                          torch.ones(1, 1, 4)))
    assert first.save() and second.save()
    cache_dict, _ = read_cache(cache)
    (entries, ) = cache_dict['models'].values()
    assert sorted(entries) == [osp.abspath('a.mp4'), osp.abspath('b.mp4')]
    again = WindowCache(cache, 'model', 2.0, 1.0)
    found = again.lookup('a.mp4', stat)
    assert found is not None and found.windows == [(0.0, 2.0)]
    assert WindowCache(cache, 'other', 2.0, 1.0).lookup('a.mp4', stat) is None


@pytest.mark.parametrize('content', [b'a text file\n', b'\x00\x00\x00 mp4'])
def test_a_file_that_is_not_ours_is_refused_and_left_alone(
        scorer, tmp_path, content):
    path = tmp_path / 'notes.txt'
    path.write_bytes(content)
    video = write_video(str(tmp_path / 'v.mp4'), num_frames=12, fps=10)
    with pytest.raises(NotACacheError, match='left untouched'):
        moments.find_moments(scorer, [video], ['a square', 'a circle'],
                             cache_path=str(path), progress=False)
    assert path.read_bytes() == content


def test_an_interrupted_run_keeps_the_videos_it_finished(
        scorer, tmp_path, monkeypatch):
    videos = [
        write_video(str(tmp_path / f'v{i}.mp4'), num_frames=20, fps=10,
                    seed=i) for i in range(2)
    ]
    cache = str(tmp_path / 'c.pt')
    embed = moments._embed_video

    def interrupted(scorer_, video, *args):
        if video == videos[1]:
            raise KeyboardInterrupt
        return embed(scorer_, video, *args)

    monkeypatch.setattr(moments, '_embed_video', interrupted)
    with pytest.raises(KeyboardInterrupt):
        moments.find_moments(scorer, videos, ['a', 'b'], cache_path=cache,
                             progress=False)
    cache_dict, _ = read_cache(cache)
    (entries, ) = cache_dict['models'].values()
    assert list(entries) == [osp.abspath(videos[0])]


def test_stills_are_cached_beside_the_windows(scorer, tmp_path,
                                              monkeypatch):
    video = write_video(str(tmp_path / 'v.mp4'), num_frames=40, fps=10)
    cache = str(tmp_path / 'c.pt')
    counter = Counter(scorer, monkeypatch)
    kwargs = dict(cache_path=cache, progress=False, background=[])
    moments.find_moments(scorer, [video], ['a', 'b'], **kwargs)
    assert counter.opened == [video] and counter.embedded == 3
    # The cached windows lack the stills: decoded once more, both
    # embedded in that one pass.
    first = moments.find_moments(scorer, [video], ['a', 'b'],
                                 subtract_still=True, **kwargs)
    assert counter.opened == [video] * 2 and counter.embedded == 3 + 6
    # Now neither a still query nor a plain one decodes or embeds.
    info = {}
    again = moments.find_moments(scorer, [video], ['a', 'b'],
                                 subtract_still=True, info=info, **kwargs)
    plain = moments.find_moments(scorer, [video], ['a', 'b'], **kwargs)
    assert counter.opened == [video] * 2 and counter.embedded == 9
    assert info['stats'].reused == [video]
    assert again == first
    assert plain['videos'][0]['scores'] != first['videos'][0]['scores']
    # One entry, the stills beside the features.
    cache_dict, _ = read_cache(cache)
    (key, ) = cache_dict['models']
    assert key == window_cache_key(scorer.identity, 2.0, 1.0)
    entry = cache_dict['models'][key][osp.abspath(video)]
    assert entry['stills'].shape == entry['features'].shape


def test_windows_in_frames_have_their_own_entry(scorer, tmp_path,
                                                monkeypatch):
    videos = [
        write_video(str(tmp_path / 'a.mp4'), num_frames=40, fps=10),
        write_video(str(tmp_path / 'b.mp4'), num_frames=60, fps=25, seed=1)
    ]
    cache = str(tmp_path / 'c.pt')
    counter = Counter(scorer, monkeypatch)
    kwargs = dict(cache_path=cache, progress=False, background=[])
    first = moments.find_moments(scorer, videos, ['a', 'b'],
                                 window_frames=20, **kwargs)
    assert counter.opened == videos
    second = moments.find_moments(scorer, videos, ['a', 'b'],
                                  window_frames=20, **kwargs)
    assert counter.opened == videos and second == first
    moments.find_moments(scorer, videos, ['a', 'b'], window_frames=10,
                         **kwargs)
    assert counter.opened == videos * 2
    cache_dict, _ = read_cache(cache)
    assert sorted(cache_dict['models']) == sorted(
        window_cache_key(scorer.identity, None, None, n) for n in (10, 20))


def test_variable_frame_rate_video_is_timed_and_cached(scorer, tmp_path,
                                                       monkeypatch):
    import odd_videos
    # 20 frames every 0.1 s, then 20 every 0.5 s: a 12 s video whose
    # average rate would call 4 s (40 frames at the encoder's 10 fps).
    stamps = [100 * i for i in range(20)] + [2000 + 500 * i
                                             for i in range(20)]
    video = odd_videos.write(str(tmp_path / 'vfr.mkv'), 40, pts_ms=stamps)
    cache = str(tmp_path / 'c.pt')
    counter = Counter(scorer, monkeypatch)
    first = moments.find_moments(scorer, [video], ['a', 'b'],
                                 cache_path=cache, progress=False)
    entry = first['videos'][0]
    assert 11.5 < entry['duration_s'] <= 12.0
    assert entry['windows'][-1][1] == entry['duration_s']
    assert [w[0] for w in entry['windows']][-3:] == [5.5, 7.0, 8.5]
    again = moments.find_moments(scorer, [video], ['a', 'b'],
                                 cache_path=cache, progress=False)
    assert counter.opened == [video] and again == first
