"""Scores and the result document (models/apis/moments.py): probabilities
among the queries and the background labels computed as zero_shot scores
labels, a query that never happens getting no segment, cosine scores that
need a threshold, and find_moments' document as the contract gives it."""
import csv
import json
import os
import warnings

import pytest
import torch
from conftest import write_video

from models.apis.moments import (CSV_COLUMNS, STILL_SUFFIX,
                                 BackgroundWarning, check_queries,
                                 find_moments, format_segments, format_time,
                                 query_scoring, resolve_threshold,
                                 video_windows, window_scores, write_result)
from models.apis.video_scoring import label_text_features, score_labels
from models.apis.feature_cache import VideoWindows

BACKGROUND = ['a circle shrinking', 'a square moving up', 'a triangle']


@pytest.fixture
def labelled(scorer):
    """The tiny model with a label set of its own (for one test)."""
    scorer.model.set_labels(list(BACKGROUND))
    yield scorer
    scorer.model.prompt_bank = None


def test_queries_are_checked():
    assert check_queries([' a ', 'b']) == ['a', 'b']
    assert check_queries('one') == ['one']
    for bad, message in (([], 'No query'), (['a', ' '], 'Query 2 is empty'),
                         (['A  dog', 'a dog'], 'same text')):
        with pytest.raises(ValueError, match=message):
            check_queries(bad)


def test_probabilities_among_queries_and_the_models_labels(labelled):
    queries = ['a dog running', 'A circle  shrinking']
    scoring = query_scoring(labelled.model, queries)
    # The label worded like a query is left out of the background.
    assert scoring.background == ['a square moving up', 'a triangle']
    assert scoring.kind == 'probability'
    assert scoring.name == ('probability among the 2 queries and 2 '
                            'background labels')
    features = torch.nn.functional.normalize(torch.randn(7, 1, 64), dim=-1)
    scores = window_scores(features, scoring)
    plain = score_labels(
        features,
        label_text_features(labelled.model,
                            queries + scoring.background))[:, :2]
    torch.testing.assert_close(scores, plain)
    assert scores.shape == (7, 2) and (scores.sum(1) < 1).all()


def test_a_query_that_never_happens_gets_no_segment(labelled):
    """Windows showing a background label score near 0 for a query."""
    scoring = query_scoring(labelled.model, ['a dog running'])
    label = label_text_features(labelled.model, ['a triangle'])
    features = torch.nn.functional.normalize(label.mean(0), dim=-1)
    features = features.expand(5, -1)[:, None]  # (5, 1, D)
    scores = window_scores(features, scoring)
    assert (scores < 0.05).all(), scores
    windows = VideoWindows('v.mp4', 60, 10.0, [(k, k + 2.0)
                                               for k in range(5)], features)
    from models.apis.moments import video_result
    result = video_result(windows, ['a dog running'], scoring,
                          resolve_threshold(None, scoring), 5)
    assert result['segments'] == {'a dog running': []}


def test_without_labels_several_queries_compete_one_is_a_cosine(scorer):
    assert not scorer.model.labels
    several = query_scoring(scorer.model, ['a', 'b'])
    assert several.kind == 'probability' and several.background == []
    assert several.name == 'probability among the 2 queries'
    one = query_scoring(scorer.model, ['a square moving right'])
    assert one.kind == 'cosine' and one.name == 'cosine similarity'
    features = torch.nn.functional.normalize(torch.randn(3, 2, 64), dim=-1)
    text = label_text_features(scorer.model, ['a square moving right'])
    expected = torch.stack([(features[k] @ text[:, 0].T).mean()
                            for k in range(3)])
    torch.testing.assert_close(window_scores(features, one)[:, 0], expected)
    with pytest.raises(ValueError, match='cosine similarities'):
        resolve_threshold(None, one)
    assert resolve_threshold(0.3, one) == 0.3
    assert resolve_threshold(None, several) == 0.5
    with pytest.raises(ValueError, match=r'in \[0, 1\]'):
        resolve_threshold(1.5, several)
    # A background given by the caller.
    given = query_scoring(scorer.model, ['a'], background=['b', 'c', 'b'])
    assert given.kind == 'probability' and given.background == ['b', 'c']


def test_non_finite_scores_are_refused(scorer):
    scoring = query_scoring(scorer.model, ['a', 'b'])
    with pytest.raises(ValueError, match='Non-finite'):
        window_scores(torch.full((2, 1, 64), float('nan')), scoring)


