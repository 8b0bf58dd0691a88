"""Video transforms with an OpenCV fallback, datasets and metrics that
survive unreadable videos, and the decoder's frames against those decord
0.6.0 gave (a fixture).

Run as a script to record that fixture again (under the decoder whose
frames are the reference, decord 0.6.0 so far)::

    PYTHONPATH=$PWD python tests/test_video_reading.py --record
"""
import functools
import hashlib
import io
import json
import os
import os.path as osp
import re
import subprocess
import sys

import cv2
import decord
import numpy as np
import pytest
import torch
from conftest import (ROOT, break_decord_copies, decord_copies,
                      mim_test_in_process, offline_env, write_video)
from mmaction.registry import TRANSFORMS
from mmaction.structures import ActionDataSample
from mmengine.registry import DefaultScope

from models.apis.preprocess import VideoPreprocess
from models.datasets.transforms import VideoReadError, _OpenCVFrames
from models.datasets.video_dataset import UNREADABLE_KEY, TolerantVideoDataset
from models.evaluation.metrics import TolerantAccMetric

TINY_CONFIG = 'configs/actionclip_tiny-scratch_1x1x4_synthetic-actions.py'


def decode(filename, init='VideoInit', decode='VideoDecode', num_clips=4):
    # VideoDecode with decord (backend='cpu'): this file tests decord and
    # its OpenCV fallback; PyAV, VideoDecode's default, has test_pyav_frames
    step = dict(type=decode)
    if decode == 'VideoDecode':
        step['backend'] = 'cpu'
    results = dict(filename=filename, start_index=0, modality='RGB')
    for cfg in (dict(type=init),
                dict(type='SampleFrames', clip_len=1, frame_interval=1,
                     num_clips=num_clips, test_mode=True), step):
        results = TRANSFORMS.build(cfg)(results)
    return results


def opencv_frames(filename):
    capture = cv2.VideoCapture(filename)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def test_decord_path_is_unchanged(tmp_path):
    path = write_video(str(tmp_path / 'even.mp4'), num_frames=12)
    ours = decode(path)
    theirs = decode(path, 'DecordInit', 'DecordDecode')
    assert np.array_equal(np.stack(ours['imgs']), np.stack(theirs['imgs']))


#: Sizes decord failed to copy on some CPU: OpenCV's mp4v writer stores
#: 72x40 coded frames in a 73x41 stream, 16x30 in 17x30, 48x48 in 49x48;
#: on an AVX-512 Xeon widths 16, 24, 32, 48, 96 and 144 fail.
CANDIDATE_SIZES = [(73, 41), (17, 30), (49, 48), (72, 41), (96, 64),
                   (144, 108), (48, 48), (24, 48)]


def all_frames(path, mode='accurate'):
    """Every frame through VideoInit / VideoDecode(backend='cpu')."""
    results = TRANSFORMS.build(dict(type='VideoInit'))(
        dict(filename=path, start_index=0, modality='RGB'))
    results['frame_inds'] = np.arange(results['total_frames'])
    step = TRANSFORMS.build(dict(type='VideoDecode', backend='cpu',
                                 mode=mode))
    return step(results)


@pytest.mark.parametrize('size', CANDIDATE_SIZES)
def test_odd_sized_frames_fall_back_to_opencv(tmp_path, size):
    """Which sizes decord cannot copy depends on the CPU: probed here. On
    those the readers give OpenCV's frames, on the others decord's."""
    path = write_video(str(tmp_path / 'odd.mp4'), size=size, num_frames=12)
    if decord_copies(path):
        expected = decode(path, 'DecordInit', 'DecordDecode')
        results = decode(path)
        assert results['img_shape'] == expected['img_shape']
        assert np.array_equal(np.stack(results['imgs']),
                              np.stack(expected['imgs']))
        return
    with pytest.raises(Exception, match='size must exactly match'):
        decode(path, 'DecordInit', 'DecordDecode')
    check_opencv_frames(path)
    check_opencv_frames(path, 'efficient')


@pytest.mark.parametrize('mode', ['accurate', 'efficient'])
def test_a_decord_copy_failure_falls_back_to_opencv(tmp_path, monkeypatch,
                                                    mode):
    """decord failing to copy, forced on a size it copies here: get_batch
    raises, a single frame (mode='efficient') comes back with its padded
    rows taken for channels; neither reaches the pipeline."""
    path = write_video(str(tmp_path / 'v.mp4'), size=(64, 48), num_frames=12)
    break_decord_copies(monkeypatch)
    assert not decord_copies(path)
    with pytest.raises(Exception, match='size must exactly match'):
        decode(path, 'DecordInit', 'DecordDecode')
    check_opencv_frames(path, mode)
    if mode == 'accurate':
        results = all_frames(path)
        assert np.array_equal(np.stack(results['imgs']),
                              np.stack(opencv_frames(path)))


