"""Video-reading transforms that do not lose a long run to one bad file.

``VideoInit`` / ``VideoDecode`` are drop-in replacements for MMAction2's
``DecordInit`` / ``DecordDecode``: decord first, OpenCV where decord fails,
and errors that name the file. ``VideoDecode`` decodes with PyAV by
default (below), as decord's random access reads wrong frames in some
videos.

``VideoInit`` opens files on disk by path, where ``DecordInit`` hands decord
the file's bytes: decord's in-memory reader lets FFmpeg seek past the end of
the bytes and then copies from beyond them, which kills the process
(SIGSEGV) on truncated AVI, Matroska and WebM files, with decord 0.6 and
decord2 3.4 alike; by path, FFmpeg's own file reader bounds every read
(``docs/decoding.md`` has the counts).

The fallback is needed with decord2 3.4 (FFmpeg 8.1) too: decord fails to
copy the frames of videos of some widths, and which widths depends on the
CPU (on an AVX-512 Xeon 16, 24, 32, 48, 96 and 144 pixels;
``docs/decoding.md``). ``get_batch`` then raises, and a single frame comes
back with its padded rows taken for channels: :func:`check_decord_frames`
sends both to OpenCV. Which FFmpeg each reader uses:
:mod:`models.datasets.decoder_info`.

``VideoDecode(backend='pyav')`` decodes with PyAV, skipping the frames that
no sampled frame needs (:mod:`models.datasets.pyav_frames`): the frames
of decoding in order, a third faster; decord wherever it cannot promise
them, and a :class:`VideoReadError` naming the file where the video is
damaged mid-stream (decord would repeat its last good frame).

An MP4, MOV, Matroska or WebM file on disk is opened once: ``VideoInit``
opens it with PyAV, whose index gives decord's frame count and rate, and
``VideoDecode`` decodes from that opening; decord opens it only where
something needs decord (``backend='cpu'``, ``mode='efficient'``, a video
PyAV cannot promise the frames of). Other containers and storage backends
are opened by decord first, as ``DecordInit`` opens them.
"""
import functools
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmaction.datasets.transforms import DecordDecode, DecordInit
from mmaction.registry import TRANSFORMS

from models.utils.paths import special_file_kind


class VideoReadError(RuntimeError):
    """A video file could not be decoded; the message names the file."""


def describe_read_error(filename: str, error: BaseException) -> str:
    """One message for every way a video can fail to load.

    Args:
        filename (str): The video.
        error (BaseException): What the decoder raised.

    Returns:
        str: The message, naming the file, the cause and what to do.
    """
    if isinstance(error, VideoReadError):
        return str(error)
    kind = special_file_kind(filename)
    if kind is not None:
        return f'Video file {filename!r} is {kind}, not a regular file'
    if not osp.isfile(filename):
        return (f'Video file {filename!r} does not exist; check the path '
                'and the data root in the config')
    if osp.getsize(filename) == 0:
        return (f'Video file {filename!r} is empty (0 bytes); copy or '
                'download it again')
    return (f'Cannot decode video {filename!r}: it is truncated, corrupt or '
            f'not a video ({type(error).__name__}: '
            f'{str(error).strip()[:200]}); check that it plays, or copy or '
            'download it again')


def corrupt_message(filename: str, error: BaseException) -> str:
    """The message for a video whose data is damaged mid-stream.

    Args:
        filename (str): The video.
        error (BaseException): What the decoder reported.

    Returns:
        str: One line naming the file.
    """
    cause = ' '.join(str(error).split())[:160]
    return (f'Video file {filename!r} is corrupt: the decoder met damaged '
            f'data ({cause}), and the frames from there on would be '
            'substitutes; copy or download it again')


def video_path(filename: str) -> str:
    """The file ``VideoInit`` opens for ``filename``: ``.mp4`` added where
    the name has no extension (as ``DecordInit`` does), made absolute, so
    that FFmpeg never takes it for a protocol ("concat:...",
    "subfile,...") as it would a relative name that starts with one.

    Args:
        filename (str): The video, as the annotation names it.

    Returns:
        str: The absolute path.
    """
    if osp.splitext(filename)[0] == filename:
        filename = filename + '.mp4'
    return osp.abspath(filename)


