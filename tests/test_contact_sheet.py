"""models/visualization/contact_sheet.py and frames.py: frames read by
seeking equal the frames of a plain decode from the start; the sheet holds
them where its layout says, scaled to at most 320 px; a video that cannot
be read is named in the error."""
import io

import cv2
import numpy as np
import pytest
from conftest import write_video
from PIL import Image

from models.visualization import FrameReadError, write_contact_sheet
from models.visualization.contact_sheet import (MIN_THUMBNAIL, THUMBNAIL,
                                                enlarge, render_contact_sheet,
                                                segment_times)
from models.visualization.frames import read_frames_at

FPS = 8
FRAMES = 120  # 15 s


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp('sheet')
    return write_video(str(folder / 'clip.mp4'), num_frames=FRAMES,
                       size=(96, 64), fps=FPS, seed=5)


def decode_all(video):
    capture = cv2.VideoCapture(video)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def result_of(video, segments, queries=('a square moving right', )):
    windows = [[float(s), float(s + 2)] for s in range(14)]
    return dict(video=video, duration_s=FRAMES / FPS, fps=float(FPS),
                num_frames=FRAMES, windows=windows,
                scores={q: [0.1] * len(windows) for q in queries},
                segments=segments)


@pytest.mark.parametrize('seed', range(3))
def test_seeking_gives_the_frames_of_a_plain_decode(clip, seed):
    plain = decode_all(clip)
    assert len(plain) == FRAMES
    rng = np.random.default_rng(seed)
    # Past the end too: the last frame.
    times = rng.uniform(0, FRAMES / FPS + 3, 12).tolist()
    frames = read_frames_at(clip, times, FPS, FRAMES)
    for time_s, frame in zip(times, frames):
        expected = plain[min(int(time_s * FPS), FRAMES - 1)]
        assert np.array_equal(frame, expected), time_s
    # Without the document's rate and count: the container's.
    assert np.array_equal(read_frames_at(clip, [2.0])[0], plain[16])


def test_frames_are_scaled_down_to_the_bound(tmp_path):
    big = write_video(str(tmp_path / 'big.mp4'), num_frames=4,
                      size=(800, 400), fps=FPS)
    (frame, ) = read_frames_at(big, [0.1])
    assert frame.shape == (160, 320, 3)
    (small, ) = read_frames_at(big, [0.1], max_side=1000)
    assert small.shape == (400, 800, 3)


def test_segment_times():
    assert segment_times(10, 20, 12, 1) == [12]
    assert segment_times(10, 20, 12, 2) == [10, 20]
    assert segment_times(10, 20, 12, 3) == [10, 12, 20]
    assert segment_times(10, 20, 12, 5) == [10, 12.5, 12, 17.5, 20]
    with pytest.raises(ValueError, match='per_segment'):
        segment_times(10, 20, 12, 0)


def test_the_sheet_holds_the_frames_of_each_segment(clip, tmp_path):
    queries = ['a square moving right', 'ein Quadrat, das schrumpft \u00e9',
               'nothing here']
    segments = {
        queries[0]: [dict(start_s=2.0, end_s=6.0, score=0.9, peak_s=4.0),
                     dict(start_s=9.0, end_s=11.0, score=0.7,
                          peak_s=10.0)],
        queries[1]: [dict(start_s=0.0, end_s=15.0, score=0.6)],  # no peak
        queries[2]: [],
    }
    result = result_of(clip, segments, queries)
    path = write_contact_sheet(result, str(tmp_path / 'sheet.png'),
                               queries=queries)
    sheet = np.asarray(Image.open(path).convert('RGB'))
    plain = decode_all(clip)
    # Rows: title 30, then per segment a 22 px caption, the frames, 6 px.
    # The 96 x 64 frames are shown twice as large, pixel for pixel.
    plain = [f.repeat(2, axis=0).repeat(2, axis=1) for f in plain]
    cell_h, cell_w = plain[0].shape[:2]
    assert (cell_h, cell_w) == (128, 192)
    expected = [(2.0, 4.0, 6.0), (9.0, 10.0, 11.0), (0.0, 7.5, 15.0)]
    for row, times in enumerate(expected):
        top = 30 + row * (22 + cell_h + 6) + 22
        for i, time_s in enumerate(times):
            left = 6 + i * (cell_w + 6)
            # The label box covers the frame's bottom: compare above it.
            got = sheet[top:top + cell_h - 20, left:left + cell_w]
            want = plain[min(int(time_s * FPS), FRAMES - 1)][:cell_h - 20]
            assert np.array_equal(got, want), (row, i)
    # The query without segments gets a caption line, not frames.
    assert sheet.shape[0] == 30 + 3 * (22 + cell_h + 6) + 22 + 6
    assert sheet.shape[1] == max(2 * 6 + 3 * (cell_w + 6) - 6, 480)


