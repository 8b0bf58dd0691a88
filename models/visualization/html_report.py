"""The report pages: one self-contained HTML file each (style and script
inline, thumbnails and the timeline embedded as data URIs, nothing fetched
from a network).

* :func:`write_moments_page`: ``tools/find_moments.py``'s document, a
  section per video: a ``<video>`` of the file (its URL relative to the
  page), a strip of the found segments under it, the timeline picture,
  and a row per segment (frames at start, peak and end) that seeks the
  video to the segment and plays it, pausing at its end.
* :func:`write_ranking_page`: ``tools/search_videos.py``'s ``--out``
  JSON document: the query, the ranked videos with their middle frame and
  similarity; a click previews the video.

The video itself is not embedded: the page plays the file where it lies,
so moving the page without the videos breaks the players (and the page
says so), not the rest.
"""
import math
import os.path as osp

from models.visualization.document import (check_video_result, clock,
                                           duration_of, query_colour,
                                           segment_rows, video_name)
from models.visualization.frames import (FrameReadError, data_uri,
                                         video_rate_and_length)
from models.visualization.page_parts import (esc, failures_section, model_line,
                                             page, thumbnails, video_url,
                                             write_page)
from models.visualization.timeline import render_timeline

#: Frames shown per segment row: start, peak, end.
ROW_FRAMES = 3

# Reads numbers and text from data- attributes only; text is set with
# textContent, never parsed as markup.
_SCRIPT_COMMON = r'''
function clock(s) {
  var t = Math.round(Math.max(0, s) * 10), f = t % 10;
  t = (t - f) / 10;
  var h = Math.floor(t / 3600), m = Math.floor(t / 60) % 60, x = t % 60;
  var ss = (x < 10 ? '0' : '') + x + '.' + f;
  return h ? h + ':' + (m < 10 ? '0' : '') + m + ':' + ss : m + ':' + ss;
}
var MEDIA_ERRORS = {1: 'loading was aborted', 2: 'a network error',
  3: 'the file could not be decoded',
  4: 'the file is missing there, or its codec is not one browsers play ' +
     '(MPEG-4 Part 2 "mp4v" is not; H.264 and WebM are)'};
function watchErrors(video, box) {
  video.addEventListener('error', function () {
    var code = video.error ? video.error.code : 0;
    box.textContent = 'This browser cannot play ' +
      (video.dataset.name || 'the video') + ' from ' +
      decodeURIComponent(video.getAttribute('src')) + ': ' +
      (MEDIA_ERRORS[code] || 'unknown error') +
      '. The times on this page still hold: open the file in a player.';
    box.hidden = false;
  });
}
'''

_MOMENTS_SCRIPT = _SCRIPT_COMMON + r'''
document.querySelectorAll('section.video').forEach(function (section) {
  var video = section.querySelector('video');
  var strip = section.querySelector('.strip');
  var head = strip.querySelector('.head');
  var duration = parseFloat(section.dataset.duration);
  var rows = Array.prototype.slice.call(section.querySelectorAll('tr.seg'));
  var stopAt = null;
  if (video) watchErrors(video, section.querySelector('.video-error'));
  function play(row) {
    if (!video) return;
    var start = parseFloat(row.dataset.start);
    stopAt = parseFloat(row.dataset.end);
    video.currentTime = start;
    var started = video.play();
    if (started && started.catch) started.catch(function () {});
  }
  rows.forEach(function (row) {
    row.addEventListener('click', function () { play(row); });
    row.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        play(row);
      }
    });
    if (!(duration > 0)) return;
    var start = parseFloat(row.dataset.start);
    var end = parseFloat(row.dataset.end);
    var mark = document.createElement('span');
    mark.className = 'mark';
    mark.style.left = (100 * start / duration) + '%';
    mark.style.width = Math.max(0.5, 100 * (end - start) / duration) + '%';
    mark.style.top = (4 + 9 * parseInt(row.dataset.lane, 10)) + 'px';
    mark.style.background = row.dataset.colour;
    mark.title = row.dataset.label + ' #' + row.dataset.rank + ': ' +
      clock(start) + '\u2013' + clock(end);
    mark.addEventListener('click', function () { play(row); });
    strip.appendChild(mark);
  });
  if (!video) return;
  video.addEventListener('timeupdate', function () {
    var now = video.currentTime;
    if (stopAt !== null && now >= stopAt) { video.pause(); stopAt = null; }
    if (duration > 0) head.style.left = (100 * now / duration) + '%';
    rows.forEach(function (row) {
      var inside = now >= parseFloat(row.dataset.start) &&
                   now < parseFloat(row.dataset.end);
      row.classList.toggle('playing', inside);
    });
  });
  video.addEventListener('seeking', function () {
    if (stopAt !== null && video.currentTime > stopAt + 0.5) stopAt = null;
  });
});
document.body.dataset.ready = 'yes';
'''

