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
from typing import Dict, List, Optional, Tuple

import torch

from models.apis.feature_cache import (cache_file_for, check_cache_path,
                                       load_cache, model_key, save_entries)
from models.apis.windows import frame_window, plan_windows
from models.utils.paths import file_version

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
        """The video's length in seconds (the last window's end)."""
        if self.windows:
            return float(self.windows[-1][1])
        return self.num_frames / self.fps


class WindowCache:
    """The window features of one model (``identity``), window and stride
    (or ``window_frames``) in the cache file ``path``, which is refused at
    once (:class:`NotACacheError`) when it is not one of our caches."""

    def __init__(self,
                 path: str,
                 identity: str,
                 window_s: Optional[float],
                 stride_s: Optional[float],
                 window_frames: Optional[int] = None):
        self.path = check_cache_path(path)
        self.window_frames = window_frames
        self.window_s = None if window_frames else float(window_s)
        self.stride_s = None if window_frames else float(stride_s)
        self.key = window_cache_key(identity, window_s, stride_s,
                                    window_frames)
        cache, self._rebuild = load_cache(self.path)
        old = cache['models'].get(self.key)
        self._old: Dict[str, dict] = old if isinstance(old, dict) else {}
        self._new: Dict[str, dict] = {}

    def lookup(self,
               video: str,
               stat: os.stat_result,
               stills: bool = False) -> Optional[VideoWindows]:
        """The cached windows of a video (``stat``: its ``os.stat`` now),
        with stills where asked; None when not cached, changed or
        malformed."""
        entry = self._old.get(osp.abspath(video))
        if not isinstance(entry, dict) or any(
                entry.get(k) != v for k, v in file_version(stat).items()):
            return None
        features, windows = entry.get('features'), entry.get('windows')
        num_frames, fps = entry.get('num_frames'), entry.get('fps')
        if not (isinstance(features, torch.Tensor)
                and isinstance(windows, torch.Tensor)
                and isinstance(num_frames, int) and isinstance(fps, float)
                and features.dim() == 3 and windows.dim() == 2
                and len(features) == len(windows)
                and torch.isfinite(features).all()):
            return None
        still = entry.get('stills')
        if still is not None and not (
                isinstance(still, torch.Tensor)
                and still.shape == features.shape
                and torch.isfinite(still).all()):
            still = None
        if stills and still is None:
            return None
        try:
            window_s, stride_s = (frame_window(self.window_frames, fps)
                                  if self.window_frames else
                                  (self.window_s, self.stride_s))
            plan = plan_windows(num_frames, fps, window_s, stride_s)
        except ValueError:
            return None
        times = [tuple(t) for t in windows.tolist()]
        if times != plan.times:
            # A variable frame rate: timed by the frames' time stamps.
            from models.apis.window_stream import varying_times
            plan.frame_times = varying_times(video, num_frames, fps)
            if plan.frame_times is None or times != plan.times:
                return None
        return VideoWindows(video, num_frames, fps, times, features, still)

    def add(self, stat: os.stat_result, windows: VideoWindows) -> None:
        """Remember a video's windows for :meth:`save`; ``stat`` is taken
        before decoding, so a file changed meanwhile is not current."""
        entry = dict(
            **file_version(stat),
            num_frames=int(windows.num_frames),
            fps=float(windows.fps),
            windows=torch.tensor(windows.windows, dtype=torch.float64),
            features=windows.features.contiguous())
        if windows.stills is not None:
            entry['stills'] = windows.stills.contiguous()
        self._new[osp.abspath(windows.video)] = entry

    def save(self) -> bool:
        """Merge the new entries into the file; whether it was written (a
        failed write is a warning)."""
        if not self._new and not self._rebuild:
            return False
        saved = save_entries(self.path, self.key, self._new, merge=True)
        if saved:
            self._old.update(self._new)
            self._new, self._rebuild = {}, False
        return saved
