"""PyAV decoding that skips the frames no sampled frame needs: the same
frames as decoding everything in order (decord's, or OpenCV's where decord
starts late), bit for bit, also where decord's random access reads other
frames; decord wherever that cannot be promised.

The videos are written here through PyAV (libx264 with B-frames, several
key-frame spacings and open GOPs, colour tags, 4:4:4, HEVC, VP9, MPEG-4
Part 2 in MP4 and AVI, MPEG-2 in program and transport streams) and OpenCV
(mp4v, odd sizes). They are 128 pixels wide, a width decord copies on every
CPU: decoding every frame with decord is the reference.
"""
import os.path as osp
from typing import Dict, Optional

import numpy as np
import pytest
from conftest import write_video

av = pytest.importorskip('av')

from models.datasets.pyav_frames import (InOrderReader,  # noqa: E402
                                         NotSupported, read_frames)


def write_clip(path: str,
               codec: str = 'libx264',
               pix_fmt: str = 'yuv420p',
               num_frames: int = 48,
               size=(128, 64),
               options: Optional[Dict[str, str]] = None,
               colorspace: Optional[int] = None,
               color_range: Optional[int] = None,
               seed: int = 0) -> str:
    """A clip of moving stripes over still noise through PyAV; returns
    ``path`` (the container follows its extension)."""
    rng = np.random.default_rng(seed)
    width, height = size
    with av.open(path, 'w') as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = dict(options or {})
        if colorspace is not None:
            stream.codec_context.colorspace = colorspace
        if color_range is not None:
            stream.codec_context.color_range = color_range
        ramp = (np.arange(width, dtype=np.uint8) * 5)[None, :, None]
        background = rng.integers(0, 255, (height, width, 3), np.uint8)
        for i in range(num_frames):
            image = background.copy()
            image[:height // 2] = np.roll(ramp, 3 * i, axis=1)
            frame = av.VideoFrame.from_ndarray(image, format='rgb24')
            if colorspace is not None:
                frame.colorspace = colorspace
            if color_range is not None:
                frame.color_range = color_range
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


#: name -> (file extension, write_clip options)
CLIPS = {
    # libx264's defaults: one key frame (250 apart), 3 B-frames, half of
    # them referenced by no other frame
    'h264': ('.mp4', {}),
    # three B-frames in every group, as libx264 places them in real footage
    # (on this noise it places few): one referenced, two not
    'h264_b3': ('.mp4', dict(options={'x264-params': 'b-adapt=0:bframes=3'})),
    # a key frame every 8: reading skips whole groups by seeking
    'h264_gop8': ('.mp4', dict(options=dict(g='8', keyint_min='8'))),
    'h264_mkv': ('.mkv', dict(options=dict(g='12'))),
    'h264_bt709': ('.mp4', dict(colorspace=1)),
    'h264_full_range': ('.mp4', dict(color_range=2)),
    'h264_444': ('.mp4', dict(pix_fmt='yuv444p')),
    'hevc': ('.mp4', dict(codec='libx265', options={'x265-params':
                                                    'log-level=none'})),
    'vp9': ('.webm', dict(codec='libvpx-vp9')),
    'mpeg4_bframes': ('.mp4', dict(codec='mpeg4', options=dict(bf='2'))),
    # open GOPs: B-frames after a key frame in decoding order that come
    # before it on screen (decord's random access reads these wrong)
    'h264_open_gop': ('.mp4', dict(options={
        'x264-params': 'open-gop=1:keyint=12:bframes=3:b-adapt=0'})),
    'h264_open_gop_mkv': ('.mkv', dict(options={
        'x264-params': 'open-gop=1:keyint=12:bframes=3:b-adapt=0'})),
    # MPEG-4 Part 2 with B-frames in AVI, as XviD stores UCF101 and
    # HMDB51: decoded in order from the start (AVI seeking is not trusted)
    'mpeg4_avi_b1': ('.avi', dict(codec='mpeg4',
                                  options=dict(bf='1', g='12'))),
    'mpeg4_avi_b2': ('.avi', dict(codec='mpeg4',
                                  options=dict(bf='2', g='12'))),
    # MPEG-2 in a program stream: decoded in order too
    'mpeg2_ps': ('.mpg', dict(codec='mpeg2video',
                              options=dict(bf='2', g='12'))),
}


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp('clips')
    paths = {
        name: write_clip(str(folder / (name + ext)), seed=i, **options)
        for i, (name, (ext, options)) in enumerate(CLIPS.items())
    }
    paths['mp4v_opencv'] = write_video(str(folder / 'mp4v.mp4'),
                                       num_frames=30)
    return paths


def index_sets(num_frames: int, seed: int):
    """Sampled-frame sets as the pipelines make them, and harder ones."""
    rng = np.random.default_rng(seed)
    segment = num_frames / 8
    yield [int(segment * i + segment / 2) for i in range(8)]  # test mode
    yield sorted(rng.integers(0, num_frames, 8).tolist())
    yield rng.integers(0, num_frames, 8).tolist()  # any order
    yield [3, 3, 0, num_frames - 1, 3]  # repeats, first and last
    yield [num_frames - 1]
    yield list(range(num_frames))


@pytest.mark.parametrize('name', sorted([*CLIPS, 'mp4v_opencv']))
def test_frames_are_those_of_decoding_everything(clips, name):
    import decord
    path = clips[name]
    reader = decord.VideoReader(path, num_threads=1)
    num_frames = len(reader)
    # decord decoding every frame in order; its random access (a seek,
    # then counting frames) returns frame 14 for frame 12 of the MPEG-4
    # clip, whose B-frames follow the key frame in decoding order
    everything_decord = reader.get_batch(range(num_frames)).asnumpy()
    for indices in index_sets(num_frames, seed=len(name)):
        expected = everything_decord[indices]
        fast = read_frames(path, indices, num_frames)
        plain = read_frames(path, indices, num_frames, skip_unneeded=False)
        assert len(fast) == len(plain) == len(indices)
        for i, want, got, everything in zip(indices, expected, fast, plain):
            assert got.dtype == np.uint8 and got.shape == want.shape, name
            assert np.array_equal(got, everything), (name, i)
            assert np.array_equal(got, want), (name, i)


def test_frames_no_sampled_frame_needs_are_not_decoded(clips):
    # test-mode sampling of a one-key-frame H.264 clip
    stats, plain_stats = {}, {}
    indices = [3, 9, 15, 21, 27, 33, 39, 45]
    read_frames(clips['h264_b3'], indices, stats=stats)
    read_frames(clips['h264_b3'], indices, skip_unneeded=False,
                stats=plain_stats)
    assert plain_stats['decoded'] >= 46
    assert stats['decoded'] < 0.75 * plain_stats['decoded'], (
        stats, plain_stats)
    # groups of 8: sampling one frame in every other group seeks past the
    # groups in between
    stats = {}
    read_frames(clips['h264_gop8'], [1, 17, 33], stats=stats)
    assert stats['seeks'] == 3
    assert stats['decoded'] <= 3 * 8
    # AVI with B-frames: from the start, in order, up to the last frame
    stats = {}
    read_frames(clips['mpeg4_avi_b2'], [30, 2, 17], stats=stats)
    assert stats == dict(decoded=31, seeks=0)


def test_odd_sizes_give_the_frames_of_the_opencv_fallback(tmp_path):
    # OpenCV's mp4v writer stores 72x40 coded frames in a 73x41 stream;
    # the OpenCV fallback reads the coded size
    from models.datasets.transforms import _OpenCVFrames
    for size in ((73, 41), (17, 30), (49, 48)):
        path = write_video(str(tmp_path / f'odd_{size[0]}x{size[1]}.mp4'),
                           size=size, num_frames=12)
        expected = _OpenCVFrames(path).get_batch([0, 5, 11])
        for want, got in zip(expected, read_frames(path, [0, 5, 11])):
            assert np.array_equal(got, want), size


def test_transport_streams_give_the_frames_opencv_decodes(tmp_path):
    # decord's frame 0 of these is the 13th frame (it starts at the second
    # key frame); OpenCV, and PyAV decoding in order, start at the first
    from models.datasets.transforms import _OpenCVFrames
    for name, options in (
            ('h264', dict(options={'x264-params': 'keyint=12:bframes=3'})),
            ('mpeg2', dict(codec='mpeg2video', options=dict(bf='2',
                                                            g='12')))):
        path = write_clip(str(tmp_path / f'{name}.ts'), **options)
        indices = [0, 5, 11, 12, 30, 47]
        expected = _OpenCVFrames(path).get_batch(indices)
        for i, want, got in zip(indices, expected,
                                read_frames(path, indices, 48)):
            assert np.array_equal(got, want), (name, i)


def test_what_it_cannot_promise_goes_to_decord(clips, tmp_path):
    import cv2
    avi = str(tmp_path / 'mjpg.avi')
    writer = cv2.VideoWriter(avi, cv2.VideoWriter_fourcc(*'MJPG'), 10,
                             (64, 48))
    for i in range(6):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    ten_bit = write_clip(str(tmp_path / 'ten_bit.mp4'),
                         pix_fmt='yuv420p10le', num_frames=6)
    cases = {
        'container avi': (avi, [0, 1], None),
        'pixel format yuv420p10le': (ten_bit, [0, 3], None),
        'decord counts 47': (clips['h264'], [0], 47),
        'index past the end': (clips['h264'], [48], 48),
        'negative index': (clips['h264'], [-1], None),
    }
    for reason, (path, indices, num_frames) in cases.items():
        with pytest.raises(NotSupported):
            read_frames(path, indices, num_frames)
            pytest.fail(f'{reason}: decoded')
    # a sampled frame before the first key frame: nothing to seek to
    import types

    from models.datasets import pyav_frames
    stream = types.SimpleNamespace(codec_context=types.SimpleNamespace())
    with pytest.raises(NotSupported, match='before the first key frame'):
        pyav_frames._decode(None, stream, [0], [512], True, {})


def test_video_decode_pyav_backend_in_the_pipeline(clips, tmp_path):
    from mmaction.registry import TRANSFORMS
    from mmengine.registry import DefaultScope

    import models  # noqa: F401  (registers the transforms)

    def run(path, backend):
        with DefaultScope.overwrite_default_scope('mmaction'):
            steps = [
                TRANSFORMS.build(cfg) for cfg in (
                    dict(type='VideoInit'),
                    dict(type='SampleFrames', clip_len=1, frame_interval=1,
                         num_clips=8, test_mode=True),
                    dict(type='VideoDecode', backend=backend))
            ]
        results = dict(filename=path, start_index=0, modality='RGB')
        for step in steps:
            results = step(results)
        return results

    for name in ('h264', 'hevc', 'mp4v_opencv'):
        fast, plain = run(clips[name], 'pyav'), run(clips[name], 'cpu')
        assert fast['decoded_by'] == 'pyav', name
        assert fast['img_shape'] == plain['img_shape']
        assert fast['original_shape'] == plain['original_shape']
        assert np.array_equal(np.stack(fast['imgs']),
                              np.stack(plain['imgs'])), name
    # where decord's random access returns other frames, the pipeline now
    # gives those of decoding in order
    import decord
    for name in ('h264_open_gop', 'mpeg4_avi_b2'):
        fast = run(clips[name], 'pyav')
        assert fast['decoded_by'] == 'pyav', name
        reader = decord.VideoReader(clips[name], num_threads=1)
        in_order = reader.get_batch(range(len(reader))).asnumpy()
        assert np.array_equal(np.stack(fast['imgs']),
                              in_order[fast['frame_inds']]), name
    # 10-bit: decord decodes it
    ten_bit = write_clip(str(tmp_path / 'ten_bit.mp4'),
                         pix_fmt='yuv420p10le', num_frames=10)
    fast, plain = run(ten_bit, 'pyav'), run(ten_bit, 'cpu')
    assert fast['decoded_by'] == 'cpu'
    assert np.array_equal(np.stack(fast['imgs']), np.stack(plain['imgs']))
    assert osp.isfile(ten_bit)


def test_an_unknown_backend_is_refused():
    from models.datasets.transforms import VideoDecode
    with pytest.raises(ValueError, match="'pyav'"):
        VideoDecode(backend='pyAV')


@pytest.mark.parametrize('options', [
    dict(backend='nvdec'),
    dict(backend='nvdec', nvdec=dict(slots=7)),  # a config of the GPU backend
    dict(nvdec=dict(slots=7))])
def test_the_removed_nvdec_backend_is_refused_naming_the_others(options):
    from mmaction.registry import TRANSFORMS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmaction'):
        with pytest.raises(ValueError) as info:
            TRANSFORMS.build(dict(type='VideoDecode', **options))
    message = str(info.value)
    assert "'nvdec'" in message and 'was removed' in message
    assert "backend='pyav'" in message and "backend='cpu'" in message


def test_pyav_is_the_default_and_decord_says_why_when_it_is_missing(
        monkeypatch):
    import importlib.util

    from mmengine.logging import MMLogger

    from models.datasets import transforms
    transforms.default_backend.cache_clear()
    assert transforms.VideoDecode().backend == 'pyav'
    transforms.default_backend.cache_clear()
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, 'find_spec',
        lambda name, *args: None if name == 'av' else find_spec(name, *args))
    logged = []
    logger = MMLogger.get_current_instance()
    monkeypatch.setattr(logger, 'warning',
                        lambda msg, *a, **k: logged.append(msg))
    monkeypatch.setattr(logger, 'log',
                        lambda level, msg, *a, **k: logged.append(msg))
    try:
        assert transforms.VideoDecode().backend == 'cpu'
        assert transforms.VideoDecode().backend == 'cpu'
    finally:
        transforms.default_backend.cache_clear()
    assert len(logged) == 1 and 'pip install av' in logged[0], logged


