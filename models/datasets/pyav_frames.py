"""The sampled frames of a video, decoded with PyAV, skipping the frames
that no sampled frame needs (``skip_frame='NONREF'``, switched back before
each sampled frame's packet): the frames of decoding in order, bit for bit,
a third faster (docs/decoding.md).

Frames are numbered as decord numbers them (the packets in presentation
order, without those an MP4 edit list hides) and turned by the stream's
display rotation as decord turns them. Unlike decord's random access, it
seeks only in containers whose index it trusts (MP4/MOV, Matroska/WebM),
checks where each seek lands, and decodes other containers that reorder
frames (AVI with B-frames, MPEG-TS) in order from the start.

:class:`NotSupported` tells the caller to decode with decord instead;
:class:`CorruptVideo` that no decoder may take over.
"""
import bisect
import os
import threading
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: Containers whose index makes a seek land on the key frame asked for.
SEEKABLE_FORMATS = ('mov,mp4,m4a,3gp,3g2,mj2', 'matroska,webm')
#: Pixel formats whose RGB conversion was checked to equal decord's
#: (10-bit formats differ by up to 52 levels).
PIXEL_FORMATS = ('yuv420p', 'yuvj420p', 'yuv444p', 'yuvj444p')


class NotSupported(Exception):
    """This module cannot promise decord's frames; decode with decord."""


class CorruptVideo(Exception):
    """Damaged data where the frames are decoded: decord would repeat its
    last good frame, so no decoder may take over."""


def _import_av():
    try:
        import av
    except ImportError as error:  # pragma: no cover - av is a requirement
        raise ImportError(
            "VideoDecode(backend='pyav') needs PyAV: pip install av "
            '(requirements/runtime.txt pins the version)') from error
    return av


def _index(container, stream) -> Dict:
    """The index of :func:`video_index`."""
    stamps, keys, timed = [], [], []  # stamps in decoding order
    count, reordered, hidden, empty = 0, False, 0, -1
    for packet in container.demux(stream):
        if not packet.size:
            # PyAV's end-of-stream marker, or a stored empty packet
            empty += 1
            continue
        if packet.is_keyframe and packet.pts is not None:
            keys.append(packet.pts)
        if packet.is_discard:  # hidden by an edit list: a key frame only
            hidden += 1
            continue
        count += 1
        timed.append((packet.pts, packet.dts, packet.duration))
        if packet.pts is None:
            reordered = True  # unknown: the in-order path is safe
        else:
            stamps.append(packet.pts)
    shown = sorted(stamps)
    return dict(stamps=shown, keys=sorted(keys), count=count,
                reordered=reordered or shown != stamps, hidden=hidden,
                empty=max(empty, 0),
                repeated=len(set(stamps)) != len(stamps),
                times=_times(timed, stream.time_base))


def _times(packets: List[tuple], time_base) -> Optional[List[float]]:
    """Seconds from the first frame of each shown frame, then the end of
    the last (None where a time stamp is missing), from ``(pts, dts,
    duration)`` per packet in decoding order. Where decoding time stamps go
    back (a restarting clock), the frames after the jump follow those
    before it, as players play them."""
    if not packets or any(pts is None for pts, _, _ in packets):
        return None
    parts, last_dts = [[]], None
    for pts, dts, duration in packets:
        if dts is not None:
            if last_dts is not None and dts < last_dts:
                parts.append([])
            last_dts = dts
        parts[-1].append((pts, duration or 0))
    ticks: List[int] = []
    end = 0
    for part in parts:
        part.sort()
        # The last frame lasts as the container says, else as the one before
        step = part[-1][1] or (part[-1][0] - part[-2][0]
                               if len(part) > 1 else 0)
        offset = end - part[0][0]
        ticks += [pts + offset for pts, _ in part]
        end = ticks[-1] + step
    ticks.append(end)
    # One division per value: the same float as frame / fps
    return [t * time_base.numerator / time_base.denominator for t in ticks]


