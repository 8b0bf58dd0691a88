"""Streamed window decoding and embedding (models/apis/window_stream.py):
the same frames and features as the model's test pipeline gives a clip of
each window, whatever the chunk and batch sizes, through decord and
through the OpenCV fallback; a bounded number of frames held whatever the
video's length; unreadable videos and non-finite features refused."""
import types

import numpy as np
import pytest
import torch
from conftest import break_decord_copies, write_video

from models.apis.video_scoring import embed_videos
from models.apis.window_stream import (NonFiniteFeaturesError, VideoStream,
                                       WindowFrames, embed_windows,
                                       embed_windows_and_stills, open_video,
                                       split_pipeline)
from models.apis.windows import plan_windows
from models.datasets.transforms import VideoReadError, _OpenCVFrames


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('videos')
    return dict(
        short=write_video(str(folder / 'short.mp4'), num_frames=12, fps=10),
        long=write_video(str(folder / 'long.mp4'), num_frames=90, fps=10,
                         seed=1),
        # mp4v's 72x40 coded frames in a 73x41 stream
        odd=write_video(str(folder / 'odd.mp4'), num_frames=45,
                        size=(73, 41), fps=10, seed=2),
        # open GOPs: decord's get_batch, seeking across the gaps between
        # windows, reads other frames (docs/decoding.md)
        open_gop=write_open_gop(str(folder / 'open_gop.mp4')))