@pytest.mark.parametrize('name', ['h264_open_gop', 'mpeg4_avi_b2',
                                  'mpeg2_ps', 'hevc'])
def test_in_order_reader_gives_the_frames_of_decoding_in_order(clips, name):
    import decord
    reader = decord.VideoReader(clips[name], num_threads=1)
    num_frames = len(reader)
    in_order = reader.get_batch(range(num_frames)).asnumpy()
    stream = InOrderReader.open(clips[name], num_frames)
    # ascending chunks with gaps and repeats, then back to the start
    chunks = [[0, 1], [1, 5, 9], [20, 21, 22], [num_frames - 1], [2, 3]]
    try:
        for chunk in chunks:
            for i, got in zip(chunk, stream.read(chunk)):
                assert np.array_equal(got, in_order[i]), (name, i)
        with pytest.raises(NotSupported):
            stream.read([num_frames])
    finally:
        stream.close()
    with pytest.raises(NotSupported):
        InOrderReader.open(clips[name], num_frames + 1)


def test_one_converter_gives_each_frame_as_its_own_conversion(tmp_path):
    """The reused scaler of ``convert`` against a fresh one per frame,
    with the frames' size, pixel format and target changing between
    calls, as they do from video to video in one worker."""
    from models.datasets.pyav_frames import convert
    paths = [
        write_clip(str(tmp_path / 'a.mp4'), num_frames=6, seed=1),
        write_clip(str(tmp_path / 'b.mp4'), num_frames=6, size=(96, 80),
                   pix_fmt='yuv444p', seed=2),
    ]
    for path in paths * 2:
        with av.open(path) as container:
            for frame in container.decode(video=0):
                for options in (dict(format='rgb24'),
                                dict(format='bgr24', width=50, height=30)):
                    expected = frame.reformat(**options).to_ndarray()
                    assert np.array_equal(convert(frame, **options),
                                          expected)