@functools.lru_cache(maxsize=4096)
def _opencv_rate_and_length(filename: str, size: int,
                            mtime_ns: int) -> Tuple[float, int]:
    """Frame rate and number of decodable frames, counted once per version
    of a file (its size and mtime are part of the key): every later sample
    of the video decodes it once instead of twice."""
    import cv2
    capture = cv2.VideoCapture(filename)
    if not capture.isOpened():
        raise VideoReadError(
            f'Cannot decode video {filename!r} with decord or OpenCV: '
            'it is truncated, corrupt or not a video; check that it '
            'plays, or copy or download it again')
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    # CAP_PROP_FRAME_COUNT is an estimate from the container; walking the
    # stream is the only count that holds for damaged files.
    num_frames = 0
    while capture.grab():
        num_frames += 1
    capture.release()
    if not num_frames:
        raise VideoReadError(
            f'Video file {filename!r} has no frame that decord or OpenCV '
            'can decode; check that it plays, or copy or download it again')
    return fps, num_frames


class _OpenCVFrames:
    """Frames of a video read with OpenCV, as RGB arrays, decoding only up
    to the last frame asked for and keeping only the frames asked for (a
    long high-resolution video does not fit in memory whole)."""

    def __init__(self, filename: str):
        try:
            stat = os.stat(filename)
            version = (stat.st_size, stat.st_mtime_ns)
        except OSError:  # OpenCV names the problem below
            version = (-1, -1)
        self.filename = filename
        self.fps, self.num_frames = _opencv_rate_and_length(
            filename, *version)

    def __len__(self) -> int:
        return self.num_frames

    def get_batch(self, frame_inds: Sequence[int]) -> List[np.ndarray]:
        import cv2
        indices = [int(i) for i in frame_inds]
        if max(indices) >= self.num_frames:
            # Frames decord counts but OpenCV cannot decode: the data is
            # damaged there; the last frame in their place would be a
            # substitute.
            raise VideoReadError(
                f'Cannot decode frames {max(indices)} and before of video '
                f'{self.filename!r}: OpenCV decodes only its first '
                f'{self.num_frames} frames, it is truncated or corrupt; '
                'copy or download it again')
        wanted = set(indices)
        frames = {}
        capture = cv2.VideoCapture(self.filename)
        for index in range(max(indices) + 1):
            if not capture.grab():
                break
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok:
                    frames[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        capture.release()
        if len(frames) < len(wanted):
            raise VideoReadError(
                f'Cannot decode frames {sorted(wanted - set(frames))} of '
                f'video {self.filename!r}: it is truncated or corrupt; copy '
                'or download it again')
        return [frames[i] for i in indices]


class DecordCopyError(RuntimeError):
    """decord decoded a frame but returned it in a buffer of the wrong
    size: the frames it gives are not the video's."""


def check_decord_frames(frames: Sequence[np.ndarray]) -> List[np.ndarray]:
    """decord's frames, checked to be ``(H, W, 3)`` RGB images of one size.

    On some CPUs decord's frame copy fails for some widths: ``get_batch``
    raises ("DECORDArrayCopyFromTo: The size must exactly match"), while
    a single frame (``reader[i]``, ``next()``, what ``mode='efficient'``
    reads) comes back with its padded rows taken for channels, e.g.
    ``(64, 96, 4)`` for a 96x64 video. Both must go to the fallback
    reader, never on into the pipeline.

    Args:
        frames (list[np.ndarray]): What decord gave.

    Returns:
        list[np.ndarray]: ``frames``.

    Raises:
        DecordCopyError: A frame is not such an image.
    """
    frames = list(frames)
    shapes = {np.shape(frame) for frame in frames}
    if any(len(shape) != 3 or shape[2] != 3 for shape in shapes) or len(
            shapes) > 1:
        raise DecordCopyError(
            f'decord returned frames of shape {sorted(shapes)}, not '
            '(height, width, 3)')
    return frames


@TRANSFORMS.register_module()
class VideoInit(DecordInit):
    """``DecordInit`` that opens files on disk by path, with PyAV where
    that tells decord's frame count and rate (:class:`PyAVReader`), falls
    back to OpenCV and names the file on error.

    Args are those of MMAction2's ``DecordInit``.
    """

    def _get_video_reader(self, filename: str) -> object:
        """A decord reader of the video: by path on disk (see the module
        docstring for why), from the file's bytes through MMAction2's file
        client for the other storage backends.

        Args:
            filename (str): The video.

        Returns:
            decord.VideoReader: The reader.
        """
        if self.io_backend != 'disk':
            return super()._get_video_reader(filename)
        import decord
        return decord.VideoReader(
            video_path(filename), num_threads=self.num_threads)

    def transform(self, results: Dict) -> Dict:
        """Open the video and set ``total_frames`` and ``avg_fps``.

        Args:
            results (dict): The result dict, with ``filename``.

        Returns:
            dict: The result dict.
        """
        reader = self._pyav_reader(results['filename'])
        if reader is not None:
            results['video_reader'] = reader
            results['total_frames'], results['avg_fps'] = reader.counts
            return results
        return self._decord_transform(results)

    def _pyav_reader(self, filename: str) -> Optional['PyAVReader']:
        """The video opened with PyAV, where PyAV alone tells decord's
        frame count and rate (``OpenVideo.decord_counts``); None where
        decord must open it."""
        import importlib.util
        path = video_path(filename)
        if (self.io_backend != 'disk' or importlib.util.find_spec('av') is None
                or not osp.isfile(path)):
            return None
        from .pyav_frames import OpenVideo
        try:
            video = OpenVideo(path)
        except Exception:  # NotSupported, or PyAV cannot read it
            return None
        counts = video.decord_counts()
        if counts is None:
            video.close()
            return None
        return PyAVReader(path, video, counts, self.num_threads)

    def _decord_transform(self, results: Dict) -> Dict:
        """``transform`` with decord: its count and rate (the frames an
        edit list hides left out), or OpenCV's where it fails."""
        filename = results['filename']
        try:
            results = super().transform(results)
        except Exception as error:
            if not osp.isfile(filename) or osp.getsize(filename) == 0:
                raise VideoReadError(describe_read_error(filename,
                                                         error)) from error
        else:
            results['total_frames'] = _shown_frames(
                filename, results['total_frames'])
            return results
        reader = _OpenCVFrames(filename)
        results['video_reader'] = reader
        results['total_frames'] = len(reader)
        results['avg_fps'] = reader.fps
        return results


class PyAVReader:
    """The reader ``VideoInit`` hands on for a video PyAV opened: the
    open :class:`~models.datasets.pyav_frames.OpenVideo` that
    ``VideoDecode(backend='pyav')`` decodes from, and decord, opened only
    when something asks for it (``backend='cpu'``, ``mode='efficient'``,
    a video PyAV cannot promise the frames of): its methods and ``len``
    are decord's.

    Args:
        filename (str): The video (its path on disk).
        video (OpenVideo): The video opened with PyAV.
        counts (tuple[int, float]): ``total_frames`` and ``avg_fps``.
        num_threads (int): decord's decoding threads.
    """

    def __init__(self, filename: str, video: object,
                 counts: Tuple[int, float], num_threads: int = 1):
        self.filename = filename
        self.video = video
        self.counts = counts
        self.num_threads = num_threads
        self._decord = None

    def take_video(self) -> Optional[object]:
        """The open PyAV video, handed over once (the caller closes it);
        None once taken."""
        video, self.video = self.video, None
        return video

    @property
    def decord(self) -> object:
        """decord's reader of the video, opened on first use as
        ``VideoInit`` opens it."""
        if self._decord is None:
            video = self.take_video()
            if video is not None:
                video.close()
            import decord
            self._decord = decord.VideoReader(self.filename,
                                              num_threads=self.num_threads)
        return self._decord

    def __len__(self) -> int:
        return len(self.decord)

    def __getattr__(self, name: str):
        if name.startswith('_'):
            raise AttributeError(name)
        return getattr(self.decord, name)


def _shown_frames(filename: str, counted: int) -> int:
    """The frames a player shows of a video decord counts ``counted``
    frames of: decord also counts the packets an MP4 edit list hides (a
    clip cut by stream copy), frames it then gives in the place of others,
    where PyAV decodes the frames shown."""
    import importlib.util
    path = video_path(filename)
    if importlib.util.find_spec('av') is None or not osp.isfile(path):
        return counted
    from .pyav_frames import video_index
    try:
        index = video_index(path)
    except Exception:  # NotSupported, or PyAV cannot read it
        return counted
    if index['hidden'] and index['count'] + index['hidden'] == counted:
        return index['count']
    return counted


#: ``VideoDecode``'s decoders.
BACKENDS = ('cpu', 'pyav')

#: What ``backend='nvdec'`` (or its ``nvdec`` options) is answered.
NVDEC_REMOVED = (
    "VideoDecode backend 'nvdec' (the GPU's hardware decoders) was removed: "
    'on a 16-core GPU host it made mim test and the DataLoader workers '
    "slower than the CPU alone (docs/decoding.md); use backend='pyav' (the "
    "default) or backend='cpu' (decord)")


@functools.lru_cache(maxsize=None)
def default_backend() -> str:
    """``VideoDecode``'s backend when a pipeline names none: PyAV where it
    is installed, else decord, said once per process."""
    import importlib.util
    if importlib.util.find_spec('av') is not None:
        return 'pyav'
    from mmengine.logging import print_log
    print_log(
        'PyAV is not installed: videos are decoded with decord, whose '
        'random access reads other frames than those asked for in '
        'open-GOP H.264 and in MPEG-4 Part 2 with B-frames '
        '(docs/decoding.md); pip install av (requirements/runtime.txt)',
        logger='current', level=30)
    return 'cpu'


class _ServedFrames:
    """Frames PyAV decoded, in the place of a reader."""

    def __init__(self, frames: np.ndarray):
        self.frames = frames


def check_intact(results: Dict) -> None:
    """Refuse a video that is damaged where decord would decode the
    sampled frames.

    decord does not report damaged data: past it, it gives its last good
    frame in the place of every later one. PyAV decodes the same frames
    (:func:`~models.datasets.pyav_frames.read_frames`: from the key frame
    before each sampled frame, as decord seeks) and reports the damage.
    Where PyAV is missing or cannot promise decord's frames (10-bit video,
    an AVI whose frames are in order, ...), nothing is checked.

    Args:
        results (dict): The result dict, with ``filename``, ``frame_inds``
            and ``total_frames``.

    Raises:
        VideoReadError: The video is damaged there, naming it.
    """
    import importlib.util
    filename = video_path(results['filename'])
    indices = np.asarray(results.get('frame_inds', [])).reshape(-1)
    if (importlib.util.find_spec('av') is None or not osp.isfile(filename)
            or indices.size == 0 or indices.min() < 0):
        return
    from .pyav_frames import CorruptVideo
    try:
        _pyav_frames(results, filename, indices)
    except CorruptVideo as error:
        raise VideoReadError(corrupt_message(results['filename'],
                                             error)) from error
    except Exception:  # NotSupported, or PyAV cannot read it
        return


def _pyav_frames(results: Dict, filename: str,
                 indices: np.ndarray) -> List[np.ndarray]:
    """:func:`~models.datasets.pyav_frames.read_frames` of the sampled
    frames, from the video ``VideoInit`` opened where it did (closed
    after), else from the file."""
    from .pyav_frames import read_frames
    reader = results.get('video_reader')
    video = (reader.take_video() if isinstance(reader, PyAVReader)
             else None)
    if video is None:
        return read_frames(filename, indices.tolist(),
                           results.get('total_frames'))
    with video:
        return video.read(indices.tolist(), results.get('total_frames'))


@TRANSFORMS.register_module()
class VideoDecode(DecordDecode):
    """``DecordDecode`` that decodes with PyAV, falls back to OpenCV and
    names the file on error.

    Args:
        mode (str): As in MMAction2's ``DecordDecode``.
        backend (str, optional): ``'pyav'``: PyAV, decoding only the
            frames the sampled ones need
            (:mod:`models.datasets.pyav_frames`): the frames of decoding
            in order, bit for bit, also where decord's random access reads
            others (open-GOP H.264, MPEG-4 Part 2 with B-frames); the
            ``'cpu'`` path for the videos where decord reads right or
            where PyAV cannot promise the frames (10-bit video, ...).
            ``'cpu'``: decord, OpenCV where decord fails, as MMAction2's
            ``DecordDecode``. By default ``'pyav'``, or ``'cpu'`` with a
            warning where PyAV is not installed.
            ``results['decoded_by']`` says which decoded each video
            (``'pyav'`` or ``'cpu'``).
        nvdec (dict, optional): Refused with a message: the options of
            the GPU-decoder backend, which is no longer offered.
    """

    def __init__(self, mode: str = 'accurate',
                 backend: Optional[str] = None,
                 nvdec: Optional[Dict] = None) -> None:
        super().__init__(mode)
        if backend == 'nvdec' or nvdec is not None:
            raise ValueError(NVDEC_REMOVED)
        if backend is None:
            backend = default_backend()
        if backend not in BACKENDS:
            raise ValueError(f'VideoDecode backend must be one of '
                             f'{BACKENDS}, got {backend!r}')
        self.backend = backend
        if backend == 'pyav':
            from . import pyav_frames
            pyav_frames._import_av()  # a missing PyAV fails at build time

    def _decord_load_frames(self, container: object,
                            frame_inds: np.ndarray) -> List[np.ndarray]:
        if isinstance(container, _ServedFrames):
            return list(container.frames)
        if isinstance(container, _OpenCVFrames):
            return container.get_batch(frame_inds)
        if isinstance(container, PyAVReader):
            container = container.decord
        return check_decord_frames(
            super()._decord_load_frames(container, frame_inds))

    def _decode_elsewhere(self, results: Dict) -> Optional[Dict]:
        """The result dict with frames from PyAV, or None when decord (or
        OpenCV) must decode them."""
        reader = results.get('video_reader')
        if (self.mode != 'accurate' or reader is None
                or isinstance(reader, _OpenCVFrames)):
            return None  # files decord cannot read go to OpenCV
        filename = video_path(results['filename'])
        if not osp.isfile(filename):  # another io_backend
            return None
        indices = np.asarray(results['frame_inds']).reshape(-1)
        if indices.size == 0 or indices.min() < 0:
            return None
        from .pyav_frames import CorruptVideo
        try:
            frames = _pyav_frames(results, filename, indices)
        except CorruptVideo as error:
            # decord would give the last good frame in the place of every
            # later one: a score of the video would be silently wrong.
            raise VideoReadError(corrupt_message(results['filename'],
                                                 error)) from error
        except Exception:  # NotSupported, or PyAV cannot read it
            # decord decodes it, or names the file if it cannot.
            return None
        served = dict(results, video_reader=_ServedFrames(frames))
        served = DecordDecode.transform(self, served)
        served['decoded_by'] = self.backend
        return served

    def transform(self, results: Dict) -> Dict:
        """Decode the frames at ``frame_inds``.

        Args:
            results (dict): The result dict, with ``video_reader``.

        Returns:
            dict: The result dict with ``imgs``.
        """
        filename = results.get('filename', '<unknown>')
        if self.backend != 'cpu':
            served = self._decode_elsewhere(results)
            if served is not None:
                return served
            results['decoded_by'] = 'cpu'
        else:
            check_intact(results)
        try:
            return super().transform(dict(results))
        except Exception as error:
            if isinstance(results['video_reader'], _OpenCVFrames):
                raise VideoReadError(describe_read_error(filename,
                                                         error)) from error
        results['video_reader'] = _OpenCVFrames(filename)
        return super().transform(results)
