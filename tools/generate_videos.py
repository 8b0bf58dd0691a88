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

With ``--long N`` it writes, instead, N long videos of the trained classes
and N of the held-out ones under ``OUT/long`` (``--long-minutes`` each):
the actions in sequence, each drawn as a clip, with still pauses between
them, and the times of every action as ground truth (``generate_long``;
docs/moments_accuracy.md)::

    long/{trained,zeroshot}/long_0000.mp4 ...
    long/ground_truth_{trained,zeroshot}.json  # {label, start_s, end_s}
    long/label_map.txt, label_map_zeroshot.txt, label_map_all.txt

Every file is written to a temporary file beside it and renamed when
complete, so an interrupted run leaves no truncated video or list. Videos
are written frame by frame: a long one needs memory for a few frames.

Examples:
    python tools/generate_videos.py --per-class 60 --seed 0
    python tools/generate_videos.py --long 4 --long-minutes 3 \\
        --size-scale 0.667 --seed 1
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple

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
#: Frame rates of the videos.
FRAME_RATES = (10, 15, 24, 25)
#: Frames of one action (a clip), fewest and most.
ACTION_FRAMES = (20, 40)


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
    num_frames = int(rng.integers(ACTION_FRAMES[0], ACTION_FRAMES[1] + 1))
    fps = int(rng.choice(FRAME_RATES))
    return list(scene_frames(obj, motion, rng, width, height,
                             num_frames)), fps


def scene_frames(obj: str, motion: str, rng: np.random.Generator,
                 width: int, height: int,
                 num_frames: int) -> Iterator[np.ndarray]:
    """The frames of one action, one at a time: what :func:`render` draws
    for a clip and :func:`long_frames` for each action of a long video.

    Args:
        obj (str): The object.
        motion (str): The motion.
        rng (np.random.Generator): Draws the scene (background, colour,
            size, path) and the noise of each frame, in that order.
        width (int): Frame width.
        height (int): Frame height.
        num_frames (int): Frames of the action (at least 2).

    Yields:
        np.ndarray: ``(height, width, 3)`` BGR frames.
    """
    # The noise of frame i is drawn after frame i is drawn and before
    # frame i + 1, as the clean frames come one at a time.
    for clean in _clean_frames(obj, motion, rng, width, height, num_frames):
        yield _noisy(clean, rng)


def _clean_frames(obj: str, motion: str, rng: np.random.Generator,
                  width: int, height: int,
                  num_frames: int) -> Iterator[np.ndarray]:
    """:func:`scene_frames` before the noise (drawn from ``rng`` by the
    caller after each frame)."""
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
        yield frame


