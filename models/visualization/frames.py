"""Single frames of a video at given times, for thumbnails.

A time is that of the frame shown then, by the frames' presentation time
stamps (:func:`models.datasets.pyav_frames.frame_times`: variable frame
rates, MPEG-TS clocks that restart), decoded as the test pipeline decodes
it (PyAV, which seeks to the key frame before each frame where the
container's index allows, so an hours-long video is never decoded whole).
Where PyAV cannot index or decode the file, OpenCV seeks to frame
``time * fps``.

Only numpy, PyAV and OpenCV, imported inside the functions: importing
:mod:`models.visualization` stays light.
"""
import base64
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from ..utils.paths import special_file_kind

#: Longest side of a thumbnail, in pixels.
MAX_THUMBNAIL = 320

#: A seek past the last decodable frame (the container's frame count is
#: an estimate) steps back this many frames before giving up.
_STEP_BACK = 16


class FrameReadError(RuntimeError):
    """A video, or a frame of it, could not be read; the message names the
    file and what to do."""


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
    """The frame rate (25 when the container does not say) and frame
    count (0 when unknown) a video's container declares;
    :class:`FrameReadError` when the file is missing or cannot be
    opened."""
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
    """The frames shown at the given times, as RGB arrays no larger than
    ``max_side``.

    Args:
        video (str): The video file.
        times_s (list[float]): Times in seconds from the first frame, in
            any order; a time past the end gives the last frame.
        fps (float, optional): The frame rate the times refer to (the
            result document's) where OpenCV reads the frames; the
            container's when not given.
        num_frames (int, optional): The video's frame count (the result
            document's) where OpenCV reads the frames; the container's
            estimate when not given.
        max_side (int): Frames are scaled down (never up) so that neither
            side exceeds this. Defaults to :data:`MAX_THUMBNAIL`.

    Returns:
        list[numpy.ndarray]: One ``H x W x 3`` uint8 RGB frame per time, in
        the order of ``times_s``.

    Raises:
        FrameReadError: When the video cannot be opened, or no frame can
            be decoded at or shortly before one of the times.
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
        last = max(0, num_frames - 1) if num_frames else None
        wanted = {}
        for time_s in times_s:
            index = max(0, int(float(time_s) * fps))
            wanted[time_s] = index if last is None else min(index, last)
        frames = {}
        # Increasing order: each seek moves forward through the file.
        for index in sorted(set(wanted.values())):
            frames[index] = _read_near(capture, video, index, fps)
    finally:
        capture.release()
    return [_shrink(frames[wanted[t]], max_side) for t in times_s]


def _frames_by_time_stamps(video: str, times_s: Sequence[float]):
    """The frames shown at ``times_s`` by their time stamps, decoded with
    PyAV; None where PyAV cannot promise them (OpenCV reads them then)."""
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
    """The frame at ``index``, or the closest one before it within
    :data:`_STEP_BACK` frames (a container's frame count can promise more
    frames than the stream holds)."""
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


def _shrink(frame, max_side: int):
    import cv2
    height, width = frame.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return frame
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def jpeg_bytes(frame, quality: int = 82) -> bytes:
    """The bytes of an ``H x W x 3`` uint8 RGB frame encoded as JPEG of
    ``quality`` (0 to 100)."""
    import cv2
    ok, data = cv2.imencode('.jpg', cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f'OpenCV could not encode a {frame.shape} frame '
                         'as JPEG')
    return data.tobytes()


def data_uri(data: bytes, mime: str) -> str:
    """A ``data:<mime>;base64,...`` URI that embeds a file's bytes (of
    type ``mime``, e.g. ``'image/jpeg'``) in a page."""
    return f'data:{mime};base64,' + base64.b64encode(data).decode('ascii')
