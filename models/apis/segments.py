"""Neighbouring high-scoring windows merged into segments of a video.

Overlapping windows would overstate a segment: a window of 4 s every 2 s
that alone scores high says the action is somewhere in those 4 s, most
likely near their middle, and its neighbours, which share half of it,
scored low. So each moment of the video is given to the window whose
centre is nearest to it (its *cell*: from the midpoint between its centre
and the previous window's to the midpoint with the next one's; the first
cell starts at 0, the last ends at the video's end). For regular windows
that is the window's centre +- stride / 2. A segment is a run of
consecutive windows scoring at least the threshold; it spans their cells,
scores the *maximum* of its windows' scores (a long action is not
penalised for its weaker edges), and peaks at the centre of its best
window.

Example:
    >>> merge_segments([0.1, 0.9, 0.8, 0.2], [(0, 2), (1, 3), (2, 4),
    ...                 (3, 5)], duration_s=5.0, threshold=0.5)
    [{'start_s': 1.5, 'end_s': 3.5, 'score': 0.9, 'peak_s': 2.0}]
"""
import itertools
import math
from typing import Dict, List, Optional, Sequence, Tuple


def window_cells(windows: Sequence[Tuple[float, float]],
                 duration_s: float) -> List[Tuple[float, float]]:
    """``(start_s, end_s)`` of the part of the video each window (in order
    of their centres) stands for, its cell (module docstring); the cells
    tile ``[0, duration_s]``."""
    centres = [(start + end) / 2 for start, end in windows]
    bounds = [(a + b) / 2 for a, b in zip(centres, centres[1:])]
    return list(zip([0.0] + bounds, bounds + [float(duration_s)]))


def merge_segments(scores: Sequence[float],
                   windows: Sequence[Tuple[float, float]],
                   duration_s: float,
                   threshold: float,
                   topk: Optional[int] = None) -> List[Dict[str, float]]:
    """Runs of windows scoring at least ``threshold``, as segments, best
    first.

    Args:
        scores (list[float]): One score per window.
        windows (list[tuple[float, float]]): ``(start_s, end_s)`` per
            window, in order.
        duration_s (float): The video's length.
        threshold (float): Lowest score of a window in a segment.
        topk (int, optional): Keep the best ``topk`` segments (all by
            default).

    Returns:
        list[dict]: ``start_s``, ``end_s``, ``score`` (the best window's)
        and ``peak_s`` (that window's centre) of each segment, by score
        (then time); ties within a segment peak at the earliest window.

    Raises:
        ValueError: Scores and windows differ in number, or a score or the
            threshold is not a finite number.
    """
    if len(scores) != len(windows):
        raise ValueError(f'{len(scores)} scores for {len(windows)} windows')
    if not math.isfinite(threshold):
        raise ValueError(f'The threshold must be a finite number, got '
                         f'{threshold!r}')
    scores = [float(s) for s in scores]
    if not all(math.isfinite(s) for s in scores):
        raise ValueError('Non-finite window scores: the model or the video '
                         'is broken; no segment can be trusted')
    cells = window_cells(windows, duration_s)
    segments = []
    for above, run in itertools.groupby(range(len(scores)),
                                        lambda i: scores[i] >= threshold):
        if above:
            run = list(run)
            best = max(run, key=lambda i: (scores[i], -i))
            segments.append(
                dict(start_s=cells[run[0]][0], end_s=cells[run[-1]][1],
                     score=scores[best], peak_s=sum(windows[best]) / 2))
    segments.sort(key=lambda s: (-s['score'], s['start_s']))
    return segments if topk is None else segments[:topk]
