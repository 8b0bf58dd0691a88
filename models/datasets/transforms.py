"""Video-reading transforms that do not lose a long run to one bad file
(docs/decoding.md). ``VideoInit`` / ``VideoDecode`` replace MMAction2's
``DecordInit`` / ``DecordDecode``: PyAV by default (decord's random access
reads wrong frames in some videos), decord where PyAV cannot promise the
frames, OpenCV where decord fails (it cannot copy frames of some widths,
depending on the CPU), and errors that name the file. Files on disk are
opened by path (decord's in-memory reader crashes the process on truncated
AVI, Matroska and WebM files); an MP4, MOV, Matroska or WebM file once,
with PyAV, and by decord only where something needs decord.
"""
import functools
import importlib.util
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmaction.datasets.transforms import DecordDecode, DecordInit
from mmaction.registry import TRANSFORMS

from models.utils.paths import special_file_kind


def _has_av() -> bool:
    return importlib.util.find_spec('av') is not None


class VideoReadError(RuntimeError):
    """A video file could not be decoded; the message names the file."""


def describe_read_error(filename: str, error: BaseException) -> str:
    """One message, naming the file, the cause and what to do, for every
    way a video can fail to load."""
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


def video_path(filename: str) -> str:
    """The absolute path ``VideoInit`` opens for ``filename`` (``.mp4``
    added where it has no extension, as ``DecordInit`` does): FFmpeg takes
    a relative name such as "concat:..." for a protocol."""
    if osp.splitext(filename)[0] == filename:
        filename = filename + '.mp4'
    return osp.abspath(filename)


@functools.lru_cache(maxsize=4096)
def _opencv_rate_and_length(filename: str, size: int,
                            mtime_ns: int) -> Tuple[float, int]:
    """Frame rate and decodable frames, counted once per file version."""
    import cv2
    capture = cv2.VideoCapture(filename)
    if not capture.isOpened():
        raise VideoReadError(
            f'Cannot decode video {filename!r} with decord or OpenCV: '
            'it is truncated, corrupt or not a video; check that it '
            'plays, or copy or download it again')
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    # CAP_PROP_FRAME_COUNT is an estimate: wrong for damaged files
    num_frames = 0
    while capture.grab():
        num_frames += 1
    capture.release()
    if not num_frames:
        raise VideoReadError(
            f'Video file {filename!r} has no frame that decord or OpenCV '
            'can decode; check that it plays, or copy or download it again')
    return fps, num_frames


class _SequentialOpenCV:
    """OpenCV's frames in one forward pass (going back reopens)."""

    def __init__(self, filename: str, num_frames: int):
        import cv2
        self.filename = filename
        self.num_frames = num_frames
        self.capture = cv2.VideoCapture(filename)
        self.position = 0  # index of the next frame grab() gives

    def read(self, indices: Sequence[int]) -> List[np.ndarray]:
        import cv2
        frames = []
        for index in map(int, indices):
            if index < self.position - 1:  # behind: from the start again
                self.capture.release()
                self.capture = cv2.VideoCapture(self.filename)
                self.position = 0
            # Frames decord counts but OpenCV cannot decode are refused:
            # the last one in their place would be a substitute.
            while index < self.num_frames and self.position <= index:
                if not self.capture.grab():
                    break
                self.position += 1
            # The frame grabbed last is index: retrieve() gives it (again).
            ok, frame = (self.capture.retrieve()
                         if self.position == index + 1 else (False, None))
            if not ok:
                raise VideoReadError(
                    f'Cannot decode frame {index} of video '
                    f'{self.filename!r}: it is truncated or corrupt; copy '
                    'or download it again')
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        return frames

    def close(self) -> None:
        self.capture.release()


class _OpenCVFrames:
    """A video's RGB frames read with OpenCV, as a reader."""

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
        indices = [int(i) for i in frame_inds]
        if max(indices) >= self.num_frames:
            # damaged there: the last frame in their place is a substitute
            raise VideoReadError(
                f'Cannot decode frames {max(indices)} and before of video '
                f'{self.filename!r}: OpenCV decodes only its first '
                f'{self.num_frames} frames, it is truncated or corrupt; '
                'copy or download it again')
        wanted = sorted(set(indices))
        reader = _SequentialOpenCV(self.filename, self.num_frames)
        try:
            frames = dict(zip(wanted, reader.read(wanted)))
        finally:
            reader.close()
        return [frames[i] for i in indices]