def test_the_document_is_the_contracts(scorer, tmp_path):
    videos = [
        write_video(str(tmp_path / 'a.mp4'), num_frames=50, fps=10),
        write_video(str(tmp_path / 'b.mp4'), num_frames=8, fps=10, seed=3)
    ]
    bad = tmp_path / 'bad.mp4'
    bad.write_bytes(b'nothing')
    failed = []
    queries = ['a square moving right', 'a square moving left']
    with pytest.warns(BackgroundWarning):  # the tiny config's label file
        result = find_moments(scorer, videos + [str(bad)], queries, topk=1,
                              threshold=0.0, progress=False,
                              on_failure=lambda v, e: failed.append(v))
    assert json.loads(json.dumps(result)) == result
    assert list(result) == [
        'model', 'queries', 'window_s', 'stride_s', 'window_frames',
        'stride_frames', 'score', 'background', 'threshold', 'videos',
        'failures'
    ]
    assert result['window_frames'] is None
    assert result['background']['source'] == 'none'
    assert result['score'] == 'probability among the 2 queries'
    assert result['model'] == scorer.describe()
    assert result['queries'] == queries
    assert (result['window_s'], result['stride_s']) == (2.0, 1.0)
    assert result['threshold'] == 0.0
    assert failed == [str(bad)] and list(result['failures']) == [str(bad)]
    assert 'bad.mp4' in result['failures'][str(bad)]
    first, second = result['videos']
    assert list(first) == [
        'video', 'duration_s', 'fps', 'num_frames', 'windows', 'scores',
        'segments', 'size_bytes'
    ]
    assert first['video'] == videos[0] and first['num_frames'] == 50
    assert first['size_bytes'] == os.path.getsize(videos[0])
    assert first['fps'] == 10.0 and first['duration_s'] == 5.0
    assert first['windows'] == [[0.0, 2.0], [1.0, 3.0], [2.0, 4.0],
                                [3.0, 5.0]]
    assert second['windows'] == [[0.0, 0.8]]
    for video in result['videos']:
        for query in queries:
            scores = video['scores'][query]
            assert len(scores) == len(video['windows'])
            # Threshold 0: one segment over the whole video, the best
            # window's score, peaking at its centre.
            (segment, ) = video['segments'][query]
            assert segment['start_s'] == 0.0
            assert segment['end_s'] == video['duration_s']
            assert segment['score'] == max(scores)
            best = scores.index(max(scores))
            assert segment['peak_s'] == sum(video['windows'][best]) / 2
        # Two queries, no labels: probabilities that sum to one.
        sums = [sum(p) for p in zip(*video['scores'].values())]
        assert all(abs(s - 1) < 1e-5 for s in sums)

    json_path, csv_path = tmp_path / 'r.json', tmp_path / 'r.csv'
    write_result(str(json_path), result)
    assert json.loads(json_path.read_text()) == result
    write_result(str(csv_path), result)
    rows = list(csv.reader(csv_path.open()))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r[:3] for r in rows[1:]] == [[v, q, '1'] for v in videos
                                         for q in queries]
    assert float(rows[1][5]) == pytest.approx(
        first['segments'][queries[0]][0]['score'], abs=1e-6)
    text = format_segments(result)
    assert f'{videos[0]} (00:05.0, 4 windows)' in text
    assert f'  {queries[0]}: 00:00.0-00:05.0 (' in text


def test_bad_arguments_are_refused_before_decoding(scorer, tmp_path):
    video = write_video(str(tmp_path / 'a.mp4'), num_frames=20, fps=10)
    for kwargs, message in ((dict(topk=0), 'topk'),
                            (dict(window_s=1, stride_s=2), 'longer than'),
                            (dict(threshold=2.0), r'\[0, 1\]'),
                            (dict(batch_size=0), 'batch_size')):
        with pytest.raises(ValueError, match=message):
            find_moments(scorer, [video], ['a', 'b'], progress=False,
                         **kwargs)
    with pytest.raises(ValueError, match='cosine'):
        find_moments(scorer, [video], ['a'], progress=False)


@pytest.mark.parametrize('seconds, text', [(0, '00:00.0'), (75.25, '01:15.2'),
                                           (3599.96, '1:00:00.0'),
                                           (3725.5, '1:02:05.5')])
def test_times_print_as_minutes_or_hours(seconds, text):
    assert format_time(seconds) == text


