"""Neighbouring high-scoring windows merged into segments of a video.

Overlapping windows would overstate a segment, so each moment goes to the
window whose centre is nearest (its *cell*, between the midpoints with its
neighbours' centres; the first from 0, the last to the end). A segment is a
run of windows scoring at least the threshold: it spans their cells, scores
their maximum, and peaks at the centre of its best window.

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
    """The cell of each window (module docstring); they tile
    ``[0, duration_s]``."""
    centres = [(start + end) / 2 for start, end in windows]
    bounds = [(a + b) / 2 for a, b in zip(centres, centres[1:])]
    return list(zip([0.0] + bounds, bounds + [float(duration_s)]))


def merge_segments(scores: Sequence[float],
                   windows: Sequence[Tuple[float, float]],
                   duration_s: float,
                   threshold: float,
                   topk: Optional[int] = None) -> List[Dict[str, float]]:
    """Runs of windows (``(start_s, end_s)`` each, in order) scoring at
    least ``threshold``, as the ``topk`` best segments (all when None):
    ``start_s``, ``end_s``, ``score`` and ``peak_s`` each, by score then
    time (a tie peaks at the earliest window). A ValueError for unequal
    lengths or non-finite numbers."""
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
