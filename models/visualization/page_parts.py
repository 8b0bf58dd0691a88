"""What the two report pages share: escaping, the video's URL as seen from
the page, embedded thumbnails, the model line, the failure list, the page
frame with its style.

Every piece of text that comes from the user (file names, queries, error
messages) goes through :func:`esc`; scripts read only numbers and text
from ``data-`` attributes (never markup), so no user text can become
code.
"""
import html
import json
import os
import os.path as osp
import pathlib
import urllib.parse
from typing import Iterable, Sequence, Tuple

from models.visualization.frames import (FrameReadError, data_uri, jpeg_bytes,
                                         read_frames_at)


def esc(value: object) -> str:
    """Text as HTML, quotes included (safe in elements and attributes).

    Args:
        value (object): Anything; ``str()`` of it is escaped.

    Returns:
        str: The escaped text.
    """
    return html.escape(str(value), quote=True)


def video_url(video: str, page: str) -> str:
    """The ``src`` of a video as seen from the page: relative to the
    page's folder, percent-encoded; ``file://`` and absolute where no
    relative path exists (another drive on Windows).

    Args:
        video (str): The video file, absolute or relative to the current
            folder.
        page (str): The page file.

    Returns:
        str: The URL (not yet HTML-escaped).
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


def model_line(model: object) -> str:
    """The model a document names, as escaped HTML.

    Args:
        model (object): The document's ``model`` (``LoadedModel.describe()``
            : a dict), or anything else.

    Returns:
        str: ``key: value`` pairs, escaped.
    """
    if not isinstance(model, dict):
        return esc(model) if model else 'not recorded'
    parts = []
    for key, value in model.items():
        if not isinstance(value, (str, int, float)):
            value = json.dumps(value, ensure_ascii=False, default=str)
        parts.append(f'<span class="kv"><b>{esc(key)}</b> {esc(value)}'
                     '</span>')
    return ' '.join(parts) or 'not recorded'


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


def failures_section(failures: object) -> str:
    """The list of videos that could not be read ('' when none).

    Args:
        failures (object): The document's ``failures``.

    Returns:
        str: An HTML section.
    """
    pairs = failure_items(failures)
    if not pairs:
        return ''
    items = '\n'.join(
        f'<li><span class="path">{esc(video)}</span>: {esc(message)}</li>'
        for video, message in pairs)
    return (f'<section class="failures"><h2>{len(pairs)} video'
            f'{"s" if len(pairs) != 1 else ""} could not be read</h2>\n'
            f'<ul>\n{items}\n</ul></section>')


#: Style of both pages.
STYLE = '''
:root { --ink: #1d2330; --muted: #667085; --line: #e4e7ec;
        --hover: #f2f6fc; --accent: #1f6feb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI",
       "DejaVu Sans", sans-serif; color: var(--ink); background: #fafbfc; }
header { padding: 14px 22px 10px; background: #fff;
         border-bottom: 1px solid var(--line); }
h1 { font-size: 20px; margin: 0 0 6px; }
h2 { font-size: 16px; margin: 0 0 4px; word-break: break-all; }
.meta, .path, small { color: var(--muted); }
.path { font-family: ui-monospace, "DejaVu Sans Mono", monospace;
        font-size: 12px; word-break: break-all; }
.kv { margin-right: 14px; white-space: nowrap; }
.kv b { font-weight: 600; color: var(--muted); }
main { padding: 14px 22px; }
section { background: #fff; border: 1px solid var(--line);
          border-radius: 8px; padding: 14px 16px; margin-bottom: 16px; }
.swatch { display: inline-block; width: 11px; height: 11px;
          border-radius: 2px; margin: 0 5px 0 10px; vertical-align: -1px; }
td .swatch { margin-left: 0; }
.player video, .preview video { width: 100%; background: #111;
    border-radius: 4px; display: block; aspect-ratio: 16 / 9; }
.video-error { color: #b42318; background: #fef3f2; padding: 6px 8px;
               border-radius: 4px; margin: 6px 0 0;
               overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; }
th { text-align: left; font-weight: 600; color: var(--muted);
     border-bottom: 1px solid var(--line); padding: 4px 6px; }
td { border-bottom: 1px solid var(--line); padding: 4px 6px;
     vertical-align: middle; }
tr.clickable { cursor: pointer; }
tr.clickable:hover, tr.clickable:focus { background: var(--hover);
                                         outline: none; }
tr.playing { background: #e7f0fe; box-shadow: inset 3px 0 var(--accent); }
td img { display: block; border-radius: 3px; }
.frames { display: flex; gap: 3px; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.missing { color: #b42318; font-size: 12px; }
.failures li { margin: 3px 0; }
.failures h2 { color: #b42318; }
'''


def page(title: str,
         header: str,
         body: str,
         script: str,
         style: str = '') -> str:
    """A whole self-contained page.

    Args:
        title (str): The ``<title>``, escaped here.
        header (str): HTML of the header (already escaped).
        body (str): HTML of the main part (already escaped).
        script (str): The page's script (no user text in it).
        style (str): CSS of this page, after the shared :data:`STYLE`.

    Returns:
        str: The document.
    """
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n'
            '<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, '
            'initial-scale=1">\n'
            f'<title>{esc(title)}</title>\n<style>{STYLE}{style}</style>\n'
            f'</head>\n<body>\n<header>{header}</header>\n'
            f'<main>\n{body}\n</main>\n<script>{script}</script>\n'
            '</body>\n</html>\n')


def write_page(text: str, path: str) -> str:
    """Write a page atomically (``models/utils/safe_io.py``).

    Args:
        text (str): The document.
        path (str): ``.html`` or ``.htm`` file.

    Returns:
        str: ``path``.
    """
    from models.utils.safe_io import atomic_write
    if osp.splitext(str(path))[1].lower() not in ('.html', '.htm'):
        raise ValueError(f'Page {path!r}: end the name with .html')
    with atomic_write(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path
