"""The videos parts d and e decode: Kinetics-like files (10 s, 340x256,
25 fps), written with ``tools/generate_videos.py``'s writer."""
import os
import os.path as osp
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Dict, Iterator, Tuple

import cv2
import numpy as np
from generate_videos import mp4_fourcc, write_lines, write_video


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


def _write_job(args: Tuple) -> str:
    return write_kinetics_like(*args)


def make_videos(out_dir: str, count: int, seconds: float,
                num_labels: int) -> Dict[str, Any]:
    """Generate ``count`` videos and a test list (``<file> <label>``).

    Args:
        out_dir (str): Where to write them (created).
        count (int): How many.
        seconds (float): Length of each.
        num_labels (int): Labels cycled through in the list.

    Returns:
        dict: ``dir``, ``ann_file``, ``files`` and the video format.
    """
    fourcc = mp4_fourcc()
    os.makedirs(out_dir, exist_ok=True)
    size, fps = (340, 256), 25
    jobs = [(osp.join(out_dir, f'video_{i:03d}.mp4'), seconds, fps, size, i,
             fourcc) for i in range(count)]
    with ProcessPoolExecutor(max_workers=min(count, os.cpu_count()
                                             or 1)) as pool:
        files = list(pool.map(_write_job, jobs))
    ann_file = osp.join(out_dir, 'test_list_videos.txt')
    write_lines(ann_file, [
        f'{osp.basename(path)} {i % num_labels}'
        for i, path in enumerate(files)
    ])
    return dict(
        dir=out_dir,
        ann_file=ann_file,
        files=files,
        codec=fourcc,
        width=size[0],
        height=size[1],
        fps=fps,
        seconds=seconds,
        mean_file_kib=float(
            np.mean([osp.getsize(p) for p in files]) / 1024))
