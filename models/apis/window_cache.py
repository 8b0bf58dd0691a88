"""Cached window features of videos, so that asking another question of a
video neither decodes nor embeds it again.

A file of :mod:`models.apis.feature_cache`'s format, keyed by
:func:`window_cache_key`, then by the video's absolute path; each entry
holds the video's version (a changed file is embedded again), frame count
and rate, windows and features, merged with what other runs wrote.

Example:
    >>> cache = WindowCache('clips.actionclip_moments.pt', scorer.identity,
    ...                     2.0, 1.0)
    >>> cached = cache.lookup('clips/a.mp4', os.stat('clips/a.mp4'))
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from models.apis.feature_cache import EntryCache, cache_file_for, model_key

#: Bump when a change to windows.py or window_stream.py alters the
#: windows or their features.
WINDOW_VERSION = 1


def default_window_cache_path(path: str) -> str:
    """The default window cache of a folder or a video."""
    return cache_file_for(path, 'moments')


def window_cache_key(identity: str,
                     window_s: Optional[float],
                     stride_s: Optional[float],
                     window_frames: Optional[int] = None) -> str:
    """``'windows<version>|<window>|<stride>|<model key>'``, or with
    ``window_frames``, ``'windows<version>|frames<N>|<model key>'``."""
    size = (f'frames{int(window_frames)}' if window_frames is not None else
            f'{float(window_s)!r}|{float(stride_s)!r}')
    return f'windows{WINDOW_VERSION}|{size}|{model_key(identity)}'


@dataclass
class VideoWindows:
    """The windows of one video: ``(start_s, end_s)`` and ``(K, V, D)``
    normalised features of each, and of each one's still (when asked)."""

    video: str
    num_frames: int
    fps: float
    windows: List[Tuple[float, float]]
    features: torch.Tensor
    stills: Optional[torch.Tensor] = None

    @property
    def duration_s(self) -> float:
        """The video's length in seconds (the last window's end: the
        windows cover the video)."""
        return float(self.windows[-1][1])


class WindowCache(EntryCache):
    """The window features of one model (``identity``), window and stride
    (or ``window_frames``) in the cache file ``path``, which is refused at
    once (:class:`NotACacheError`) when it is not one of our caches."""

    def __init__(self,
                 path: str,
                 identity: str,
                 window_s: Optional[float],
                 stride_s: Optional[float],
                 window_frames: Optional[int] = None):
        super().__init__(path, window_cache_key(identity, window_s, stride_s,
                                                window_frames))

    def lookup(self,
               video: str,
               stat: os.stat_result,
               stills: bool = False) -> Optional[VideoWindows]:
        """The cached windows of a video (``stat``: its ``os.stat`` now),
        with stills where asked; None when not cached or changed."""
        entry = self.current(osp.abspath(video), stat)
        if entry is None or (stills and entry.get('stills') is None):
            return None
        return VideoWindows(video, entry['num_frames'], entry['fps'],
                            [tuple(t) for t in entry['windows'].tolist()],
                            entry['features'], entry.get('stills'))

    def add(self, stat: os.stat_result, windows: VideoWindows) -> None:
        """Remember a video's windows for :meth:`save` (``stat``: as
        :meth:`put`'s)."""
        stills = {} if windows.stills is None else dict(
            stills=windows.stills.contiguous())
        self.put(osp.abspath(windows.video), stat,
                 num_frames=int(windows.num_frames), fps=float(windows.fps),
                 windows=torch.tensor(windows.windows, dtype=torch.float64),
                 features=windows.features.contiguous(), **stills)
