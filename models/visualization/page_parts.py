"""What the two report pages share: the templates they are rendered
from, the video's URL as seen from the page, embedded thumbnails, the
failure list, the atomic write.

The pages are Jinja templates (``templates/``) rendered with autoescaping
on: every piece of text that comes from the user (file names, queries,
error messages) is escaped where it is put in the page; the scripts read
only numbers and text from ``data-`` attributes (never markup), so no
user text can become code.
"""
import functools
import json
import os
import os.path as osp
import pathlib
import urllib.parse
from typing import Iterable, Sequence, Tuple

import jinja2

from models.visualization.document import clock
from models.visualization.frames import (FrameReadError, data_uri, jpeg_bytes,
                                         read_frames_at)

TEMPLATES = osp.join(osp.dirname(osp.abspath(__file__)), 'templates')


def _as_text(value: object) -> object:
    """A model's setting as the page shows it: text and numbers as they
    are, anything else as JSON."""
    if isinstance(value, (str, int, float)):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


@functools.lru_cache(maxsize=None)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined)
    env.filters.update(clock=clock, as_text=_as_text)
    return env


def render(template: str, **context) -> str:
    """The document of the page template of file name ``template`` in
    ``templates/``, its variables ``context`` escaped where it puts
    text."""
    return _environment().get_template(template).render(**context)


def video_url(video: str, page: str) -> str:
    """The ``src`` of a video as seen from the page: relative to the
    page's folder, percent-encoded; ``file://`` and absolute where no
    relative path exists (another drive on Windows); not yet
    HTML-escaped. ``video`` is absolute or relative to the current folder.
    """
    target = osp.abspath(video)
    try:
        relative = osp.relpath(target, osp.dirname(osp.abspath(page)))
    except ValueError:
        return pathlib.Path(target).as_uri()
    return urllib.parse.quote(relative.replace(os.sep, '/'))


def thumbnails(video: str,
               times_s: Sequence[float],
               fps: float = None,
               num_frames: int = None,
               max_side: int = 160) -> Tuple[list, str]:
    """JPEG data URIs of a video's frames at the given times.

    Args:
        video (str): The video file.
        times_s (list[float]): Times in seconds.
        fps (float, optional): The rate the times refer to.
        num_frames (int, optional): The video's frame count.
        max_side (int): Longest side of a thumbnail. Defaults to 160.

    Returns:
        tuple[list[str], str]: The URIs (empty when the video could not be
        read) and the reason they are missing ('' when present); the page
        shows that reason in their place.
    """
    if not times_s:
        return [], ''
    try:
        frames = read_frames_at(video, times_s, fps, num_frames, max_side)
    except FrameReadError as error:
        return [], str(error)
    return [data_uri(jpeg_bytes(f), 'image/jpeg') for f in frames], ''


def failure_items(failures: object) -> Iterable[Tuple[str, str]]:
    """``(video, message)`` pairs of either document's ``failures``: a dict
    (find_moments) or a list of ``{video, error}`` (search_videos)."""
    if isinstance(failures, dict):
        return [(str(k), str(v)) for k, v in failures.items()]
    pairs = []
    for item in failures or []:
        if isinstance(item, dict):
            pairs.append((str(item.get('video', '?')),
                          str(item.get('error', item.get('message', '')))))
        else:
            pairs.append((str(item), ''))
    return pairs


def write_page(text: str, path: str) -> str:
    """Write a page's ``text`` to the ``.html`` or ``.htm`` file ``path``
    atomically (``models/utils/safe_io.py``); returns ``path``."""
    from models.utils.safe_io import atomic_write
    if osp.splitext(str(path))[1].lower() not in ('.html', '.htm'):
        raise ValueError(f'Page {path!r}: end the name with .html')
    with atomic_write(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path
