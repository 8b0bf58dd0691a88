"""The videos the data-path parts decode: Kinetics-like files (10 s,
340x256, 25 fps), generated (H.264 through PyAV's libx264 where PyAV is
installed, else through OpenCV: H.264 where its build can encode it, else
MPEG-4 Part 2) or taken from a folder (``--video-dir``), with the codec
each file really has, and the annotation lists the loops read (the files
cycled through to reach the count a loop needs)."""
import importlib.util
import multiprocessing
import os
import os.path as osp
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Dict, Iterator, Sequence, Tuple

import cv2
import numpy as np
from generate_videos import (mp4_fourcc, write_lines, write_video,
                             write_video_h264)


def kinetics_like_frames(seconds: float, fps: int, size: Tuple[int, int],
                         seed: int) -> Iterator[np.ndarray]:
    """Frames shaped like a Kinetics-400 video after the usual resizing to
    340x256: a panning textured scene, moving shapes and sensor noise, so
    that the encoder has real motion and detail to code.

    Args:
        seconds (float): Length of the video.
        fps (int): Frame rate.
        size (tuple[int, int]): ``(width, height)``.
        seed (int): Seed of the scene, the shapes and the noise.

    Yields:
        np.ndarray: ``(height, width, 3)`` BGR frames, one at a time (a
        10 s video is never held whole).
    """
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


def write_kinetics_like(path: str, seconds: float, fps: int,
                        size: Tuple[int, int], seed: int,
                        fourcc: str) -> str:
    """Write :func:`kinetics_like_frames` to an mp4 file.

    Args:
        path (str): The ``.mp4`` file.
        seconds (float): Length of the video.
        fps (int): Frame rate.
        size (tuple[int, int]): ``(width, height)``.
        seed (int): Seed of the content.
        fourcc (str): Codec, from ``generate_videos.mp4_fourcc``.

    Returns:
        str: ``path``.
    """
    write_video(path, kinetics_like_frames(seconds, fps, size, seed), fps,
                fourcc)
    return path


def write_kinetics_like_pyav(path: str, seconds: float, fps: int,
                             size: Tuple[int, int], seed: int) -> str:
    """Write :func:`kinetics_like_frames` as H.264 with PyAV's libx264
    (its defaults: preset medium, CRF 23), yuv420p, in mp4.

    Args:
        path (str): The ``.mp4`` file.
        seconds (float): Length of the video.
        fps (int): Frame rate.
        size (tuple[int, int]): ``(width, height)``.
        seed (int): Seed of the content.

    Returns:
        str: ``path``.
    """
    write_video_h264(path, kinetics_like_frames(seconds, fps, size, seed),
                     fps)
    return path


def _write_job(args: Tuple) -> str:
    path, seconds, fps, size, seed, fourcc = args
    if fourcc == 'libx264':
        return write_kinetics_like_pyav(path, seconds, fps, size, seed)
    return write_kinetics_like(*args)


#: Names of the codecs by the FourCC OpenCV reports.
CODEC_NAMES = {
    'avc1': 'H.264',
    'h264': 'H.264',
    'x264': 'H.264',
    'avc3': 'H.264',
    'mp4v': 'MPEG-4 Part 2',
    'fmp4': 'MPEG-4 Part 2',
    'xvid': 'MPEG-4 Part 2',
    'dx50': 'MPEG-4 Part 2',
    'hev1': 'H.265',
    'hvc1': 'H.265',
    'hevc': 'H.265',
    'av01': 'AV1',
    'vp09': 'VP9',
    'vp80': 'VP8',
}


def probe_video(path: str) -> Dict[str, Any]:
    """What a video file holds, read with OpenCV (no FFmpeg CLI needed).

    Args:
        path (str): The file.

    Returns:
        dict: ``fourcc``, ``codec`` (its name, e.g. ``'H.264'``),
        ``width``, ``height``, ``fps``, ``frames`` and ``seconds``.

    Raises:
        ValueError: OpenCV cannot open it.
    """
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise ValueError(f'Cannot open video {path!r} with OpenCV: it is '
                         'not a video, or truncated; remove it from the '
                         'folder')
    code = int(capture.get(cv2.CAP_PROP_FOURCC))
    fourcc = ''.join(chr((code >> 8 * i) & 0xFF) for i in range(4)).strip(
        '\x00 ')
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    info = dict(
        fourcc=fourcc,
        codec=CODEC_NAMES.get(fourcc.lower(), fourcc or 'unknown'),
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=round(fps, 3),
        frames=frames,
        seconds=round(frames / fps, 3) if fps else None)
    capture.release()
    return info


def describe_videos(files: Sequence[str]) -> Dict[str, Any]:
    """The codecs and sizes of ``files``, for the report.

    Returns:
        dict: ``codec`` (the names found, joined), ``fourcc``, and the
        first file's ``width``, ``height``, ``fps``, ``seconds``, and the
        files' ``mean_file_kib``.
    """
    probes = [probe_video(path) for path in files]
    first = probes[0]
    return dict(
        codec=' + '.join(sorted({p['codec'] for p in probes})),
        fourcc=' + '.join(sorted({p['fourcc'] for p in probes})),
        width=first['width'],
        height=first['height'],
        fps=first['fps'],
        seconds=first['seconds'],
        frames=first['frames'],
        mean_file_kib=float(
            np.mean([osp.getsize(p) for p in files]) / 1024))