def run_pipeline(path, backend='pyav', readers=None):
    """VideoInit, SampleFrames (8 clips, test mode), VideoDecode; the
    type of VideoInit's reader is appended to ``readers``."""
    from mmaction.registry import TRANSFORMS
    from mmengine.registry import DefaultScope

    import models  # noqa: F401  (registers the transforms)
    with DefaultScope.overwrite_default_scope('mmaction'):
        steps = [TRANSFORMS.build(cfg) for cfg in (
            dict(type='VideoInit'),
            dict(type='SampleFrames', clip_len=1, frame_interval=1,
                 num_clips=8, test_mode=True),
            dict(type='VideoDecode', backend=backend))]
    results = steps[0](dict(filename=path, start_index=0, modality='RGB'))
    if readers is not None:
        readers.append(type(results['video_reader']).__name__)
    for step in steps[1:]:
        results = step(results)
    return results


@pytest.fixture(scope='module')
def odd_clips(tmp_path_factory):
    """An edit list, a display rotation, a variable frame rate, 10-bit."""
    import odd_videos
    folder = tmp_path_factory.mktemp('odd')
    whole = odd_videos.write(str(folder / 'whole.mp4'), 60, gop=12)
    return dict(
        edit_list=odd_videos.trim(whole, str(folder / 'cut.mp4'), 0.5),
        rotated=odd_videos.write(str(folder / 'turned.mp4'), 30,
                                 rotation=90),
        vfr=odd_videos.write(str(folder / 'vfr.mkv'), 30, fmt='matroska',
                             pts_ms=[40 * i + (i % 3) * 7
                                     for i in range(30)]),
        ten_bit=write_clip(str(folder / 'ten_bit.mp4'),
                           pix_fmt='yuv420p10le', num_frames=20))


