"""Segments from window scores (models/apis/segments.py): runs of windows at
or above the threshold, bounded by the windows' cells, scored by their best
window; compared with a plain per-moment computation on random scores."""
import math

import numpy as np
import pytest

from models.apis.segments import merge_segments, window_cells


def regular(count, window=2.0, stride=1.0):
    return [(k * stride, k * stride + window) for k in range(count)]


def test_cells_tile_the_video_at_centres_plus_minus_half_a_stride():
    cells = window_cells(regular(4), 5.0)
    assert cells == [(0.0, 1.5), (1.5, 2.5), (2.5, 3.5), (3.5, 5.0)]
    assert window_cells([(0.0, 0.8)], 0.8) == [(0.0, 0.8)]


def test_neighbours_merge_and_the_best_window_gives_score_and_peak():
    scores = [0.1, 0.6, 0.9, 0.7, 0.2, 0.8, 0.1]
    segments = merge_segments(scores, regular(7), 8.0, 0.5)
    assert segments == [
        dict(start_s=0.5 + 1, end_s=4.5, score=0.9, peak_s=3.0),
        dict(start_s=4.5 + 1, end_s=6.5, score=0.8, peak_s=6.0),
    ]
    assert merge_segments(scores, regular(7), 8.0, 0.5, topk=1) == \
        segments[:1]
    assert merge_segments(scores, regular(7), 8.0, 0.95) == []


def test_segments_at_the_ends_reach_the_ends():
    segments = merge_segments([0.9, 0.1, 0.9], regular(3), 4.0, 0.5)
    assert [(s['start_s'], s['end_s']) for s in segments] == [(0.0, 1.5),
                                                              (2.5, 4.0)]


def test_equal_scores_rank_by_time_and_peak_at_the_first_best():
    segments = merge_segments([0.8, 0.8, 0.1, 0.8], regular(4), 5.0, 0.5)
    assert [s['start_s'] for s in segments] == [0.0, 3.5]
    assert segments[0]['peak_s'] == 1.0


@pytest.mark.parametrize('scores, message', [([0.1, math.nan], 'Non-finite'),
                                             ([0.1], '1 scores for 2')])
def test_bad_scores_are_refused(scores, message):
    with pytest.raises(ValueError, match=message):
        merge_segments(scores, regular(2), 3.0, 0.5)


def test_random_scores_match_a_per_moment_computation():
    """Every moment of a fine time grid is in a segment exactly when the
    window nearest to it (by centre) scores at least the threshold; the
    segment's score is the best of the windows whose cells it covers."""
    rng = np.random.default_rng(0)
    for _ in range(100):
        count = int(rng.integers(1, 30))
        window = float(rng.uniform(1, 4))
        stride = float(rng.uniform(0.25, 1)) * window
        windows = regular(count, window, stride)
        duration = windows[-1][1] + float(rng.uniform(0, stride / 2))
        scores = rng.uniform(0, 1, count).tolist()
        threshold = float(rng.uniform(0.2, 0.8))
        segments = merge_segments(scores, windows, duration, threshold)
        centres = np.array([(a + b) / 2 for a, b in windows])
        for t in np.linspace(0, duration, 397)[1:-1]:
            distances = np.abs(centres - t)
            if count > 1 and np.diff(np.sort(distances)[:2])[0] < 1e-9:
                continue  # on a cell boundary
            nearest = int(np.argmin(distances))
            inside = [s for s in segments if s['start_s'] < t < s['end_s']]
            assert bool(inside) == (scores[nearest] >= threshold)
            if inside:
                (segment, ) = inside
                covered = [
                    k for k, c in enumerate(centres)
                    if segment['start_s'] <= c <= segment['end_s']
                ]
                assert segment['score'] == max(scores[k] for k in covered)
                best = max(covered, key=lambda k: (scores[k], -k))
                assert segment['peak_s'] == centres[best]
        ranked = [s['score'] for s in segments]
        assert ranked == sorted(ranked, reverse=True)
