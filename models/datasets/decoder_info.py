"""Which FFmpeg decodes the videos: the package that provides ``decord``
and the FFmpeg libraries it loaded, with their versions.

Every video a user hands the tools goes through these libraries, so their
age matters: decord 0.6.0 bundles FFmpeg 4.1 (2018), ``decord2`` 3.4.0
FFmpeg 8.1 (see ``docs/decoding.md``). The versions are read from the
loaded libraries themselves (``av_version_info``, ``avcodec_version``),
not from package metadata, so a decord built from source against the
system's FFmpeg is reported as truly as a wheel.

This module imports nothing from the project nor anything heavier than
``decord`` (and that only when asked), so scripts can load it by file
path.

Example:
    >>> from models.datasets.decoder_info import decoder_info
    >>> decoder_info().describe()  # doctest: +SKIP
    'decord2 3.4.0 with FFmpeg 8.1.1 (libavcodec 62.28.101, ...)'
"""
import ctypes
import functools
import glob
import importlib.metadata
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional

#: libavcodec's major version in FFmpeg 6.0, the oldest release series
#: this project accepts for decoding untrusted videos (older FFmpeg
#: releases lack years of fixes to their demuxers and decoders).
MIN_LIBAVCODEC_MAJOR = 60

#: The distributions known to install the ``decord`` module.
DECORD_DISTRIBUTIONS = ('decord2', 'decord', 'eva-decord')

_LIBRARIES = ('avcodec', 'avformat', 'avutil', 'swscale')


@dataclass(frozen=True)
class DecoderInfo:
    """The video decoder in use and the FFmpeg under it.

    Attributes:
        package (str): The distribution that installed ``decord`` and its
            version, e.g. ``'decord2 3.4.0'``.
        ffmpeg (str, optional): FFmpeg's own version string
            (``av_version_info``), e.g. ``'8.1.1'``; ``None`` where the
            libraries were not found.
        libavcodec (str, optional): e.g. ``'62.28.101'``.
        libavformat (str, optional): e.g. ``'62.12.101'``.
        libavutil (str, optional): e.g. ``'60.26.101'``.
        libswscale (str, optional): e.g. ``'9.5.101'``.
        library_dir (str, optional): The folder libavcodec was loaded from.
    """

    package: str
    ffmpeg: Optional[str] = None
    libavcodec: Optional[str] = None
    libavformat: Optional[str] = None
    libavutil: Optional[str] = None
    libswscale: Optional[str] = None
    library_dir: Optional[str] = None

    @property
    def libavcodec_major(self) -> Optional[int]:
        """libavcodec's major version (58 is FFmpeg 4, 62 is FFmpeg 8)."""
        return int(self.libavcodec.split('.')[0]) if self.libavcodec else None

    @property
    def maintained(self) -> bool:
        """Whether the FFmpeg is FFmpeg 6 or newer (unknown counts as
        not)."""
        major = self.libavcodec_major
        return major is not None and major >= MIN_LIBAVCODEC_MAJOR

    def describe(self) -> str:
        """One line for reports such as ``models/compat.py --check``.

        Returns:
            str: e.g. ``'decord2 3.4.0 with FFmpeg 8.1.1 (libavcodec
            62.28.101, libavformat 62.12.101, libavutil 60.26.101)'``.
        """
        if self.libavcodec is None:
            return (f'{self.package} with an FFmpeg whose libraries were '
                    'not found')
        versions = ', '.join(
            f'{name} {getattr(self, name)}'
            for name in ('libavcodec', 'libavformat', 'libavutil')
            if getattr(self, name))
        ffmpeg = f'FFmpeg {self.ffmpeg}' if self.ffmpeg else 'FFmpeg'
        return f'{self.package} with {ffmpeg} ({versions})'


def _mapped_files() -> List[str]:
    """Files mapped into this process (Linux); empty elsewhere."""
    try:
        with open('/proc/self/maps') as f:
            return sorted({
                line.split(None, 5)[5].strip()
                for line in f if line.count(' ') >= 5 and '/' in line
            })
    except OSError:
        return []


