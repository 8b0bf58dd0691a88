"""Single frames of a video at given times, for thumbnails.

A time is that of the frame shown then, by the presentation time stamps,
decoded with PyAV by seeking (as the test pipeline decodes); where PyAV
cannot index or decode the file, OpenCV seeks to frame ``time * fps``.
numpy, PyAV and OpenCV are imported inside the functions.
"""
import base64
import math
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from ..utils.paths import special_file_kind

MAX_THUMBNAIL = 320

#: Frames a seek past the last decodable one steps back before giving up.
_STEP_BACK = 16


class FrameReadError(RuntimeError):
    """A video or frame could not be read; the message names the file."""


def _open(video: str):
    import cv2
    kind = special_file_kind(video)
    if kind is not None:  # never opened: a FIFO would block
        raise FrameReadError(f'Cannot read frames of video {video!r}: it is '
                             f'{kind}, not a regular file')
    if not osp.isfile(video):
        raise FrameReadError(
            f'Cannot read frames of video {video!r}: the file does not '
            'exist (moved or deleted since it was scored?)')
    capture = cv2.VideoCapture(video)
    if not capture.isOpened():
        raise FrameReadError(
            f'Cannot read frames of video {video!r}: OpenCV cannot open '
            'it (truncated, corrupt or not a video); check that it plays')
    return capture


def video_rate_and_length(video: str) -> Tuple[float, int]:
    """The container's frame rate (25 when unknown) and frame count (0
    when unknown); :class:`FrameReadError` when it cannot be opened."""
    import cv2
    capture = _open(video)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    finally:
        capture.release()
    fps = fps if fps and fps > 0 and fps == fps else 25.0
    count = int(count) if count and count > 0 and count == count else 0
    return float(fps), count


def read_frames_at(video: str,
                   times_s: Sequence[float],
                   fps: Optional[float] = None,
                   num_frames: Optional[int] = None,
                   max_side: int = MAX_THUMBNAIL) -> List:
    """The ``H x W x 3`` uint8 RGB frames shown at ``times_s`` (seconds
    from the first frame, any order; past the end: the last frame), scaled
    down (never up) to ``max_side``. ``fps`` and ``num_frames`` (default:
    the container's) serve where OpenCV reads.

    Raises:
        FrameReadError: When the video cannot be opened, or no frame can
            be decoded at or shortly before a time.
    """
    import cv2
    for time_s in times_s:
        if time_s != time_s:  # NaN
            raise FrameReadError(
                f'Cannot read a frame of video {video!r} at time '
                f'{time_s}: the time is not a number')
    frames = _frames_by_time_stamps(video, times_s)
    if frames is not None:
        return [_shrink(frame, max_side) for frame in frames]
    capture = _open(video)
    try:
        if not fps:
            fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        if not num_frames:
            num_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        last = max(0, num_frames - 1) if num_frames else math.inf
        wanted = {t: min(max(0, int(float(t) * fps)), last) for t in times_s}
        # Increasing order: each seek moves forward through the file.
        frames = {index: _read_near(capture, video, index, fps)
                  for index in sorted(set(wanted.values()))}
    finally:
        capture.release()
    return [_shrink(frames[wanted[t]], max_side) for t in times_s]


def _frames_by_time_stamps(video: str, times_s: Sequence[float]):
    """PyAV's frames at ``times_s`` by time stamps; None where it cannot."""
    import numpy as np
    if not osp.isfile(video):
        return None  # OpenCV's path names the problem
    try:
        from models.datasets.pyav_frames import (CorruptVideo, read_frames,
                                                 video_index)
        index = video_index(video)
    except Exception:  # no PyAV, or it cannot read the file
        return None
    if index['times'] is None or not index['count']:
        return None
    starts = np.asarray(index['times'][:-1])
    wanted = [
        int(min(index['count'] - 1,
                max(0, np.searchsorted(starts, float(t), 'right') - 1)))
        for t in times_s
    ]
    try:
        return read_frames(video, wanted)
    except CorruptVideo as error:
        raise FrameReadError(
            f'Cannot decode the frames of video {video!r}: it is corrupt '
            f'({" ".join(str(error).split())[:160]}); check that it plays, '
            'or copy it again') from error
    except Exception:  # NotSupported: OpenCV seeks instead
        return None


def _read_near(capture, video: str, index: int, fps: float):
    """The frame at ``index``, or the closest within :data:`_STEP_BACK`
    before it (a container's count may promise more)."""
    import cv2
    for candidate in range(index, max(-1, index - _STEP_BACK - 1), -1):
        capture.set(cv2.CAP_PROP_POS_FRAMES, candidate)
        ok, frame = capture.read()
        if ok and frame is not None:
            return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    raise FrameReadError(
        f'Cannot decode the frame at {index / fps:.2f} s (frame {index}) '
        f'of video {video!r}: it is truncated or corrupt there; check '
        'that it plays, or copy it again')


def fit_size(width: int, height: int, max_side: int) -> Tuple[int, int]:
    """``(width, height)`` scaled down (never up) to ``max_side``."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _shrink(frame, max_side: int):
    import cv2
    size = fit_size(frame.shape[1], frame.shape[0], max_side)
    if size == frame.shape[1::-1]:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def jpeg_bytes(frame, quality: int = 82) -> bytes:
    """An ``H x W x 3`` uint8 RGB frame as JPEG bytes."""
    import cv2
    ok, data = cv2.imencode('.jpg', cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f'OpenCV could not encode a {frame.shape} frame '
                         'as JPEG')
    return data.tobytes()


def data_uri(data: bytes, mime: str) -> str:
    """A ``data:<mime>;base64,...`` URI of ``data``."""
    return f'data:{mime};base64,' + base64.b64encode(data).decode('ascii')
