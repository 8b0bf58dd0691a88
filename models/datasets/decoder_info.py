"""Which FFmpeg decodes the videos: the package that provides ``decord``
and the FFmpeg libraries it loaded, with their versions, read from the
loaded libraries themselves (so a decord built against the system's
FFmpeg is reported truly). Standard library only (``decord`` when asked):
``models/compat`` loads this file by path.

Example:
    >>> decoder_info().describe()  # doctest: +SKIP
    'decord2 3.4.0 with FFmpeg 8.1.1 (libavcodec 62.28.101, ...)'
"""
import ctypes
import functools
import glob
import importlib.metadata
import os.path as osp
import re
from dataclasses import dataclass
from typing import Optional

#: libavcodec's major version in FFmpeg 6.0, the oldest accepted for
#: untrusted videos (older releases lack years of fixes).
MIN_LIBAVCODEC_MAJOR = 60

#: The distributions known to install the ``decord`` module.
DECORD_DISTRIBUTIONS = ('decord2', 'decord', 'eva-decord')

_LIBRARIES = ('avcodec', 'avformat', 'avutil')


@dataclass(frozen=True)
class DecoderInfo:
    """The video decoder in use (``package``, e.g. ``'decord2 3.4.0'``)
    and the FFmpeg under it: ``ffmpeg`` (``av_version_info``, e.g.
    ``'8.1.1'``) and the ``lib*`` versions (e.g. ``'62.28.101'``); None
    where not found."""

    package: str
    ffmpeg: Optional[str] = None
    libavcodec: Optional[str] = None
    libavformat: Optional[str] = None
    libavutil: Optional[str] = None

    @property
    def libavcodec_major(self) -> Optional[int]:
        """libavcodec's major version (58 is FFmpeg 4, 62 is FFmpeg 8)."""
        return int(self.libavcodec.split('.')[0]) if self.libavcodec else None

    @property
    def maintained(self) -> bool:
        """Whether it is FFmpeg 6 or newer (unknown counts as not)."""
        major = self.libavcodec_major
        return major is not None and major >= MIN_LIBAVCODEC_MAJOR

    def describe(self) -> str:
        """One line for reports, as in the module's example."""
        if self.libavcodec is None:
            return (f'{self.package} with an FFmpeg whose libraries were '
                    'not found')
        versions = ', '.join(
            f'{name} {getattr(self, name)}'
            for name in ('libavcodec', 'libavformat', 'libavutil')
            if getattr(self, name))
        ffmpeg = f'FFmpeg {self.ffmpeg}' if self.ffmpeg else 'FFmpeg'
        return f'{self.package} with {ffmpeg} ({versions})'


def _find_library(name: str, decord_dir: str) -> Optional[str]:
    """The ``lib<name>`` that ``decord`` uses: OpenCV and PyAV may load
    their own, so those vendored beside ``decord`` come first (loaded,
    then any), then loaded ones outside any wheel's ``.libs`` folder (a
    system FFmpeg). Loaded: mapped into this process (Linux)."""
    try:
        with open('/proc/self/maps') as f:
            loaded = sorted({line.split(None, 5)[5].strip() for line in f
                             if line.count(' ') >= 5 and '/' in line})
    except OSError:
        loaded = []
    shipped = sorted(glob.glob(osp.join(osp.dirname(decord_dir),
                                        'decord*.libs', '*')))
    ours = (f'lib{name}-', f'lib{name}.so')  # <hash>.so.* or .so.* next
    loaded = [p for p in loaded if osp.basename(p).startswith(ours)]
    found = [p for p in loaded if p in shipped] + [
        p for p in shipped if osp.basename(p).startswith(ours)] + [
        p for p in loaded if not osp.dirname(p).endswith('.libs')]
    return found[0] if found else None


def _package(decord_file: str, fallback: str) -> str:
    """The distribution whose files hold this ``decord`` module."""
    for name in DECORD_DISTRIBUTIONS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        init = osp.realpath(str(dist.locate_file('decord/__init__.py')))
        if init == osp.realpath(decord_file):
            return f'{name} {dist.version}'
    return f'decord {fallback}'


def opencv_info() -> DecoderInfo:
    """OpenCV (the fallback reader) and the FFmpeg it was built with
    (``ffmpeg`` None: OpenCV reports only the library versions)."""
    import cv2
    found = re.findall(  # e.g. "avcodec:   YES (63.1.102)"
        rf'^\s*({"|".join(_LIBRARIES)}):[^(\n]*\(\s*([^)\n]*?)\s*\)',
        cv2.getBuildInformation(), re.MULTILINE)
    return DecoderInfo(package=f'opencv {cv2.__version__}', ffmpeg=None,
                       **{f'lib{name}': n for name, n in found if n})


@functools.lru_cache(maxsize=1)
def decoder_info() -> DecoderInfo:
    """The video decoder this process uses and the FFmpeg under it
    (imports ``decord``; ImportError without it)."""
    import decord
    decord_dir = osp.dirname(osp.abspath(decord.__file__))
    package = _package(decord.__file__,
                       getattr(decord, '__version__', 'unknown'))
    versions = {}
    for name in _LIBRARIES:
        path = _find_library(name, decord_dir)
        if path is None:
            continue
        try:
            library = ctypes.CDLL(path)
            call = getattr(library, f'{name}_version')
            call.restype = ctypes.c_uint
            n = call()  # major.minor.micro, 16 + 8 + 8 bits
            versions[f'lib{name}'] = f'{n >> 16}.{(n >> 8) & 0xFF}.{n & 0xFF}'
            if name == 'avutil':
                library.av_version_info.restype = ctypes.c_char_p
                versions['ffmpeg'] = library.av_version_info().decode(
                    errors='replace')
        except (OSError, AttributeError):  # not FFmpeg after all
            continue
    return DecoderInfo(package=package, **versions)
