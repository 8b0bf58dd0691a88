"""Where the windows of a video lie and which frames each one takes.

A video of ``F`` frames at ``fps`` (on average) is covered by windows of
``window_s`` seconds every ``stride_s`` seconds, both rounded to whole
frames: window ``k`` starts at frame ``k * stride``; when the last regular
window stops short of the end, one more window ending at the last frame is
added, so that all windows have one length (their scores compare) and the
whole video is covered. A video shorter than one window is one window. A
window's times are those of its frames (their presentation time stamps
where the frame rate varies).

A window's frames are those the model's test pipeline samples over a clip
of that many frames: its sampling transforms (``SampleFrames`` with
``test_mode=True``) run on ``total_frames=window`` and
``start_index=<first frame>``, exactly as on a video cut to the window.

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

#: Shortest default window, in seconds.
MIN_DEFAULT_WINDOW_S = 1.0


def default_window(num_frames: int) -> Tuple[float, float]:
    """The window and stride used when none are given.

    A window of ``num_frames / 2`` seconds samples two frames a second,
    close to what the models saw in training (the synthetic actions: 4
    frames over 1 to 4 seconds; Kinetics: 8 frames over 10 seconds, but
    its actions last the whole clip), short enough to locate an action and
    long enough to hold one; never below one second, where the frames of a
    window would be nearly the same picture and the motion that tells
    actions apart would be lost. The stride of half a window covers every
    moment by two windows and places segment boundaries to half a window.
    Returns ``(window_s, stride_s)`` for a model of ``num_frames`` frames a
    clip.
    """
    if num_frames < 1:
        raise ValueError(f'num_frames must be >= 1, got {num_frames}')
    window = max(MIN_DEFAULT_WINDOW_S, num_frames / 2)
    return window, window / 2


def check_window(window_s: float, stride_s: float) -> None:
    """Refuse, with a ValueError, a window or stride (seconds) that is not
    positive and finite, or a stride longer than the window (parts of the
    video would be in no window)."""
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
    """Refuse a window length in frames that is not an integer of at least
    2 (the stride is half of it) with a ValueError."""
    if isinstance(window_frames, bool) or not isinstance(
            window_frames, (int, np.integer)) or window_frames < 2:
        raise ValueError(f'window_frames must be an integer >= 2, got '
                         f'{window_frames!r}')


def frame_window(window_frames: int, fps: float) -> Tuple[float, float]:
    """``(window_s, stride_s)`` of windows of ``window_frames`` frames every
    ``window_frames // 2`` frames at ``fps``; :func:`plan_windows` rounds
    them back to those frame counts."""
    check_window_frames(window_frames)
    return window_frames / fps, max(1, window_frames // 2) / fps


def still_sample(sample: dict) -> dict:
    """A window's sample (sampler results) with every frame replaced by its
    middle sampled frame (``frame_inds[len // 2]``): the window's scene
    held still, sampled and shaped as the window is. That frame is one the
    window decodes anyway, so the still costs no more decoding (and it is
    the choice measured in docs/moments_accuracy.md)."""
    inds = np.asarray(sample['frame_inds'])
    return dict(sample,
                frame_inds=np.full_like(inds, inds[len(inds) // 2]))


class WindowSampler:
    """The sampling transforms of a test pipeline, run on one window:
    ``steps`` are the transforms between the video's opening
    (``VideoInit``) and its decoding (``VideoDecode``) that choose
    ``frame_inds`` (``SampleFrames`` ...)."""

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
        """Sample a window (first frame, frames, the video's ``avg_fps``)
        as the pipeline samples a clip of its length; returns the sampler's
        results (``frame_inds``: frames of the video, ``clip_len`` ...)."""
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
    """The windows of one video.

    Attributes:
        num_frames (int): Frames of the video.
        fps (float): Its frame rate.
        window_s (float): Window length asked for, in seconds.
        stride_s (float): Stride asked for, in seconds.
        starts (list[int]): First frame of each window.
        lengths (list[int]): Frames of each window.
        samples (list[dict]): The sampler's results per window, what the
            decoding step receives.
        frame_times (np.ndarray, optional): Each frame's presentation
            time, then the video's end (``num_frames + 1`` seconds), where
            they are not ``frame / fps`` (variable frame rate).
    """

    num_frames: int
    fps: float
    window_s: float
    stride_s: float
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
        """``(start_s, end_s)`` of each window: the time of its first frame
        and of the frame after its last (the video's end for the last)."""
        return [(self._time(s), self._time(s + n))
                for s, n in zip(self.starts, self.lengths)]

    @property
    def frame_indices(self) -> List[np.ndarray]:
        """The video frames each window takes, in the model's order."""
        return [sample['frame_inds'] for sample in self.samples]


def window_frames(window_s: float, stride_s: float,
                  fps: float) -> Tuple[int, int]:
    """Window and stride in whole frames (at least one each); a window
    longer than any video (``1e308`` s, whose frame count is infinite) is
    one over the whole video, as any window longer than the video is."""
    # 2**53 frames outlast any video (and are exact in a float).
    window, stride = (max(1, int(round(min(seconds * fps, 2.0**53))))
                      for seconds in (window_s, stride_s))
    return window, stride


def plan_windows(num_frames: int,
                 fps: float,
                 window_s: float,
                 stride_s: float,
                 sampler: Optional[WindowSampler] = None,
                 frame_times: Optional[np.ndarray] = None) -> WindowPlan:
    """The windows of a video and the frames of each (module docstring).

    Args:
        num_frames (int): Frames of the video.
        fps (float): Its frame rate.
        window_s (float): Window length in seconds.
        stride_s (float): Stride in seconds.
        sampler (WindowSampler, optional): The model's frame sampling;
            without it, ``samples`` is empty (times only).
        frame_times (np.ndarray, optional): The frames' times
            (:attr:`WindowPlan.frame_times`) to time the windows by.

    Returns:
        WindowPlan: The plan.

    Raises:
        ValueError: No frames, no usable frame rate, or a window or stride
            refused by :func:`check_window`.
    """
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
    return WindowPlan(num_frames, float(fps), float(window_s),
                      float(stride_s), starts, [window] * len(starts),
                      samples, frame_times)