#: Indexes kept, by file version: one demuxing per video (all dropped
#: when full; a sample's index is kept from VideoInit to VideoDecode).
INDEXES_KEPT = 64
_indexes: Dict[tuple, Dict] = {}


def _file_version(filename: str) -> tuple:
    """A file version's key: name, size, change time and inode."""
    stat = os.stat(filename)
    return filename, stat.st_size, stat.st_ctime_ns, stat.st_ino


def _check_count(index: Dict, num_frames: Optional[int]) -> None:
    if num_frames is not None and index['count'] != num_frames:
        raise NotSupported(f"{index['count']} frames, decord counts "
                           f'{num_frames}')


class OpenVideo:
    """A video opened with PyAV once: its :func:`video_index` and the open
    container :meth:`read` decodes from (``VideoInit`` hands it to
    ``VideoDecode``: one opening per sample). Raises as
    :func:`video_index`."""

    def __init__(self, filename: str):
        key = _file_version(filename)
        self.filename = filename
        self.container = _import_av().open(filename)
        try:
            if len(self.container.streams.video) != 1:
                raise NotSupported('not exactly one video stream')
            self.stream = self.container.streams.video[0]
            index = _indexes.get(key)
            self.unread = index is not None
            if index is None:
                index = _index(self.container, self.stream)
                if len(_indexes) >= INDEXES_KEPT:
                    _indexes.clear()
                _indexes[key] = index
            self.index = index  # shared: do not change it
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> 'OpenVideo':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        if self.container is not None:
            self.container.close()
            self.container = None

    def _seek_problem(self) -> str:
        """Why the frames cannot be found by seeking, or ``''``."""
        index = self.index
        if self.container.format.name not in SEEKABLE_FORMATS:
            return f'container {self.container.format.name}'
        if index['repeated'] or len(index['stamps']) != index['count']:
            return 'missing or repeated time stamps'
        return '' if index['keys'] else 'no key frame'

    def decord_counts(self) -> Optional[Tuple[int, float]]:
        """``VideoInit``'s ``(total_frames, avg_fps)`` without decord, or
        None where only decord can tell them (a container whose index is
        not trusted, empty packets, missing or repeated time stamps)."""
        index, rate = self.index, self.stream.average_rate
        if (self._seek_problem() or index['empty'] or not index['count']
                or not rate):
            return None
        return index['count'], float(rate)

    def read(self, frame_inds: Sequence[int],
             num_frames: Optional[int] = None, skip_unneeded: bool = True,
             stats: Optional[Dict[str, int]] = None) -> List[np.ndarray]:
        """:func:`read_frames` from this container (close it after)."""
        indices = [int(i) for i in frame_inds]
        stats = {} if stats is None else stats
        index, container = self.index, self.container
        _check_count(index, num_frames)
        if indices and (min(indices) < 0 or max(indices) >= index['count']):
            raise NotSupported('a frame index out of range')
        problem = self._seek_problem()
        in_order = problem.startswith('container')
        if in_order and not index['reordered']:
            raise NotSupported(f"{problem}, frames in order: decord's "
                               'seeking is right there')
        if problem and not in_order:
            raise NotSupported(problem)
        if not indices:
            return []
        if in_order:
            # From the start: this container where it was not read yet.
            container, self.container = ((container, None) if self.unread
                                         else (None, container))
            reader = InOrderReader(self.filename, index['count'], container)
            try:
                unique = sorted(set(indices))
                decoded = dict(zip(unique, reader.read(unique)))
            finally:
                reader.close()
            stats.update(decoded=reader.decoded, seeks=0)
            return [decoded[i] for i in indices]
        stamps = index['stamps']
        wanted = {stamps[i] for i in indices}
        decoded = _decode(container, self.stream, sorted(wanted),
                          index['keys'], skip_unneeded, stats)
        return [decoded[stamps[i]] for i in indices]


