"""A labelled action-video dataset whose classes only motion tells
(``tools/generate_videos.py``): one object (square, circle, triangle) of
random colour, size and start on a random textured background, moving in
one of eight ways; the class is "a <object> <motion>". Some pairs are held
out of training, for zero-shot tests. :func:`generate` writes::

    videos/{train,val,test,zeroshot}/*.mp4
    {train,val,test,zeroshot}_list_videos.txt   # "<file> <label index>"
    label_map.txt            # classes of train/val/test, one per line
    label_map_zeroshot.txt   # held-out classes (the zeroshot list's labels)
    label_map_all.txt        # seen then held-out classes
    zeroshot_all_list_videos.txt  # the zeroshot videos, labels of _all
    manifest.json            # size and SHA-256 of every file above

:func:`generate_long` writes long videos of actions in sequence with still
pauses between them, and the times of every action::

    {trained,zeroshot}/long_0000.mp4 ...
    ground_truth_{trained,zeroshot}.json  # {label, start_s, end_s} ...
    label_map.txt, label_map_zeroshot.txt, label_map_all.txt
    manifest.json            # size and SHA-256 of every file above

Every file is written whole or not at all; the same seed writes the same
bytes. No torch.
"""
import contextlib
import hashlib
import json
import math
import os
import os.path as osp
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple

import cv2
import numpy as np

from ..utils.paths import file_identity
from ..utils.safe_io import atomic_write
from ..utils.video_writer import write_opencv, write_pyav

OBJECTS = ('square', 'circle', 'triangle')
MOTIONS = ('moving left', 'moving right', 'moving up', 'moving down',
           'growing', 'shrinking', 'rotating clockwise',
           'rotating counterclockwise')
# A rotating circle looks still: those pairs are not classes.
INVALID = {('circle', 'rotating clockwise'),
           ('circle', 'rotating counterclockwise')}
#: Held out of train/val/test (each object and motion is trained with
#: other partners).
DEFAULT_HELDOUT = (('triangle', 'growing'), ('square', 'moving up'),
                   ('circle', 'shrinking'))
SIZES = ((96, 96), (128, 96), (112, 112), (160, 120))
FRAME_RATES = (10, 15, 24, 25)
#: Frames of one action (a clip), fewest and most.
ACTION_FRAMES = (20, 40)
#: Seconds of stillness between two actions, shortest and longest.
DEFAULT_PAUSE_S = (1.0, 5.0)
#: What :func:`video_codec` gives for H.264 written by PyAV.
PYAV_H264 = 'h264'
#: Size and SHA-256 of the set's other files, written last.
MANIFEST = 'manifest.json'
#: The ground truth's ``generator`` (refused without its manifest).
GENERATOR = 'generate_videos.py'
LABEL_MAPS = ('label_map.txt', 'label_map_zeroshot.txt', 'label_map_all.txt')


def split_classes(heldout: Sequence[Tuple[str, str]]
                  ) -> Tuple[List[str], List[str]]:
    """The trained and the held-out class names."""
    pairs = [(o, m) for o in OBJECTS for m in MOTIONS
             if (o, m) not in INVALID]
    unknown = set(heldout) - set(pairs)
    if unknown:
        raise ValueError(f'Held-out pairs {sorted(unknown)} are not classes')
    seen = [f'a {o} {m}' for o, m in pairs if (o, m) not in heldout]
    held = [f'a {o} {m}' for o, m in pairs if (o, m) in heldout]
    return seen, held


def frame_size(size: Tuple[int, int], scale: float) -> Tuple[int, int]:
    """``size`` times ``scale``, rounded to even sides, at least 32."""
    return tuple(max(32, 2 * int(round(side * scale / 2))) for side in size)


def _check_scale(size_scale: float) -> None:
    if not 0 < size_scale <= 8:
        raise ValueError(f'size_scale must be in (0, 8], got {size_scale}')


def render(obj: str, motion: str, seed: int,
           size_scale: float = 1.0) -> Tuple[List[np.ndarray], int]:
    """The BGR frames and frame rate of one clip, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    width, height = frame_size(SIZES[rng.integers(len(SIZES))], size_scale)
    num_frames = int(rng.integers(ACTION_FRAMES[0], ACTION_FRAMES[1] + 1))
    fps = int(rng.choice(FRAME_RATES))
    return list(scene_frames(obj, motion, rng, width, height,
                             num_frames)), fps


def scene_frames(obj: str, motion: str, rng: np.random.Generator,
                 width: int, height: int,
                 num_frames: int) -> Iterator[np.ndarray]:
    """The BGR frames of one action, one at a time: ``rng`` draws the
    scene, then each frame's noise."""
    return (_noisy(clean, rng) for clean in _clean_frames(
        obj, motion, rng, width, height, num_frames))


