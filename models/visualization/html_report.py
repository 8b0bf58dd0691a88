"""The report pages of ``tools/find_moments.py`` (:func:`write_moments_page`)
and ``tools/search_videos.py`` (:func:`write_ranking_page`): each one
self-contained HTML file from the Jinja templates of ``templates/``,
thumbnails and timeline embedded, the videos played where they lie (a URL
relative to the page). Autoescaping is on, and the scripts read only
``data-`` attributes: no user text can become code.
"""
import functools
import json
import math
import os
import os.path as osp
import pathlib
import urllib.parse
from typing import Iterable, Sequence, Tuple

import jinja2

from models.datasets.pyav_frames import frame_times
from models.visualization.document import (check_video_result, clock,
                                           duration_of, query_colour,
                                           segment_rows, video_name)
from models.visualization.frames import (FrameReadError, data_uri, jpeg_bytes,
                                         read_frames_at, video_rate_and_length)
from models.visualization.timeline import render_timeline

ROW_FRAMES = 3
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
    return [(str(item.get('video', '?')),
             str(item.get('error', item.get('message', ''))))
            if isinstance(item, dict) else (str(item), '')
            for item in failures or []]


def write_page(text: str, path: str) -> str:
    """Write ``text`` to the ``.html``/``.htm`` file ``path`` atomically."""
    from models.utils.safe_io import atomic_write
    if osp.splitext(str(path))[1].lower() not in ('.html', '.htm'):
        raise ValueError(f'Page {path!r}: end the name with .html')
    with atomic_write(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path


def _moments_section(video_result: dict, queries: list, threshold,
                     score_name, page_path: str) -> dict:
    """What ``moments.html.j2`` shows of one video, or its ``error``."""
    video = str(video_result.get('video', '?'))
    section = dict(video=video, name=video_name(video_result), error=None)
    try:
        check_video_result(video_result, queries)
    except ValueError as error:
        section['error'] = error
        return section
    rows = segment_rows(video_result, queries)
    duration = duration_of(video_result)
    fps, num_frames = video_result.get('fps'), video_result.get('num_frames')
    times = [t for row in rows
             for t in (row['start_s'], row['peak_s'], row['end_s'])]
    first = rows[0]['peak_s'] if rows else duration / 2
    frames, problem = thumbnails(video, times, fps, num_frames, 160)
    posters, poster_problem = thumbnails(video, [first], fps, num_frames,
                                         320)
    facts = [
        f'{clock(duration)} long' if duration else '',
        f'{fps:g} frames/s' if isinstance(fps, (int, float)) else '',
        f'{len(video_result["windows"])} windows',
    ]
    for i, row in enumerate(rows):
        row['colour'] = query_colour(row['query_index'])
        row['frames'] = list(zip(frames[ROW_FRAMES * i:ROW_FRAMES * (i + 1)],
                                 (row['start_s'], row['peak_s'],
                                  row['end_s'])))
    found = {row['query'] for row in rows}
    section.update(
        duration=duration,
        facts=', '.join(f for f in facts if f),
        rows=rows,
        unfound=[q for q in queries if q not in found],
        problem=problem or poster_problem,
        poster=posters[0] if posters else '',
        src=video_url(video, page_path),
        lanes=max(1, max([r['query_index'] for r in rows], default=-1) + 1),
        timeline='',
        timeline_error='')
    try:
        png = render_timeline(video_result, queries, threshold, score_name)
    except ValueError as error:  # no windows
        section['timeline_error'] = error
    else:
        section['timeline'] = data_uri(png, 'image/png')
    return section


def moments_page(result: dict, path: str) -> str:
    """The HTML page of a find_moments document, to be written at
    ``path`` (video URLs are relative to it)."""
    if not isinstance(result, dict) or 'videos' not in result:
        raise ValueError('The moments page needs find_moments\' result '
                         'document (a dict with "videos" and "queries")')
    queries = [str(q) for q in result.get('queries') or []]
    threshold = result.get('threshold')
    if isinstance(threshold, (int, float)) and not math.isfinite(threshold):
        raise ValueError(f'The document\'s threshold is {threshold!r}')
    score_name = result.get('score')
    settings = [('window', f'{result.get("window_s")} s'),
                ('stride', f'{result.get("stride_s")} s'),
                ('score', score_name), ('threshold', threshold)]
    return render(
        'moments.html.j2',
        title='Moments: ' + ', '.join(queries),
        legend=[(q, query_colour(i)) for i, q in enumerate(queries)],
        settings=[(k, v) for k, v in settings if v is not None],
        model=result.get('model'),
        videos=[_moments_section(v, queries, threshold, score_name, path)
                for v in result.get('videos') or []],
        failures=failure_items(result.get('failures')))


def write_moments_page(result: dict, path: str) -> str:
    """Write :func:`moments_page` to the ``.html`` file ``path``
    (atomically); returns ``path``."""
    return write_page(moments_page(result, path), path)


def _middle_thumbnail(video: str) -> tuple:
    """The data URI of a video's middle frame, and why it is missing."""
    try:
        fps, count = video_rate_and_length(video)
    except FrameReadError as error:
        return '', str(error)
    # By time stamps where there are (variable frame rates).
    times = frame_times(video)
    middle = times[-1] / 2 if times is not None else count / 2 / fps
    uris, problem = thumbnails(video, [middle], fps, count, 240)
    return (uris[0] if uris else ''), problem


def ranking_page(ranking: dict, path: str) -> str:
    """The HTML page, to be written at ``path``, of a search_videos
    ``--out`` document (``query``, ``model``, ``results``, ``failures``)."""
    if not isinstance(ranking, dict) or 'results' not in ranking:
        raise ValueError('The ranking page needs search_videos\' --out '
                         'JSON document (a dict with "query" and '
                         '"results")')
    query = str(ranking.get('query', ''))
    rows = []
    for result in ranking['results']:
        video = str(result['video'])
        similarity = float(result['similarity'])
        if not math.isfinite(similarity):
            raise ValueError(f'Video {video!r} has similarity '
                             f'{similarity!r}: the ranking is not usable')
        thumbnail, problem = _middle_thumbnail(video)
        rows.append(
            dict(rank=int(result['rank']), video=video,
                 name=osp.basename(video), src=video_url(video, path),
                 similarity=similarity, thumbnail=thumbnail,
                 problem=problem))
    return render(
        'ranking.html.j2',
        title=f'Search: {query}',
        query=query,
        model=ranking.get('model'),
        rows=rows,
        failures=failure_items(ranking.get('failures')))


def write_ranking_page(ranking: dict, path: str) -> str:
    """Write :func:`ranking_page` to the ``.html`` file ``path``
    (atomically); returns ``path``."""
    return write_page(ranking_page(ranking, path), path)
