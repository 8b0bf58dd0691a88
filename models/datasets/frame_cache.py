"""Decode each video once: a uint8 cache of its frames on disk.

``CachedVideoInit`` decodes a video whole the first time (``VideoInit``
then ``VideoDecode`` of every frame: the same frames, bit for bit), keeps
them as one ``.npy`` file in ``$XDG_CACHE_HOME/actionclip/frames`` (else
``~/.cache/actionclip/frames``; nothing beside the videos), named after
the video's absolute path and version, and later reads that file;
``CachedVideoDecode`` picks the sampled frames out of it. Entries are
written whole or not at all. Delete the folder to free the space: ``n *
h * w * 3`` bytes per video.
"""
import functools
import hashlib
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmaction.datasets.transforms import DecordDecode
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log

from models.datasets.transforms import VideoDecode, VideoInit, video_path
from models.utils.paths import cache_home, file_version


_warned = []


class CachedFrames:
    """A video's ``(N, H, W, 3)`` uint8 RGB frames and rate, as a
    reader."""

    def __init__(self, frames: np.ndarray, fps: float):
        self.frames = frames
        self.fps = fps

    def __len__(self) -> int:
        return len(self.frames)


def default_cache_dir() -> str:
    """``frames`` in :func:`models.utils.paths.cache_home`."""
    return osp.join(cache_home(), 'frames')


def cache_file(cache_dir: str, filename: str) -> str:
    """A video's ``.npy`` entry, named after its absolute path and
    version."""
    path = video_path(filename)
    stat = os.stat(path)
    version = '\0'.join(str(v) for v in file_version(stat).values())
    key = f'{path}\0{version}'.encode()
    return osp.join(cache_dir,
                    hashlib.sha1(key).hexdigest()[:24] + '.npy')


def decode_whole(filename: str) -> Tuple[np.ndarray, float]:
    """Every frame of a video through ``VideoInit`` and ``VideoDecode``,
    and its frame rate."""
    results = VideoInit().transform(dict(filename=filename))
    fps = float(results['avg_fps'])
    results['frame_inds'] = np.arange(results['total_frames'])
    results = VideoDecode().transform(results)
    return np.stack(results['imgs']), fps


def load_or_decode(cache_dir: str, filename: str) -> CachedFrames:
    """A video's frames from the cache, decoded and stored the first
    time."""
    entry = cache_file(cache_dir, filename)
    try:
        # A read-only map: a sample's few frames are read, not the file.
        frames = np.load(entry, mmap_mode='r')
        fps = float(np.load(entry[:-4] + '.fps.npy'))
        return CachedFrames(frames, fps)
    except (OSError, ValueError, EOFError):
        pass  # missing, or cut short by a crash: decode again
    frames, fps = decode_whole(filename)
    try:
        _store(entry, frames, fps)
    except OSError as error:
        # The cache only saves decoding: the frames are right all the same
        if not _warned:  # said once per process
            _warned.append(
                f'The frame cache could not be written ({error}); videos '
                'are decoded again each time they are read: free space in '
                f'{cache_dir} or delete it')
            print_log(_warned[0], logger='current', level=30)
    return CachedFrames(frames, fps)


def _store(entry: str, frames: np.ndarray, fps: float) -> None:
    """Write a cache entry whole or not at all."""
    os.makedirs(osp.dirname(entry), exist_ok=True)
    # The frame rate first: an entry whose frames exist is complete. No
    # fsync (unlike safe_io.atomic_write): it doubles a write, and an entry
    # a crash loses is decoded again.
    for path, array in ((entry[:-4] + '.fps.npy', np.float64(fps)),
                        (entry, frames)):
        tmp = f'{path}.{os.getpid()}.tmp'
        try:
            with open(tmp, 'wb') as f:
                np.save(f, array)
            os.replace(tmp, path)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)


def _decode_one(cache_dir: str, filename: str) -> int:
    """Decode a video into the cache (in a DataLoader worker): 1, or 0
    where it fails (the pipeline meets the same error, as always)."""
    try:
        load_or_decode(cache_dir, filename)
    except Exception:
        return 0
    return 1


def fill(dataset, workers: int, rank: int = 0, world_size: int = 1) -> int:
    """Decode the videos of ``dataset`` (one whose pipeline has a
    :class:`CachedVideoInit`; any other is left alone) that its cache
    lacks, in ``workers`` processes (0: this one), every ``world_size``-th
    from ``rank``; returns how many were decoded."""
    transforms = getattr(getattr(dataset, 'pipeline', None), 'transforms',
                         [])
    inits = [t for t in transforms if isinstance(t, CachedVideoInit)]
    if not inits:
        return 0
    cache_dir = inits[0].cache_dir
    missing = []
    for i in range(rank, len(dataset), world_size):
        filename = dataset.get_data_info(i)['filename']
        try:
            if not osp.isfile(cache_file(cache_dir, filename)):
                missing.append(filename)
        except OSError:
            pass  # a missing video: the pipeline names it
    # Without batching, collate_fn works on each item, in the workers.
    loader = torch.utils.data.DataLoader(
        missing, batch_size=None, num_workers=workers,
        collate_fn=functools.partial(_decode_one, cache_dir))
    return sum(loader)


@TRANSFORMS.register_module()
class CachedVideoInit(BaseTransform):
    """``VideoInit`` whose frames come from the cache in ``cache_dir``
    (:func:`default_cache_dir` by default); follow it with
    ``SampleFrames`` and ``CachedVideoDecode``."""

    def __init__(self, cache_dir: Optional[str] = None) -> None:
        self.cache_dir = cache_dir or default_cache_dir()

    def transform(self, results: Dict) -> Dict:
        """Set ``video_reader``, ``total_frames`` and ``avg_fps``."""
        reader = load_or_decode(self.cache_dir, results['filename'])
        results.update(video_reader=reader, total_frames=len(reader),
                       avg_fps=reader.fps)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(cache_dir={self.cache_dir!r})'


@TRANSFORMS.register_module()
class CachedVideoDecode(DecordDecode):
    """``VideoDecode`` for ``CachedVideoInit``'s readers."""

    def __init__(self) -> None:
        super().__init__('accurate')

    def _decord_load_frames(self, container: CachedFrames,
                            frame_inds: np.ndarray) -> List[np.ndarray]:
        if not isinstance(container, CachedFrames):
            raise TypeError('CachedVideoDecode needs CachedVideoInit '
                            f'before it, got a {type(container).__name__}')
        return list(np.array(container.frames[np.asarray(frame_inds)]))