def check_opencv_frames(path, mode='accurate'):
    """The pipeline's frames of ``path`` are OpenCV's, shape and all."""
    frames = opencv_frames(path)
    results = decode(path) if mode == 'accurate' else all_frames(path, mode)
    assert results['img_shape'] == frames[0].shape[:2]
    assert len(results['imgs']) == len(results['frame_inds'])
    for index, image in zip(results['frame_inds'], results['imgs']):
        assert image.shape == frames[0].shape
        assert np.array_equal(image, frames[index])


def test_opencv_fallback_counts_each_file_version_once(tmp_path,
                                                       monkeypatch):
    from models.datasets import transforms as video_loading
    path = str(tmp_path / 'odd.mp4')
    write_video(path, size=(73, 41), num_frames=12)
    break_decord_copies(monkeypatch)
    video_loading._opencv_rate_and_length.cache_clear()
    for _ in range(3):
        assert decode(path)['total_frames'] == 12
    info = video_loading._opencv_rate_and_length.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    write_video(path, size=(73, 41), num_frames=7)  # a new version
    assert decode(path)['total_frames'] == 7
    assert video_loading._opencv_rate_and_length.cache_info().misses == 2


@pytest.mark.parametrize('kind', ['grayscale', 'odd', 'large'])
def test_preprocess_reads_unusual_videos(tmp_path, kind):
    path = str(tmp_path / f'{kind}.mp4')
    if kind == 'grayscale':
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 8,
                                 (64, 48), isColor=False)
        for i in range(10):
            writer.write(np.full((48, 64), 20 * i, np.uint8))
        writer.release()
    elif kind == 'odd':
        write_video(path, size=(73, 41), num_frames=10)
    else:
        write_video(path, size=(3840, 2160), num_frames=3)
    video = VideoPreprocess(num_segs=8, input_size=32)(path)
    assert video.shape == (8, 3, 32, 32)
    assert torch.isfinite(video).all()


def write_dataset(root, broken=('broken.mp4', )):
    os.makedirs(os.path.join(root, 'videos'))
    lines = []
    for i in range(3):
        write_video(os.path.join(root, 'videos', f'ok_{i}.mp4'), seed=i)
        lines.append(f'ok_{i}.mp4 {i}')
    for name in broken:
        with open(os.path.join(root, 'videos', name), 'wb') as f:
            f.write(b'\x00\x00\x00\x18ftypmp42' + b'\x00' * 64)
        lines.append(f'{name} 1')
    ann = os.path.join(root, 'ann.txt')
    with open(ann, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return ann, os.path.join(root, 'videos')


def build_dataset(ann, videos, **kwargs):
    pipeline = [
        dict(type='VideoInit'),
        dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=4,
             test_mode=True),
        dict(type='VideoDecode'),
        dict(type='Resize', scale=(32, 32), keep_ratio=False),
        dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs')
    ]
    # as under a Runner of an mmaction config
    with DefaultScope.overwrite_default_scope('mmaction'):
        return TolerantVideoDataset(
            ann_file=ann, data_prefix=dict(video=videos), pipeline=pipeline,
            **kwargs)


def test_unreadable_video_stops_by_default_naming_it(tmp_path):
    dataset = build_dataset(*write_dataset(str(tmp_path)), test_mode=True)
    assert dataset[0]['inputs'].shape == (4, 3, 32, 32)
    with pytest.raises(VideoReadError) as info:
        dataset[3]
    assert 'broken.mp4' in str(info.value)
    assert 'skip_unreadable=True' in str(info.value)


def test_skipped_video_in_testing_is_a_flagged_blank(tmp_path):
    dataset = build_dataset(
        *write_dataset(str(tmp_path)), test_mode=True, skip_unreadable=True)
    # the very first sample read is the broken one: the blank's shape comes
    # from another video
    blank = dataset[3]
    assert blank['inputs'].shape == (4, 3, 32, 32)
    assert not blank['inputs'].any()
    sample = blank['data_samples']
    assert sample.metainfo[UNREADABLE_KEY]
    assert sample.metainfo['filename'].endswith('broken.mp4')
    assert sample.gt_label.item() == 1