@TRANSFORMS.register_module()
class VideoInit(DecordInit):
    """``DecordInit`` that opens files on disk by path, with PyAV where
    that tells decord's frame count and rate (:class:`PyAVReader`), falls
    back to OpenCV and names the file on error."""

    def _get_video_reader(self, filename: str) -> object:
        """decord's reader: by path on disk, else as ``DecordInit``."""
        if self.io_backend != 'disk':
            return super()._get_video_reader(filename)
        import decord
        return decord.VideoReader(
            video_path(filename), num_threads=self.num_threads)

    def transform(self, results: Dict) -> Dict:
        """Open the video and set ``total_frames`` and ``avg_fps``: with
        PyAV, else decord, else OpenCV."""
        filename = results['filename']
        reader = self._pyav_reader(filename)
        if reader is not None:
            results['video_reader'] = reader
            results['total_frames'], results['avg_fps'] = reader.counts
            return results
        try:
            results = super().transform(results)
        except Exception as error:
            if not osp.isfile(filename) or osp.getsize(filename) == 0:
                raise VideoReadError(describe_read_error(filename,
                                                         error)) from error
            reader = _OpenCVFrames(filename)
            results.update(video_reader=reader, total_frames=len(reader),
                           avg_fps=reader.fps)
            return results
        results['total_frames'] = _shown_frames(filename,
                                                results['total_frames'])
        return results

    def _pyav_reader(self, filename: str) -> Optional['PyAVReader']:
        """The video opened with PyAV where it tells decord's counts."""
        path = video_path(filename)
        if self.io_backend != 'disk' or not _has_av() or not osp.isfile(path):
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


class PyAVReader:
    """The reader ``VideoInit`` hands on for a video PyAV opened: the open
    ``OpenVideo`` (``video``) and decord, opened on first use; its methods
    and ``len`` are decord's. ``counts``: ``(total_frames, avg_fps)``."""

    def __init__(self, filename: str, video: object,
                 counts: Tuple[int, float], num_threads: int = 1):
        self.filename = filename
        self.video = video
        self.counts = counts
        self.num_threads = num_threads

    def take_video(self) -> Optional[object]:
        """The open PyAV video, once (the caller closes it); then None."""
        video, self.video = self.video, None
        return video

    @functools.cached_property
    def decord(self) -> object:
        """decord's reader, opened on first use (the PyAV video closed)."""
        video = self.take_video()
        if video is not None:
            video.close()
        import decord
        return decord.VideoReader(self.filename, num_threads=self.num_threads)

    def __len__(self) -> int:
        return len(self.decord)

    def __getattr__(self, name: str):
        if name.startswith('_'):
            raise AttributeError(name)
        return getattr(self.decord, name)


def _shown_frames(filename: str, counted: int) -> int:
    """decord's count less the packets an MP4 edit list hides."""
    path = video_path(filename)
    if not _has_av() or not osp.isfile(path):
        return counted
    from .pyav_frames import video_index
    try:
        index = video_index(path)
    except Exception:  # NotSupported, or PyAV cannot read it
        return counted
    hides = index['hidden'] and index['count'] + index['hidden'] == counted
    return index['count'] if hides else counted


BACKENDS = ('cpu', 'pyav')

NVDEC_REMOVED = (
    "VideoDecode backend 'nvdec' (the GPU's hardware decoders) was removed: "
    'on a 16-core GPU host it made mim test and the DataLoader workers '
    "slower than the CPU alone (docs/decoding.md); use backend='pyav' (the "
    "default) or backend='cpu' (decord)")


@functools.lru_cache(maxsize=None)
def default_backend() -> str:
    """``'pyav'`` where PyAV is installed, else ``'cpu'``, warned."""
    if _has_av():
        return 'pyav'
    from mmengine.logging import print_log
    print_log(
        'PyAV is not installed: videos are decoded with decord, whose '
        'random access reads other frames than those asked for in '
        'open-GOP H.264 and in MPEG-4 Part 2 with B-frames '
        '(docs/decoding.md); pip install av (requirements/runtime.txt)',
        logger='current', level=30)
    return 'cpu'


