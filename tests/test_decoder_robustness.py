"""Damaged videos (bits flipped, truncated, headers zeroed, empty, random
bytes) through the decoding pipeline and through ``tools/zero_shot.py``:
no crash, no hang, and for each file either frames or a ``VideoReadError``
that names it.

The copies are decoded outside the test process: a worker (this module
run as a script) imports the pipeline once, then forks a child that decodes
the videos one after the other and answers each before it takes the next,
so that a crash inside FFmpeg (a signal) or a hang (the child is killed
after ``CASE_TIMEOUT`` seconds) is reported with its video instead of
taking the test run down; a fresh child goes on with the videos after it.
The copies are made from videos the test writes with OpenCV: mp4 (mp4v, as
``tools/generate_videos.py`` writes them here, one of them read only by
the OpenCV fallback), AVI (MJPG, the container of UCF101 and HMDB51) and
Matroska; truncated AVI and Matroska files are those
that crash decord's in-memory reader (``docs/decoding.md``); and H.264 in
mp4 and Matroska, written through PyAV, as Kinetics is stored. Every case
runs through both CPU decoders, ``VideoDecode(backend='cpu')`` (decord)
and ``backend='pyav'``.
"""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
from typing import Dict, List, Tuple

import numpy as np
import pytest
from conftest import ROOT, make_tiny_clip, offline_env, write_video

#: Seconds a child may take to decode one video before it counts as a hang.
CASE_TIMEOUT = 30
#: Frames the pipeline samples from each video.
NUM_FRAMES = 4

FLIP_AT = (0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.97, 0.995)
TRUNCATE_AT = (0.001, 0.05, 0.3, 0.6, 0.9, 0.99)
#: Damage after which no decoder can find the frames of an mp4 (its index,
#: ``moov``, is at the end of these files, or gone): these must fail.
UNREADABLE_MP4 = ('trunc0.001', 'trunc0.05', 'trunc0.3', 'trunc0.6',
                  'zeromoov')


def damaged_copies(data: bytes, seed: int = 0) -> Dict[str, bytes]:
    """Damaged versions of a video file's bytes, by name.

    Args:
        data (bytes): The good video.
        seed (int): Seeds the random bit flips.

    Returns:
        dict[str, bytes]: ``flip<at>`` (16 bytes inverted at that fraction
        of the file), ``trunc<at>`` (the first fraction of it),
        ``zerohead`` (its first 64 bytes zeroed), ``randbits`` (200
        random single bits flipped) and, for an mp4, ``zeromoov`` (its
        index's header and first 200 bytes zeroed).
    """
    size = len(data)
    copies = {}
    for at in FLIP_AT:
        damaged = bytearray(data)
        start = min(int(at * size), size - 16)
        damaged[start:start + 16] = bytes(b ^ 0xFF
                                          for b in damaged[start:start + 16])
        copies[f'flip{at}'] = bytes(damaged)
    for at in TRUNCATE_AT:
        copies[f'trunc{at}'] = data[:max(1, int(at * size))]
    damaged = bytearray(data)
    damaged[:64] = bytes(64)
    copies['zerohead'] = bytes(damaged)
    moov = data.find(b'moov') if data[4:8] == b'ftyp' else -1
    if moov > 4:
        damaged = bytearray(data)
        damaged[moov - 4:moov + 200] = bytes(
            len(damaged[moov - 4:moov + 200]))
        copies['zeromoov'] = bytes(damaged)
    rng = np.random.default_rng(seed)
    damaged = bytearray(data)
    for offset, bit in zip(rng.integers(0, size, 200),
                           rng.integers(0, 8, 200)):
        damaged[offset] ^= 1 << int(bit)
    copies['randbits'] = bytes(damaged)
    return copies


def write_opencv_video(path: str, fourcc: str, num_frames: int = 50,
                       size: tuple = (160, 120)) -> str:
    """Write a square moving over noise with OpenCV, in the container
    ``path``'s extension names; returns ``path``.

    Fresh noise in every frame makes packets of a few kB, as in camera
    footage: truncated at most lengths, such AVI and Matroska files
    crashed decord's in-memory reader (small, flat ones seldom do).
    """
    import cv2
    width, height = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), 25,
                             (width, height))
    assert writer.isOpened(), f'cannot write {path}'
    rng = np.random.default_rng(0)
    for i in range(num_frames):
        frame = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        x = (width - 30) * i // num_frames
        frame[30:70, x:x + 30] = (40, 200, 240)
        writer.write(frame)
    writer.release()
    return path


