"""Temporal IoU, one-to-one matching of predicted segments to true ones,
and recall and precision at IoU thresholds, per label and overall.

Predictions are taken best score first; each takes the unmatched true
segment of its label and video that it overlaps most, if that IoU reaches
the threshold. Standard library only: the evaluation runs without torch.

Example:
    >>> truth = {'v.mp4': [dict(label='a', start_s=2.0, end_s=4.0)]}
    >>> found = {'v.mp4': {'a': [dict(start_s=2.5, end_s=4.0, score=0.9)]}}
    >>> report = evaluate_moments(found, truth, ['a'])
    >>> report['overall']['at']['0.5']['recall']
    1.0
"""
import math
from typing import List, Mapping, Optional, Sequence, Tuple

#: The IoU thresholds reported by default; 0.5 is the headline figure.
DEFAULT_IOU_THRESHOLDS = (0.3, 0.5, 0.7)


def threshold_key(threshold: float) -> str:
    """The key of a threshold in a report's ``at`` table, e.g. ``'0.5'``."""
    return f'{threshold:g}'


def temporal_iou(a: Tuple[float, float], b: Tuple[float, float]) -> float:
    """IoU of two ``(start, end)`` intervals; 0 when they do not overlap."""
    # Not mmaction's pairwise_temporal_iou: its float32 result moves some
    # matches at a threshold, and it loads torch
    # (tests/test_moment_metrics_library.py).
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def segment_interval(segment: Mapping,
                     what: str = 'segment') -> Tuple[float, float]:
    """``(start_s, end_s)`` of a segment; a ValueError naming ``what``
    unless both are finite and start < end."""
    try:
        start, end = float(segment['start_s']), float(segment['end_s'])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f'{what}: a segment needs numbers start_s and '
                         f'end_s, got {segment!r}') from None
    if not (math.isfinite(start) and math.isfinite(end) and start < end):
        raise ValueError(f'{what}: a segment must have finite start_s < '
                         f'end_s, got start_s={start}, end_s={end}')
    return start, end


def _score(segment: Mapping, what: str) -> float:
    try:
        score = float(segment['score'])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f'{what}: a predicted segment needs a number '
                         f'score, got {segment!r}') from None
    if not math.isfinite(score):
        raise ValueError(f'{what}: the score of a predicted segment is '
                         f'{score}; the model gave no usable score')
    return score


def match_segments(predicted: Sequence[Mapping],
                   truth: Sequence[Mapping],
                   iou_threshold: float = 0.5,
                   what: str = 'segments') -> List[Optional[int]]:
    """Match predictions (``start_s``, ``end_s``, ``score``) to true
    segments of one label and video, one to one, best score first.

    Returns:
        list[int | None]: Per prediction, in input order, the index of the
        true segment it matched, or None. Ties of score go to the earlier
        prediction, ties of IoU to the earlier true segment. A ValueError
        (naming ``what``) for a malformed segment or score.
    """
    spans = [segment_interval(s, what) for s in truth]
    scores = [_score(s, what) for s in predicted]
    found = [segment_interval(s, what) for s in predicted]
    taken = [False] * len(spans)
    matches: List[Optional[int]] = [None] * len(found)
    for i in sorted(range(len(found)), key=lambda i: -scores[i]):
        best = max((j for j in range(len(spans)) if not taken[j]),
                   key=lambda j: (temporal_iou(found[i], spans[j]), -j),
                   default=None)
        if best is not None and temporal_iou(found[i],
                                             spans[best]) >= iou_threshold:
            taken[best], matches[i] = True, best
    return matches


def _ratio(num: int, den: int) -> Optional[float]:
    return num / den if den else None


def _figures(truth: int, predicted: int, best_iou: float, matched: list,
             thresholds: Sequence[float]) -> dict:
    # F1, the harmonic mean of recall and precision: 2 hits / (t + p).
    table = {threshold_key(threshold): dict(
        matched=hits, recall=_ratio(hits, truth),
        precision=_ratio(hits, predicted),
        f1=_ratio(2 * hits, truth + predicted) if truth and predicted
        else None) for threshold, hits in zip(thresholds, matched)}
    # mean_best_iou tells a localisation problem (low) from a scoring one.
    return dict(num_truth=truth, num_predicted=predicted,
                mean_best_iou=_ratio(best_iou, truth), at=table)


def evaluate_moments(
    predictions: Mapping[str, Mapping[str, Sequence[Mapping]]],
    truth: Mapping[str, Sequence[Mapping]],
    labels: Sequence[str],
    iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS
) -> dict:
    """Recall and precision of predicted segments, per label and overall.

    Args:
        predictions (dict): ``{video: {label: [segment, ...]}}``; a
            segment has ``start_s``, ``end_s`` (seconds) and ``score``.
        truth (dict): ``{video: [{label, start_s, end_s}, ...]}``.
        labels (list[str]): The labels asked about (the queries).
        iou_thresholds (list[float]): Thresholds, in (0, 1].

    Returns:
        dict: ``iou_thresholds``, ``labels``, ``num_videos``, ``overall``
        and ``per_label`` (label -> the same figures): ``num_truth``,
        ``num_predicted``, ``mean_best_iou`` and ``at``: threshold key ->
        ``matched``, ``recall``, ``precision``, ``f1`` (None where the
        denominator is 0). Overall figures pool the labels' counts. A
        ValueError when the videos differ, a label is not among
        ``labels``, or a threshold or segment is malformed.
    """
    labels = list(labels)
    if not labels or len(set(labels)) != len(labels):
        raise ValueError(f'labels must be distinct and not empty, got '
                         f'{labels}')
    thresholds = [float(t) for t in iou_thresholds]
    if not thresholds or not all(0 < t <= 1 for t in thresholds):
        raise ValueError(f'IoU thresholds must be in (0, 1], got '
                         f'{list(iou_thresholds)}')
    if set(truth) != set(predictions):
        raise ValueError(
            'Predictions and ground truth cover different videos: no '
            f'predictions for {sorted(set(truth) - set(predictions))}; no '
            f'ground truth for {sorted(set(predictions) - set(truth))}')
    # Per label: [true, predicted, sum of best IoUs, matched per threshold]
    counts = {label: [0, 0, 0.0, [0] * len(thresholds)] for label in labels}
    for video, true_segments in truth.items():
        for segment in true_segments:
            if segment.get('label') not in counts:
                raise ValueError(f'{video}: the ground truth label '
                                 f'{segment.get("label")!r} is not among '
                                 'the labels asked about')
        for label in predictions[video]:
            if label not in counts:
                raise ValueError(f'{video}: predictions for {label!r}, '
                                 'which is not among the labels asked about')
        for label, count in counts.items():
            what = f'{video}, {label!r}'
            predicted = list(predictions[video].get(label, []))
            found = [segment_interval(s, what) for s in predicted]
            spans = [s for s in true_segments if s['label'] == label]
            count[0] += len(spans)
            count[1] += len(found)
            for span in spans:
                count[2] += max((temporal_iou(segment_interval(span, what), s)
                                 for s in found), default=0.0)
            for k, threshold in enumerate(thresholds):
                count[3][k] += sum(m is not None for m in match_segments(
                    predicted, spans, threshold, what))
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    matched = [sum(hits) for hits in zip(*(c[3] for c in counts.values()))]
    return dict(
        iou_thresholds=thresholds,
        labels=labels,
        num_videos=len(truth),
        overall=_figures(*total, matched, thresholds),
        per_label={label: _figures(*c, thresholds)
                   for label, c in counts.items()})