def test_skipped_video_in_training_is_replaced(tmp_path):
    dataset = build_dataset(
        *write_dataset(str(tmp_path)), skip_unreadable=True)
    data = dataset[3]
    assert data['data_samples'].gt_label.item() in (0, 1, 2)
    assert UNREADABLE_KEY not in data['data_samples'].metainfo


def test_metric_leaves_out_and_counts_skipped_videos():
    metric = TolerantAccMetric()
    samples = []
    for label, skipped in ((0, False), (1, False), (1, True), (0, True)):
        sample = ActionDataSample().set_gt_label(label)
        # the blank of a skipped video would score anything: make it wrong
        score = torch.zeros(2)
        score[1 - label if skipped else label] = 1
        sample.set_pred_score(score)
        if skipped:
            sample.set_metainfo({UNREADABLE_KEY: True, 'filename': 'x.mp4'})
        samples.append(sample.to_dict())
    metric.process(None, samples)
    result = metric.compute_metrics(metric.results)
    assert result['top1'] == 1.0
    assert result['skipped_videos'] == 2


def mim_test_options(tmp_path, ann, videos):
    """A checkpoint of the tiny config and the ``--cfg-options`` of a test
    on ``ann``: ``(checkpoint, options)``."""
    from mmengine.config import Config

    from models.recognizers.actionclip import ActionClip
    cfg = Config.fromfile(os.path.join(ROOT, TINY_CONFIG))
    model_cfg = dict(cfg.model)
    for key in ('type', 'labels_or_label_file'):
        model_cfg.pop(key)
    checkpoint = str(tmp_path / 'tiny.pth')
    torch.save({'state_dict': ActionClip(**model_cfg).state_dict()},
               checkpoint)
    labels = tmp_path / 'labels.txt'
    labels.write_text('a\nb\nc\n')
    return checkpoint, [
        f'model.labels_or_label_file={labels}',
        f'test_dataloader.dataset.ann_file={ann}',
        f'test_dataloader.dataset.data_prefix.video={videos}',
        'test_dataloader.batch_size=2', 'test_dataloader.num_workers=1'
    ]


