"""Where the windows of a video lie and which frames each one takes.

Windows of ``window_s`` every ``stride_s`` seconds, rounded to whole frames,
start at frame ``k * stride``; one more window ending at the last frame is
added where the regular ones stop short, so all windows have one length and
cover the video (a video shorter than a window is one window). A window's
frames are those the test pipeline's sampling steps (``SampleFrames`` with
``test_mode=True``) give on ``total_frames=window``,
``start_index=<first frame>``: as on a video cut to the window.

Example:
    >>> sampler = WindowSampler([dict(type='SampleFrames', clip_len=1,
    ...                                num_clips=4, test_mode=True)])
    >>> plan = plan_windows(250, 25.0, 2.0, 1.0, sampler)
    >>> plan.times[:2], plan.frame_indices[0].tolist()
    ([(0.0, 2.0), (1.0, 3.0)], [6, 18, 31, 43])
"""
import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np


def default_window(num_frames: int) -> Tuple[float, float]:
    """``(window_s, stride_s)`` used when none are given: ``num_frames / 2``
    seconds (two frames a second, near what the models saw in training), at
    least 1 s (below it a window's frames are nearly one picture), and a
    stride of half a window (every moment in two windows)."""
    if num_frames < 1:
        raise ValueError(f'num_frames must be >= 1, got {num_frames}')
    window = max(1.0, num_frames / 2)
    return window, window / 2


def check_window(window_s: float, stride_s: float) -> None:
    """Refuse (ValueError) a window or stride that is not a positive finite
    number of seconds, or a stride longer than the window."""
    for name, value in (('window', window_s), ('stride', stride_s)):
        if not (isinstance(value, (int, float)) and math.isfinite(value)
                and value > 0):
            raise ValueError(f'The {name} must be a positive number of '
                             f'seconds, got {value!r}')
    if stride_s > window_s:
        raise ValueError(
            f'The stride ({stride_s:g} s) is longer than the window '
            f'({window_s:g} s): the video between windows would never be '
            'looked at; give a stride of at most the window')


def check_window_frames(window_frames: int) -> None:
    """Refuse (ValueError) a window in frames that is not an integer >= 2."""
    if isinstance(window_frames, bool) or not isinstance(
            window_frames, (int, np.integer)) or window_frames < 2:
        raise ValueError(f'window_frames must be an integer >= 2, got '
                         f'{window_frames!r}')


def frame_window(window_frames: int, fps: float) -> Tuple[float, float]:
    """``(window_s, stride_s)`` of ``window_frames`` frames every
    ``window_frames // 2`` at ``fps``."""
    check_window_frames(window_frames)
    return window_frames / fps, max(1, window_frames // 2) / fps


def still_sample(sample: dict) -> dict:
    """A window's sample with every frame replaced by its middle sampled
    frame: the scene held still, at no extra decoding."""
    inds = np.asarray(sample['frame_inds'])
    return dict(sample,
                frame_inds=np.full_like(inds, inds[len(inds) // 2]))


class WindowSampler:
    """The sampling ``steps`` of a test pipeline (those between
    ``VideoInit`` and ``VideoDecode``), run on one window."""

    def __init__(self, steps: Sequence[dict]):
        from mmengine.dataset import Compose
        from mmengine.registry import DefaultScope
        if not steps:
            raise ValueError('The test pipeline samples no frames (no '
                             'SampleFrames before its decoding step)')
        self.steps = [dict(step) for step in steps]
        with DefaultScope.overwrite_default_scope('mmaction'):
            self.compose = Compose(self.steps)

    def __call__(self, start: int, length: int, fps: float) -> dict:
        """The sampler's results (``frame_inds`` ...) for a window."""
        results = self.compose(
            dict(total_frames=length, start_index=start, avg_fps=fps,
                 modality='RGB'))
        if results is None or 'frame_inds' not in results:
            raise ValueError(f'The sampling steps {self.steps} gave no '
                             'frame_inds')
        results['frame_inds'] = np.asarray(results['frame_inds']).reshape(-1)
        return results


@dataclass
class WindowPlan:
    """The windows of one video: first frame and length of each, the
    sampler's results per window (``samples``), and ``frame_times``, each
    frame's time then the end, where they are not ``frame / fps``."""

    num_frames: int
    fps: float
    starts: List[int]
    lengths: List[int]
    samples: List[dict] = field(repr=False)
    frame_times: Optional[np.ndarray] = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.starts)

    def _time(self, frame: int) -> float:
        if self.frame_times is None:
            return frame / self.fps
        return float(self.frame_times[frame])

    @property
    def duration_s(self) -> float:
        """The video's length in seconds."""
        return self._time(self.num_frames)

    @property
    def times(self) -> List[Tuple[float, float]]:
        """``(start_s, end_s)`` of each window (end: its next frame's time)."""
        return [(self._time(s), self._time(s + n))
                for s, n in zip(self.starts, self.lengths)]

    @property
    def frame_indices(self) -> List[np.ndarray]:
        """The video frames each window takes, in the model's order."""
        return [sample['frame_inds'] for sample in self.samples]


def window_frames(window_s: float, stride_s: float,
                  fps: float) -> Tuple[int, int]:
    """Window and stride in whole frames, at least one each."""
    # 2**53 frames outlast any video (a 1e308 s window) and are exact.
    window, stride = (max(1, int(round(min(seconds * fps, 2.0**53))))
                      for seconds in (window_s, stride_s))
    return window, stride


def plan_windows(num_frames: int,
                 fps: float,
                 window_s: float,
                 stride_s: float,
                 sampler: Optional[WindowSampler] = None,
                 frame_times: Optional[np.ndarray] = None) -> WindowPlan:
    """The windows of a video and the frames of each (module docstring);
    without ``sampler``, times only. A ValueError for no frames, no usable
    frame rate, or a window refused by :func:`check_window`."""
    check_window(window_s, stride_s)
    if num_frames < 1:
        raise ValueError(f'The video has no frames (num_frames={num_frames})')
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f'The video has no usable frame rate ({fps!r})')
    if frame_times is not None and len(frame_times) != num_frames + 1:
        raise ValueError(f'{len(frame_times)} frame times for '
                         f'{num_frames} frames and the end')
    window, stride = window_frames(window_s, stride_s, fps)
    window = min(window, num_frames)
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    samples = [sampler(start, window, fps)
               for start in starts] if sampler else []
    return WindowPlan(num_frames, float(fps), starts,
                      [window] * len(starts), samples, frame_times)