def test_one_opening_gives_what_decord_and_two_pyav_openings_gave(
        clips, odd_clips, monkeypatch):
    """VideoInit's PyAV reader (one opening: the index demuxed in the
    container decoded from) against the path that opens the video with
    decord, indexes it with PyAV and opens it again to decode: the same
    total_frames, avg_fps and frames, bit for bit; and decord's own count
    and rate."""
    import decord

    from models.datasets import pyav_frames
    from models.datasets.transforms import VideoInit
    videos = dict(clips, **odd_clips)
    one_open = set()
    for name, path in sorted(videos.items()):
        reader = decord.VideoReader(path, num_threads=1)
        hidden = 5 if name == 'edit_list' else 0
        for backend in ('pyav', 'cpu'):
            readers = []
            pyav_frames._indexes.clear()
            fast = run_pipeline(path, backend, readers)
            pyav_frames._indexes.clear()
            with monkeypatch.context() as patch:
                patch.setattr(VideoInit, '_pyav_reader', lambda *a: None)
                plain = run_pipeline(path, backend, readers)
            assert readers[1] == 'VideoReader', name
            if readers[0] == 'PyAVReader':
                one_open.add(name)
            assert fast['total_frames'] == plain['total_frames'] == len(
                reader) - hidden, name
            assert type(fast['avg_fps']) is type(plain['avg_fps']), name
            assert fast['avg_fps'] == plain['avg_fps'] == (
                reader.get_avg_fps()), name
            assert fast.get('decoded_by') == plain.get('decoded_by'), name
            assert np.array_equal(fast['frame_inds'], plain['frame_inds'])
            assert fast['img_shape'] == plain['img_shape'], name
            assert np.array_equal(np.stack(fast['imgs']),
                                  np.stack(plain['imgs'])), name
    # MP4, Matroska and WebM are opened once; AVI and MPEG-PS by decord
    assert one_open == {name for name, path in videos.items()
                        if osp.splitext(path)[1] in ('.mp4', '.mkv',
                                                     '.webm')}