def write_avi_with_b_frames(path: str, frames, fps: int) -> str:
    """MPEG-4 Part 2 with B-frames and a key frame every 12 frames in AVI
    (as XviD stores UCF101 and HMDB51), through PyAV; returns ``path``."""
    import av
    with av.open(path, 'w') as container:
        stream = container.add_stream('mpeg4', rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = 'yuv420p'
        stream.options = dict(bf='2', g='12')
        for frame in frames:
            for packet in stream.encode(
                    av.VideoFrame.from_ndarray(frame, format='bgr24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_cases(folder: str) -> Tuple[Dict[str, str], List[str]]:
    """Write good videos and their damaged copies, plus files that were
    never videos.

    Args:
        folder (str): Where to write them (created).

    Returns:
        tuple: Case name (``<video>_<damage>``, the good ones
        ``<video>_good``) to path, and the names of the cases that hold no
        decodable frame at all.
    """
    import generate_videos
    os.makedirs(folder, exist_ok=True)
    goods = {
        'plain': write_video(osp.join(folder, 'plain.mp4'), num_frames=16),
        # mp4v's 72x40 coded frames in a 73x41 stream (decord cannot copy
        # such frames on some CPUs: the OpenCV fallback reads them)
        'odd': write_video(osp.join(folder, 'odd.mp4'), size=(73, 41),
                           num_frames=12),
        'avi': write_opencv_video(osp.join(folder, 'avi.avi'), 'MJPG'),
        'mkv': write_opencv_video(osp.join(folder, 'mkv.mkv'), 'mp4v'),
    }
    frames, fps = generate_videos.render('square', 'moving left', seed=3)
    goods['generated'] = osp.join(folder, 'generated.mp4')
    generate_videos.write_video(goods['generated'], frames, fps, 'mp4v')
    for name, ext in (('h264', '.mp4'), ('h264mkv', '.mkv')):
        goods[name] = osp.join(folder, name + ext)
        generate_videos.write_video_h264(goods[name], frames[:40], fps)
    goods['avib'] = write_avi_with_b_frames(osp.join(folder, 'avib.avi'),
                                            frames[:40], fps)
    cases = {f'{name}_good': path for name, path in goods.items()}
    rng = np.random.default_rng(1)
    extra = {
        'empty.mp4': b'',
        'random.mp4': rng.bytes(4096),
        # looks like an mp4 for its first 16 bytes
        'ftyp_random.mp4': b'\x00\x00\x00\x18ftypmp42' + rng.bytes(4096),
    }
    unreadable = ['empty', 'random', 'ftyp_random']
    for key, path in goods.items():
        ext = osp.splitext(path)[1]
        with open(path, 'rb') as f:
            data = f.read()
        for damage, blob in damaged_copies(data).items():
            extra[f'{key}_{damage}{ext}'] = blob
            if ext == '.mp4' and damage in UNREADABLE_MP4:
                unreadable.append(f'{key}_{damage}')
    for file_name, blob in extra.items():
        path = osp.join(folder, file_name)
        with open(path, 'wb') as f:
            f.write(blob)
        cases[osp.splitext(file_name)[0]] = path
    return cases, unreadable


def decode_each(paths: List[str], backend: str) -> Dict[str, dict]:
    """Decode the videos in forked children; what happened to each.

    A child decodes the videos in order and answers each (its reader
    freed first) before it starts the next, as a DataLoader worker goes
    through a dataset; where it dies or hangs, the video it was decoding
    is reported so and a fresh child takes the rest. (A child per video
    cost a fork each: 20 s of CPU for 1 s of decoding.)

    Args:
        paths (list[str]): The videos.
        backend (str): ``VideoDecode``'s backend.

    Returns:
        dict[str, dict]: Per path, ``outcome`` is ``'frames'`` (with
        ``count`` and ``shapes``), ``'error'`` (a ``VideoReadError``,
        with ``message``), ``'other'`` (another exception, with ``type``
        and ``message``), ``'crash'`` (with ``signal`` or ``exitcode``)
        or ``'hang'``.
    """
    import multiprocessing

    import decord  # noqa: F401  (imported once here, not in every child)
    from mmaction.registry import TRANSFORMS
    from mmengine.registry import DefaultScope

    from models.datasets.transforms import VideoReadError
    with DefaultScope.overwrite_default_scope('mmaction'):
        pipeline = [
            TRANSFORMS.build(cfg) for cfg in (
                dict(type='VideoInit'),
                dict(type='SampleFrames', clip_len=1, frame_interval=1,
                     num_clips=NUM_FRAMES, test_mode=True),
                dict(type='VideoDecode', backend=backend))
        ]

    def decode(path):
        try:
            results = dict(filename=path, start_index=0, modality='RGB')
            for transform in pipeline:
                results = transform(results)
            imgs = results['imgs']
            shapes = sorted({(*i.shape, str(i.dtype)) for i in imgs})
            return dict(outcome='frames', count=len(imgs),
                        shapes=[list(shape) for shape in shapes],
                        decoded_by=results.get('decoded_by'))
        except VideoReadError as error:
            return dict(outcome='error', message=str(error))
        except BaseException as error:  # reported, not hidden
            return dict(outcome='other', type=type(error).__name__,
                        message=str(error)[:300])

    def child(paths, conn):
        for path in paths:
            conn.send(decode(path))  # its reader freed on return

    # fork: the children share the imports; the worker runs nothing else
    context = multiprocessing.get_context('fork')
    outcomes, todo = {}, list(paths)
    while todo:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=child, args=(todo, sender))
        process.start()
        sender.close()
        while todo and receiver.poll(CASE_TIMEOUT):
            try:
                outcomes[todo[0]] = receiver.recv()
            except EOFError:  # the child died
                break
            todo.pop(0)
        if todo:  # it died or hangs on todo[0]
            process.join(1)
            if process.is_alive():
                process.kill()
                process.join()
                outcomes[todo.pop(0)] = dict(outcome='hang')
            else:
                code = process.exitcode
                outcomes[todo.pop(0)] = (
                    dict(outcome='crash', signal=-code) if code < 0 else
                    dict(outcome='crash', exitcode=code))
        process.join()
        receiver.close()
    return outcomes


def run_worker(paths: List[str], folder: str,
               backends: List[str]) -> Dict[str, Dict[str, dict]]:
    """:func:`decode_each` of each backend in one fresh interpreter (this
    module as a script), so that nothing of the test process is forked and
    the pipeline is imported once for every backend."""
    cases, results = osp.join(folder, 'cases.json'), osp.join(
        folder, 'outcomes.json')
    with open(cases, 'w') as f:
        json.dump(paths, f)
    proc = subprocess.run(
        [sys.executable, osp.abspath(__file__), cases, results, *backends],
        cwd=ROOT, env=offline_env(), capture_output=True, text=True,
        errors='replace',  # FFmpeg logs bytes of the damaged files
        timeout=(120 + CASE_TIMEOUT * 4) * len(backends))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(results) as f:
        return json.load(f)


def problem(name: str, path: str, outcome: dict) -> str:
    """What is wrong with one video's outcome; empty when nothing is."""
    kind = outcome['outcome']
    if kind == 'crash':
        if 'signal' in outcome:
            return (f'{name}: the decoding process died of '
                    f'{signal.Signals(outcome["signal"]).name}')
        return f'{name}: the decoding process exited {outcome["exitcode"]}'
    if kind == 'hang':
        return f'{name}: still decoding after {CASE_TIMEOUT} s (killed)'
    if kind == 'other':
        return (f'{name}: {outcome["type"]} instead of a VideoReadError: '
                f'{outcome["message"]}')
    if kind == 'error':
        if path not in outcome['message']:
            return f'{name}: the error does not name the file: ' + (
                outcome['message'])
        return ''
    shapes = outcome['shapes']
    if (outcome['count'] != NUM_FRAMES or len(shapes) != 1
            or len(shapes[0]) != 4 or shapes[0][2:] != [3, 'uint8']
            or min(shapes[0][:2]) < 1):
        return f'{name}: frames {outcome}'
    return ''


BACKENDS = ('cpu', 'pyav')


@pytest.fixture(scope='module')
def decoded(tmp_path_factory):
    """The cases of :func:`write_cases`, the names of the unreadable ones
    and every backend's outcomes, decoded once for the module's tests."""
    folder = str(tmp_path_factory.mktemp('damaged'))
    cases, unreadable = write_cases(osp.join(folder, 'videos'))
    outcomes = run_worker(sorted(cases.values()), folder, list(BACKENDS))
    return cases, unreadable, outcomes


@pytest.mark.parametrize('backend', BACKENDS)
def test_damaged_videos_give_frames_or_a_named_error(decoded, backend):
    cases, unreadable, by_backend = decoded
    outcomes = by_backend[backend]
    problems = [problem(name, path, outcomes[path])
                for name, path in sorted(cases.items())]
    for name, path in sorted(cases.items()):
        kind = outcomes[path]['outcome']
        if name.endswith('_good') and kind != 'frames':
            problems.append(f'{name}: a good video gave {outcomes[path]}')
        if name in unreadable and kind == 'frames':
            problems.append(f'{name}: frames from a file without any')
    # PyAV decodes the good mp4 and Matroska files, the odd-sized one too
    # (PyAV gives OpenCV's frames: see test_pyav_frames) and the AVI with
    # B-frames (in order); decord the
    # MJPG AVI, whose frames are in order.
    expected = dict(plain='pyav', generated='pyav', mkv='pyav',
                    h264='pyav', h264mkv='pyav', odd='pyav', avib='pyav',
                    avi='cpu')
    for video, decoder in expected.items():
        got = outcomes[cases[f'{video}_good']].get('decoded_by')
        if backend == 'pyav' and got != decoder:
            problems.append(f'{video}_good: decoded by {got}, not {decoder}')
    problems = [p for p in problems if p]
    assert not problems, '\n'.join(problems)


def test_zero_shot_scores_good_videos_and_lists_damaged_ones(tmp_path):
    import odd_videos
    folder = tmp_path / 'videos'
    folder.mkdir()
    good = [
        write_video(str(folder / f'good_{i}.mp4'), num_frames=10,
                    size=(64 + 16 * i, 48), seed=i) for i in range(2)
    ] + [odd_videos.write(str(folder / 'good_h264.mp4'), 40)]
    with open(good[0], 'rb') as f:
        copies = damaged_copies(f.read())
    bad = {
        'empty.mp4': b'',
        'random.mp4': np.random.default_rng(2).bytes(4096),
        'truncated.mp4': copies['trunc0.3'],
        'no_index.mp4': copies['zeromoov'],
    }
    # Damaged midway: decord would give the last good frame for every
    # frame after the damage; the video is listed as failed, not scored on
    # that frame.
    source = odd_videos.write(str(tmp_path / 'whole.mp4'), 200, gop=25,
                              options={'movflags': 'faststart'})
    damaged = odd_videos.damage(source, str(tmp_path / 'damaged.mp4'))
    with open(damaged, 'rb') as f:
        bad['damaged.mp4'] = f.read()
    # bits flipped in the middle of the frames, truncated AVI and Matroska
    # files (the index is lost, frames may remain): scored or listed,
    # either is right, but not both and not neither, and no crash
    bad_or_good = {'flipped.mp4': copies['flip0.5']}
    for fourcc, ext in (('MJPG', '.avi'), ('mp4v', '.mkv')):
        with open(write_opencv_video(str(tmp_path / f'whole{ext}'), fourcc),
                  'rb') as f:
            data = f.read()
        for at in (0.3, 0.6):
            bad_or_good[f'truncated_{at}{ext}'] = data[:int(at * len(data))]
    for name, blob in {**bad, **bad_or_good}.items():
        (folder / name).write_bytes(blob)
    weights = make_tiny_clip(str(tmp_path / 'tiny_clip.pt'))
    out = tmp_path / 'out.json'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'zero_shot.py'),
         str(folder), '--labels', 'waving,jumping,reading', '--clip',
         weights, '--num-frames', '8', '--out', str(out), '--no-progress'],
        cwd=ROOT, env=offline_env(), capture_output=True, text=True,
        errors='replace', timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    scored = {osp.basename(r['video']) for r in data['results']}
    failed = {osp.basename(f['video']): f['error'] for f in data['failures']}
    assert {osp.basename(p) for p in good} <= scored
    assert set(bad) <= set(failed)
    assert scored.isdisjoint(failed)
    assert scored | set(failed) == {osp.basename(p) for p in good} | set(
        bad) | set(bad_or_good)
    for name, error in failed.items():
        assert name in error, error
    assert 'corrupt' in failed['damaged.mp4'], failed['damaged.mp4']
    assert set(good) <= {r['video'] for r in data['results']}
    listed = proc.stderr.split('videos failed:')[-1]
    total = len(good) + len(bad) + len(bad_or_good)
    assert f'{len(failed)} of {total} videos failed' in proc.stderr
    for name in failed:
        assert name in listed
    for result in data['results']:
        probabilities = [p['probability'] for p in result['predictions']]
        assert abs(sum(probabilities) - 1) < 1e-4


if __name__ == '__main__':
    # The worker of run_worker: decode_each(cases) of each backend named
    # -> outcomes file.
    with open(sys.argv[1]) as f:
        paths = json.load(f)
    outcomes = {backend: decode_each(paths, backend)
                for backend in sys.argv[3:]}
    with open(sys.argv[2], 'w') as f:
        json.dump(outcomes, f, indent=1)
