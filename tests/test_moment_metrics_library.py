"""models/evaluation/moment_metrics.py beside a plain reference and beside
MMAction2's temporal functions (``mmaction.evaluation.functional``).

The plugin keeps its own temporal IoU: MMAction2's
``pairwise_temporal_iou`` stores its result as float32, which moves an IoU
by up to about 6e-8 of itself and so decides some matches at a threshold
differently (and the figures of the report would change). The matching
rule is MMAction2's: the average precision computed from our matches is
``average_precision_at_temporal_iou``'s."""
import random
from fractions import Fraction

import numpy as np
import pytest
from mmaction.evaluation.functional import (average_precision_at_temporal_iou,
                                            interpolated_precision_recall,
                                            pairwise_temporal_iou)

from models.evaluation.moment_metrics import match_segments, temporal_iou

EDGE_CASES = [
    ((0.0, 1.0), (1.0, 2.0)),  # touching
    ((0.0, 4.0), (1.0, 2.0)),  # nested
    ((1.0, 2.0), (0.0, 4.0)),
    ((0.0, 2.0), (0.0, 2.0)),  # identical
    ((0.0, 1.0), (5.0, 6.0)),  # apart
    ((1.0, 1.0), (0.0, 2.0)),  # zero-length inside
    ((0.0, 2.0), (3.0, 3.0)),  # zero-length outside
    ((0.1, 0.7), (0.0, 0.6)),
    ((2.0, 4.0), (2.5, 4.0)),
]


def random_pairs(n=2000, seed=0):
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        a, b = rng.uniform(0, 30), rng.uniform(0, 30)
        pairs.append(((a, a + rng.uniform(0.01, 8)),
                      (b, b + rng.uniform(0.01, 8))))
    # on a frame grid (25 fps), as the ground truth and windows are
    for _ in range(n):
        a, b = rng.randrange(750) / 25, rng.randrange(750) / 25
        pairs.append(((a, a + rng.randrange(1, 100) / 25),
                      (b, b + rng.randrange(1, 100) / 25)))
    return pairs


def exact_iou(a, b):
    """IoU in exact rational arithmetic: the covered length of both over
    the length of their hull minus the gap between them."""
    (s1, e1), (s2, e2) = [(Fraction(s), Fraction(e)) for s, e in (a, b)]
    inter = max(Fraction(0), min(e1, e2) - max(s1, s2))
    union = (e1 - s1) + (e2 - s2) - inter
    return inter / union if union else Fraction(0)


@pytest.mark.parametrize('pairs', [EDGE_CASES, random_pairs()])
def test_temporal_iou_equals_exact_arithmetic(pairs):
    for a, b in pairs:
        assert abs(temporal_iou(a, b) - exact_iou(a, b)) <= 1e-12, (a, b)
        assert temporal_iou(a, b) == temporal_iou(b, a)
    assert temporal_iou((1.0, 1.0), (1.0, 1.0)) == 0.0  # no union


@pytest.mark.parametrize('pairs', [EDGE_CASES, random_pairs()])
def test_library_temporal_iou_is_ours_in_float32(pairs):
    for a, b in pairs:
        library = pairwise_temporal_iou(np.array(a), np.array([b]))
        # Why the plugin keeps its own: the library's figure is rounded.
        assert library.dtype == np.float32
        assert float(library[0]) == pytest.approx(temporal_iou(a, b),
                                                  rel=6e-8, abs=1e-12)


def ap_of_our_matches(predicted, truth, threshold):
    """VOC average precision from :func:`match_segments`' matches: the
    predictions of all videos by score, each a hit or not."""
    hits = []
    for video, found in predicted.items():
        matches = match_segments(found, truth.get(video, []), threshold)
        hits += [(p['score'], m is not None) for p, m in zip(found, matches)]
    hits.sort(key=lambda h: -h[0])
    tp = np.cumsum([hit for _, hit in hits])
    num_truth = sum(len(segments) for segments in truth.values())
    return interpolated_precision_recall(tp / np.arange(1, len(hits) + 1),
                                         tp / num_truth)


def test_matching_gives_the_library_average_precision():
    rng = random.Random(1)

    def rand_seg(score=None):
        start = rng.uniform(0, 20)
        segment = dict(start_s=start, end_s=start + rng.uniform(0.2, 5))
        if score is not None:
            segment['score'] = score
        return segment

    thresholds = (0.1, 0.3, 0.5, 0.7)
    for _ in range(300):
        videos = [f'v{k}' for k in range(rng.randint(1, 3))]
        truth = {v: [rand_seg() for _ in range(rng.randint(0, 6))]
                 for v in videos}
        if not any(truth.values()):
            continue
        # distinct scores: the library breaks ties of score another way
        scores = iter(rng.sample(range(1, 10**6), 30))
        predicted = {v: [rand_seg(next(scores) / 10**6)
                         for _ in range(rng.randint(0, 8))]
                     for v in videos}
        rows = [[v, 0, p['start_s'], p['end_s'], p['score']]
                for v, found in predicted.items() for p in found]
        if not rows:
            continue
        # a video without true segments is left out, as the library
        # expects (its predictions are then false positives)
        library = average_precision_at_temporal_iou(
            {v: [[t['start_s'], t['end_s']] for t in segments]
             for v, segments in truth.items() if segments},
            np.array(rows, dtype=object), np.array(thresholds))
        ours = [ap_of_our_matches(predicted, truth, t) for t in thresholds]
        assert ours == pytest.approx(library.tolist(), abs=1e-6)