_MOMENTS_STYLE = '''
.layout { display: grid; grid-template-columns: minmax(320px, 480px) 1fr;
          gap: 16px; align-items: start; margin-top: 8px; }
.segments-box { max-height: 460px; overflow-y: auto; }
.strip { position: relative; background: #f0f2f5; border-radius: 3px;
         margin-top: 6px; }
.strip .mark { position: absolute; height: 7px; border-radius: 2px;
               cursor: pointer; opacity: 0.85; }
.strip .head { position: absolute; top: 0; bottom: 0; width: 2px;
               background: var(--ink); left: 0; }
.timeline { width: 100%; max-width: 1200px; display: block;
            margin-top: 12px; }
.none { color: var(--muted); margin: 6px 0 0; }
@media (max-width: 820px) { .layout { grid-template-columns: 1fr; } }
'''


def _lanes(rows: list) -> int:
    return max([row['query_index'] for row in rows], default=-1) + 1


def _moments_section(number: int, video_result: dict, queries: list, threshold,
                     score_name, page_path: str) -> str:
    """One video's section of the moments page."""
    video = str(video_result.get('video', '?'))
    name = video_name(video_result)
    header = (f'<h2>{esc(name)}</h2>\n<div class="path">{esc(video)}</div>')
    try:
        check_video_result(video_result, queries)
    except ValueError as error:
        return (f'<section class="video" id="video-{number}" '
                f'data-duration="0">{header}<p class="missing">{esc(error)}'
                '</p><div class="strip"><span class="head"></span></div>'
                '</section>')
    rows = segment_rows(video_result, queries)
    duration = duration_of(video_result)
    fps, num_frames = video_result.get('fps'), video_result.get('num_frames')
    times = [
        t for row in rows
        for t in (row['start_s'], row['peak_s'], row['end_s'])
    ]
    first = rows[0]['peak_s'] if rows else duration / 2
    frames, problem = thumbnails(video, times, fps, num_frames, 160)
    # The player's still before it plays (and where it cannot play).
    posters, poster_problem = thumbnails(video, [first], fps, num_frames,
                                         320)
    poster = posters[0] if posters else ''
    problem = problem or poster_problem
    facts = [
        f'{clock(duration)} long' if duration else '',
        f'{fps:g} frames/s' if isinstance(fps, (int, float)) else '',
        f'{len(video_result["windows"])} windows',
    ]
    header += f'<div class="meta">{esc(", ".join(f for f in facts if f))}'
    header += '</div>'

    table = []
    for i, row in enumerate(rows):
        cells = frames[ROW_FRAMES * i:ROW_FRAMES * (i + 1)]
        shown = ''.join(
            f'<img src="{uri}" alt="frame at {esc(clock(t))}" '
            f'title="{esc(clock(t))}" height="68">'
            for uri, t in zip(cells, (row['start_s'], row['peak_s'],
                                      row['end_s'])))
        colour = query_colour(row['query_index'])
        table.append(
            f'<tr class="seg clickable" tabindex="0" '
            f'data-start="{row["start_s"]!r}" data-end="{row["end_s"]!r}" '
            f'data-lane="{row["query_index"]}" data-rank="{row["rank"]}" '
            f'data-colour="{colour}" data-label="{esc(row["query"])}">'
            f'<td><span class="swatch" style="background:{colour}"></span>'
            f'{esc(row["query"])}</td><td class="num">{row["rank"]}</td>'
            f'<td class="num">{esc(clock(row["start_s"]))}</td>'
            f'<td class="num">{esc(clock(row["end_s"]))}</td>'
            f'<td class="num">{row["score"]:.3f}</td>'
            f'<td><div class="frames">{shown}</div></td></tr>')
    found = {row['query'] for row in rows}
    none = ''.join(f'<p class="none">{esc(q)}: no segment found</p>'
                   for q in queries if q not in found)
    if problem:
        none += f'<p class="missing">No frames: {esc(problem)}</p>'
    segments = ('<table><tr><th>query</th><th>#</th><th>start</th>'
                '<th>end</th><th>score</th><th>start, peak, end</th></tr>' +
                '\n'.join(table) + '</table>') if table else ''

    try:
        png = render_timeline(video_result, queries, threshold, score_name)
    except ValueError as error:  # no windows
        picture = f'<p class="missing">No timeline: {esc(error)}</p>'
    else:
        picture = (f'<img class="timeline" alt="timeline of {esc(name)}" '
                   f'src="{data_uri(png, "image/png")}">')
    src = video_url(video, page_path)
    lanes = max(1, _lanes(rows))
    poster_attr = f' poster="{poster}"' if poster else ''
    player = (f'<video controls preload="metadata" src="{esc(src)}" '
              f'data-name="{esc(name)}"{poster_attr}></video>'
              '<p class="video-error" hidden></p>'
              f'<div class="strip" style="height:{6 + 9 * lanes}px" '
              'title="found segments; click one to play it">'
              '<span class="head"></span></div>')
    return (f'<section class="video" id="video-{number}" '
            f'data-duration="{duration!r}">{header}\n'
            f'<div class="layout"><div class="player">{player}</div>'
            f'<div class="segments-box">{segments}{none}</div></div>\n'
            f'{picture}</section>')


