"""Cached window features of videos, so that asking another question of a
video neither decodes nor embeds it again.

The cache is a file of :mod:`models.apis.feature_cache`'s format (magic,
refusal of files not ours, lock, merge, atomic rename), keyed by
:func:`window_cache_key`, then by the video's absolute path. Each entry
holds the video's version (a changed file is embedded again), its frame
count and rate, its windows and their features. A run adds its videos'
entries to those already there, also those another run wrote meanwhile.

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

#: Version of the window planning and streamed embedding
#: (:mod:`models.apis.windows`, :mod:`models.apis.window_stream`); bump it
#: when a change alters the windows or their features.
WINDOW_VERSION = 1


def default_window_cache_path(path: str) -> str:
    """Where the window features of a folder's or a video's videos are
    cached by default: :func:`cache_file_for` ``(path, 'moments')``."""
    return cache_file_for(path, 'moments')


def window_cache_key(identity: str,
                     window_s: Optional[float],
                     stride_s: Optional[float],
                     window_frames: Optional[int] = None) -> str:
    """The key of one model's window features at one window and stride
    (or at ``window_frames`` frames instead, the stride half of it):
    ``'windows<version>|<window>|<stride>|<model key>'``, or
    ``'windows<version>|frames<N>|<model key>'``."""
    size = (f'frames{int(window_frames)}' if window_frames is not None else
            f'{float(window_s)!r}|{float(stride_s)!r}')
    return f'windows{WINDOW_VERSION}|{size}|{model_key(identity)}'


@dataclass
class VideoWindows:
    """The windows of one video (as given): its frames and frame rate,
    ``(start_s, end_s)`` and ``(K, V, D)`` normalised features of each
    window, and, when computed, those of each window's middle frame held
    still (``subtract_still``)."""

    video: str
    num_frames: int
    fps: float
    windows: List[Tuple[float, float]]
    features: torch.Tensor
    stills: Optional[torch.Tensor] = None

    @property
    def duration_s(self) -> float:
        """The video's length in seconds: the end of the last window,
        which ends with the video (by its time stamps where the frame
        rate varies)."""
        if self.windows:
            return float(self.windows[-1][1])
        return self.num_frames / self.fps


class WindowCache:
    """The window features of one model, window and stride in a cache
    file.

    Args:
        path (str): The cache file; refused before any work when it holds
            anything but one of our caches (:class:`NotACacheError`), its
            folder created if missing.
        identity (str): The model's identity.
        window_s (float, optional): Window length in seconds.
        stride_s (float, optional): Stride in seconds.
        window_frames (int, optional): Window length in frames instead
            of ``window_s`` and ``stride_s`` (the stride half of it).
    """

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
        and its stills' features where ``stills``; None when not cached,
        changed since, or malformed."""
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
            # Timed by the frames' time stamps (a variable frame rate),
            # read again from the file, unchanged since (its version
            # matched); else planned otherwise: embed again.
            from models.apis.window_stream import varying_times
            plan.frame_times = varying_times(video, num_frames, fps)
            if plan.frame_times is None or times != plan.times:
                return None
        return VideoWindows(video, num_frames, fps, times, features, still)

    def add(self, stat: os.stat_result, windows: VideoWindows) -> None:
        """Remember a video's windows, for :meth:`save`. ``stat``: its
        ``os.stat`` taken before it was decoded (a file changed meanwhile
        is embedded again next time instead of being cached as current)."""
        entry = dict(
            **file_version(stat),
            num_frames=int(windows.num_frames),
            fps=float(windows.fps),
            windows=torch.tensor(windows.windows, dtype=torch.float64),
            features=windows.features.contiguous())
        if windows.stills is not None:
            # Beside the window features, in the same entry: a later
            # query with or without subtract_still costs no decoding.
            entry['stills'] = windows.stills.contiguous()
        self._new[osp.abspath(windows.video)] = entry

    def save(self) -> bool:
        """Write the new entries into the file, keeping every other entry;
        whether it was written (not with nothing new and nothing to
        rebuild; a failed write is a warning)."""
        if not self._new and not self._rebuild:
            return False
        saved = save_entries(self.path, self.key, self._new, merge=True)
        if saved:
            self._old.update(self._new)
            self._new, self._rebuild = {}, False
        return saved
