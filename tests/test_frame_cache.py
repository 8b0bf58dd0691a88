"""The frame cache gives the frames of decoding, bit for bit, and decodes
again when a video changes or an entry is unreadable."""
import os
import sys

import numpy as np
import pytest
from conftest import ROOT
from mmaction.registry import TRANSFORMS

import models  # noqa: F401  (registers the transforms)
from models.datasets import frame_cache

sys.path.insert(0, os.path.join(ROOT, 'tools'))
import generate_videos as gen  # noqa: E402


def run(steps, filename):
    results = dict(filename=filename, start_index=0, modality='RGB')
    for cfg in steps:
        results = TRANSFORMS.build(cfg)(results)
    return results


def sample(test_mode):
    return dict(type='SampleFrames', clip_len=1, frame_interval=1,
                num_clips=4, test_mode=test_mode)


PLAIN = [dict(type='VideoInit'), None, dict(type='VideoDecode')]


@pytest.mark.parametrize('codec', [gen.PYAV_H264, 'mp4v'])
def test_cached_frames_are_the_decoded_frames(tmp_path, codec):
    # 64 and 128 px wide (decord2 3.4 miscopies some other widths here);
    # the generator's writers, H.264 with B-frames among them.
    videos = []
    for i, (obj, motion) in enumerate((('square', 'moving left'),
                                       ('circle', 'growing'))):
        frames, fps = gen.render(obj, motion, seed=i)
        frames = [f[:64, :64 * (i + 1)] for f in frames]
        videos.append(str(tmp_path / f'{i}.mp4'))
        gen.write_clip(videos[-1], frames, fps, codec)
    cache = str(tmp_path / 'cache')
    cached = [dict(type='CachedVideoInit', cache_dir=cache), None,
              dict(type='CachedVideoDecode')]
    for video in videos:
        # every frame, then random training samples (the same draws)
        whole, fps = frame_cache.decode_whole(video)
        for test_mode in (True, False, False):
            state = np.random.get_state()
            want = run([s or sample(test_mode) for s in PLAIN], video)
            np.random.set_state(state)
            got = run([s or sample(test_mode) for s in cached], video)
            assert got['total_frames'] == want['total_frames'] == len(whole)
            assert got['avg_fps'] == want['avg_fps'] == fps
            assert np.array_equal(got['frame_inds'], want['frame_inds'])
            assert np.array_equal(np.stack(got['imgs']),
                                  np.stack(want['imgs']))
    # one entry per video, read from then on
    assert len([n for n in os.listdir(cache)
                if not n.endswith('.fps.npy')]) == 2


def test_a_changed_video_or_a_broken_entry_is_decoded_again(tmp_path):
    video = str(tmp_path / 'v.mp4')
    frames, fps = gen.render('triangle', 'moving up', seed=0)
    gen.write_clip(video, [f[:64, :64] for f in frames], fps, gen.PYAV_H264)
    cache = str(tmp_path / 'cache')
    first = frame_cache.load_or_decode(cache, video).frames
    entry = frame_cache.cache_file(cache, video)
    with open(entry, 'r+b') as f:  # cut short, as by a crash
        f.truncate(100)
    assert np.array_equal(frame_cache.load_or_decode(cache, video).frames,
                          first)
    gen.write_clip(video, [f[:64, :64] for f in frames[:10]], fps,
                   gen.PYAV_H264)
    assert frame_cache.cache_file(cache, video) != entry
    assert len(frame_cache.load_or_decode(cache, video).frames) == 10


def test_no_room_for_the_cache_still_gives_the_frames(tmp_path, monkeypatch):
    # A full disk (here: a write that fails) costs the cache, not the run,
    # and blames neither the video nor leaves a partial entry.
    import errno
    video = str(tmp_path / 'v.mp4')
    frames, fps = gen.render('triangle', 'moving up', seed=0)
    gen.write_clip(video, [f[:64, :64] for f in frames], fps, gen.PYAV_H264)
    want = frame_cache.decode_whole(video)[0]
    real = np.save

    def full(file, array, *args, **kwargs):
        if array.ndim == 4:
            raise OSError(errno.ENOSPC, 'No space left on device')
        real(file, array, *args, **kwargs)

    monkeypatch.setattr(frame_cache.np, 'save', full)
    monkeypatch.setattr(frame_cache, '_warned', [])
    cache = tmp_path / 'cache'
    for _ in range(2):
        got = frame_cache.load_or_decode(str(cache), video).frames
        assert np.array_equal(got, want)
    assert [n for n in os.listdir(cache)
            if not n.endswith('.fps.npy')] == []
    (warning, ) = frame_cache._warned  # said once
    assert 'No space left on device' in warning and str(cache) in warning


def test_default_folder_is_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    assert frame_cache.default_cache_dir() == str(
        tmp_path / 'actionclip' / 'frames')
    monkeypatch.setenv('XDG_CACHE_HOME', 'relative')  # not absolute: ~
    assert frame_cache.default_cache_dir() == os.path.join(
        os.path.expanduser('~'), '.cache', 'actionclip', 'frames')


def test_fill_decodes_what_the_cache_lacks_in_worker_processes(tmp_path):
    from types import SimpleNamespace

    from mmaction.registry import DATASETS
    from mmengine.registry import DefaultScope

    from models.engine.hooks.frame_cache_hook import FillFrameCacheHook
    names = []
    for i in range(3):
        frames, fps = gen.render('square', 'moving up', seed=i)
        names.append(f'{i}.mp4')
        gen.write_clip(str(tmp_path / names[-1]),
                       [f[:64, :64] for f in frames], fps, gen.PYAV_H264)
    (tmp_path / 'broken.mp4').write_bytes(b'not a video')
    ann = tmp_path / 'list.txt'
    ann.write_text(''.join(f'{n} 0\n' for n in names + ['broken.mp4']))
    cache = str(tmp_path / 'cache')

    def dataset(steps):
        with DefaultScope.overwrite_default_scope('mmaction'):
            return DATASETS.build(
                dict(type='TolerantVideoDataset', ann_file=str(ann),
                     data_prefix=dict(video=str(tmp_path)),
                     pipeline=steps))

    train = dataset([dict(type='CachedVideoInit', cache_dir=cache)])
    # the rank's share only: videos 1 (and the broken one) of 0..3
    assert frame_cache.fill(train, workers=0, rank=1, world_size=2) == 1
    loader = SimpleNamespace(dataset=train, num_workers=2)
    runner = SimpleNamespace(
        train_dataloader=loader, logger=SimpleNamespace(info=print),
        val_loop=SimpleNamespace(dataloader=SimpleNamespace(
            dataset=dataset([dict(type='VideoInit')]))))
    FillFrameCacheHook().before_train(runner)  # videos 0 and 2, 2 workers
    assert frame_cache.fill(train, workers=2) == 0  # nothing left
    for name in names:
        entry = frame_cache.cache_file(cache, str(tmp_path / name))
        whole, _ = frame_cache.decode_whole(str(tmp_path / name))
        assert np.array_equal(np.load(entry), whole)
    assert len(os.listdir(cache)) == 2 * len(names)  # frames + frame rate