def moments_page(result: dict, path: str) -> str:
    """The moments page of a result document, as text.

    Args:
        result (dict): ``tools/find_moments.py``'s document.
        path (str): Where the page will be written (video URLs are made
            relative to it).

    Returns:
        str: The HTML document.
    """
    if not isinstance(result, dict) or 'videos' not in result:
        raise ValueError('The moments page needs find_moments\' result '
                         'document (a dict with "videos" and "queries")')
    queries = [str(q) for q in result.get('queries') or []]
    threshold = result.get('threshold')
    if isinstance(threshold, (int, float)) and not math.isfinite(threshold):
        raise ValueError(f'The document\'s threshold is {threshold!r}')
    score_name = result.get('score')
    legend = ''.join(
        f'<span class="swatch" style="background:{query_colour(i)}"></span>'
        f'{esc(q)}' for i, q in enumerate(queries))
    settings = [
        ('window', f'{result.get("window_s")} s'),
        ('stride', f'{result.get("stride_s")} s'),
        ('score', score_name),
        ('threshold', threshold),
    ]
    header = ('<h1>Moments</h1>'
              f'<div class="queries">{legend}</div>'
              '<div class="meta">' +
              ' '.join(f'<span class="kv"><b>{esc(k)}</b> {esc(v)}</span>'
                       for k, v in settings if v is not None) +
              f' {model_line(result.get("model"))}</div>')
    videos = result.get('videos') or []
    sections = [
        _moments_section(i, v, queries, threshold, score_name, path)
        for i, v in enumerate(videos)
    ]
    if not videos:
        sections.append('<section><p class="none">No video was scored.</p>'
                        '</section>')
    sections.append(failures_section(result.get('failures')))
    body = '\n'.join(s for s in sections if s)
    title = 'Moments: ' + ', '.join(queries)
    return page(title, header, body, _MOMENTS_SCRIPT, _MOMENTS_STYLE)


def write_moments_page(result: dict, path: str) -> str:
    """Write the report page of a find_moments result (atomically).

    Args:
        result (dict): ``tools/find_moments.py``'s document (see
            ``docs/reports.md``).
        path (str): The ``.html`` file to write.

    Returns:
        str: ``path``.
    """
    return write_page(moments_page(result, path), path)