def test_a_sample_opens_its_video_once(clips, odd_clips, monkeypatch):
    """decord is opened only where something needs it: backend='cpu',
    or a video whose frames PyAV cannot promise (10-bit)."""
    import decord

    from models.datasets import pyav_frames
    opened = []
    av_open, decord_reader = av.open, decord.VideoReader

    def counted(name, open_):
        return lambda *args, **kwargs: opened.append(name) or open_(
            *args, **kwargs)

    monkeypatch.setattr(av, 'open', counted('pyav', av_open))
    monkeypatch.setattr(decord, 'VideoReader',
                        counted('decord', decord_reader))
    cases = [(clips[name], backend, expected, backend)
             for name in ('h264', 'h264_mkv', 'vp9', 'mp4v_opencv')
             for backend, expected in (('pyav', ['pyav']),
                                       ('cpu', ['pyav', 'decord']))]
    # decord decodes the 10-bit video; decord counts the frames of the
    # AVI, which PyAV then decodes in order from its second opening
    cases += [(odd_clips['ten_bit'], 'pyav', ['pyav', 'decord'], 'cpu'),
              (clips['mpeg4_avi_b2'], 'pyav', ['pyav', 'decord', 'pyav'],
               'pyav')]
    for path, backend, expected, decoded_by in cases:
        pyav_frames._indexes.clear()
        opened.clear()
        results = run_pipeline(path, backend)
        assert opened == expected, (path, backend)
        assert results.get('decoded_by', 'cpu') == decoded_by, path