def _clean_frames(obj: str, motion: str, rng: np.random.Generator,
                  width: int, height: int,
                  num_frames: int) -> Iterator[np.ndarray]:
    """:func:`scene_frames` before the noise."""
    # A smooth random texture, so that the object is not on flat colour.
    low = rng.integers(0, 256, (height // 16 + 2, width // 16 + 2, 3))
    background = (cv2.resize(low.astype(np.uint8), (width, height),
                             interpolation=cv2.INTER_CUBIC) *
                  rng.uniform(0.3, 0.7)).astype(np.uint8)
    color = tuple(int(c) for c in rng.integers(100, 256, 3))
    short = min(width, height)
    radius = rng.uniform(0.12, 0.2) * short
    travel = rng.uniform(0.3, 0.55) * short  # total path of a moving object
    scale_end = rng.uniform(1.8, 2.5)  # size ratio of growing/shrinking
    # At most a quarter turn: a square looks the same after 90 degrees, so
    # a larger turn between sampled frames would look like one backwards.
    turn = rng.uniform(0.3, 0.5) * math.pi
    direction = dict(left=(-1, 0), right=(1, 0), up=(0, -1), down=(0, 1))
    step = np.array(direction.get(motion.split()[-1], (0, 0)),
                    float) * travel
    # Place the start so that the whole path stays inside the frame.
    largest = radius * (scale_end if motion == 'growing' else 1) * 1.2
    low = np.array([largest, largest]) - np.minimum(step, 0)
    high = np.array([width, height]) - largest - np.maximum(step, 0)
    start = rng.uniform(low, np.maximum(low + 1, high))
    angle0 = rng.uniform(0, 2 * math.pi)
    spin = dict(clockwise=turn, counterclockwise=-turn)  # y points down
    corners = 4 if obj == 'square' else 3
    for i in range(num_frames):
        t = i / (num_frames - 1)
        center = start + step * t
        r = radius * {'growing': scale_end**t,
                      'shrinking': scale_end**(1 - t)}.get(motion, 1)
        frame = background.copy()
        if obj == 'circle':  # 4 fractional bits: sub-pixel positions
            cv2.circle(frame, tuple(np.round(center * 16).astype(int)),
                       int(round(r * 16)), color, -1, cv2.LINE_AA, 4)
        else:
            angle = angle0 + spin.get(motion.split()[-1], 0) * t
            phases = angle + np.arange(corners) * 2 * math.pi / corners
            points = center + r * 1.25 * np.stack(
                [np.cos(phases), np.sin(phases)], 1)
            cv2.fillPoly(frame, [np.round(points * 16).astype(np.int32)],
                         color, cv2.LINE_AA, 4)
        yield frame


def _noisy(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # int16, not int64: a third of the time, same values
    noise = rng.integers(-6, 7, frame.shape, dtype=np.int16)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def video_codec() -> str:
    """:data:`PYAV_H264` where PyAV has libx264, else OpenCV's ``'avc1'``
    where it can write it, else ``'mp4v'``."""
    try:
        import av
        av.codec.Codec('libx264', 'w')
        return PYAV_H264
    except Exception:  # no PyAV, or a build without libx264
        import tempfile
        with tempfile.TemporaryDirectory() as folder:
            return write_opencv(osp.join(folder, 'probe.mp4'),
                                [np.zeros((32, 32, 3), np.uint8)], 10,
                                ('avc1', 'mp4v'))[1]


def write_video(path: str, frames: Iterable[np.ndarray], fps: float,
                fourcc: str) -> None:
    """Write BGR frames with OpenCV's codec ``fourcc``, checked."""
    write_opencv(path, frames, fps, (fourcc, ))


def write_video_h264(path: str, frames: Iterable[np.ndarray], fps: int,
                     preset: str = 'medium', threads: int = 0) -> None:
    """Write BGR frames as H.264 (libx264, CRF 23, yuv420p), checked."""
    write_pyav(path, frames, fps, 'libx264', dict(preset=preset), threads)


def write_clip(path: str, frames: Iterable[np.ndarray], fps: int,
               codec: str) -> None:
    """Write a generated video with the codec of :func:`video_codec`
    (libx264 on one thread at ``ultrafast``: reproducible bytes)."""
    if codec == PYAV_H264:
        write_video_h264(path, frames, fps, preset='ultrafast', threads=1)
    else:
        write_video(path, frames, fps, codec)


def write_lines(path: str, lines: Sequence[str]) -> None:
    with atomic_write(path, 'w') as f:
        f.writelines(f'{line}\n' for line in lines)


def _write_json(path: str, document: dict) -> None:
    with atomic_write(path, 'w') as f:
        json.dump(document, f, indent=1)
        f.write('\n')


def _write_job(job: tuple) -> None:
    path, codec, spec = job
    if isinstance(spec, dict):  # a long video's plan
        write_clip(path, long_frames(spec), spec['fps'], codec)
    else:
        write_clip(path, *render(*spec), codec)


def _write_set(out: str, jobs: List[tuple], desc: str, workers: int,
               progress: bool, lists: Dict[str, List[str]],
               documents: Dict[str, dict], chunksize: int = 1) -> None:
    """Write ``lists`` and the label maps, the videos of ``jobs`` (``(path,
    spec)``, their folders made), then ``documents`` (JSON), and
    :data:`MANIFEST` of them all last: an interrupted run leaves no
    document or manifest beside videos they do not describe."""
    for name in (MANIFEST, *documents):
        with contextlib.suppress(FileNotFoundError):
            os.remove(osp.join(out, name))
    seen, held = split_classes(DEFAULT_HELDOUT)
    maps = dict(zip(LABEL_MAPS, (seen, held, seen + held)))
    for name, lines in {**lists, **maps}.items():
        write_lines(osp.join(out, name), lines)
    from tqdm import tqdm
    codec = video_codec()
    pool = (ProcessPoolExecutor(min(workers, len(jobs)))
            if workers > 1 and len(jobs) > 1 else None)
    tasks = [(path, codec, spec) for path, spec in jobs]
    with pool or contextlib.nullcontext():
        done = (pool.map(_write_job, tasks, chunksize=chunksize) if pool
                else map(_write_job, tasks))
        for _ in tqdm(done, total=len(jobs), desc=f'{desc} ({codec})',
                      unit='video', mininterval=2, disable=not progress):
            pass
    for name, document in documents.items():
        _write_json(osp.join(out, name), document)
    names = [osp.relpath(path, out) for path, _ in jobs] + [
        *lists, *documents, *maps]
    _write_json(osp.join(out, MANIFEST), dict(files={
        name: file_identity(osp.join(out, name)) for name in names}))


def hash_seed(*parts) -> int:
    """A stable 63-bit seed (Python's hash() is salted per process)."""
    digest = hashlib.sha256('/'.join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], 'little') >> 1


def plan(seed: int, per_class: Dict[str, int]) -> Dict[str, list]:
    """``{split: [(file, object, motion, label, seed), ...]}`` for
    ``per_class`` videos of each class per split; the seeds derive from
    ``seed``."""
    seen, held = split_classes(DEFAULT_HELDOUT)
    return {
        split: [(f'{name[2:].replace(" ", "_")}_{k:04d}.mp4',
                 *name[2:].split(' ', 1), label,
                 hash_seed(seed, split, name, k))
                for label, name in enumerate(
                    held if split == 'zeroshot' else seen)
                for k in range(count)]
        for split, count in per_class.items()
    }


def generate(out: str, seed: int = 0, per_class: Dict[str, int] = None,
             workers: int = 2, progress: bool = True,
             size_scale: float = 1.0) -> Dict[str, int]:
    """Write the dataset of the module docstring into ``out``,
    :data:`MANIFEST` last, rendering in ``workers`` processes; returns the
    videos per split. ``per_class``: videos per class per split (by
    default 60 train, 10 val, 15 test, 20 zeroshot), the classes of
    :data:`DEFAULT_HELDOUT` held out; ``size_scale``: factor on the frame
    sizes (96x96 to 160x120)."""
    _check_scale(size_scale)
    per_class = per_class or dict(train=60, val=10, test=15, zeroshot=20)
    splits = plan(seed, per_class)
    seen = split_classes(DEFAULT_HELDOUT)[0]
    lists = {f'{split}_list_videos.txt': [
        f'{name} {label}' for name, *_, label, _s in specs]
        for split, specs in splits.items()}
    # The harder zero-shot protocol: held-out videos scored against every
    # class, so that the trained ones compete with the unseen ones.
    lists['zeroshot_all_list_videos.txt'] = [
        f'{name} {label + len(seen)}'
        for name, *_, label, _s in splits.get('zeroshot', [])]
    jobs = []
    for split, specs in splits.items():
        os.makedirs(osp.join(out, 'videos', split), exist_ok=True)
        jobs += [(osp.join(out, 'videos', split, name),
                  (obj, motion, s, size_scale))
                 for name, obj, motion, _, s in specs]
    _write_set(out, jobs, 'videos', workers, progress, lists, {}, 8)
    return {split: len(specs) for split, specs in splits.items()}


def shortest_long_s(pause_s: Tuple[float, float]) -> float:
    """Seconds of the shortest long video that surely holds one action."""
    low, high = pause_s
    slowest = min(FRAME_RATES)
    return high + ACTION_FRAMES[1] / slowest + low + 2 / slowest


def plan_long(seed: int, set_name: str, labels: Sequence[str], index: int,
              duration_s: float,
              pause_s: Tuple[float, float] = DEFAULT_PAUSE_S,
              size_scale: float = 1.0) -> dict:
    """Everything about video ``index`` of ``set_name``, decided before
    any frame is drawn: ``fps``, ``width``, ``height``, ``num_frames``,
    ``noise_seed`` and ``actions`` (``label``, ``start``, ``stop``
    excluded, ``seed``). ValueError for pauses (seconds) not ``0 <
    shortest <= longest``, or a ``duration_s`` that cannot hold one action
    between two pauses.

    Pauses alternate with actions, each drawn as a clip of its class; a
    pause holds the next action's first frame (the last pause the last
    action's last frame), only the noise changing. The labels come in
    rounds, each a random order of all ``labels``.
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
    """The ``num_frames`` BGR frames of a long video of :func:`plan_long`,
    one at a time."""
    rng = np.random.default_rng(video['noise_seed'])
    frame, last = 0, None  # last: the last clean frame of an action
    for action in video['actions']:
        obj, motion = action['label'][2:].split(' ', 1)
        action_rng = np.random.default_rng(action['seed'])
        clean = _clean_frames(obj, motion, action_rng, video['width'],
                              video['height'],
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
    """The ground truth of a long video (:func:`plan_long`): ``fps``,
    ``num_frames``, ``duration_s``, size and ``segments`` (``{label,
    start_s, end_s, start_frame, end_frame}``, ends excluded)."""
    fps = video['fps']
    return dict(
        video=name, fps=fps, num_frames=video['num_frames'],
        duration_s=video['num_frames'] / fps, width=video['width'],
        height=video['height'],
        segments=[dict(label=a['label'], start_s=a['start'] / fps,
                       end_s=a['stop'] / fps, start_frame=a['start'],
                       end_frame=a['stop']) for a in video['actions']])


def generate_long(out: str, count: int, minutes: float = 3.0, seed: int = 0,
                  pause_s: Tuple[float, float] = DEFAULT_PAUSE_S,
                  workers: int = 2, progress: bool = True,
                  size_scale: float = 1.0) -> Dict[str, int]:
    """Write ``count`` long videos per set of ``minutes`` each, with their
    ground truth (layout in the module docstring; other arguments as for
    :func:`generate` and :func:`plan_long`); returns the videos per set.

    A ground truth holds ``generator``, ``set``, ``labels`` (the queries),
    ``label_map``, ``seed``, ``size_scale``, ``pause_s`` and ``videos``
    (:func:`ground_truth` of each), written after the videos, the manifest
    last.
    """
    if count < 1:
        raise ValueError(f'count must be at least 1, got {count}')
    if not 0 < minutes <= 600:
        raise ValueError(f'minutes must be in (0, 600], got {minutes}')
    _check_scale(size_scale)
    seen, held = split_classes(DEFAULT_HELDOUT)
    sets = dict(trained=(seen, 'label_map.txt'),
                zeroshot=(held, 'label_map_zeroshot.txt'))
    plans = {name: [plan_long(seed, name, labels, i, minutes * 60, pause_s,
                              size_scale) for i in range(count)]
             for name, (labels, _) in sets.items()}
    jobs = []
    for name, videos in plans.items():
        os.makedirs(osp.join(out, name), exist_ok=True)
        jobs += [(osp.join(out, name, f'long_{i:04d}.mp4'), video)
                 for i, video in enumerate(videos)]
    documents = {f'ground_truth_{name}.json': dict(
        generator=GENERATOR, set=name, labels=labels, label_map=label_map,
        seed=seed, size_scale=size_scale, pause_s=list(pause_s),
        videos=[ground_truth(video, f'{name}/long_{i:04d}.mp4')
                for i, video in enumerate(plans[name])])
        for name, (labels, label_map) in sets.items()}
    _write_set(out, jobs, 'long videos', workers, progress, {}, documents)
    return {name: len(videos) for name, videos in plans.items()}