_RANKING_SCRIPT = _SCRIPT_COMMON + r'''
var preview = document.querySelector('.preview video');
var caption = document.querySelector('.preview .now');
var rows = Array.prototype.slice.call(document.querySelectorAll('tr.result'));
if (preview) watchErrors(preview, document.querySelector('.video-error'));
var values = rows.map(function (r) {
  return parseFloat(r.dataset.similarity);
});
var low = Math.min.apply(null, values), high = Math.max.apply(null, values);
function choose(row, start) {
  rows.forEach(function (r) { r.classList.toggle('playing', r === row); });
  document.querySelector('.video-error').hidden = true;
  preview.dataset.name = row.dataset.name;
  preview.setAttribute('src', row.dataset.src);
  var thumb = row.querySelector('img');
  if (thumb) preview.setAttribute('poster', thumb.src);
  caption.textContent = '#' + row.dataset.rank + '  ' + row.dataset.name;
  if (start) {
    var started = preview.play();
    if (started && started.catch) started.catch(function () {});
  }
}
rows.forEach(function (row, i) {
  var bar = document.createElement('span');
  bar.className = 'bar';
  var share = high > low ? (values[i] - low) / (high - low) : 1;
  bar.style.width = Math.round(8 + 72 * share) + 'px';
  row.querySelector('.similarity').prepend(bar);
  row.addEventListener('click', function () { choose(row, true); });
  row.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      choose(row, true);
    }
  });
});
if (rows.length && preview) choose(rows[0], false);
document.body.dataset.ready = 'yes';
'''

_RANKING_STYLE = '''
.layout { display: grid; grid-template-columns: 1fr minmax(320px, 480px);
          gap: 16px; align-items: start; }
.preview { position: sticky; top: 12px; }
.preview .now { margin: 6px 0 0; word-break: break-all; }
.similarity { white-space: nowrap; }
.bar { display: inline-block; height: 9px; background: var(--accent);
       border-radius: 2px; margin-right: 8px; opacity: 0.7; }
@media (max-width: 820px) { .layout { grid-template-columns: 1fr; } }
'''


def _middle_thumbnail(video: str) -> tuple:
    """The data URI of a video's middle frame, and why it is missing."""
    try:
        fps, count = video_rate_and_length(video)
    except FrameReadError as error:
        return '', str(error)
    uris, problem = thumbnails(video, [count / 2 / fps], fps, count, 240)
    return (uris[0] if uris else ''), problem


def ranking_page(ranking: dict, path: str) -> str:
    """The page of a search_videos ranking, as text.

    Args:
        ranking (dict): ``tools/search_videos.py``'s ``--out`` JSON
            document: ``query``, ``model``, ``results`` (``rank``,
            ``video``, ``similarity``), ``failures``.
        path (str): Where the page will be written.

    Returns:
        str: The HTML document.
    """
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
        uri, problem = _middle_thumbnail(video)
        name = osp.basename(video)
        picture = (f'<img src="{uri}" alt="middle frame of {esc(name)}" '
                   'height="90">' if uri else
                   f'<span class="missing">no thumbnail: {esc(problem)}'
                   '</span>')
        rows.append(
            f'<tr class="result clickable" tabindex="0" '
            f'data-rank="{int(result["rank"])}" '
            f'data-src="{esc(video_url(video, path))}" '
            f'data-name="{esc(name)}" data-similarity="{similarity!r}">'
            f'<td class="num">{int(result["rank"])}</td><td>{picture}</td>'
            f'<td class="num similarity">{similarity:.4f}</td>'
            f'<td>{esc(name)}<div class="path">{esc(video)}</div></td></tr>')
    header = (f'<h1>Search: {esc(query)}</h1><div class="meta">'
              f'<span class="kv"><b>videos ranked</b> {len(rows)}</span>'
              '<span class="kv"><b>score</b> cosine similarity</span>'
              f'{model_line(ranking.get("model"))}</div>')
    if rows:
        table = ('<table><tr><th>#</th><th>middle frame</th>'
                 '<th>similarity</th><th>video</th></tr>\n' + '\n'.join(rows) +
                 '</table>')
        body = (f'<div class="layout"><section>{table}</section>'
                '<section class="preview"><video controls '
                'preload="metadata"></video><p class="video-error" hidden>'
                '</p><p class="now"></p><small>Click a row to play '
                'it.</small></section></div>')
    else:
        body = '<section><p>No video was ranked.</p></section>'
    body += failures_section(ranking.get('failures'))
    return page(f'Search: {query}', header, body, _RANKING_SCRIPT,
                _RANKING_STYLE)


def write_ranking_page(ranking: dict, path: str) -> str:
    """Write the page of a search_videos ranking (atomically).

    Args:
        ranking (dict): ``tools/search_videos.py``'s ``--out`` JSON
            document.
        path (str): The ``.html`` file to write.

    Returns:
        str: ``path``.
    """
    return write_page(ranking_page(ranking, path), path)
