"""models/evaluation/moment_metrics.py: temporal IoU, one-to-one matching
and recall/precision on hand-made segments whose answers are known."""
import math
import random

import pytest

from models.evaluation.moment_metrics import (evaluate_moments,
                                              match_segments, temporal_iou,
                                              threshold_key)


def seg(start, end, score=None, label=None):
    segment = dict(start_s=start, end_s=end)
    if score is not None:
        segment['score'] = score
    if label is not None:
        segment['label'] = label
    return segment


@pytest.mark.parametrize('a, b, iou', [
    ((0, 2), (1, 3), 1 / 3),
    ((0, 2), (0, 2), 1.0),
    ((0, 4), (1, 2), 0.25),
    ((1, 2), (0, 4), 0.25),
    ((0, 1), (1, 2), 0.0),  # touching
    ((0, 1), (5, 6), 0.0),
    ((2.0, 4.0), (2.5, 4.0), 0.75),
])
def test_temporal_iou(a, b, iou):
    assert temporal_iou(a, b) == pytest.approx(iou)


def test_matching_is_one_to_one_best_score_first():
    truth = [seg(0, 2), seg(10, 12)]
    # two predictions on the first true segment: the better score takes
    # it, the other is a false positive even though it overlaps more
    predicted = [seg(0, 2, 0.4), seg(0.5, 2, 0.9), seg(10, 11, 0.5)]
    assert match_segments(predicted, truth, 0.5) == [None, 0, 1]
    # at 0.7, (0.5, 2) still matches (IoU 0.75), (10, 11) does not (0.5),
    # and the lower-scored exact one finds its true segment taken
    assert match_segments(predicted, truth, 0.7) == [None, 0, None]
    # exactly at the threshold counts
    assert match_segments([seg(10, 11, 1.0)], truth, 0.5) == [1]
    # a prediction takes the true segment it overlaps most
    truth = [seg(0, 4), seg(4, 6)]
    assert match_segments([seg(3, 6, 1.0)], truth, 0.3) == [1]
    assert match_segments([], truth) == []
    assert match_segments([seg(0, 1, 1.0)], []) == [None]


def test_matching_equals_the_greedy_over_all_pairs():
    """The same matching computed another way: all (prediction, truth)
    pairs by score, then IoU, each side taken once."""
    rng = random.Random(0)
    for _ in range(200):
        def rand_seg(score=None):
            start = rng.uniform(0, 20)
            return seg(start, start + rng.uniform(0.2, 5), score)

        truth = [rand_seg() for _ in range(rng.randint(0, 6))]
        predicted = [rand_seg(rng.choice([0.1, 0.5, rng.random()]))
                     for _ in range(rng.randint(0, 8))]
        threshold = rng.choice([0.1, 0.3, 0.5, 0.7])
        pairs = sorted(
            ((-p['score'], i, -temporal_iou((p['start_s'], p['end_s']),
                                            (t['start_s'], t['end_s'])), j)
             for i, p in enumerate(predicted)
             for j, t in enumerate(truth)))
        expected = [None] * len(predicted)
        used = set()
        for _, i, negative_iou, j in pairs:
            if expected[i] is None and j not in used \
                    and -negative_iou >= threshold:
                expected[i] = j
                used.add(j)
        assert match_segments(predicted, truth, threshold) == expected


def test_recall_and_precision_per_label_and_overall():
    truth = {
        'a.mp4': [seg(1, 3, label='jump'), seg(10, 14, label='jump'),
                  seg(20, 22, label='run')],
        'b.mp4': [seg(5, 8, label='run')],
    }
    predictions = {
        'a.mp4': {
            'jump': [seg(1, 3, 0.9),      # IoU 1
                     seg(11, 14, 0.8),    # IoU 0.75 with (10, 14)
                     seg(30, 31, 0.7)],   # nothing there
            'run': [seg(21, 23, 0.6)],    # IoU 1/3 with (20, 22)
        },
        'b.mp4': {'run': [seg(5, 8, 0.5)], 'jump': []},
    }
    report = evaluate_moments(predictions, truth, ['jump', 'run', 'sit'],
                              (0.3, 0.5, 0.8))
    assert report['num_videos'] == 2
    jump, run, sit = (report['per_label'][k] for k in ('jump', 'run', 'sit'))
    assert (jump['num_truth'], jump['num_predicted']) == (2, 3)
    assert jump['at']['0.5'] == dict(
        matched=2, recall=1.0, precision=2 / 3, f1=pytest.approx(0.8))
    assert jump['at']['0.8']['matched'] == 1
    assert jump['mean_best_iou'] == pytest.approx((1 + 0.75) / 2)
    assert run['at']['0.3']['matched'] == 2
    assert run['at']['0.5'] == dict(matched=1, recall=0.5, precision=0.5,
                                    f1=0.5)
    assert run['mean_best_iou'] == pytest.approx((1 / 3 + 1) / 2)
    # nothing true, nothing predicted: undefined, not 0 or 1
    assert sit['num_truth'] == sit['num_predicted'] == 0
    assert sit['at']['0.5'] == dict(matched=0, recall=None, precision=None,
                                    f1=None)
    overall = report['overall']
    assert (overall['num_truth'], overall['num_predicted']) == (4, 5)
    assert overall['at']['0.5']['recall'] == 3 / 4
    assert overall['at']['0.5']['precision'] == 3 / 5
    assert overall['at']['0.3']['recall'] == 1.0
    assert overall['at']['0.8']['recall'] == 2 / 4
    assert overall['mean_best_iou'] == pytest.approx(
        (1 + 0.75 + 1 / 3 + 1) / 4)
    assert report['iou_thresholds'] == [0.3, 0.5, 0.8]
    assert threshold_key(0.5) == '0.5' and threshold_key(0.30) == '0.3'


