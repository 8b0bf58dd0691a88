"""The videos the data-path parts decode: Kinetics-like clips (10 s,
340x256, 25 fps) cut from real footage (:mod:`.footage`) or drawn, written
as H.264 with PyAV's libx264, or the files of a folder (``--video-dir``),
with the codec each file really has; and the annotation lists the loops
read (the files cycled through)."""
import multiprocessing
import os
import os.path as osp
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np


def kinetics_like_frames(seconds: float, fps: int, size: Tuple[int, int],
                         seed: int) -> Iterator[np.ndarray]:
    """BGR frames, one at a time, of ``seconds`` at ``fps`` and ``size``
    ``(width, height)`` like a Kinetics-400 video: a panning textured
    scene, moving shapes and sensor noise (motion and detail to code),
    drawn from ``seed``."""
    import cv2
    rng = np.random.default_rng(seed)
    width, height = size
    scene = cv2.resize(
        rng.integers(0, 256, (height // 8, width // 4, 3), dtype=np.uint8),
        (2 * width, height), interpolation=cv2.INTER_CUBIC)
    shapes = [(rng.uniform(0, width), rng.uniform(0, height),
               rng.uniform(-4, 4), rng.uniform(-3, 3),
               tuple(int(c) for c in rng.integers(0, 256, 3)))
              for _ in range(4)]
    for i in range(int(seconds * fps)):
        offset = int(i * width / (seconds * fps))  # pans half the scene
        frame = scene[:, offset:offset + width].copy()
        for x, y, dx, dy, color in shapes:
            center = (int(x + dx * i) % width, int(y + dy * i) % height)
            cv2.circle(frame, center, 20 + (i % 25), color, -1, cv2.LINE_AA)
        noise = rng.integers(-8, 9, frame.shape)
        yield np.clip(frame + noise, 0, 255).astype(np.uint8)


def _write(job: Tuple[str, float, int, Optional[str]]) -> str:
    """Write clip ``seed`` as H.264 (libx264's defaults: preset medium, CRF
    23), yuv420p, whole and checked, or not at all: cut from the footage
    file ``source``, or drawn when it is None."""
    from models.utils.video_writer import write_pyav
    from .footage import footage_frames
    path, seconds, seed, source = job
    frames = (kinetics_like_frames(seconds, 25, (340, 256), seed)
              if source is None else footage_frames(source, seed, seconds))
    write_pyav(path, frames, 25)
    return path


def probe_video(path: str) -> Dict[str, Any]:
    """``codec`` (e.g. ``'H.264'``), ``width``, ``height``, ``fps``,
    ``frames`` and ``seconds`` of a video, read with PyAV; a ValueError
    naming the file when PyAV cannot open it."""
    import av
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 0)
            frames = stream.frames or round(
                float(stream.duration * stream.time_base) * fps)
            return dict(
                codec=stream.codec_context.codec.long_name.split(' / ')[0],
                width=stream.width, height=stream.height,
                fps=round(fps, 3), frames=frames,
                seconds=round(frames / fps, 3) if fps else None)
    except (av.error.FFmpegError, IndexError, TypeError) as error:
        raise ValueError(f'Cannot open video {path!r} with PyAV ({error}): '
                         'it is not a video, or truncated; remove it from '
                         'the folder') from None


def describe_videos(files: Sequence[str], **extra) -> Dict[str, Any]:
    """``files`` with the codecs found and the first file's format."""
    probes = [probe_video(path) for path in files]
    codecs = sorted({p['codec'] for p in probes})
    return dict(probes[0], codec=' + '.join(codecs),
                files=[osp.abspath(f) for f in files],
                mean_file_kib=np.mean([osp.getsize(f) for f in files]) / 1024,
                **extra)


def check_decord_copies(path: str) -> None:
    """Refuse (ValueError naming the file and its size) a video whose
    frames decord cannot copy on this CPU (some widths: docs/decoding.md):
    the decode rate would time the fallback instead of decord."""
    import decord
    try:
        frame = decord.VideoReader(path, num_threads=1).get_batch([0])
        copied = frame.asnumpy().shape[-1] == 3
    except Exception as error:  # decord's DECORDError
        if 'size must exactly match' not in str(error):
            return  # another problem: the pipeline names it
        copied = False
    if not copied:
        info = probe_video(path)
        raise ValueError(
            f"decord cannot copy the frames of {path!r} "
            f"({info['width']}x{info['height']}) on this CPU "
            '(docs/decoding.md), so its decoding cannot be timed: use '
            'videos of another width, e.g. a multiple of 64')


def existing_videos(video_dir: str, files: Sequence[str]) -> Dict[str, Any]:
    """The videos of ``--video-dir`` (``files``: its video files); a
    ValueError naming a file PyAV cannot open or decord cannot copy."""
    for path in files:
        check_decord_copies(path)
    return describe_videos(files, dir=osp.abspath(video_dir),
                           source=f'--video-dir {video_dir}',
                           encoder='unknown (given)')


def make_videos(out_dir: str, count: int, seconds: float,
                clips: str = 'footage') -> Dict[str, Any]:
    """Write ``count`` Kinetics-like H.264 clips into ``out_dir``: cut from
    real footage (``clips='footage'``, :mod:`.footage`) or drawn
    (``'generated'``)."""
    from .footage import FOOTAGE, footage_path
    source = footage_path() if clips == 'footage' else None
    os.makedirs(out_dir, exist_ok=True)
    jobs = [(osp.join(out_dir, f'video_{i:03d}.mp4'), seconds, i, source)
            for i in range(count)]
    # Forked before any model runs: the writers need no fresh import.
    with ProcessPoolExecutor(
            max_workers=min(count, os.cpu_count() or 1),
            mp_context=multiprocessing.get_context('fork')) as pool:
        files = list(pool.map(_write, jobs))
    what = (f'cut from {FOOTAGE[0]}/{FOOTAGE[1]}' if source else 'generated')
    return describe_videos(files, dir=osp.abspath(out_dir), source=what,
                           encoder='libx264 (PyAV)')


def annotation_list(videos: Dict[str, Any], count: int, num_labels: int,
                    path: str) -> str:
    """Write ``count`` lines ``<file> <label>`` to ``path``, the videos and
    labels cycled through; a ValueError for a name with white space."""
    names = [osp.relpath(f, videos['dir']) for f in videos['files']]
    spaced = [n for n in names if len(n.split()) != 1]
    if spaced:
        raise ValueError(f'Video file {spaced[0]!r} has white space in its '
                         'name, which an annotation list cannot hold; '
                         'rename it')
    with open(path, 'w') as f:
        f.writelines(f'{names[i % len(names)]} {i % num_labels}\n'
                     for i in range(count))
    return path