def test_jpeg_and_frames_per_segment(clip, tmp_path):
    segments = {'q': [dict(start_s=1.0, end_s=3.0, score=0.5, peak_s=2.0)]}
    result = result_of(clip, segments, ['q'])
    one = Image.open(io.BytesIO(render_contact_sheet(result, ['q'], 5,
                                                     'JPEG')))
    assert one.format == 'JPEG'
    path = write_contact_sheet(result, str(tmp_path / 's.jpg'), 5)
    assert Image.open(path).size == (12 + 5 * 198 - 6, 30 + 22 + 128 + 6 + 6)
    assert THUMBNAIL == 320


def test_small_frames_are_enlarged_by_a_whole_factor():
    small = np.arange(74 * 50 * 3, dtype=np.uint8).reshape(50, 74, 3)
    big = enlarge(small)
    assert big.shape == (150, 222, 3)  # 3 x: 222 >= MIN_THUMBNAIL
    assert np.array_equal(big[::3, ::3], small)
    assert np.array_equal(big[2::3, 1::3], small)
    assert MIN_THUMBNAIL == 160
    large = np.zeros((90, 160, 3), np.uint8)
    assert enlarge(large) is large


def test_unreadable_videos_are_named(tmp_path):
    broken = tmp_path / 'broken "clip".mp4'
    broken.write_bytes(b'not a video at all' * 100)
    segments = {'q': [dict(start_s=1.0, end_s=3.0, score=0.5, peak_s=2.0)]}
    target = tmp_path / 'sheet.jpg'
    for video in (str(broken), str(tmp_path / 'gone.mp4')):
        with pytest.raises(FrameReadError) as error:
            write_contact_sheet(result_of(video, segments, ['q']),
                                str(target))
        assert repr(video) in str(error.value)
        assert not target.exists()


def test_truncated_video_names_the_time(tmp_path):
    # An AVI cut short still opens (its header promises every frame); the
    # frames past the cut cannot be decoded.
    whole = str(tmp_path / 'whole.avi')
    writer = cv2.VideoWriter(whole, cv2.VideoWriter_fourcc(*'MJPG'), FPS,
                             (96, 64))
    rng = np.random.default_rng(0)
    for _ in range(FRAMES):
        writer.write(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    writer.release()
    data = open(whole, 'rb').read()
    cut = tmp_path / 'cut.avi'
    cut.write_bytes(data[:len(data) // 3])
    assert len(read_frames_at(str(cut), [1.0])) == 1
    with pytest.raises(FrameReadError,
                       match=r'frame at 14.00 s \(frame 112\) of video '
                       r"'.*cut.avi'"):
        read_frames_at(str(cut), [1.0, 14.0])


def test_only_jpeg_or_png(clip, tmp_path):
    with pytest.raises(ValueError, match='unknown image format .gif'):
        write_contact_sheet(result_of(clip, {'q': []}, ['q']),
                            str(tmp_path / 's.gif'))