def video_index(filename: str) -> Dict:
    """The frames of a video as PyAV demuxes them, without decoding: a dict
    (shared: do not change it) of ``count`` (frames shown), ``hidden``
    (packets an edit list hides), ``empty`` (packets without data),
    ``times`` (:func:`_times`), ``stamps`` (sorted), ``keys`` (key frames'
    stamps), ``reordered`` (decoding order is not presentation order, or a
    stamp is missing) and ``repeated``. :class:`NotSupported` for not
    exactly one video stream; OSError or ``av.error.FFmpegError`` where
    the file cannot be read."""
    index = _indexes.get(_file_version(filename))
    if index is None:
        with OpenVideo(filename) as video:
            index = video.index
    return index


def frame_times(filename: str) -> Optional[np.ndarray]:
    """Each frame's time in seconds from the first, then the end of the
    last: ``(F + 1,)`` float64, for videos whose times are not ``frame /
    fps``; None where PyAV cannot index the file or a stamp is missing."""
    try:
        times = video_index(filename)['times']
    except Exception:  # NotSupported, or PyAV cannot read it
        return None
    return None if times is None else np.asarray(times, np.float64)


def read_frames(filename: str, frame_inds: Sequence[int],
                num_frames: Optional[int] = None, skip_unneeded: bool = True,
                stats: Optional[Dict[str, int]] = None) -> List[np.ndarray]:
    """Decode the frames at ``frame_inds`` (any order, repeats allowed) as
    ``(H, W, 3)`` uint8 RGB arrays, one per index; raises
    :class:`NotSupported` (decode with decord instead; also for a count
    other than decord's ``num_frames``), :class:`CorruptVideo` or
    ``av.error.FFmpegError``. ``skip_unneeded=False`` decodes every frame
    from the key frame on (the plain computation) instead of dropping
    those no other frame refers to unless asked for; ``stats`` is filled
    with ``decoded`` (frames the decoder returned) and ``seeks``."""
    with OpenVideo(filename) as video:
        return video.read(frame_inds, num_frames, skip_unneeded, stats)


def _to_rgb(frame) -> np.ndarray:
    """The frame as RGB, turned as decord turns it."""
    if frame.format.name not in PIXEL_FORMATS:
        raise NotSupported(f'pixel format {frame.format.name}')
    if frame.is_corrupt:
        raise CorruptVideo(f'frame at time stamp {frame.pts} is damaged')
    image = convert(frame, format='rgb24')
    turns = display_turns(frame)
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


_converters = threading.local()


def convert(frame, **options) -> np.ndarray:
    """``frame.reformat(**options).to_ndarray()``, bit for bit, through
    one converter per thread, which keeps FFmpeg's scaler (costlier to set
    up than a small frame's decoding), scaling on the calling thread (a
    forked worker would hang on inherited scaler threads)."""
    converter = getattr(_converters, 'value', None)
    if converter is None:
        from av.video.reformatter import VideoReformatter
        converter = _converters.value = VideoReformatter()
    return converter.reformat(frame, threads=1, **options).to_ndarray()