def background_warnings(call):
    """``call()``'s result and the BackgroundWarnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        result = call()
    return result, [w for w in caught
                    if issubclass(w.category, BackgroundWarning)]


def test_a_missing_label_file_is_said_and_recorded(scorer, labelled,
                                                   tmp_path):
    # The tiny config names data/not_here/label_map.txt, which is missing.
    video = write_video(str(tmp_path / 'a.mp4'), num_frames=20, fps=10)

    def run(**kwargs):
        return background_warnings(lambda: find_moments(
            scorer, [video], ['a', 'b'], progress=False, **kwargs))

    labels = list(scorer.model.prompt_bank.labels)
    scorer.model.prompt_bank = None  # as loaded without its label file
    try:
        result, said = run()
        assert len(said) == 1
        message = str(said[0].message)
        for part in ("'data/not_here/label_map.txt'", 'does not exist',
                     'WITHOUT background labels', '--background FILE'):
            assert part in message
        assert result['background'] == dict(
            source='none', labels=0,
            why="label file 'data/not_here/label_map.txt' not found",
            missing_label_file='data/not_here/label_map.txt',
            warning=message)
        assert result['score'] == 'probability among the 2 queries'
        # A background given, or none asked for: nothing to warn about.
        result, said = run(background=['c', 'd', 'e'])
        assert not said and result['background'] == dict(source='given',
                                                         labels=3)
        result, said = run(background=[])
        assert not said and result['background']['source'] == 'none'
        assert 'no background asked' in result['background']['why']
    finally:
        scorer.model.set_labels(labels)
    result, said = run()
    assert not said and result['background'] == dict(source='model',
                                                     labels=3)


def test_window_frames_equal_the_seconds_of_each_videos_rate(scorer,
                                                             tmp_path):
    videos = [
        write_video(str(tmp_path / 'a.mp4'), num_frames=47, fps=10),
        write_video(str(tmp_path / 'b.mp4'), num_frames=70, fps=25, seed=1),
    ]
    kwargs = dict(threshold=0.3, progress=False, background=[])
    result = find_moments(scorer, videos, ['a', 'b'], window_frames=15,
                          **kwargs)
    assert (result['window_frames'], result['stride_frames']) == (15, 7)
    assert result['window_s'] is None and result['stride_s'] is None
    for video, fps, got in zip(videos, (10, 25), result['videos']):
        # What eval_moments did before: seconds per frame rate.
        plain = find_moments(scorer, [video], ['a', 'b'],
                             window_s=15 / fps, stride_s=7 / fps, **kwargs)
        assert got == plain['videos'][0]
        assert {round((e - s) * fps, 6) for s, e in got['windows']} == {15}
    for bad, message in ((dict(window_frames=1), 'window_frames'),
                         (dict(window_frames=30, window_s=2.0), 'replaces'),
                         (dict(window_frames=30, stride_s=1.0), 'replaces')):
        with pytest.raises(ValueError, match=message):
            find_moments(scorer, videos, ['a', 'b'], **kwargs, **bad)


def test_subtract_still_is_the_window_minus_its_still(scorer, tmp_path):
    video = write_video(str(tmp_path / 'a.mp4'), num_frames=50, fps=10)
    queries = ['a square moving right', 'a circle', 'a triangle']
    result = find_moments(scorer, [video], queries, subtract_still=True,
                          threshold=0.0, progress=False, background=[])
    assert result['score'] == ('probability among the 3 queries' +
                               STILL_SUFFIX)
    found, _, _ = video_windows(scorer, [video], 2.0, 1.0, progress=False,
                                stills=True)
    windows = found[video]
    scoring = query_scoring(scorer.model, queries, background=[])
    expected = (window_scores(windows.features, scoring) -
                window_scores(windows.stills, scoring))
    got = torch.tensor([result['videos'][0]['scores'][q] for q in queries]).T
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    # Differences of probabilities: they sum to 0 over the queries, and
    # may be negative; the segments still use the threshold.
    assert torch.allclose(got.sum(1), torch.zeros(len(got)), atol=1e-5)
    assert (got < 0).any()
    plain = find_moments(scorer, [video], queries, threshold=0.0,
                         progress=False, background=[])
    assert plain['videos'][0]['windows'] == result['videos'][0]['windows']
    assert plain['videos'][0]['scores'] != result['videos'][0]['scores']
    scoring = query_scoring(scorer.model, ['a', 'b'], background=[])
    assert resolve_threshold(-0.2, scoring, subtract_still=True) == -0.2
    with pytest.raises(ValueError, match=r'\[-1, 1\]'):
        resolve_threshold(-1.5, scoring, subtract_still=True)
