"""Writing video files whole and checked, or not at all: frames go to a
temporary file (:func:`.safe_io.atomic_path`) whose frames are counted
once closed (OpenCV's ``VideoWriter`` hides write errors). No room raises
a one-line :class:`VideoWriteError`. Standard library at import.
"""
import contextlib
import os
import sys
from typing import Iterable, Iterator, Optional, Sequence, Tuple

from .safe_io import NO_ROOM_ERRNOS, atomic_path


class VideoWriteError(OSError):
    """A video not written whole; the one-line message names the file."""


class NoFramesError(ValueError):
    """No frame was given to write."""


def explain(error: OSError, path: str) -> OSError:
    """``error``, or a one-line :class:`VideoWriteError` where it says no
    room was left to write ``path``."""
    if error.errno not in NO_ROOM_ERRNOS:
        return error
    return VideoWriteError(f'No space left on device: {path!r} was not '
                           'written (the previous file, if any, is kept)')


def count_frames(path: str) -> int:
    """The packets of a video's first video stream; 0 when unreadable."""
    import av
    try:
        with av.open(path) as container:
            return sum(1 for p in container.demux(video=0) if p.size)
    except (OSError, ValueError, av.error.FFmpegError):
        return 0


def _check(tmp: str, count: int, path: str) -> None:
    found = count_frames(tmp)
    if found == count:
        return
    try:  # a full disk shows when the file is extended by hand
        with open(tmp, 'ab') as f:
            f.write(bytes(1 << 16))
            f.flush()
            os.fsync(f.fileno())
    except OSError as error:
        raise explain(error, path) from None
    raise VideoWriteError(f'{path!r} was not written: {found} of {count} '
                          'frames could be read back')


@contextlib.contextmanager
def _checked(path: str) -> Iterator[str]:
    """A temporary name for ``path``; write errors become one line."""
    try:
        with atomic_path(path, keep_ext=True) as tmp:
            yield tmp
    except OSError as error:
        raise explain(error, path) from None


def write_pyav(path: str, frames: Iterable, fps: float,
               codec: str = 'libx264', options: Optional[dict] = None,
               threads: int = 0) -> int:
    """Write ``(H, W, 3)`` BGR frames of one size, even sides, with PyAV
    (yuv420p), one in memory at a time; ``options`` go to the encoder
    ``codec``, ``threads`` 0 lets it choose. Returns the frames written."""
    import av
    count = 0
    with _checked(path) as tmp:
        with av.open(tmp, 'w') as container:
            stream = None
            for frame in frames:
                if stream is None:  # the size is the first frame's
                    stream = container.add_stream(codec, rate=fps,
                                                  options=options or {})
                    stream.height, stream.width = frame.shape[:2]
                    stream.pix_fmt = 'yuv420p'
                    stream.thread_count = threads
                container.mux(stream.encode(
                    av.VideoFrame.from_ndarray(frame, format='bgr24')))
                count += 1
            if stream is None:
                raise NoFramesError(f'No frames to write to {path!r}')
            container.mux(stream.encode())
        _check(tmp, count, path)
    return count


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """Silence fd 2, where OpenCV's FFmpeg reports codecs it lacks."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def write_opencv(path: str, frames: Iterable, fps: float,
                 fourccs: Sequence[str] = ('mp4v', ),
                 quiet: bool = True) -> Tuple[int, str]:
    """Write BGR frames with OpenCV's ``VideoWriter``, one frame in memory
    at a time, with the first of ``fourccs`` it can open (``quiet`` mutes
    FFmpeg's and OpenCV's messages): ``(frames written, codec used)``."""
    import cv2
    count, writer, used = 0, None, None
    level = cv2.utils.logging.getLogLevel()
    with _checked(path) as tmp:
        try:
            if quiet:  # a frame it fails to write: counted below instead
                cv2.utils.logging.setLogLevel(
                    cv2.utils.logging.LOG_LEVEL_ERROR)
            for frame in frames:
                if writer is None:  # the size is the first frame's
                    with (_quiet_fd2() if quiet else
                          contextlib.nullcontext()):
                        for used in fourccs:
                            writer = cv2.VideoWriter(
                                tmp, cv2.VideoWriter_fourcc(*used), fps,
                                frame.shape[1::-1])
                            if writer.isOpened():
                                break
                            writer.release()
                        else:
                            raise VideoWriteError(
                                f'OpenCV cannot write {path!r} with any of '
                                f'{", ".join(fourccs)}')
                writer.write(frame)
                count += 1
        finally:
            if writer is not None:
                writer.release()
            cv2.utils.logging.setLogLevel(level)
        if not count:
            raise NoFramesError(f'No frames to write to {path!r}')
        _check(tmp, count, path)
    return count, used