def display_turns(frame) -> int:
    """Quarter turns (``np.rot90``) that show ``frame`` as players do;
    NotSupported for a rotation that is no multiple of 90 degrees."""
    rotation = frame.rotation  # degrees counter-clockwise
    if rotation % 90:
        raise NotSupported(f'a display rotation of {rotation} degrees')
    return (rotation // 90) % 4


def _decode(container, stream, goals: List[int], keys: List[int],
            skip_unneeded: bool,
            stats: Dict[str, int]) -> Dict[int, np.ndarray]:
    """Decode the frames stamped ``goals`` (ascending), seeking ahead."""
    wanted = set(goals)
    context = stream.codec_context
    context.thread_count = 1  # one decoding process per core
    frames: Dict[int, np.ndarray] = {}
    stats.update(decoded=0, seeks=0)
    packets = None
    decoded_up_to = None  # the last key frame decoded from
    for goal in goals:
        if goal in frames:
            continue
        position = bisect.bisect_right(keys, goal)
        if not position:
            raise NotSupported('a frame before the first key frame')
        key = keys[position - 1]
        if packets is None or key > decoded_up_to:
            container.seek(key, stream=stream, backward=True)
            context.flush_buffers()
            packets = container.demux(stream)
            decoded_up_to = key
            first = True
            stats['seeks'] += 1
        for packet in packets:
            if packet.size and first:
                if packet.pts != key or not packet.is_keyframe:
                    raise NotSupported('a seek did not land on the key '
                                       'frame')
                first = False
            if packet.size and packet.is_keyframe:
                decoded_up_to = max(decoded_up_to, packet.pts)
            if skip_unneeded:
                context.skip_frame = ('DEFAULT' if packet.pts in wanted
                                      else 'NONREF')
            try:  # a size-0 packet flushes the decoder at the end
                frames_out = context.decode(packet if packet.size else None)
            except _import_av().error.InvalidDataError as error:
                raise CorruptVideo(str(error)) from error
            for frame in frames_out:
                stats['decoded'] += 1
                if frame.pts in wanted and frame.pts not in frames:
                    frames[frame.pts] = _to_rgb(frame)
            if goal in frames:
                break
        if goal not in frames:
            raise NotSupported('the decoder did not return a sampled frame')
    return frames


class InOrderReader:
    """A video's ``num_frames`` frames (:meth:`open` counts them) decoded
    in one forward pass (frame i is the i-th decoded; never a seek or a
    skip), for containers :func:`read_frames` does not seek in and for
    readers of ascending chunks; ``container``: the video opened and not
    read yet, decoded first (the reader closes it)."""

    def __init__(self, filename: str, num_frames: int,
                 container: Optional[object] = None):
        self._av = _import_av()
        self.filename = filename
        self.num_frames = num_frames
        self.decoded = 0  # frames the decoder returned, over all passes
        self._container = None
        self._open(container)

    @classmethod
    def open(cls, filename: str,
             num_frames: Optional[int] = None) -> 'InOrderReader':
        """A reader of ``filename`` whose frames were counted;
        :class:`NotSupported` for not one video stream or a count other
        than decord's ``num_frames``."""
        index = video_index(filename)
        _check_count(index, num_frames)
        return cls(filename, index['count'])

    def _open(self, container: Optional[object] = None) -> None:
        self.close()
        self._container = container or self._av.open(self.filename)
        stream = self._container.streams.video[0]
        stream.codec_context.thread_count = 1
        self._frames = self._container.decode(stream)
        self.position = 0  # the number of the next frame decoded
        self._last: Optional[np.ndarray] = None  # frame position - 1

    def read(self, indices: Sequence[int]) -> List[np.ndarray]:
        """``(H, W, 3)`` uint8 RGB frames, best asked for ascending (going
        back reopens the file); :class:`CorruptVideo` also for fewer
        frames than counted."""
        out = []
        for index in (int(i) for i in indices):
            if not 0 <= index < self.num_frames:
                raise NotSupported(f'frame {index} of {self.num_frames}')
            if index < self.position - 1 or (index == self.position - 1
                                             and self._last is None):
                self._open()
            while self.position <= index:
                try:
                    frame = next(self._frames, None)
                except self._av.error.InvalidDataError as error:
                    raise CorruptVideo(str(error)) from error
                if frame is None:
                    # damaged data the decoder dropped
                    raise CorruptVideo(
                        f'the decoder returned {self.position} of '
                        f'{self.num_frames} frames')
                self.decoded += 1
                self.position += 1
                self._last = (_to_rgb(frame)
                              if self.position - 1 == index else None)
            out.append(self._last.copy())
        return out

    def close(self) -> None:
        """Release the file."""
        if self._container is not None:
            self._container.close()
            self._container = None
