"""Generate a labelled action-video dataset whose classes only motion tells.

Each video shows one object (a square, a circle or a triangle) of random
colour and size on a random textured background, moving in one of eight
ways; the class is "a <object> <motion>", e.g. "a square moving left".
Start positions, sizes and angles are random, so no single frame tells the
motion: the model has to compare frames. Some (object, motion) pairs are
held out of training to measure zero-shot recognition through the label
text.

Writes under ``--out`` (default ``data/synthetic_actions``)::

    videos/{train,val,test,zeroshot}/*.mp4
    {train,val,test,zeroshot}_list_videos.txt   # "<file> <label index>"
    label_map.txt            # classes of train/val/test, one per line
    label_map_zeroshot.txt   # held-out classes (the zeroshot list's labels)
    label_map_all.txt        # seen then held-out classes
    zeroshot_all_list_videos.txt  # the zeroshot videos, labels of _all

Every file is written to a temporary file beside it and renamed when
complete, so an interrupted run leaves no truncated video or list.

Example:
    python tools/generate_videos.py --per-class 60 --seed 0
"""
import argparse
import math
import os
import os.path as osp
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, Iterable, List, Sequence, Tuple

import cv2
import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

from light_imports import load_light  # noqa: E402


safe_io = load_light('models.utils.safe_io')

OBJECTS = ('square', 'circle', 'triangle')
MOTIONS = ('moving left', 'moving right', 'moving up', 'moving down',
           'growing', 'shrinking', 'rotating clockwise',
           'rotating counterclockwise')
# A rotating circle looks still: those pairs are not classes.
INVALID = {('circle', 'rotating clockwise'),
           ('circle', 'rotating counterclockwise')}
#: Held out of train/val/test; their names combine an object and a motion
#: that both appear in training with other partners.
DEFAULT_HELDOUT = (('triangle', 'growing'), ('square', 'moving up'),
                   ('circle', 'shrinking'))
SIZES = ((96, 96), (128, 96), (112, 112), (160, 120))


def class_name(obj: str, motion: str) -> str:
    """The label text of a class, e.g. ``'a square moving left'``."""
    return f'a {obj} {motion}'


def split_classes(heldout: Sequence[Tuple[str, str]]
                  ) -> Tuple[List[str], List[str]]:
    """The trained classes and the held-out (zero-shot) classes.

    Args:
        heldout (list[tuple]): (object, motion) pairs to hold out.

    Returns:
        tuple[list[str], list[str]]: Seen and held-out class names.
    """
    pairs = [(o, m) for o in OBJECTS for m in MOTIONS
             if (o, m) not in INVALID]
    unknown = set(heldout) - set(pairs)
    if unknown:
        raise ValueError(f'Held-out pairs {sorted(unknown)} are not classes')
    seen = [class_name(o, m) for o, m in pairs if (o, m) not in heldout]
    held = [class_name(o, m) for o, m in pairs if (o, m) in heldout]
    return seen, held


def _polygon(obj: str, center: np.ndarray, radius: float,
             angle: float) -> np.ndarray:
    corners = 4 if obj == 'square' else 3
    phases = angle + np.arange(corners) * 2 * math.pi / corners
    points = center + radius * np.stack([np.cos(phases), np.sin(phases)], 1)
    return np.round(points * 16).astype(np.int32)  # 4 fractional bits