def test_ground_truth_as_predictions_is_perfect():
    rng = random.Random(1)
    labels = ['a', 'b', 'c']
    truth = {}
    for video in ('x.mp4', 'y.mp4'):
        start, segments = 0.0, []
        for _ in range(12):
            start += rng.uniform(0.5, 3)
            end = start + rng.uniform(0.8, 4)
            segments.append(seg(start, end, label=rng.choice(labels)))
            start = end
        truth[video] = segments
    predictions = {
        video: {label: [seg(s['start_s'], s['end_s'], rng.random())
                        for s in segments if s['label'] == label]
                for label in labels}
        for video, segments in truth.items()
    }
    report = evaluate_moments(predictions, truth, labels, (0.5, 0.95, 1.0))
    for figures in [report['overall'], *report['per_label'].values()]:
        assert figures['num_truth'] == figures['num_predicted'] > 0
        assert figures['mean_best_iou'] == pytest.approx(1.0)
        for row in figures['at'].values():
            assert row['recall'] == row['precision'] == row['f1'] == 1.0
    # shifted by half a segment, nothing is matched at 0.5 any more
    shifted = {
        video: {label: [seg(s['start_s'] + (s['end_s'] - s['start_s']) / 2,
                            s['end_s'] + (s['end_s'] - s['start_s']) / 2,
                            s['score']) for s in found]
                for label, found in by_label.items()}
        for video, by_label in predictions.items()
    }
    report = evaluate_moments(shifted, truth, labels, (0.3, 0.5))
    assert report['overall']['at']['0.5']['matched'] == 0
    assert report['overall']['at']['0.3']['recall'] == 1.0


@pytest.mark.parametrize('predictions, truth, message', [
    ({}, {'a.mp4': []}, "no predictions for ['a.mp4']"),
    ({'a.mp4': {}, 'b.mp4': {}}, {'a.mp4': []},
     "no ground truth for ['b.mp4']"),
    ({'a.mp4': {'fly': []}}, {'a.mp4': []}, "'fly', which is not among"),
    ({'a.mp4': {}}, {'a.mp4': [seg(0, 1, label='fly')]},
     "label 'fly' is not among"),
    ({'a.mp4': {'jump': [seg(0, 1, math.nan)]}}, {'a.mp4': []},
     'no usable score'),
    ({'a.mp4': {'jump': [seg(0, 1)]}}, {'a.mp4': []}, 'needs a number'),
    ({'a.mp4': {'jump': [seg(2, 1, 0.5)]}}, {'a.mp4': []},
     'start_s < end_s'),
    ({'a.mp4': {}}, {'a.mp4': [seg(1, 1, label='jump')]},
     'start_s < end_s'),
    ({'a.mp4': {'jump': [dict(start_s='x', end_s=1, score=1)]}},
     {'a.mp4': []}, 'needs numbers'),
])
def test_malformed_input_is_refused(predictions, truth, message):
    with pytest.raises(ValueError) as error:
        evaluate_moments(predictions, truth, ['jump'])
    assert message in str(error.value)


def test_thresholds_and_labels_are_checked():
    with pytest.raises(ValueError, match=r'in \(0, 1\]'):
        evaluate_moments({}, {}, ['a'], (0, 0.5))
    with pytest.raises(ValueError, match=r'in \(0, 1\]'):
        evaluate_moments({}, {}, ['a'], ())
    with pytest.raises(ValueError, match='distinct'):
        evaluate_moments({}, {}, ['a', 'a'])
    with pytest.raises(ValueError, match='distinct'):
        evaluate_moments({}, {}, [])
