"""The videos the data-path parts decode: Kinetics-like clips (10 s,
340x256, 25 fps) cut from real footage (:mod:`.footage`) or drawn, written
as H.264 with PyAV's libx264, or the files of a folder (``--video-dir``),
with the codec each file really has; and the annotation lists the loops
read (the files cycled through)."""
import multiprocessing
import os
import os.path as osp
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np


def _write(job: Tuple[str, float, int, Optional[str]]) -> str:
    """Write clip ``seed`` as H.264 (libx264's defaults: preset medium, CRF
    23), yuv420p, whole and checked, or not at all: cut from the footage
    file ``source``, or drawn (a moving circle on a noisy textured scene)
    when it is None."""
    from models.datasets.synthetic_videos import scene_frames
    from models.utils.video_writer import write_pyav
    from .footage import footage_frames
    path, seconds, seed, source = job
    frames = (scene_frames('circle', 'moving right',
                           np.random.default_rng(seed), 340, 256,
                           int(seconds * 25))
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
    real footage (``clips='footage'``) or drawn (``'generated'``)."""
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
    return describe_videos(
        files, dir=osp.abspath(out_dir), encoder='libx264 (PyAV)',
        source=f'cut from {FOOTAGE[0]}/{FOOTAGE[1]}' if source else
        'generated')


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
