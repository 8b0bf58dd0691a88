"""The timeline picture of one video: each query's score over time, its
found segments shaded, the threshold dashed. Drawn on matplotlib's Agg
canvas (no pyplot: no global backend or figure state is touched).
"""
import io
import math
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from models.visualization.document import (check_video_result, clock,
                                           duration_of, query_colour,
                                           video_name)

WIDTH_IN = 12.0
HEIGHT_IN = 3.6
DPI = 100

_TICK_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900,
               1800, 3600, 7200, 10800, 21600)

_LABEL_CHARS = 60


def max_pool(x: np.ndarray, y: np.ndarray, num_bins: int,
             x_max: float) -> Tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of the maximum of ``y`` (the first on ties) in each
    non-empty one of ``num_bins`` equal slices of ``[0, x_max]``, in
    order; ``x`` is increasing."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) <= num_bins:
        return x, y
    bins = np.clip((x / max(x_max, 1e-9) * num_bins).astype(np.int64), 0,
                   num_bins - 1)
    # By slice, falling value, position: each slice's first is its max.
    order = np.lexsort((np.arange(len(x)), -y, bins))
    sorted_bins = bins[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_bins[1:] != sorted_bins[:-1]
    keep = order[first]
    return x[keep], y[keep]


def time_axis(duration: float) -> Tuple[float, Callable[[float], str], str]:
    """The tick spacing (at most 12 ticks), tick label function and axis
    label of a video of ``duration`` s: seconds under two minutes, ``m:ss``
    up to an hour, ``h:mm:ss`` from an hour on."""
    step = next((s for s in _TICK_STEPS if duration / s <= 12),
                float(math.ceil(duration / 12 / 3600) * 3600))
    if duration >= 120:
        label = 'time (h:mm:ss)' if duration >= 3600 else 'time (m:ss)'
        return step, lambda s: clock(s, decimals=0), label
    decimals = 0 if step >= 1 else 1
    return step, lambda s: f'{s:.{decimals}f}', 'time (s)'


def render_timeline(video_result: dict,
                    queries: Sequence[str],
                    threshold: Optional[float] = None,
                    score_name: Optional[str] = None) -> bytes:
    """The timeline of one entry of the document's ``videos`` as PNG
    bytes, 1200 pixels wide; ``queries`` in the document's order (their
    colours), ``threshold`` dashed (default ``video_result['threshold']``,
    if any), ``score_name`` (the document's ``score``) shown above.

    Raises:
        ValueError: An inconsistent result (:func:`check_video_result`),
            or one without windows.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MultipleLocator
    from PIL import Image

    check_video_result(video_result, queries)
    windows = np.asarray(video_result['windows'], dtype=np.float64)
    if not len(windows):
        raise ValueError(f'Video {video_result.get("video")!r} has no '
                         'windows: nothing to plot')
    if threshold is None:
        threshold = video_result.get('threshold')
    duration = max(duration_of(video_result), float(windows[:, 1].max()))
    centres = windows.mean(axis=1)

    rows = max(1, math.ceil((len(queries) + 2) / 2))
    # Constrained layout keeps the legend rows under the axes.
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN + 0.2 * rows), dpi=DPI,
                 layout='constrained')
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # The highest score per pixel column (an hours-long video has thousands
    # of windows a column); max, not mean, so a short moment still shows.
    columns = int(WIDTH_IN * DPI * 0.92)
    segments = video_result.get('segments') or {}
    handles = []
    for index, query in enumerate(queries):
        colour = query_colour(index)
        x, y = max_pool(centres, video_result['scores'][query], columns,
                        duration)
        label = query if len(query) <= _LABEL_CHARS else (
            query[:_LABEL_CHARS - 1] + '\u2026')
        found = segments.get(query) or []
        handles += ax.plot(x, y, color=colour, linewidth=1.4,
                           marker='o' if len(x) <= 60 else None, markersize=3,
                           label=f'{label} ({len(found)} segment'
                           f'{"" if len(found) == 1 else "s"})')
        for segment in found:
            ax.axvspan(segment['start_s'], segment['end_s'], color=colour,
                       alpha=0.18, linewidth=0)
    if threshold is not None:
        handles.append(ax.axhline(threshold, color='0.3', linestyle='--',
                                  linewidth=1,
                                  label=f'threshold {threshold:g}'))
    handles.append(Patch(color='0.5', alpha=0.3, label='found segments'))

    ax.set_xlim(0, duration)
    step, tick_label, axis_label = time_axis(duration)
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda s, _: tick_label(s)))
    ax.set_xlabel(axis_label)
    ax.set_ylabel('score')
    if score_name:  # often a phrase: above the plot, not along the axis
        ax.set_title(f'score: {score_name}', loc='right', fontsize=9,
                     color='0.35')
    ax.grid(True, color='0.9', linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_title(video_name(video_result), fontsize=12, loc='left')
    ax.legend(handles=handles, loc='upper center',
              bbox_to_anchor=(0.5, -0.16 - 0.05 / rows), ncol=2, fontsize=9,
              frameon=False)
    fig.canvas.draw()
    picture = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3])
    # A 128-colour palette looks the same and halves the file.
    picture = picture.quantize(128, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    picture.save(buffer, format='PNG', optimize=True)
    return buffer.getvalue()


def plot_timeline(video_result: dict,
                  queries: list,
                  path: str,
                  threshold: Optional[float] = None,
                  score_name: Optional[str] = None) -> str:
    """Write :func:`render_timeline` of one video to the ``.png`` file
    ``path`` (atomically); returns ``path``."""
    from models.utils.safe_io import atomic_write
    if not str(path).lower().endswith('.png'):
        raise ValueError(f'Timeline {path!r}: the picture is a PNG; end '
                         'the name with .png')
    data = render_timeline(video_result, queries, threshold, score_name)
    with atomic_write(path, 'wb') as f:
        f.write(data)
    return path