def check_decord_copies(path: str) -> None:
    """Refuse a video whose frames decord cannot copy on this CPU (some
    widths, which depend on the CPU: docs/decoding.md): the parts that
    time decord would time the OpenCV fallback instead.

    Args:
        path (str): The video.

    Raises:
        ValueError: decord cannot copy its frames (the message names it).
    """
    import decord
    try:
        reader = decord.VideoReader(path, num_threads=1)
        frames = reader.get_batch([0]).asnumpy()
    except Exception as error:  # decord's DECORDError
        if 'size must exactly match' not in str(error):
            return  # another problem: the pipeline names it
        frames = None
    if frames is None or frames.shape[-1] != 3:
        info = probe_video(path)
        raise ValueError(
            f"decord cannot copy the frames of {path!r} "
            f"({info['width']}x{info['height']}) on this CPU "
            '(docs/decoding.md), so its decoding cannot be timed: use '
            'videos of another width, e.g. a multiple of 64')


def existing_videos(video_dir: str, files: Sequence[str]) -> Dict[str, Any]:
    """Videos of a folder (``--video-dir``), for the loops to cycle
    through.

    Args:
        video_dir (str): The folder.
        files (list[str]): Its video files (``find_videos``).

    Returns:
        dict: As :func:`make_videos`, ``source='--video-dir'``.

    Raises:
        ValueError: A file that OpenCV cannot open, whose frames decord
            cannot copy, or whose name has white space (the message names
            it).
    """
    files = [osp.abspath(f) for f in files]
    spaced = [f for f in files if len(osp.basename(f).split()) != 1]
    if spaced:
        raise ValueError(f'Video file {spaced[0]!r} has white space in its '
                         'name, which an annotation list cannot hold; '
                         'rename it')
    for path in files:
        check_decord_copies(path)
    return dict(dir=osp.abspath(video_dir), files=files,
                source=f'--video-dir {video_dir}', encoder='unknown (given)',
                **describe_videos(files))


def annotation_list(videos: Dict[str, Any], count: int, num_labels: int,
                    path: str) -> str:
    """A list of ``count`` videos (``<file> <label>``), the files cycled
    through as often as needed, for a loop of a fixed length.

    Args:
        videos (dict): From :func:`make_videos` or
            :func:`existing_videos`.
        count (int): Lines.
        num_labels (int): Labels cycled through.
        path (str): The list to write.

    Returns:
        str: ``path``.

    Raises:
        ValueError: A file name holds white space (the list cannot).
    """
    names = [osp.relpath(f, videos['dir']) for f in videos['files']]
    spaced = [n for n in names if len(n.split()) != 1]
    if spaced:
        raise ValueError(f'Video file {spaced[0]!r} has white space in its '
                         'name, which an annotation list cannot hold; '
                         'rename it')
    write_lines(path, [
        f'{names[i % len(names)]} {i % num_labels}' for i in range(count)
    ])
    return path


def choose_encoder() -> str:
    """``'libx264'`` where PyAV is installed, else OpenCV's FourCC
    (``'avc1'`` where it can encode H.264, else ``'mp4v'``)."""
    if importlib.util.find_spec('av') is not None:
        return 'libx264'
    return mp4_fourcc()


def make_videos(out_dir: str, count: int, seconds: float,
                num_labels: int) -> Dict[str, Any]:
    """Generate ``count`` videos and a test list (``<file> <label>``).

    Args:
        out_dir (str): Where to write them (created).
        count (int): How many.
        seconds (float): Length of each.
        num_labels (int): Labels cycled through in the list.

    Returns:
        dict: ``dir``, ``ann_file``, ``files``, ``encoder`` and the video
        format as probed (``codec``, ``fourcc``, size, rate).
    """
    fourcc = choose_encoder()
    os.makedirs(out_dir, exist_ok=True)
    size, fps = (340, 256), 25
    jobs = [(osp.join(out_dir, f'video_{i:03d}.mp4'), seconds, fps, size, i,
             fourcc) for i in range(count)]
    # PyAV bundles an FFmpeg of its own: its writers start fresh (spawn),
    # away from any decoder library this process has loaded.
    context = multiprocessing.get_context(
        'spawn' if fourcc == 'libx264' else None)
    with ProcessPoolExecutor(
            max_workers=min(count, os.cpu_count() or 1),
            mp_context=context) as pool:
        files = list(pool.map(_write_job, jobs))
    ann_file = osp.join(out_dir, 'test_list_videos.txt')
    write_lines(ann_file, [
        f'{osp.basename(path)} {i % num_labels}'
        for i, path in enumerate(files)
    ])
    encoder = ('libx264 through PyAV' if fourcc == 'libx264' else
               f'{fourcc} through OpenCV {cv2.__version__}')
    return dict(
        dir=osp.abspath(out_dir),
        ann_file=ann_file,
        files=[osp.abspath(f) for f in files],
        source='generated',
        encoder=encoder,
        **describe_videos(files))