def test_mim_test_skips_unreadable_videos_when_asked(tmp_path):
    ann, videos = write_dataset(str(tmp_path), broken=('broken.mp4',
                                                       'empty.mp4'))
    open(os.path.join(videos, 'empty.mp4'), 'wb').close()
    checkpoint, options = mim_test_options(tmp_path, ann, videos)
    # By default the test stops (through a DataLoader worker), naming the
    # video and the option; mim test's script run here, the command below.
    with pytest.raises(VideoReadError) as info:
        mim_test_in_process(TINY_CONFIG, checkpoint, str(tmp_path / 'work'),
                            *options)
    assert 'broken.mp4' in str(info.value)
    assert 'skip_unreadable=True' in str(info.value)

    proc = subprocess.run(
        [sys.executable, '-m', 'mim', 'test', 'mmaction', TINY_CONFIG,
         '--checkpoint', checkpoint, '--work-dir', str(tmp_path / 'work'),
         '--cfg-options', *options,
         'test_dataloader.dataset.skip_unreadable=True'],
        cwd=ROOT, env=offline_env(), capture_output=True, text=True,
        timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert re.search(r'acc/skipped_videos: 2', output), output[-3000:]
    assert re.search(r'acc/top1: [0-9.]+', output)
    assert 'broken.mp4' in output and 'is empty' in output


def test_missing_video_in_a_dataset_is_named(tmp_path):
    ann, videos = write_dataset(str(tmp_path), broken=())
    with open(ann, 'a') as f:
        f.write('gone.mp4 2\n')
    dataset = build_dataset(ann, videos, test_mode=True)
    with pytest.raises(VideoReadError) as info:
        dataset[3]
    assert 'gone.mp4' in str(info.value)
    assert 'does not exist' in str(info.value)


# ---------------------------------------------------------------------------
# The decoder in use gives the frames decord 0.6.0 gave
# ---------------------------------------------------------------------------

#: Digests of the frames decord 0.6.0 (FFmpeg 4.1) decoded from the videos
#: of REFERENCE_VIDEOS; no video is stored, the test writes them again.
REFERENCE = osp.join(ROOT, 'tests', 'fixtures',
                     'decoded_frames_decord06.json')

#: name: ('generated', object, motion, seed) for tools/generate_videos.py's
#: videos (sizes 96x96 to 160x120 drawn by the seed), or ('conftest',
#: width, height) for conftest's write_video, or ('gray', width, height).
#: All are written with mp4v, as the generator does where OpenCV cannot
#: write H.264 (this venv's cannot).
REFERENCE_VIDEOS = {
    'gen_square_moving_left.mp4': ('generated', 'square', 'moving left',
                                   1000),
    'gen_circle_growing.mp4': ('generated', 'circle', 'growing', 1001),
    'gen_triangle_rotating.mp4': ('generated', 'triangle',
                                  'rotating clockwise', 1002),
    'gen_square_shrinking.mp4': ('generated', 'square', 'shrinking', 1003),
    'conftest_64x48.mp4': ('conftest', 64, 48),
    'conftest_75x43.mp4': ('conftest', 75, 43),
    'gray_64x48.mp4': ('gray', 64, 48),
}


def write_reference_video(folder: str, name: str) -> str:
    """Write one video of REFERENCE_VIDEOS into ``folder``."""
    import generate_videos
    path = osp.join(folder, name)
    kind, *spec = REFERENCE_VIDEOS[name]
    if kind == 'generated':
        obj, motion, seed = spec
        frames, fps = generate_videos.render(obj, motion, seed)
        generate_videos.write_video(path, frames, fps, 'mp4v')
    elif kind == 'conftest':
        write_video(path, size=tuple(spec), num_frames=12)
    else:
        width, height = spec
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 8,
                                 (width, height), isColor=False)
        for i in range(10):
            frame = np.full((height, width), 20 * i, np.uint8)
            frame[:height // 2, :width // 3] = 230 - 20 * i
            writer.write(frame)
        writer.release()
    return path


def decord_all_frames(path: str) -> np.ndarray:
    """Every frame, decoded as ``DecordInit`` / ``DecordDecode`` do (from
    the file's bytes, one thread)."""
    import decord
    with open(path, 'rb') as f:
        reader = decord.VideoReader(io.BytesIO(f.read()), num_threads=1)
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def digest(frames: np.ndarray) -> dict:
    """What the fixture keeps of decoded frames: exact (a hash) and, to
    tell how far apart two decodings are, each frame's mean."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    return dict(
        shape=list(frames.shape),
        sha256=hashlib.sha256(frames.tobytes()).hexdigest()[:16],
        means=[round(float(m), 2) for m in frames.mean(axis=(1, 2, 3))])


def record(argv) -> int:
    """Write REFERENCE from the decoder importable here.

    Args:
        argv (list[str]): ``['--record']``.

    Returns:
        int: The exit status.
    """
    import tempfile

    from models.datasets.decoder_info import decoder_info, opencv_info
    if argv != ['--record']:
        print(f'usage: python {sys.argv[0]} --record', file=sys.stderr)
        return 2
    videos = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in sorted(REFERENCE_VIDEOS):
            path = write_reference_video(folder, name)
            frames = decord_all_frames(path)
            opencv = np.stack(opencv_frames(path))
            videos[name] = dict(
                decord=digest(frames),
                # whether OpenCV decodes the same: it tells a changed
                # writer from a changed decoder later
                opencv_equal=bool(
                    frames.shape == opencv.shape
                    and np.array_equal(frames, opencv)))
    data = dict(recorded_with=decoder_info().describe(),
                opencv=opencv_info().describe(), videos=videos)
    with open(REFERENCE, 'w') as f:
        json.dump(data, f, indent=1)
        f.write('\n')
    print(f'Wrote {REFERENCE} with {data["recorded_with"]}')
    return 0


@pytest.mark.parametrize('name', sorted(REFERENCE_VIDEOS))
def test_decoder_gives_the_frames_decord_0_6_gave(tmp_path, name):
    """Exact: decord2 3.4.0 (FFmpeg 8.1) gives every pixel decord 0.6.0
    (FFmpeg 4.1) gave on these videos (docs/decoding.md; the two differ
    only on 4:2:0 frames of odd width, which no writer of this project
    makes)."""
    from models.datasets.decoder_info import decoder_info
    with open(REFERENCE) as f:
        reference = json.load(f)
    expected = reference['videos'][name]
    path = write_reference_video(str(tmp_path), name)
    decoder = decoder_info().describe()
    if decord_copies(path):
        frames = decord_all_frames(path)
    else:
        # decord cannot copy this size on this CPU: what the readers give
        # instead (VideoDecode falls back) must still be these frames
        frames = np.stack(all_frames(path)['imgs'])
        decoder = f'The fallback of {decoder}, which cannot copy it here,'
    ours = digest(frames)
    if ours == expected['decord']:
        return
    # Different frames: a decoder that decodes differently, or a writer
    # (OpenCV's encoder) that now writes other videos. OpenCV decoded the
    # recorded videos to the recorded frames: if it no longer does, the
    # videos changed and the fixture cannot judge the decoder.
    opencv = np.stack(opencv_frames(path))
    if not expected['opencv_equal'] or digest(opencv) != expected['decord']:
        pytest.skip(
            f'OpenCV ({cv2.__version__}) writes {name} differently from '
            f'when the fixture was recorded ({reference["opencv"]}): '
            f'record it again (see this module\'s docstring)')
    message = (f'{decoder} decodes {name} differently '
               f'from {reference["recorded_with"]}: shape {ours["shape"]} '
               f'(was {expected["decord"]["shape"]})')
    if frames.shape == opencv.shape:
        difference = np.abs(frames.astype(int) - opencv.astype(int))
        message += (f', max |difference| {difference.max()}, mean '
                    f'{difference.mean():.4f}')
    pytest.fail(message)


def test_decoder_info_names_the_ffmpeg_in_use():
    from models.datasets.decoder_info import decoder_info
    info = decoder_info()
    assert info.package.startswith('decord')
    assert info.ffmpeg and info.libavcodec and info.libavformat
    assert info.describe().startswith(f'{info.package} with FFmpeg ')
    if info.package.startswith('decord2'):
        assert info.maintained and info.libavcodec_major >= 60
    elif info.package == 'decord 0.6.0':
        assert info.ffmpeg.startswith('4.1') and not info.maintained


if __name__ == '__main__':
    sys.exit(record(sys.argv[1:]))


def pyav_pipeline(filename, num_clips=8):
    results = dict(filename=filename, start_index=0, modality='RGB')
    with DefaultScope.overwrite_default_scope('mmaction'):
        for cfg in (dict(type='VideoInit'),
                    dict(type='SampleFrames', clip_len=1, frame_interval=1,
                         num_clips=num_clips, test_mode=True),
                    dict(type='VideoDecode')):
            results = TRANSFORMS.build(cfg)(results)
    return results


def test_a_video_corrupt_midway_is_refused_naming_it(tmp_path):
    import odd_videos
    source = odd_videos.write(str(tmp_path / 'whole.mp4'), 200, gop=25,
                              options={'movflags': 'faststart'})
    video = odd_videos.damage(source, str(tmp_path / 'damaged.mp4'))
    indices = [12, 37, 62, 87, 112, 137, 162, 187]  # 8 clips' frames
    assert decode(source, num_clips=8)['frame_inds'].tolist() == indices
    # decord cannot decode past the damage, and OpenCV (the fallback)
    # decodes only the frames before it: its last frame in the place of
    # the later ones would be a substitute ...
    with pytest.raises(decord.DECORDError):
        decord.VideoReader(video, num_threads=1).get_batch(indices)
    assert len(_OpenCVFrames(video)) < 200
    # ... every backend refuses the file, in one line.
    for read in (pyav_pipeline, functools.partial(decode, num_clips=8)):
        with pytest.raises(VideoReadError) as error:
            read(video)
        message = str(error.value)
        assert 'damaged.mp4' in message and 'corrupt' in message
        assert '\n' not in message
    # The whole file gives the video's own frames with decord.
    assert [odd_videos.frame_number(f)
            for f in decode(source, num_clips=8)['imgs']
            ] == [i % 64 for i in indices]


@pytest.mark.parametrize('at', [0.3, 0.55, 0.8])
def test_decord_backend_refuses_damage_where_it_decodes(tmp_path, at):
    # Damage before, among or after the sampled frames: decord's frames
    # are either the video's own or refused, never substitutes.
    import odd_videos
    source = odd_videos.write(str(tmp_path / 'whole.mp4'), 200, gop=25,
                              options={'movflags': 'faststart'})
    video = odd_videos.damage(source, str(tmp_path / 'damaged.mp4'), at)
    for num_clips in (2, 5, 8):
        try:
            results = decode(video, num_clips=num_clips)
        except VideoReadError as error:
            assert 'damaged.mp4' in str(error) and 'corrupt' in str(error)
            continue
        assert [odd_videos.frame_number(f) for f in results['imgs']] == [
            i % 64 for i in results['frame_inds']]


def test_edit_list_gives_the_frames_shown(tmp_path):
    import odd_videos
    source = odd_videos.write(str(tmp_path / 'whole.mp4'), 60, gop=12)
    video = odd_videos.trim(source, str(tmp_path / 'cut.mp4'), 0.5)
    results = pyav_pipeline(video)
    assert results['total_frames'] == 55 and results['decoded_by'] == 'pyav'
    assert [odd_videos.frame_number(f) for f in results['imgs']] == [
        (5 + i) % 64 for i in results['frame_inds']]
