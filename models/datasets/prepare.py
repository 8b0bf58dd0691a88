"""Prepare videos for fast decoding: the work of
``tools/data/prepare_videos.py``, whose docstring says what it writes (a
sampled frame is decoded from its key frame on: docs/data_path.md).
Standard library and NumPy at import (PyAV when working): no torch.
"""
import contextlib
import glob
import os
import os.path as osp
import re
from fractions import Fraction
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.safe_io import atomic_write, same_file
from ..utils.video_writer import write_pyav
from .pyav_frames import convert, display_turns, video_index

#: Source extensions looked for in a folder (``--ext`` chooses).
VIDEO_EXTS = ('mp4', 'avi', 'mkv', 'webm', 'mov', 'm4v', 'mpg', 'mpeg',
              'flv', '3gp')
#: Output extension: H.264 in MP4.
OUT_EXT = '.mp4'
#: ``--dense``: a key frame every this many frames, as MMAction2's.
DENSE_GOP = 16
#: An output may differ from its source by this share of the frames (at
#: least one frame), and its duration by as much plus one frame.
TOLERANCE = 0.01


class PrepareError(ValueError):
    """Arguments that cannot give a right result; the message is one line
    naming the value."""


def output_size(width: int, height: int, scale: Optional[int] = None,
                size: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
    """The output ``(width, height)`` of a displayed frame: ``size``, or
    the short side ``scale`` and the long side in proportion, even (as
    FFmpeg's ``scale=-2:N``), or the input size (even)."""
    if size is not None:
        return size
    if scale is None:
        return width - width % 2, height - height % 2
    if width <= height:
        return scale, max(2, 2 * round(height * scale / width / 2))
    return max(2, 2 * round(width * scale / height / 2)), scale


def find_sources(src_dir: str, level: int, exts: Sequence[str],
                 exclude: Optional[str] = None) -> List[str]:
    """The videos ``level`` folders below ``src_dir``, relative to it,
    sorted; those under ``exclude`` (the output folder) left out."""
    check_folders(src_dir, exclude)
    pattern = osp.join(src_dir, *['*'] * level)
    wanted = {f'.{e.lower().lstrip(".")}' for e in exts}
    skip = osp.join(osp.realpath(exclude), '') if exclude else None
    if skip and not skip.startswith(osp.join(osp.realpath(src_dir), '')):
        skip = None  # only an output folder inside the sources' is skipped
    return sorted(
        osp.relpath(path, src_dir) for path in glob.glob(pattern)
        if osp.splitext(path)[1].lower() in wanted and osp.isfile(path)
        and not (skip and osp.realpath(path).startswith(skip)))


def read_list(path: str) -> List[List[str]]:
    """An MMAction2 video list: per line, the video then its labels."""
    with open(path, encoding='utf-8') as f:
        rows = [line.split() for line in f if line.strip()]
    if not rows:
        raise PrepareError(f'--ann-file {path!r} lists no video')
    return rows


def _key(name: str) -> str:
    """``ApplyEyeMakeup`` and ``apply eye makeup`` as one key."""
    return re.sub(r'[^0-9a-z]', '', name.lower())


def rows_from_folders(rels: Sequence[str],
                      label_map: str) -> List[List[str]]:
    """List rows ``<video> <label>`` of videos in class folders, the label
    being the line of ``label_map`` that names the folder (compared
    without case, spaces or underscores)."""
    with open(label_map, encoding='utf-8') as f:
        names = [line.strip() for line in f if line.strip()]
    labels = {_key(name): i for i, name in enumerate(names)}
    rows = []
    for rel in rels:
        if len(rel.split()) != 1:
            raise PrepareError(f'{rel!r} has white space in its name, which '
                               'an annotation list cannot hold; rename it')
        folder = osp.basename(osp.dirname(rel))
        if _key(folder) not in labels:
            raise PrepareError(
                f'class folder {folder!r} is not a line of --label-map '
                f'{label_map!r}; give the label map of this dataset')
        rows.append([rel, str(labels[_key(folder)])])
    return rows


def out_name(rel: str) -> str:
    return osp.splitext(rel)[0] + OUT_EXT


def check_folders(src_dir: str, dst_dir: Optional[str]) -> None:
    """Refuse an output folder that is the source folder."""
    if dst_dir and osp.realpath(src_dir) == osp.realpath(dst_dir):
        raise PrepareError(
            f'output folder {dst_dir!r} is the source folder: choose '
            'another one (sources are never written over)')


def plan_jobs(src_dir: str, dst_dir: str,
              rels: Sequence[str]) -> List[Tuple[str, str]]:
    """``(source, output)`` paths; :class:`PrepareError` for an output
    that would be a source (also through a link) or another's output."""
    check_folders(src_dir, dst_dir)
    jobs, taken = [], {}
    for rel in rels:
        src = osp.join(src_dir, rel)
        dst = osp.join(dst_dir, out_name(rel))
        real = osp.realpath(dst)
        if real in taken:
            raise PrepareError(f'{taken[real]!r} and {rel!r} would both be '
                               f'written to {dst!r}; rename one')
        taken[real] = rel
        jobs.append((src, dst))
    sources = {osp.realpath(src): src for src, _ in jobs}
    for src, dst in jobs:
        hit = sources.get(osp.realpath(dst))
        if hit is not None or same_file(dst, src):
            raise PrepareError(
                f'output {dst!r} is the source {hit or src!r}: choose '
                'another output folder (sources are never written over)')
    return jobs


def list_lines(rows: Sequence[Sequence[str]]) -> List[str]:
    """The output folder's list lines: each row with the output name."""
    return [' '.join([out_name(row[0]), *row[1:]]) + '\n' for row in rows]


def check_list_path(path: str, lines: Sequence[str]) -> None:
    """Refuse an existing list unless it holds exactly ``lines`` (an
    earlier, complete run's)."""
    if not osp.lexists(path):
        return
    with contextlib.suppress(OSError, UnicodeDecodeError), open(
            path, encoding='utf-8') as f:
        if f.readlines() == list(lines):
            return
    raise PrepareError(f'annotation list {path!r} exists (never written '
                       'over): remove it or give another --out-list')


def write_list(path: str, lines: Sequence[str]) -> bool:
    """Write the list unless a file of that name exists; whether written."""
    if osp.lexists(path):
        return False
    with atomic_write(path, 'w') as f:
        f.writelines(lines)
    return True


def _frames(container, scale: Optional[int],
            size: Optional[Tuple[int, int]]) -> Iterator[np.ndarray]:
    """The frames as displayed, resized, BGR; ValueError for damage."""
    import av
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1  # one process per core
    target = None
    try:
        for frame in container.decode(stream):
            if frame.is_corrupt:
                raise ValueError(f'damaged frame at time stamp {frame.pts}')
            turns = display_turns(frame)  # as the readers turn it
            if target is None:
                shown = ((frame.height, frame.width) if turns % 2 else
                         (frame.width, frame.height))
                width, height = output_size(*shown, scale, size)
                target = (height, width) if turns % 2 else (width, height)
            image = convert(frame, width=target[0], height=target[1],
                            format='bgr24')
            yield np.ascontiguousarray(np.rot90(image, turns)) if turns \
                else image
    except av.error.FFmpegError as error:
        raise ValueError(f'damaged data ({error})') from None


def check_output(src: str, dst: str) -> str:
    """Why ``dst`` is not a good copy of ``src`` (it must decode whole,
    with the source's frame count and duration), or ``''``."""
    import av
    try:
        source = video_index(src)
    except Exception as error:  # PyAV's errors, not one video stream
        return f'the source cannot be indexed ({error})'
    try:
        count = 0
        with av.open(dst) as container:
            for frame in container.decode(video=0):
                if frame.is_corrupt:
                    raise ValueError(f'damaged frame at {frame.pts}')
                count += 1
        output = video_index(dst)
    except Exception as error:  # PyAV's errors, damaged data
        return f'the output does not decode ({error})'
    allowed = max(1, round(TOLERANCE * source['count']))
    if abs(count - source['count']) > allowed:
        return f'the output has {count} frames, the source {source["count"]}'
    if source['times'] and output['times'] and source['count']:
        src_s, out_s = source['times'][-1], output['times'][-1]
        if abs(out_s - src_s) > TOLERANCE * src_s + src_s / source['count']:
            return f'the output lasts {out_s:.2f} s, the source {src_s:.2f} s'
    return ''


def _remove_stale_temps(dst: str) -> None:
    """Remove temporary files of ``dst`` whose process is gone."""
    folder, name = osp.split(dst)
    for tmp in glob.glob(osp.join(glob.escape(folder),
                                  f'.{glob.escape(name)}.*.tmp{OUT_EXT}')):
        pid = tmp[len(osp.join(folder, f'.{name}.')):].split('.')[0]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            os.remove(tmp)
        except (ValueError, OSError):
            pass  # not ours, or a process we may not signal: leave it


def prepare_one(src: str, dst: str, scale: Optional[int] = None,
                size: Optional[Tuple[int, int]] = None,
                gop: Optional[int] = DENSE_GOP, crf: int = 23,
                preset: str = 'medium') -> Tuple[str, str]:
    """Prepare one video, or skip it when ``dst`` is already a good copy:
    ``('done' | 'skipped' | 'failed', reason)``. ``scale``, ``size`` as
    for :func:`output_size`; ``gop``: a key frame exactly every ``gop``
    frames, or libx264's choice for None."""
    import av
    options = dict(crf=str(crf), preset=preset)
    if gop:
        options.update(g=str(gop), keyint_min=str(gop), sc_threshold='0')
    if osp.exists(dst) and not check_output(src, dst):
        return 'skipped', ''
    try:
        os.makedirs(osp.dirname(dst) or '.', exist_ok=True)
        _remove_stale_temps(dst)
        with av.open(src) as container:
            if not container.streams.video:
                return 'failed', 'no video stream'
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            if not rate:
                return 'failed', 'no frame rate'
            write_pyav(dst, _frames(container, scale, size),
                       Fraction(rate), options=options, threads=1)
    except Exception as error:  # the reason is listed; the run goes on
        return 'failed', str(error).splitlines()[0] or type(error).__name__
    reason = check_output(src, dst)
    if reason:
        os.remove(dst)  # never leave a copy that failed its check
        return 'failed', reason
    return 'done', ''
