"""What the two report pages share: templates, video URLs, thumbnails,
the failure list, the atomic write. Autoescaping is on, and the scripts
read only ``data-`` attributes: no user text can become code.
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
    """Text and numbers as they are, anything else as JSON."""
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
    """The page of ``templates/<template>`` with ``context``, escaped."""
    return _environment().get_template(template).render(**context)


def video_url(video: str, page: str) -> str:
    """The ``src`` of a video from the page: relative, percent-encoded;
    a ``file://`` URI where no relative path exists (another drive)."""
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
    """JPEG data URIs of frames (:func:`read_frames_at`), and why they
    are missing ('' when present; no URIs then)."""
    if not times_s:
        return [], ''
    try:
        frames = read_frames_at(video, times_s, fps, num_frames, max_side)
    except FrameReadError as error:
        return [], str(error)
    return [data_uri(jpeg_bytes(f), 'image/jpeg') for f in frames], ''


def failure_items(failures: object) -> Iterable[Tuple[str, str]]:
    """``(video, message)`` pairs of a dict (find_moments) or list of
    ``{video, error}`` (search_videos) of failures."""
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
    """Write ``text`` to the ``.html``/``.htm`` file ``path`` atomically."""
    from models.utils.safe_io import atomic_write
    if osp.splitext(str(path))[1].lower() not in ('.html', '.htm'):
        raise ValueError(f'Page {path!r}: end the name with .html')
    with atomic_write(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path