def _background(rng: np.random.Generator, width: int,
                height: int) -> np.ndarray:
    """A smooth random texture, so that the object is not on flat colour."""
    low = rng.integers(0, 256, (height // 16 + 2, width // 16 + 2, 3))
    texture = cv2.resize(low.astype(np.uint8), (width, height),
                         interpolation=cv2.INTER_CUBIC)
    return (texture * rng.uniform(0.3, 0.7)).astype(np.uint8)


def frame_size(size: Tuple[int, int], scale: float) -> Tuple[int, int]:
    """``size`` times ``scale``, rounded to even numbers (what video
    encoders need), at least 32x32."""
    return tuple(max(32, 2 * int(round(side * scale / 2))) for side in size)


def render(obj: str,
           motion: str,
           seed: int,
           size_scale: float = 1.0) -> Tuple[List[np.ndarray], int]:
    """Frames of one video.

    Args:
        obj (str): The object.
        motion (str): The motion.
        seed (int): Seeds everything random about the video.
        size_scale (float): Factor on the frame sizes of ``SIZES``.

    Returns:
        tuple[list[np.ndarray], int]: BGR frames and the frame rate.
    """
    rng = np.random.default_rng(seed)
    width, height = frame_size(SIZES[rng.integers(len(SIZES))], size_scale)
    num_frames = int(rng.integers(20, 41))
    fps = int(rng.choice([10, 15, 24, 25]))
    background = _background(rng, width, height)
    color = tuple(int(c) for c in rng.integers(100, 256, 3))
    short = min(width, height)
    radius = rng.uniform(0.12, 0.2) * short
    travel = rng.uniform(0.3, 0.55) * short  # total path of a moving object
    scale_end = rng.uniform(1.8, 2.5)  # size ratio of growing/shrinking
    turn = rng.uniform(0.6, 1.2) * math.pi  # total rotation
    direction = dict(left=(-1, 0), right=(1, 0), up=(0, -1), down=(0, 1))
    step = np.zeros(2)
    if motion.startswith('moving'):
        step = np.array(direction[motion.split()[1]], float) * travel
    # Place the start so that the whole path stays inside the frame.
    largest = radius * (scale_end if motion == 'growing' else 1) * 1.2
    low = np.array([largest, largest]) - np.minimum(step, 0)
    high = np.array([width, height]) - largest - np.maximum(step, 0)
    start = rng.uniform(low, np.maximum(low + 1, high))
    angle0 = rng.uniform(0, 2 * math.pi)
    frames = []
    for i in range(num_frames):
        t = i / (num_frames - 1)
        center = start + step * t
        r, angle = radius, angle0
        if motion == 'growing':
            r = radius * scale_end**t
        elif motion == 'shrinking':
            r = radius * scale_end**(1 - t)
        elif motion == 'rotating clockwise':  # image y points down
            angle = angle0 + turn * t
        elif motion == 'rotating counterclockwise':
            angle = angle0 - turn * t
        frame = background.copy()
        if obj == 'circle':
            cv2.circle(frame, tuple(np.round(center * 16).astype(int)),
                       int(round(r * 16)), color, -1, cv2.LINE_AA, 4)
        else:
            cv2.fillPoly(frame, [_polygon(obj, center, r * 1.25, angle)],
                         color, cv2.LINE_AA, 4)
        noise = rng.integers(-6, 7, frame.shape)
        frames.append(np.clip(frame + noise, 0, 255).astype(np.uint8))
    return frames, fps


def mp4_fourcc() -> str:
    """The codec to write mp4 files with: H.264 where this OpenCV can write
    it, MPEG-4 Part 2 otherwise.

    Returns:
        str: ``'avc1'`` or ``'mp4v'``.
    """
    probe = osp.join(os.environ.get('TMPDIR', '/tmp'),
                     f'.codec_probe_{os.getpid()}.mp4')
    # FFmpeg reports a missing encoder on stderr by itself; the answer is
    # all we need, so that noise is muted for the probe.
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as null:
            os.dup2(null.fileno(), 2)
        for code in ('avc1', 'mp4v'):
            writer = cv2.VideoWriter(probe, cv2.VideoWriter_fourcc(*code),
                                     10, (32, 32))
            ok = writer.isOpened()
            writer.release()
            if osp.exists(probe):
                os.remove(probe)
            if ok:
                return code
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    raise RuntimeError('This OpenCV build cannot write mp4 files')


def write_video(path: str, frames: Iterable[np.ndarray], fps: float,
                fourcc: str) -> None:
    """Write BGR frames to an mp4 file, whole or not at all.

    Frames are written as they come, so a generator of frames needs memory
    for one frame only (``tools/benchmarks/videos.py`` writes 10 s videos
    so).

    Args:
        path (str): The ``.mp4`` file.
        frames (iterable[np.ndarray]): ``(H, W, 3)`` BGR frames, all of
            one size.
        fps (float): Frame rate.
        fourcc (str): Codec, from :func:`mp4_fourcc`.
    """
    # The temporary name keeps the .mp4 ending: VideoWriter picks the
    # container from it.
    with safe_io.atomic_path(path, keep_ext=True) as tmp:
        writer = None
        try:
            for frame in frames:
                if writer is None:  # the size is the first frame's
                    height, width = frame.shape[:2]
                    writer = cv2.VideoWriter(
                        tmp, cv2.VideoWriter_fourcc(*fourcc), fps,
                        (width, height))
                    if not writer.isOpened():
                        raise RuntimeError(f'Cannot write {path}')
                writer.write(frame)
        finally:
            if writer is not None:
                writer.release()
        if writer is None:
            raise ValueError(f'No frames to write to {path}')


def write_lines(path: str, lines: Sequence[str]) -> None:
    """Write one line per item, whole or not at all.

    Args:
        path (str): The text file.
        lines (list[str]): Its lines, without line ends.
    """
    with safe_io.atomic_write(path, 'w') as f:
        f.writelines(f'{line}\n' for line in lines)


def _job(args: Tuple[str, str, str, int, str, float]) -> None:
    path, obj, motion, seed, fourcc, size_scale = args
    frames, fps = render(obj, motion, seed, size_scale)
    write_video(path, frames, fps, fourcc)


def plan(seed: int, per_class: Dict[str, int],
         heldout: Sequence[Tuple[str, str]]) -> Dict[str, list]:
    """Which videos each split holds: (file, object, motion, label, seed).

    Args:
        seed (int): Dataset seed; every video's seed derives from it.
        per_class (dict): Videos per class for each split.
        heldout (list[tuple]): (object, motion) pairs held out.

    Returns:
        dict: Split name to a list of video specs.
    """
    seen, held = split_classes(heldout)
    splits = {}
    for split, count in per_class.items():
        names = held if split == 'zeroshot' else seen
        specs = []
        for label, name in enumerate(names):
            obj, motion = name[2:].split(' ', 1)
            for k in range(count):
                video_seed = hash_seed(seed, split, name, k)
                slug = name[2:].replace(' ', '_')
                specs.append((f'{slug}_{k:04d}.mp4', obj, motion, label,
                              video_seed))
        splits[split] = specs
    return splits


def hash_seed(*parts) -> int:
    """A stable 63-bit seed from strings and ints (Python's hash() is
    salted per process)."""
    import hashlib
    digest = hashlib.sha256('/'.join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], 'little') >> 1


def generate(out: str,
             seed: int = 0,
             per_class: Dict[str, int] = None,
             heldout: Sequence[Tuple[str, str]] = DEFAULT_HELDOUT,
             workers: int = 2,
             progress: bool = True,
             size_scale: float = 1.0) -> Dict[str, int]:
    """Write the dataset (see the module docstring).

    Args:
        out (str): Output folder.
        seed (int): Dataset seed.
        per_class (dict): Videos per class per split; defaults to 60 train,
            10 val, 15 test and 20 zero-shot.
        heldout (list[tuple]): (object, motion) pairs held out of training.
        workers (int): Processes that render videos.
        progress (bool): Show a progress bar.
        size_scale (float): Factor on the frame sizes (96x96 to 160x120
            at 1.0); smaller videos decode faster, which is what a model
            with small inputs needs on a CPU.

    Returns:
        dict: Number of videos per split.
    """
    if not 0 < size_scale <= 8:
        raise ValueError(f'size_scale must be in (0, 8], got {size_scale}')
    from tqdm import tqdm
    per_class = per_class or dict(train=60, val=10, test=15, zeroshot=20)
    splits = plan(seed, per_class, heldout)
    seen, held = split_classes(heldout)
    fourcc = mp4_fourcc()
    jobs = []
    for split, specs in splits.items():
        folder = osp.join(out, 'videos', split)
        os.makedirs(folder, exist_ok=True)
        write_lines(osp.join(out, f'{split}_list_videos.txt'),
                    [f'{name} {label}' for name, *_, label, _s in specs])
        jobs += [(osp.join(folder, name), obj, motion, s, fourcc, size_scale)
                 for name, obj, motion, _, s in specs]
    # The harder zero-shot protocol: held-out videos scored against every
    # class, so that the trained ones compete with the unseen ones.
    write_lines(osp.join(out, 'zeroshot_all_list_videos.txt'),
                [f'{name} {label + len(seen)}'
                 for name, *_, label, _s in splits.get('zeroshot', [])])
    for name, labels in (('label_map.txt', seen),
                         ('label_map_zeroshot.txt', held),
                         ('label_map_all.txt', seen + held)):
        write_lines(osp.join(out, name), labels)
    bar = tqdm(
        total=len(jobs),
        desc=f'videos ({fourcc})',
        unit='video',
        mininterval=2,
        disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_job, jobs, chunksize=8):
                bar.update()
    else:
        for job in jobs:
            _job(job)
            bar.update()
    bar.close()
    return {split: len(specs) for split, specs in splits.items()}


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` by default.

    Returns:
        argparse.Namespace: The options.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        '--out',
        default='data/synthetic_actions',
        help='folder the videos, file lists and label maps are written to')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='random seed: the same seed writes the same videos')
    parser.add_argument(
        '--per-class', type=int, default=60,
        help='training videos per class')
    parser.add_argument(
        '--val-per-class', type=int, default=10,
        help='validation videos per class')
    parser.add_argument(
        '--test-per-class', type=int, default=15,
        help='test videos per class')
    parser.add_argument(
        '--zeroshot-per-class', type=int, default=20,
        help='videos per held-out (zero-shot) class')
    parser.add_argument(
        '--workers',
        type=int,
        default=os.cpu_count() or 1,
        help='processes rendering videos (the CPU count)')
    parser.add_argument(
        '--size-scale',
        type=float,
        default=1.0,
        help='factor on the frame sizes (1.0: 96x96 to 160x120)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for name in ('per_class', 'val_per_class', 'test_per_class',
                 'zeroshot_per_class'):
        if getattr(args, name) < 1:
            print(f'--{name.replace("_", "-")} must be at least 1',
                  file=sys.stderr)
            return 2
    if not 0 < args.size_scale <= 8:
        print(f'--size-scale must be in (0, 8], got {args.size_scale}',
              file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f'--workers must be at least 1, got {args.workers}',
              file=sys.stderr)
        return 2
    counts = generate(
        args.out,
        args.seed,
        dict(
            train=args.per_class,
            val=args.val_per_class,
            test=args.test_per_class,
            zeroshot=args.zeroshot_per_class),
        workers=args.workers,
        size_scale=args.size_scale)
    print(f'Wrote {counts} videos to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
