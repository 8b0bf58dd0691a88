"""models/visualization/timeline.py: the timeline picture of a
find_moments result: max-pooling against the plain loop, the time axis of
short and hours-long videos, the shading where the segments are, refusals
of results it could only draw wrong."""
import io
import time

import numpy as np
import pytest
from PIL import Image

from models.visualization import plot_timeline
from models.visualization.document import clock
from models.visualization.timeline import max_pool, render_timeline, time_axis

BLUE = np.array([31, 119, 180])  # the first query's colour


def video_result(duration=100.0, stride=1.0, window=2.0, queries=('q', ),
                 segments=None, seed=0):
    rng = np.random.default_rng(seed)
    starts = np.arange(0, duration - window + 1e-9, stride)
    windows = [[float(s), float(s + window)] for s in starts]
    return dict(
        video='/videos/walk.mp4', duration_s=duration, fps=25.0,
        num_frames=int(duration * 25), windows=windows,
        scores={q: rng.uniform(0, 0.4, len(windows)).tolist()
                for q in queries},
        segments=segments or {q: [] for q in queries})


def picture(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))


def plain_max_pool(x, y, num_bins, x_max):
    kept = {}
    for xi, yi in zip(x, y):
        b = min(max(int(xi / x_max * num_bins), 0), num_bins - 1)
        if b not in kept or yi > kept[b][1]:
            kept[b] = (xi, yi)
    return ([kept[b][0] for b in sorted(kept)],
            [kept[b][1] for b in sorted(kept)])


@pytest.mark.parametrize('seed', range(5))
def test_max_pool_matches_the_plain_loop(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 5000))
    x = np.sort(rng.uniform(0, 1000, n))
    # Ties on purpose: the first of equal maxima is kept.
    y = rng.integers(0, 20, n).astype(float)
    bins = int(rng.integers(5, 40))
    px, py = max_pool(x, y, bins, 1000.0)
    qx, qy = plain_max_pool(x, y, bins, 1000.0)
    assert px.tolist() == qx and py.tolist() == qy
    # Fewer points than bins: all kept as they are.
    same = max_pool(x[:bins], y[:bins], bins, 1000.0)
    assert same[0].tolist() == x[:bins].tolist()


def test_time_axis_short_long_and_hours():
    step, label, name = time_axis(30)
    assert (step, label(10), name) == (5, '10', 'time (s)')
    assert time_axis(1.5)[1](0.5) == '0.5'
    step, label, name = time_axis(600)
    assert (label(step), name) == ('1:00', 'time (m:ss)')
    step, label, name = time_axis(3 * 3600)
    assert (label(3600), name) == ('1:00:00', 'time (h:mm:ss)')
    for duration in (0.4, 7, 95, 1800, 4000, 36000, 400000):
        assert duration / time_axis(duration)[0] <= 12


def test_clock():
    assert clock(12.0) == '0:12.0'
    assert clock(59.96) == '1:00.0'
    assert clock(3725.5) == '1:02:05.5'
    assert clock(3725.5, decimals=0) == '1:02:06'
    assert clock(-1.25) == '-0:01.2'


def tinted_runs(image, colour, alpha=0.18):
    """Column runs where the plot is shaded with ``colour`` (a vertical
    grid line under the shade may split a run by a pixel or two)."""
    tint = 255 * (1 - alpha) + colour * alpha
    close = np.abs(image.astype(float) - tint).max(axis=2) <= 6
    columns = np.flatnonzero(close.sum(axis=0) > 40)
    if not len(columns):
        return []
    breaks = np.flatnonzero(np.diff(columns) > 3)
    starts = np.r_[columns[0], columns[breaks + 1]]
    ends = np.r_[columns[breaks], columns[-1]]
    return [(int(s), int(e) - int(s) + 1) for s, e in zip(starts, ends)]


def test_segments_are_shaded_where_they_are(tmp_path):
    segments = {'q': [dict(start_s=10.0, end_s=20.0, score=0.9,
                           peak_s=15.0),
                      dict(start_s=50.0, end_s=70.0, score=0.8,
                           peak_s=60.0)]}
    result = video_result(segments=segments)
    path = plot_timeline(result, ['q'], str(tmp_path / 't.png'),
                         threshold=0.5, score_name='softmax')
    image = np.asarray(Image.open(path).convert('RGB'))
    assert image.shape[1] == 1200
    (first, width_a), (second, width_b) = tinted_runs(image, BLUE)
    # 10 s and 20 s wide, 40 s apart, on one scale.
    assert width_b / width_a == pytest.approx(2, abs=0.1)
    assert (second - first) / width_a == pytest.approx(4, abs=0.1)
    assert tinted_runs(picture(render_timeline(video_result(), ['q'])),
                       BLUE) == []


def test_many_queries_and_hours_of_windows_draw_quickly(monkeypatch):
    from models.visualization import timeline
    drawn = []

    def spy(*args):
        points = max_pool(*args)
        drawn.append(len(points[0]))
        return points

    monkeypatch.setattr(timeline, 'max_pool', spy)
    queries = [f'query number {i} ' + 'x' * (i * 10) for i in range(10)]
    result = video_result(duration=3 * 3600, stride=0.5, queries=queries)
    assert len(result['windows']) > 20000
    start = time.monotonic()
    image = picture(render_timeline(result, queries, threshold=0.3))
    # Each line has at most a point per pixel column.
    assert len(drawn) == 10 and max(drawn) <= 1200
    assert time.monotonic() - start < 10
    assert image.shape[1] == 1200
    # The legend grows with the queries instead of covering the plot.
    one = picture(render_timeline(video_result(), ['q']))
    assert image.shape[0] > one.shape[0]


def test_one_window_and_threshold_from_the_result():
    result = video_result(duration=2.0)
    assert len(result['windows']) == 1
    result['threshold'] = 0.5
    assert picture(render_timeline(result, ['q'])).shape[1] == 1200


@pytest.mark.parametrize('change, message', [
    (lambda r: r['scores']['q'].__setitem__(3, float('nan')),
     "query 'q': score of window 3 is nan"),
    (lambda r: r['scores']['q'].pop(), "query 'q': 98 scores for 99 windows"),
    (lambda r: r['scores'].pop('q'), "no scores for query 'q'"),
    (lambda r: r.__setitem__('windows', []), 'has no windows'),
    (lambda r: r['segments'].__setitem__('q', [dict(start_s=1.0)]),
     'non-finite start_s'),
])
def test_results_it_would_draw_wrong_are_refused(tmp_path, change, message):
    result = video_result()
    change(result)
    if not result['windows']:
        result['scores']['q'] = []
    target = tmp_path / 't.png'
    target.write_bytes(b'old')
    with pytest.raises(ValueError, match='walk.mp4') as error:
        plot_timeline(result, ['q'], str(target))
    assert message in str(error.value)
    assert target.read_bytes() == b'old'  # never half-written


def test_only_png(tmp_path):
    with pytest.raises(ValueError, match='end the name with .png'):
        plot_timeline(video_result(), ['q'], str(tmp_path / 't.jpg'))