def write_open_gop(path: str) -> str:
    """60 frames of H.264 with open GOPs (a key frame every 12) through
    PyAV; returns ``path``."""
    av = pytest.importorskip('av')
    rng = np.random.default_rng(3)
    background = rng.integers(0, 255, (48, 64, 3), np.uint8)
    with av.open(path, 'w') as container:
        stream = container.add_stream('libx264', rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, 'yuv420p'
        stream.options = {
            'x264-params': 'open-gop=1:keyint=12:bframes=3:b-adapt=0'}
        for i in range(60):
            image = background.copy()
            image[8:24] = np.roll(np.arange(64, dtype=np.uint8) * 4,
                                  3 * i)[None, :, None]
            for packet in stream.encode(
                    av.VideoFrame.from_ndarray(image, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def plain_window(scorer, video, sample):
    """A window the plain way: a fresh reader, the pipeline's own decoding
    step on the window's frame_inds, then the rest of the pipeline."""
    from mmaction.registry import TRANSFORMS
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope
    parts = split_pipeline(scorer.preprocess.pipeline.steps)
    with DefaultScope.overwrite_default_scope('mmaction'):
        init = TRANSFORMS.build(parts.init)
        decode = TRANSFORMS.build(parts.decode)
        post = Compose(parts.post)
    results = init(dict(filename=video, start_index=0, modality='RGB'))
    results.update(
        {k: v
         for k, v in sample.items() if k not in ('total_frames', )})
    results = decode(results)
    frames = [f.copy() for f in results['imgs']]
    return frames, post(results)


def test_the_pipeline_is_split_at_its_reading_steps(scorer):
    parts = split_pipeline(scorer.preprocess.pipeline.steps)
    assert parts.init['type'] == 'VideoInit'
    assert [s['type'] for s in parts.sampling] == ['SampleFrames']
    assert parts.decode['type'] == 'VideoDecode'
    assert [s['type'] for s in parts.post] == [
        'Resize', 'FormatShape', 'PackActionInputs'
    ]
    with pytest.raises(ValueError, match='streams videos with decord'):
        split_pipeline([dict(type='PyAVInit'), dict(type='PyAVDecode')])


def test_one_window_video_gives_the_pipelines_features(scorer, videos):
    stream = open_video(scorer, videos['short'])
    plan = plan_windows(stream.num_frames, stream.fps, 2.0, 1.0,
                        stream.sampler)
    assert len(plan) == 1
    features = embed_windows(scorer, stream, plan)
    plain, _ = embed_videos(scorer, [videos['short']], progress=False)
    assert torch.equal(features[0], plain[videos['short']])


@pytest.mark.parametrize('name', ['long', 'odd', 'open_gop'])
def test_streamed_windows_equal_the_plain_decoding(scorer, videos, name,
                                                   monkeypatch):
    video = videos[name]
    stream = open_video(scorer, video)
    plan = plan_windows(stream.num_frames, stream.fps, 1.3, 0.7,
                        stream.sampler)
    assert len(plan) > 4
    expected = [plain_window(scorer, video, s) for s in plan.samples]
    rng = np.random.default_rng(0)
    for chunk in (1, 3, int(rng.integers(4, 40)), 1000):
        stream = open_video(scorer, video)
        for k, frames in WindowFrames(stream, plan, chunk):
            assert len(frames) == len(expected[k][0])
            for got, want in zip(frames, expected[k][0]):
                assert np.array_equal(got, want), (name, chunk, k)
        # PyAV reads them all in one forward pass (the odd size too: it
        # gives the frames of the OpenCV fallback)
        assert stream._pyav is not None and stream._opencv is None
    if name == 'odd':
        # decoding with decord (backend='cpu'), the sequential OpenCV
        # reader takes over where decord cannot copy the frames (which
        # sizes depends on the CPU: forced here), in either mode
        break_decord_copies(monkeypatch)
        parts = split_pipeline(scorer.preprocess.pipeline.steps)
        for mode in ('accurate', 'efficient'):
            parts.decode.update(backend='cpu', mode=mode)
            stream = VideoStream(video, parts)
            for k, frames in WindowFrames(stream, plan, 5):
                for got, want in zip(frames, expected[k][0]):
                    assert np.array_equal(got, want), (name, mode, k)
            assert stream._pyav is None and stream._opencv is not None
        monkeypatch.undo()
    # The features of the plain packing, batched any way.
    inputs = scorer.preprocess.normalize([packed for _, packed in expected])
    from models.apis.video_scoring import encode_frames
    reference = encode_frames(scorer.model, inputs)
    for batch, chunk in ((1, 2), (3, 64), (len(plan) + 1, 7)):
        stream = open_video(scorer, video)
        features = embed_windows(scorer, stream, plan, batch, chunk)
        torch.testing.assert_close(features, reference, rtol=1e-5,
                                   atol=1e-6)


class CountingStream:
    """A stream of tiny fake frames that records every read."""

    def __init__(self, num_frames):
        self.num_frames = num_frames
        self.filename = 'fake.mp4'
        self.reads = []

    def read(self, indices):
        self.reads.append(list(indices))
        return [np.full((2, 2, 3), i % 251, np.uint8) for i in indices]


@pytest.mark.parametrize('chunk', [1, 16, 64])
def test_frames_held_do_not_grow_with_the_video(chunk):
    from models.apis.windows import WindowSampler
    sampler = WindowSampler([
        dict(type='SampleFrames', clip_len=1, frame_interval=1,
             num_clips=8, test_mode=True)
    ])
    peaks = []
    for minutes in (1, 60):  # an hour at 25 fps: 90,000 frames
        frames = minutes * 60 * 25
        plan = plan_windows(frames, 25.0, 4.0, 2.0, sampler)
        stream = CountingStream(frames)
        iterator = WindowFrames(stream, plan, chunk)
        count = 0
        for k, window in iterator:
            assert [int(f[0, 0, 0]) for f in window] == [
                i % 251 for i in plan.frame_indices[k]
            ]
            count += 1
        assert count == len(plan)
        read = [i for r in stream.reads for i in r]
        # Each needed frame decoded once, in ascending chunks.
        assert read == sorted(set(read)) and all(
            len(r) <= chunk for r in stream.reads)
        peaks.append(iterator.peak_held)
    # Bounded by one chunk plus the frames of the two windows that
    # overlap at a time, whatever the length (90,000 frames here).
    assert max(peaks) <= chunk + 2 * 8


def test_an_unreadable_video_is_named(scorer, tmp_path):
    bad = tmp_path / 'bad.mp4'
    bad.write_bytes(b'not a video at all' * 100)
    with pytest.raises(VideoReadError, match='bad.mp4'):
        open_video(scorer, str(bad))
    with pytest.raises(FileNotFoundError, match='missing.mp4'):
        open_video(scorer, str(tmp_path / 'missing.mp4'))
    with pytest.raises(VideoReadError, match='is a folder'):
        open_video(scorer, str(tmp_path))


def test_a_truncated_video_fails_with_its_name(scorer, videos, tmp_path):
    data = open(videos['long'], 'rb').read()
    cut = tmp_path / 'cut.mp4'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(VideoReadError, match='cut.mp4'):
        stream = open_video(scorer, str(cut))
        plan = plan_windows(stream.num_frames, stream.fps, 1.0, 0.5,
                            stream.sampler)
        embed_windows(scorer, stream, plan)


def test_non_finite_features_are_refused(scorer, videos, monkeypatch):
    stream = open_video(scorer, videos['short'])
    plan = plan_windows(stream.num_frames, stream.fps, 2.0, 1.0,
                        stream.sampler)
    broken = types.SimpleNamespace(
        model=types.SimpleNamespace(
            encode_video=lambda x: torch.full((len(x), 64), float('nan'))),
        preprocess=scorer.preprocess)
    with pytest.raises(NonFiniteFeaturesError, match='short.mp4'):
        embed_windows(broken, stream, plan)
    assert isinstance(stream, VideoStream)


@pytest.mark.parametrize('name', ['long', 'odd'])
def test_stills_are_the_middle_frame_through_the_pipeline(
        scorer, videos, name, monkeypatch):
    from models.apis.video_scoring import encode_frames
    video = videos[name]
    stream = open_video(scorer, video)
    plan = plan_windows(stream.num_frames, stream.fps, 1.3, 0.7,
                        stream.sampler)
    # By hand: the pipeline's own decoding of the middle sampled frame
    # repeated, then the rest of the pipeline, the preprocessor and the
    # model.
    packed = []
    for sample in plan.samples:
        inds = sample['frame_inds']
        still = dict(sample, frame_inds=np.array([inds[len(inds) // 2]] *
                                                 len(inds)))
        packed.append(plain_window(scorer, video, still)[1])
    reference = encode_frames(scorer.model,
                              scorer.preprocess.normalize(packed))
    windows = embed_windows(scorer, open_video(scorer, video), plan)
    reads = []
    for batch, chunk in ((1, 2), (3, 64), (2 * len(plan) + 1, 7)):
        stream = open_video(scorer, video)
        read = stream.read
        monkeypatch.setattr(stream, 'read',
                            lambda i, read=read: reads.append(list(i)) or
                            read(i))
        features, stills = embed_windows_and_stills(scorer, stream, plan,
                                                    batch, chunk)
        torch.testing.assert_close(stills, reference, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(features, windows, rtol=1e-5, atol=1e-6)
        # One pass: every frame decoded once, in ascending order, and
        # only those the windows take.
        decoded = [i for r in reads for i in r]
        assert decoded == sorted(set(decoded)), (batch, chunk)
        assert set(decoded) == {
            i for s in plan.samples for i in s['frame_inds'].tolist()}
        del reads[:]
    # A still differs from its window: the middle frame alone.
    assert not torch.allclose(stills, features)


# Real-world oddities (tests/odd_videos.py): the times are the frames'
# time stamps, and the frames those of the test pipeline.


def stream_frame_numbers(scorer, video, plan):
    import odd_videos
    stream = open_video(scorer, video)
    return [[odd_videos.frame_number(f) for f in frames]
            for _, frames in WindowFrames(stream, plan, 7)]


def test_variable_frame_rate_times_are_the_time_stamps(scorer, tmp_path):
    import odd_videos

    from models.visualization.frames import read_frames_at
    # 20 frames every 0.1 s, then 20 every 0.5 s: 12 s, 3.3 frames/s.
    stamps = [100 * i for i in range(20)] + [2000 + 500 * i
                                             for i in range(20)]
    for ext in ('mkv', 'mp4'):
        video = odd_videos.write(str(tmp_path / f'vfr.{ext}'), 40,
                                 pts_ms=stamps)
        stream = open_video(scorer, video)
        assert stream.num_frames == 40
        times = stream.frame_times
        np.testing.assert_allclose(times[:-1], [t / 1000 for t in stamps])
        # The last frame lasts what the container says (the encoder's
        # 0.1 s here, or the 0.5 s before it).
        end = times[-1]
        assert 11.55 < end <= 12.0
        assert stream.fps == pytest.approx(40 / end)
        plan = plan_windows(stream.num_frames, stream.fps, 2.0, 1.0,
                            stream.sampler, stream.frame_times)
        assert plan.duration_s == end
        for (start, stop), first, length in zip(plan.times, plan.starts,
                                                plan.lengths):
            assert start == times[first] and stop == times[first + length]
        # A window's frames are still those of the test pipeline.
        expected = [[odd_videos.frame_number(f)
                     for f in plain_window(scorer, video, s)[0]]
                    for s in plan.samples]
        assert stream_frame_numbers(scorer, video, plan) == expected
        # Thumbnails: the frame shown at each time.
        shown = read_frames_at(video, [0.0, 1.05, 2.0, 4.9, 11.9])
        assert [odd_videos.frame_number(f) for f in shown] == [
            0, 10, 20, 25, 39]


def test_constant_frame_rate_times_stay_frame_over_fps(scorer, videos):
    stream = open_video(scorer, videos['long'])
    assert stream.frame_times is None and stream.fps == 10.0


def test_edit_list_frames_match_the_test_pipeline(scorer, tmp_path):
    import odd_videos
    source = odd_videos.write(str(tmp_path / 'whole.mp4'), 60, gop=12)
    # Cut at 0.5 s by stream copy: the edit list hides frames 0 to 4.
    video = odd_videos.trim(source, str(tmp_path / 'cut.mp4'), 0.5)
    stream = open_video(scorer, video)
    assert stream.num_frames == 55
    plan = plan_windows(stream.num_frames, stream.fps, 1.3, 0.7,
                        stream.sampler, stream.frame_times)
    expected = [[odd_videos.frame_number(f)
                 for f in plain_window(scorer, video, s)[0]]
                for s in plan.samples]
    assert stream_frame_numbers(scorer, video, plan) == expected == [
        [(5 + i) % 64 for i in inds] for inds in plan.frame_indices]


def test_spliced_ts_thumbnails_follow_the_splice(scorer, tmp_path):
    import odd_videos

    from models.visualization.frames import read_frames_at
    # Two 3 s recordings joined; the second one's clock restarts at 0.
    video = odd_videos.spliced_ts(str(tmp_path / 'spliced.ts'))
    stream = open_video(scorer, video)
    assert stream.num_frames == 60 and stream.frame_times is None
    plan = plan_windows(stream.num_frames, stream.fps, 1.3, 0.7,
                        stream.sampler)
    assert plan.duration_s == pytest.approx(6.0)
    expected = [[odd_videos.frame_number(f)
                 for f in plain_window(scorer, video, s)[0]]
                for s in plan.samples]
    assert stream_frame_numbers(scorer, video, plan) == expected == [
        [i % 64 for i in inds] for inds in plan.frame_indices]
    shown = read_frames_at(video, [0.0, 2.95, 3.0, 4.55, 5.95])
    assert [odd_videos.frame_number(f) for f in shown] == [0, 29, 30, 45,
                                                           59]


def test_a_video_corrupt_midway_is_refused_not_frozen(scorer, tmp_path):
    import odd_videos
    source = odd_videos.write(str(tmp_path / 'whole.mp4'), 200, gop=25,
                              options={'movflags': 'faststart'})
    video = odd_videos.damage(source, str(tmp_path / 'damaged.mp4'))
    stream = open_video(scorer, video)
    plan = plan_windows(stream.num_frames, stream.fps, 2.0, 1.0,
                        stream.sampler)
    with pytest.raises(VideoReadError, match=r"damaged\.mp4.* corrupt"):
        embed_windows(scorer, stream, plan)
    # OpenCV, the last reader, decodes only the frames before the damage:
    # a frame past them is refused, not replaced by the last one.
    from models.apis.window_stream import _SequentialOpenCV
    reader = _SequentialOpenCV(video, len(_OpenCVFrames(video)))
    assert odd_videos.frame_number(reader.read([12])[0]) == 12
    with pytest.raises(VideoReadError, match=r'frame 187 .*damaged\.mp4'):
        reader.read([187])
    reader.close()


@pytest.mark.parametrize('rotation,mirror', [(90, False), (-90, False),
                                             (180, False), (0, True)])
def test_rotated_video_reads_upright_in_every_reader(
        scorer, tmp_path, monkeypatch, rotation, mirror):
    import odd_videos
    video = odd_videos.write(str(tmp_path / 'phone.mp4'), 30,
                             rotation=rotation, mirror=mirror)
    stream = open_video(scorer, video)
    plan = plan_windows(stream.num_frames, stream.fps, 1.3, 0.7,
                        stream.sampler)
    # Decord turns it as players do; the window stream (PyAV), the test
    # pipeline (PyAV), decord and the sequential OpenCV reader agree.
    decord_frames = plain_window_with(scorer, video, plan.samples[0],
                                      backend='cpu')
    first = next(iter(WindowFrames(open_video(scorer, video), plan, 5)))[1]
    plain = plain_window(scorer, video, plan.samples[0])[0]
    height = 128 if rotation % 180 else 64
    for frames in (first, plain):
        assert len(frames) == len(decord_frames)
        for got, want in zip(frames, decord_frames):
            assert got.shape[0] == height
            assert np.array_equal(got, want)
    break_decord_copies(monkeypatch)
    parts = split_pipeline(scorer.preprocess.pipeline.steps)
    parts.decode.update(backend='cpu')
    stream = VideoStream(video, parts)
    opencv = next(iter(WindowFrames(stream, plan, 5)))[1]
    assert stream._opencv is not None
    for got, want in zip(opencv, decord_frames):
        assert got.shape == want.shape
        # OpenCV's own colour conversion: equal to a few levels.
        assert np.abs(got.astype(int) - want).mean() < 3


def plain_window_with(scorer, video, sample, backend):
    from mmaction.registry import TRANSFORMS
    from mmengine.registry import DefaultScope
    parts = split_pipeline(scorer.preprocess.pipeline.steps)
    parts.decode.update(backend=backend)
    with DefaultScope.overwrite_default_scope('mmaction'):
        init = TRANSFORMS.build(parts.init)
        decode = TRANSFORMS.build(parts.decode)
    results = init(dict(filename=video, start_index=0, modality='RGB'))
    results.update({k: v for k, v in sample.items() if k != 'total_frames'})
    return [f.copy() for f in decode(results)['imgs']]
