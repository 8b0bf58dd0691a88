"""The find_moments result document for the pictures and pages: checks,
clock times and query colours. Only the standard library."""
import math
import os.path as osp
from typing import Dict, List, Sequence

#: Query colours: matplotlib's tab10, then tab20's light shades.
COLOURS = ('#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b',
           '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#aec7e8', '#ffbb78',
           '#98df8a', '#ff9896', '#c5b0d5', '#c49c94', '#f7b6d2', '#c7c7c7',
           '#dbdb8d', '#9edae5')


def query_colour(index: int) -> str:
    """The ``#rrggbb`` colour of the ``index``-th query."""
    return COLOURS[index % len(COLOURS)]


def video_name(video_result: dict) -> str:
    """The video's file name, for titles."""
    return osp.basename(str(video_result.get('video', '?'))) or '?'


def check_video_result(video_result: dict, queries: Sequence[str]) -> None:
    """A ValueError naming the video and query for a result the pictures
    could only show wrong: windows and scores unlike in number, a score or
    time not finite, or one of ``queries`` without scores."""
    name = video_result.get('video', '?')
    windows = video_result.get('windows')
    scores = video_result.get('scores')
    if not isinstance(windows, list) or not isinstance(scores, dict):
        raise ValueError(f'The result of video {name!r} has no "windows" '
                         'list or "scores" table: is it find_moments '
                         'output?')
    for window in windows:
        if (len(window) != 2
                or not all(math.isfinite(float(t)) for t in window)):
            raise ValueError(f'Video {name!r}: window {window!r} is not a '
                             '[start_s, end_s] pair of finite times')
    for query in queries:
        if query not in scores:
            raise ValueError(f'Video {name!r} has no scores for query '
                             f'{query!r}; its queries are '
                             f'{sorted(scores)!r}')
        values = scores[query]
        if len(values) != len(windows):
            raise ValueError(
                f'Video {name!r}, query {query!r}: {len(values)} scores '
                f'for {len(windows)} windows; the result is inconsistent')
        bad = [i for i, v in enumerate(values)
               if v is None or not math.isfinite(float(v))]
        if bad:
            raise ValueError(
                f'Video {name!r}, query {query!r}: score of window {bad[0]}'
                f' is {values[bad[0]]!r} ({len(bad)} not finite); the '
                'model gave no usable score, nothing to show')
        for segment in video_result.get('segments', {}).get(query, []):
            times = [segment.get(key) for key in ('start_s', 'end_s', 'score')]
            if not all(isinstance(t, (int, float)) and math.isfinite(t)
                       for t in times):
                raise ValueError(f'Video {name!r}, query {query!r}: '
                                 f'segment {segment!r} has a missing or '
                                 'non-finite start_s, end_s or score')


def duration_of(video_result: dict) -> float:
    """``duration_s``, else the end of the last window, else 0.0."""
    duration = video_result.get('duration_s')
    if isinstance(duration, (int, float)) and math.isfinite(duration) \
            and duration > 0:
        return float(duration)
    ends = [float(w[1]) for w in video_result.get('windows') or []]
    return max(ends, default=0.0)


def clock(seconds: float, decimals: int = 1) -> str:
    """``0:12.5``, ``1:02:05.0`` (``decimals`` digits), ``-`` if negative."""
    sign = '-' if seconds < 0 else ''
    scale = 10**decimals
    # Rounded once, in whole units of the last digit: 59.96 s is 1:00.0.
    units = int(round(abs(seconds) * scale))
    whole, fraction = divmod(units, scale)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    tail = f'.{fraction:0{decimals}d}' if decimals else ''
    if hours:
        return f'{sign}{hours}:{minutes:02d}:{secs:02d}{tail}'
    return f'{sign}{minutes}:{secs:02d}{tail}'


def segment_rows(video_result: dict,
                 queries: Sequence[str]) -> List[Dict[str, object]]:
    """Each query's segments, best first, as rows: ``query``,
    ``query_index``, ``rank`` (from 1), ``start_s``, ``end_s``, ``score``,
    ``peak_s`` (the middle when the document gives no peak)."""
    rows = []
    segments = video_result.get('segments') or {}
    for index, query in enumerate(queries):
        for rank, segment in enumerate(segments.get(query) or [], 1):
            start, end = float(segment['start_s']), float(segment['end_s'])
            peak = segment.get('peak_s')
            if not isinstance(peak, (int, float)) or not math.isfinite(peak):
                peak = (start + end) / 2
            rows.append(dict(query=query, query_index=index, rank=rank,
                             start_s=start, end_s=end,
                             score=float(segment['score']),
                             peak_s=float(peak)))
    return rows