def _is_library(path: str, name: str) -> bool:
    """Whether ``path`` is FFmpeg's ``lib<name>``: vendored wheels rename
    it ``lib<name>-<hash>.so.<version>``, systems ``lib<name>.so.<n>``."""
    base = osp.basename(path)
    return base.startswith(f'lib{name}-') or base.startswith(f'lib{name}.so')


def _find_library(name: str, decord_dir: str,
                  mapped: List[str]) -> Optional[str]:
    """The ``lib<name>`` that ``decord`` uses.

    OpenCV and PyAV bundle FFmpeg libraries of their own, which may be
    loaded too: the ones vendored beside the ``decord`` package
    (``<site>/decord.libs``, ``<site>/decord2.libs``) come first, then
    loaded ones outside any wheel's ``.libs`` folder (a decord built
    against the system's FFmpeg).
    """
    site = osp.dirname(decord_dir)

    def vendored(path: str) -> bool:
        folder = osp.dirname(path)
        return (osp.dirname(folder) == site
                and osp.basename(folder).startswith('decord')
                and folder.endswith('.libs'))

    loaded = [p for p in mapped if _is_library(p, name)]
    for path in loaded:
        if vendored(path):
            return path
    # Not mapped (no /proc): what the wheel ships beside the package.
    for path in sorted(glob.glob(osp.join(site, 'decord*.libs', '*'))):
        if _is_library(path, name):
            return path
    for path in loaded:
        if not osp.dirname(path).endswith('.libs'):
            return path
    return None


def _version(library: ctypes.CDLL, function: str) -> str:
    """``major.minor.micro`` of FFmpeg's ``<lib>_version()``."""
    call = getattr(library, function)
    call.restype = ctypes.c_uint
    number = call()
    return f'{number >> 16}.{(number >> 8) & 0xFF}.{number & 0xFF}'


def _package(decord_file: str, fallback: str) -> str:
    """The distribution that installed this ``decord`` module: decord2
    and decord 0.6 install the same module, so the one whose files hold
    it is the one in use."""
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
    """OpenCV and the FFmpeg it was built with: the fallback reader of
    ``VideoInit`` / ``VideoDecode`` decodes through it.

    Returns:
        DecoderInfo: ``ffmpeg`` is ``None`` (OpenCV reports only the
        library versions).

    Raises:
        ImportError: OpenCV is not installed.
    """
    import cv2
    versions = {}
    for line in cv2.getBuildInformation().splitlines():
        name, _, value = line.strip().partition(':')
        if name in ('avcodec', 'avformat', 'avutil', 'swscale'):
            # e.g. "avcodec:   YES (63.1.102)"
            number = value.strip().partition('(')[2].rstrip(')').strip()
            if number:
                versions[f'lib{name}'] = number
    return DecoderInfo(package=f'opencv {cv2.__version__}', ffmpeg=None,
                       **versions)


@functools.lru_cache(maxsize=1)
def decoder_info() -> DecoderInfo:
    """The video decoder this process uses and the FFmpeg under it.

    Imports ``decord`` (which loads its FFmpeg); the libraries are then
    only looked up, never loaded a second time.

    Returns:
        DecoderInfo: The package and library versions.

    Raises:
        ImportError: ``decord`` is not installed.
    """
    import decord
    decord_dir = osp.dirname(osp.abspath(decord.__file__))
    package = _package(decord.__file__,
                       getattr(decord, '__version__', 'unknown'))
    mapped = _mapped_files()
    paths = {name: _find_library(name, decord_dir, mapped)
             for name in _LIBRARIES}
    versions = {}
    ffmpeg = None
    for name, path in paths.items():
        if path is None:
            continue
        try:
            library = ctypes.CDLL(path)
            versions[f'lib{name}'] = _version(library, f'{name}_version')
            if name == 'avutil':
                library.av_version_info.restype = ctypes.c_char_p
                ffmpeg = library.av_version_info().decode(errors='replace')
        except (OSError, AttributeError):  # not FFmpeg after all
            continue
    avcodec = paths['avcodec']
    return DecoderInfo(
        package=package,
        ffmpeg=ffmpeg,
        library_dir=osp.dirname(avcodec) if avcodec else None,
        **versions)