def _noisy(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frame with the sensor-like noise every generated frame has."""
    noise = rng.integers(-6, 7, frame.shape)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


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


def write_video_h264(path: str, frames: Iterable[np.ndarray], fps: int,
                     preset: str = 'medium', threads: int = 0) -> None:
    """Write BGR frames as H.264 (PyAV's libx264, CRF 23, yuv420p: what
    browsers play) in mp4, whole or not at all, one frame in memory at a
    time: for hosts whose OpenCV cannot write H.264.

    Args:
        path (str): The ``.mp4`` file.
        frames (iterable[np.ndarray]): ``(H, W, 3)`` BGR frames, all of
            one size (even sides: yuv420p).
        fps (int): Frame rate.
        preset (str): libx264's speed preset (its default: ``'medium'``).
        threads (int): Encoder threads; 0: libx264 chooses.
    """
    import av
    with safe_io.atomic_path(path, keep_ext=True) as tmp:
        with av.open(tmp, 'w') as container:
            stream = None
            for frame in frames:
                if stream is None:  # the size is the first frame's
                    stream = container.add_stream(
                        'libx264', rate=fps, options=dict(preset=preset))
                    stream.height, stream.width = frame.shape[:2]
                    stream.pix_fmt = 'yuv420p'
                    stream.thread_count = threads
                for packet in stream.encode(
                        av.VideoFrame.from_ndarray(frame, format='bgr24')):
                    container.mux(packet)
            if stream is None:
                raise ValueError(f'No frames to write to {path}')
            for packet in stream.encode():
                container.mux(packet)


#: The codec name :func:`video_codec` gives for H.264 written by PyAV.
PYAV_H264 = 'h264'


def video_codec() -> str:
    """The codec the generated videos are written with: H.264 through PyAV
    where PyAV has libx264 (browsers play it: the report pages embed the
    videos), else H.264 or MPEG-4 Part 2 through OpenCV
    (:func:`mp4_fourcc`).

    Returns:
        str: :data:`PYAV_H264`, ``'avc1'`` or ``'mp4v'``.
    """
    try:
        import av
        av.codec.Codec('libx264', 'w')
        return PYAV_H264
    except Exception:  # no PyAV, or a build without libx264
        return mp4_fourcc()


def write_clip(path: str, frames: Iterable[np.ndarray], fps: int,
               codec: str) -> None:
    """Write a generated video with the codec of :func:`video_codec`.

    Many small videos are written by one process each: libx264 runs on
    one thread at its ``ultrafast`` preset, which writes them about as
    fast as OpenCV's MPEG-4 Part 2, and the same seed writes the same
    bytes (at ``veryfast`` and ``medium`` some videos came out different
    from run to run here).

    Args:
        path (str): The ``.mp4`` file.
        frames (iterable[np.ndarray]): ``(H, W, 3)`` BGR frames.
        fps (int): Frame rate.
        codec (str): From :func:`video_codec`.
    """
    if codec == PYAV_H264:
        write_video_h264(path, frames, fps, preset='ultrafast', threads=1)
    else:
        write_video(path, frames, fps, codec)


def write_lines(path: str, lines: Sequence[str]) -> None:
    """Write one line per item, whole or not at all.

    Args:
        path (str): The text file.
        lines (list[str]): Its lines, without line ends.
    """
    with safe_io.atomic_write(path, 'w') as f:
        f.writelines(f'{line}\n' for line in lines)


def _job(args: Tuple[str, str, str, int, str, float]) -> None:
    path, obj, motion, seed, codec, size_scale = args
    frames, fps = render(obj, motion, seed, size_scale)
    write_clip(path, frames, fps, codec)


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
    codec = video_codec()
    jobs = []
    for split, specs in splits.items():
        folder = osp.join(out, 'videos', split)
        os.makedirs(folder, exist_ok=True)
        write_lines(osp.join(out, f'{split}_list_videos.txt'),
                    [f'{name} {label}' for name, *_, label, _s in specs])
        jobs += [(osp.join(folder, name), obj, motion, s, codec, size_scale)
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
        desc=f'videos ({codec})',
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


# ---------------------------------------------------------------------------
# Long videos: actions in sequence with still pauses, and their ground truth
# ---------------------------------------------------------------------------

#: The class sets of the long videos: their folder names under ``long/``.
LONG_SETS = ('trained', 'zeroshot')
#: Seconds of stillness between two actions, shortest and longest.
DEFAULT_PAUSE_S = (1.0, 5.0)


def shortest_long_s(pause_s: Tuple[float, float]) -> float:
    """The shortest long video that surely holds one action: the longest
    first pause, the longest action at the lowest frame rate, the shortest
    last pause (and a frame's rounding).

    Args:
        pause_s (tuple[float, float]): Shortest and longest pause, seconds.

    Returns:
        float: Seconds.
    """
    low, high = pause_s
    slowest = min(FRAME_RATES)
    return high + ACTION_FRAMES[1] / slowest + low + 2 / slowest


def plan_long(seed: int,
              set_name: str,
              labels: Sequence[str],
              index: int,
              duration_s: float,
              pause_s: Tuple[float, float] = DEFAULT_PAUSE_S,
              size_scale: float = 1.0) -> dict:
    """Everything about one long video, decided before any frame is drawn.

    The video has one frame size and frame rate, drawn as a clip's. It
    alternates pauses with actions, each drawn exactly as a clip of its
    class (20 to 40 frames, :func:`scene_frames`). A pause is a still
    scene: the first frame of the next action held, only the noise
    changing; the last pause holds the last frame of the last action. So
    the scene changes only where an action ends: a pause holds no change
    at all (a cut inside it would look like motion to a model, which is
    not what "nothing happens" should test). The labels come in rounds,
    each a random order of all ``labels``; the video ends with a pause.

    Args:
        seed (int): Dataset seed.
        set_name (str): ``'trained'`` or ``'zeroshot'`` (part of the
            video's seed).
        labels (list[str]): Class names ("a <object> <motion>").
        index (int): Which video of the set.
        duration_s (float): Length of the video in seconds.
        pause_s (tuple[float, float]): Shortest and longest pause, seconds.
        size_scale (float): Factor on the frame sizes of ``SIZES``.

    Returns:
        dict: ``fps``, ``width``, ``height``, ``num_frames``,
        ``noise_seed`` and ``actions``: a list of dicts with ``label``,
        ``start`` and ``stop`` (frame indices, ``stop`` excluded) and
        ``seed``.

    Raises:
        ValueError: When the pauses are not ``0 < shortest <= longest`` or
            the duration cannot hold one action between two pauses.
    """
    low, high = pause_s
    if not 0 < low <= high:
        raise ValueError(f'pause_s must be 0 < shortest <= longest, got '
                         f'{tuple(pause_s)}')
    if not labels:
        raise ValueError('No labels to make a long video of')
    video_seed = hash_seed(seed, 'long', set_name, index)
    rng = np.random.default_rng(video_seed)
    width, height = frame_size(SIZES[rng.integers(len(SIZES))], size_scale)
    fps = int(rng.choice(FRAME_RATES))
    total = int(round(duration_s * fps))
    shortest = max(1, int(round(low * fps)))

    def pause() -> int:
        return max(1, int(round(rng.uniform(low, high) * fps)))

    actions, queue, frame = [], [], pause()
    while True:
        if not queue:
            queue = [labels[i] for i in rng.permutation(len(labels))]
        label = queue.pop()
        num_frames = int(rng.integers(ACTION_FRAMES[0], ACTION_FRAMES[1] + 1))
        if frame + num_frames + shortest > total:
            break
        actions.append(
            dict(label=label, start=frame, stop=frame + num_frames,
                 seed=hash_seed(video_seed, 'action', len(actions))))
        frame += num_frames + pause()
    if not actions:
        raise ValueError(f'A long video of {duration_s:g} s cannot hold an '
                         f'action between two pauses: give at least '
                         f'{shortest_long_s(pause_s):g} s')
    return dict(fps=fps, width=width, height=height, num_frames=total,
                noise_seed=hash_seed(video_seed, 'pauses'), actions=actions)


def long_frames(video: dict) -> Iterator[np.ndarray]:
    """The frames of a long video, one at a time (memory for a few).

    Args:
        video (dict): From :func:`plan_long`.

    Yields:
        np.ndarray: ``(height, width, 3)`` BGR frames, ``num_frames`` of
        them.
    """
    width, height = video['width'], video['height']
    rng = np.random.default_rng(video['noise_seed'])
    frame, last = 0, None  # last: the last clean frame of an action
    for action in video['actions']:
        obj, motion = action['label'][2:].split(' ', 1)
        action_rng = np.random.default_rng(action['seed'])
        clean = _clean_frames(obj, motion, action_rng, width, height,
                              action['stop'] - action['start'])
        first = next(clean)
        for _ in range(frame, action['start']):
            yield _noisy(first, rng)
        # The action's noise comes from its own seed, as a clip's does.
        yield _noisy(first, action_rng)
        last = first
        for last in clean:
            yield _noisy(last, action_rng)
        frame = action['stop']
    for _ in range(frame, video['num_frames']):
        yield _noisy(last, rng)


def ground_truth(video: dict, name: str) -> dict:
    """The ground truth of one long video, as written to the JSON file.

    Args:
        video (dict): From :func:`plan_long`.
        name (str): The video's path relative to the JSON file.

    Returns:
        dict: ``video``, ``fps``, ``num_frames``, ``duration_s``,
        ``width``, ``height`` and ``segments``: ``{label, start_s, end_s,
        start_frame, end_frame}`` per action in time order (``end``
        excluded: the action's last frame is ``end_frame - 1``).
    """
    fps = video['fps']
    return dict(
        video=name,
        fps=fps,
        num_frames=video['num_frames'],
        duration_s=video['num_frames'] / fps,
        width=video['width'],
        height=video['height'],
        segments=[
            dict(label=a['label'], start_s=a['start'] / fps,
                 end_s=a['stop'] / fps, start_frame=a['start'],
                 end_frame=a['stop']) for a in video['actions']
        ])


def _long_job(args: Tuple[str, dict, str]) -> None:
    path, video, codec = args
    write_clip(path, long_frames(video), video['fps'], codec)


def generate_long(out: str,
                  count: int,
                  minutes: float = 3.0,
                  seed: int = 0,
                  heldout: Sequence[Tuple[str, str]] = DEFAULT_HELDOUT,
                  pause_s: Tuple[float, float] = DEFAULT_PAUSE_S,
                  workers: int = 2,
                  progress: bool = True,
                  size_scale: float = 1.0) -> Dict[str, int]:
    """Write long videos of actions in sequence, with their ground truth.

    Writes under ``out``::

        trained/long_0000.mp4 ...    # the trained classes in sequence
        zeroshot/long_0000.mp4 ...   # the held-out classes in sequence
        ground_truth_trained.json    # per video: {label, start_s, end_s}
        ground_truth_zeroshot.json
        label_map.txt, label_map_zeroshot.txt, label_map_all.txt

    A ground-truth file holds ``set``, ``labels`` (the queries to ask),
    ``label_map`` (the file of those labels), ``seed``, ``size_scale``,
    ``pause_s`` and ``videos`` (:func:`ground_truth` of each, paths
    relative to the file). Videos are written frame by frame and every
    file through a temporary file, so an interrupted run leaves no partial
    file; the ground truth is written after its videos.

    Args:
        out (str): Output folder.
        count (int): Videos per set.
        minutes (float): Length of each video.
        seed (int): Seed; the same seed writes the same videos.
        heldout (list[tuple]): (object, motion) pairs held out of training.
        pause_s (tuple[float, float]): Shortest and longest pause between
            two actions, seconds.
        workers (int): Processes that render videos.
        progress (bool): Show a progress bar.
        size_scale (float): Factor on the frame sizes, as for the clips.

    Returns:
        dict: Number of videos per set.
    """
    if count < 1:
        raise ValueError(f'count must be at least 1, got {count}')
    if not 0 < minutes <= 600:
        raise ValueError(f'minutes must be in (0, 600], got {minutes}')
    if not 0 < size_scale <= 8:
        raise ValueError(f'size_scale must be in (0, 8], got {size_scale}')
    from tqdm import tqdm
    seen, held = split_classes(heldout)
    label_maps = dict(trained='label_map.txt',
                      zeroshot='label_map_zeroshot.txt')
    plans, jobs = {}, []
    codec = None
    for set_name, labels in zip(LONG_SETS, (seen, held)):
        videos = [
            plan_long(seed, set_name, labels, i, minutes * 60, pause_s,
                      size_scale) for i in range(count)
        ]
        plans[set_name] = (labels, videos)
        codec = codec or video_codec()
        os.makedirs(osp.join(out, set_name), exist_ok=True)
        jobs += [(osp.join(out, set_name, f'long_{i:04d}.mp4'), video,
                  codec) for i, video in enumerate(videos)]
    for name, labels in (('label_map.txt', seen),
                         ('label_map_zeroshot.txt', held),
                         ('label_map_all.txt', seen + held)):
        write_lines(osp.join(out, name), labels)
    bar = tqdm(total=len(jobs), desc=f'long videos ({codec})',
               unit='video', disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            for _ in pool.map(_long_job, jobs):
                bar.update()
    else:
        for job in jobs:
            _long_job(job)
            bar.update()
    bar.close()
    for set_name, (labels, videos) in plans.items():
        document = dict(
            set=set_name,
            labels=labels,
            label_map=label_maps[set_name],
            seed=seed,
            size_scale=size_scale,
            pause_s=list(pause_s),
            videos=[
                ground_truth(video, f'{set_name}/long_{i:04d}.mp4')
                for i, video in enumerate(videos)
            ])
        with safe_io.atomic_write(
                osp.join(out, f'ground_truth_{set_name}.json'), 'w') as f:
            json.dump(document, f, indent=1)
            f.write('\n')
    return {name: len(videos) for name, (_, videos) in plans.items()}


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
        default=len(os.sched_getaffinity(0)),
        help='processes rendering videos (the CPUs this process may use)')
    parser.add_argument(
        '--size-scale',
        type=float,
        default=1.0,
        help='factor on the frame sizes (1.0: 96x96 to 160x120)')
    long = parser.add_argument_group(
        'long videos (instead of the dataset; docs/moments_accuracy.md)')
    long.add_argument(
        '--long',
        type=int,
        default=0,
        metavar='N',
        help='write N long videos of the trained classes and N of the '
        'held-out ones, each action as a clip with still pauses between '
        'them, and their ground truth, under OUT/long (0: the dataset)')
    long.add_argument(
        '--long-minutes',
        type=float,
        default=3.0,
        metavar='M',
        help='length of each long video in minutes')
    long.add_argument(
        '--long-pause',
        type=float,
        nargs=2,
        default=list(DEFAULT_PAUSE_S),
        metavar=('MIN', 'MAX'),
        help='shortest and longest pause between two actions, seconds')
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
    if args.long:
        return _main_long(args)
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


def _main_long(args: argparse.Namespace) -> int:
    """``--long``: check its options, write the long videos."""
    low, high = args.long_pause
    problem = None
    if args.long < 0:
        problem = f'--long must be at least 0, got {args.long}'
    elif not 0 < args.long_minutes <= 600:
        problem = f'--long-minutes must be in (0, 600], got ' \
            f'{args.long_minutes:g}'
    elif not 0 < low <= high:
        problem = f'--long-pause MIN MAX must be 0 < MIN <= MAX, got ' \
            f'{low:g} {high:g}'
    elif args.long_minutes * 60 < shortest_long_s((low, high)):
        problem = f'--long-minutes {args.long_minutes:g} cannot hold an ' \
            'action between two pauses: give at least ' \
            f'{shortest_long_s((low, high)) / 60:.3g}'
    if problem:
        print(problem, file=sys.stderr)
        return 2
    out = osp.join(args.out, 'long')
    counts = generate_long(out, args.long, args.long_minutes, args.seed,
                           pause_s=(low, high), workers=args.workers,
                           size_scale=args.size_scale)
    print(f'Wrote {counts} long videos of {args.long_minutes:g} min and '
          f'their ground truth to {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
