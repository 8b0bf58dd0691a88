"""The contact sheet of one video: a row per found segment (each query's
best first), ``per_segment`` frames across it (start, peak, end) under a
caption (query, start-end, score). Drawn with Pillow in matplotlib's
DejaVu Sans, which writes any query's letters, not only ASCII.
"""
import io
import os.path as osp
from typing import List, Sequence

from models.visualization.document import (check_video_result, clock,
                                           query_colour, segment_rows,
                                           video_name)
from models.visualization.frames import read_frames_at

#: Longest side of a frame on the sheet, in pixels.
THUMBNAIL = 320

#: Frames of small videos are enlarged to at least this longest side.
MIN_THUMBNAIL = 160

_PAD = 6
_CAPTION = 22
_TITLE = 30
_FONT_SIZE = 14
_BACKGROUND = (250, 250, 250)
_TEXT = (20, 20, 20)


def segment_times(start_s: float, end_s: float, peak_s: float,
                  count: int) -> List[float]:
    """The ``count`` (>= 1) times shown of a segment: 1: the peak; 2:
    start and end; 3: start, peak, end; more: evenly spaced, the middle one
    moved to the peak when ``count`` is odd."""
    if count < 1:
        raise ValueError(f'per_segment must be >= 1, got {count}')
    if count == 1:
        return [peak_s]
    step = (end_s - start_s) / (count - 1)
    times = [start_s + i * step for i in range(count)]
    if count % 2:
        times[count // 2] = peak_s
    return times


def enlarge(frame):
    """A small frame repeated pixel by pixel (no smoothing) until its
    longest side reaches :data:`MIN_THUMBNAIL`."""
    factor = -(-MIN_THUMBNAIL // max(frame.shape[:2]))
    if factor <= 1:
        return frame
    return frame.repeat(factor, axis=0).repeat(factor, axis=1)


def _font(size: int):
    import matplotlib  # a requirement: it ships the font
    from PIL import ImageFont
    return ImageFont.truetype(
        osp.join(matplotlib.get_data_path(), 'fonts', 'ttf', 'DejaVuSans.ttf'),
        size)


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + '\u2026', font=font) > width:
        text = text[:-1]
    return text + '\u2026'


def _frame_label(index: int, count: int, time_s: float) -> str:
    names = {1: ('peak', ), 3: ('start', 'peak', 'end')}.get(count)
    return f'{names[index]} {clock(time_s)}' if names else clock(time_s)


def _stamp(draw, bottom_left: tuple, text: str, font) -> None:
    """``text`` on a dark box in a frame's bottom-left corner."""
    x, bottom = bottom_left
    _, top, right, _ = draw.textbbox((x + 4, bottom), text, font=font,
                                     anchor='lb')
    draw.rectangle((x, top - 4, right + 4, bottom), fill=(0, 0, 0))
    draw.text((x + 4, bottom - 2), text, fill=(255, 255, 255), font=font,
              anchor='lb')


def render_contact_sheet(video_result: dict,
                         queries: Sequence[str],
                         per_segment: int = 3,
                         image_format: str = 'JPEG') -> bytes:
    """The ``'JPEG'`` or ``'PNG'`` bytes of :func:`write_contact_sheet`."""
    from PIL import Image, ImageDraw

    check_video_result(video_result, queries)
    rows = segment_rows(video_result, queries)
    found = {row['query'] for row in rows}
    times = [segment_times(row['start_s'], row['end_s'], row['peak_s'],
                           per_segment) for row in rows]
    video = video_result['video']
    flat = read_frames_at(video, [t for ts in times for t in ts],
                          video_result.get('fps'),
                          video_result.get('num_frames'), THUMBNAIL)
    flat = [enlarge(frame) for frame in flat]
    cell_w = max([f.shape[1] for f in flat], default=THUMBNAIL)
    cell_h = max([f.shape[0] for f in flat], default=0)
    width = max(2 * _PAD + per_segment * (cell_w + _PAD) - _PAD, 480)
    empty = [q for q in queries if q not in found]
    height = (_TITLE + len(rows) * (_CAPTION + cell_h + _PAD) +
              len(empty) * _CAPTION + _PAD)
    sheet = Image.new('RGB', (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font(_FONT_SIZE)
    title = _font(_FONT_SIZE + 2)
    small = _font(_FONT_SIZE - 3)
    draw.text((_PAD, 6), _fit(draw, f'{video_name(video_result)}: top '
                              'segments', title, width - 2 * _PAD),
              fill=_TEXT, font=title)
    y = _TITLE
    for number, (row, row_times) in enumerate(zip(rows, times)):
        colour = query_colour(row['query_index'])
        draw.rectangle((_PAD, y + 4, _PAD + 10, y + 16), fill=colour)
        caption = (f'{row["query"]}  #{row["rank"]}  '
                   f'{clock(row["start_s"])}\u2013{clock(row["end_s"])}  '
                   f'score {row["score"]:.3f}')
        draw.text((_PAD + 16, y + 2),
                  _fit(draw, caption, font, width - 2 * _PAD - 16),
                  fill=_TEXT, font=font)
        y += _CAPTION
        for i in range(per_segment):
            frame = flat[number * per_segment + i]
            x = _PAD + i * (cell_w + _PAD)
            sheet.paste(Image.fromarray(frame), (x, y))
            _stamp(draw, (x, y + frame.shape[0]),
                   _frame_label(i, per_segment, row_times[i]), small)
        y += cell_h + _PAD
    for query in empty:
        draw.text((_PAD, y + 2), _fit(draw, f'{query}: no segment found',
                                      font, width - 2 * _PAD),
                  fill=(110, 110, 110), font=font)
        y += _CAPTION
    buffer = io.BytesIO()
    if image_format == 'JPEG':
        sheet.save(buffer, format='JPEG', quality=85)
    else:
        sheet.save(buffer, format='PNG', optimize=True)
    return buffer.getvalue()


def write_contact_sheet(video_result: dict,
                        path: str,
                        per_segment: int = 3,
                        queries: Sequence[str] = None) -> str:
    """Write the contact sheet of one video (atomically); returns ``path``.

    Args:
        video_result (dict): One entry of the result document's ``videos``.
        path (str): ``.jpg``, ``.jpeg`` or ``.png`` file to write.
        per_segment (int): Frames per segment (:func:`segment_times`).
        queries (list[str], optional): In the document's order (their
            colours); default: ``video_result['scores']``'s.

    Raises:
        FrameReadError: When the video cannot be read (named).
        ValueError: An unknown image extension or inconsistent result.
    """
    from models.utils.safe_io import atomic_write
    ext = osp.splitext(str(path))[1].lower()
    formats = {'.jpg': 'JPEG', '.jpeg': 'JPEG', '.png': 'PNG'}
    if ext not in formats:
        raise ValueError(f'Contact sheet {path!r}: unknown image format '
                         f'{ext or "(none)"}; end the name with .jpg or '
                         '.png')
    if queries is None:
        queries = list(video_result.get('scores') or {})
    data = render_contact_sheet(video_result, queries, per_segment,
                                formats[ext])
    with atomic_write(path, 'wb') as f:
        f.write(data)
    return path