def _pyav_frames(results: Dict) -> Optional[List[np.ndarray]]:
    """The sampled frames decoded with PyAV (None: nothing sampled)."""
    filename = video_path(results['filename'])
    indices = np.asarray(results.get('frame_inds', [])).reshape(-1)
    if not osp.isfile(filename) or indices.size == 0 or indices.min() < 0:
        return None
    from .pyav_frames import read_frames
    reader = results.get('video_reader')
    video = reader.take_video() if isinstance(reader, PyAVReader) else None
    if video is None:
        return read_frames(filename, indices.tolist(),
                           results.get('total_frames'))
    with video:
        return video.read(indices.tolist(), results.get('total_frames'))


@TRANSFORMS.register_module()
class VideoDecode(DecordDecode):
    """``DecordDecode`` that decodes with PyAV, falls back to OpenCV and
    names the file on error.

    ``backend``: ``'pyav'`` (the default where PyAV is installed;
    :mod:`.pyav_frames`, the ``'cpu'`` path where it cannot promise the
    frames) or ``'cpu'`` (decord, OpenCV where decord fails);
    ``results['decoded_by']`` says which decoded each video. ``nvdec``
    (the removed GPU decoder's options) is refused.
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
        if isinstance(container, list):  # decoded in transform
            return container
        if isinstance(container, PyAVReader):
            container = container.decord
        frames = super()._decord_load_frames(container, frame_inds)
        # Where decord cannot copy a width, a frame comes back with its
        # padded rows taken for channels, e.g. (64, 96, 4) for a 96x64
        # video: the error sends it to the fallback reader.
        shapes = {np.shape(frame) for frame in frames}
        if len(shapes) > 1 or any(len(s) != 3 or s[2] != 3 for s in shapes):
            raise RuntimeError(f'decord returned frames of shape '
                               f'{sorted(shapes)}, not (height, width, 3)')
        return frames

    def transform(self, results: Dict) -> Dict:
        """Decode the frames at ``frame_inds`` into ``imgs``."""
        results = dict(results)
        filename = results.get('filename', '<unknown>')
        reader = results['video_reader']
        if results['frame_inds'].ndim != 1:
            results['frame_inds'] = np.squeeze(results['frame_inds'])
        opencv_only = isinstance(reader, _OpenCVFrames)
        pyav = None
        if self.backend == 'cpu':  # PyAV only refuses damage decord hides
            pyav = (lambda r: _pyav_frames(r) and None) if _has_av() else None
        elif (self.mode == 'accurate' and reader is not None
              and not opencv_only):
            pyav = _pyav_frames
        frames = FallbackFrames(
            filename, pyav=pyav and (lambda inds: pyav(results)),
            decord=None if opencv_only else functools.partial(
                self._decord_load_frames, reader),
            opencv=reader.get_batch if opencv_only else (
                lambda inds: _OpenCVFrames(filename).get_batch(inds)))
        imgs = frames.read(results['frame_inds'])
        if self.backend != 'cpu':
            results['decoded_by'] = frames.decoded_by
        return DecordDecode.transform(
            self, dict(results, video_reader=list(imgs)))


class FallbackFrames:
    """A video's frames from the first of its readers (functions of the
    frame indices, or None) that gives them: PyAV (None where it cannot
    promise decord's frames), else decord, else OpenCV; one that fails is
    dropped for good. Damage PyAV meets, and OpenCV's failure, raise
    :class:`VideoReadError` naming the file. ``decoded_by``: ``'pyav'`` or
    ``'cpu'``, for the last frames."""

    def __init__(self, filename: str, pyav=None, decord=None, opencv=None):
        self.filename = filename
        self.pyav, self.decord, self.opencv = pyav, decord, opencv
        self.decoded_by = 'pyav'

    def read(self, indices: Sequence[int]) -> List[np.ndarray]:
        """``(H, W, 3)`` RGB frames at ``indices``."""
        from .pyav_frames import CorruptVideo
        try:
            frames = self.pyav and self.pyav(indices)
        except CorruptVideo as error:  # decord would repeat a frame
            cause = ' '.join(str(error).split())[:160]
            raise VideoReadError(
                f'Video file {self.filename!r} is corrupt: the decoder met '
                f'damaged data ({cause}), and the frames from there on would '
                'be substitutes; copy or download it again') from error
        except Exception:  # NotSupported, unreadable: decord decides
            frames = None
        if frames is not None:
            return frames
        self.pyav, self.decoded_by = None, 'cpu'
        if self.decord is not None:
            try:
                return self.decord(indices)
            except Exception:
                self.decord = None
        try:
            return self.opencv(indices)
        except Exception as error:
            raise VideoReadError(describe_read_error(self.filename,
                                                     error)) from error
