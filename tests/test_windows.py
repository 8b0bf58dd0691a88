"""Window planning (models/apis/windows.py): default window and stride,
windows covering the video at one length, and each window's frames chosen
by the model's own test-time sampling."""
import math

import numpy as np
import pytest

from models.apis.windows import (WindowSampler, check_window,
                                 check_window_frames, default_window,
                                 frame_window, plan_windows, still_sample,
                                 window_frames)

SAMPLE_4 = [
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=4,
         test_mode=True)
]


@pytest.fixture(scope='module')
def sampler():
    return WindowSampler(SAMPLE_4)


@pytest.mark.parametrize('frames, expected', [(8, (4.0, 2.0)),
                                              (4, (2.0, 1.0)),
                                              (1, (1.0, 0.5)),
                                              (32, (16.0, 8.0))])
def test_default_window_is_half_a_second_a_frame_at_least_one(
        frames, expected):
    assert default_window(frames) == expected


@pytest.mark.parametrize('window, stride, message', [
    (0, 1, 'window must be a positive'),
    (2, -1, 'stride must be a positive'),
    (math.nan, 1, 'window must be a positive'),
    (2, math.inf, 'stride must be a positive'),
    (2, 3, 'longer than the window'),
])
def test_bad_windows_are_refused(window, stride, message):
    with pytest.raises(ValueError, match=message):
        check_window(window, stride)
    with pytest.raises(ValueError, match=message):
        plan_windows(100, 25.0, window, stride)


def test_regular_windows_and_one_more_at_the_end(sampler):
    plan = plan_windows(260, 25.0, 2.0, 1.0, sampler)
    assert plan.starts == [25 * k for k in range(9)] + [210]
    assert set(plan.lengths) == {50}
    assert plan.times[0] == (0.0, 2.0) and plan.times[-1] == (8.4, 10.4)
    assert plan.duration_s == 10.4
    # An exact fit adds nothing.
    assert plan_windows(250, 25.0, 2.0, 1.0).starts[-1] == 200


def test_a_video_shorter_than_a_window_is_one_window(sampler):
    plan = plan_windows(20, 25.0, 2.0, 1.0, sampler)
    assert plan.starts == [0] and plan.lengths == [20]
    assert plan.times == [(0.0, 0.8)]
    assert plan.frame_indices[0].tolist() == [2, 7, 12, 17]


def test_frames_are_the_test_sampling_of_a_clip_of_the_window(sampler):
    plan = plan_windows(300, 24.0, 2.5, 0.75, sampler)
    window, _ = window_frames(2.5, 0.75, 24.0)
    for start, inds in zip(plan.starts, plan.frame_indices):
        # SampleFrames(test_mode=True, clip_len=1) over `window` frames,
        # shifted to the window's start.
        expected = [start + int((i + 0.5) * window / 4) for i in range(4)]
        assert inds.tolist() == expected


def test_several_views_keep_the_samplers_layout():
    views = WindowSampler([
        dict(type='SampleFrames', clip_len=1, frame_interval=1,
             num_clips=4, test_mode=True, twice_sample=True)
    ])
    plan = plan_windows(100, 10.0, 4.0, 2.0, views)
    assert all(len(inds) == 8 for inds in plan.frame_indices)
    assert plan.samples[0]['num_clips'] == 4


def test_random_plans_cover_the_video_with_equal_windows():
    rng = np.random.default_rng(0)
    for _ in range(200):
        fps = float(rng.choice([5, 10, 24, 25, 29.97, 60]))
        frames = int(rng.integers(1, 5000))
        window_s = float(rng.uniform(0.05, 20))
        stride_s = float(rng.uniform(0.01, 1)) * window_s
        plan = plan_windows(frames, fps, window_s, stride_s)
        window, stride = window_frames(window_s, stride_s, fps)
        assert len(set(plan.lengths)) == 1
        assert plan.starts[0] == 0
        assert plan.starts[-1] + plan.lengths[-1] == frames
        assert plan.lengths[0] == min(window, frames)
        steps = np.diff(plan.starts)
        assert (steps > 0).all() and (steps <= stride).all()
        assert (steps[:-1] == stride).all()


@pytest.mark.parametrize('fps', [10.0, 15.0, 24.0, 25.0, 29.97, 30000 / 1001])
@pytest.mark.parametrize('frames', [2, 3, 30, 31, 64])
def test_a_window_in_frames_is_that_many_frames_at_any_rate(
        sampler, fps, frames):
    window_s, stride_s = frame_window(frames, fps)
    assert window_frames(window_s, stride_s, fps) == (frames, frames // 2)
    plan = plan_windows(1000, fps, window_s, stride_s, sampler)
    assert set(plan.lengths) == {frames}
    assert plan.starts[:3] == [0, frames // 2, 2 * (frames // 2)]


@pytest.mark.parametrize('bad', [0, 1, -4, 2.5, True, '30', None])
def test_a_window_in_frames_is_an_integer_of_two_at_least(bad):
    with pytest.raises(ValueError, match='window_frames'):
        check_window_frames(bad)


def test_a_still_sample_repeats_the_middle_sampled_frame(sampler):
    plan = plan_windows(100, 10.0, 3.0, 1.5, sampler)
    for sample, start in zip(plan.samples, plan.starts):
        still = still_sample(sample)
        # 30 frames, 4 sampled: start + 3, 11, 18, 26; the third held.
        assert still['frame_inds'].tolist() == [start + 18] * 4
        assert still['frame_inds'].dtype == sample['frame_inds'].dtype
        # The window's own sample is left as it was.
        assert len(set(sample['frame_inds'].tolist())) == 4
        assert {k: v for k, v in still.items() if k != 'frame_inds'} == {
            k: v for k, v in sample.items() if k != 'frame_inds'}
