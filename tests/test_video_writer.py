"""models/utils/video_writer.py: videos written whole and checked, or not
at all; a full disk (here a file-size limit, as ``ulimit -f`` sets) says
so in one line and leaves the previous file."""
import os
import resource
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from models.utils import video_writer

#: Writes 60 noisy 128x128 frames to argv[2] with writer argv[1], as a
#: tool does: the light module, its error as one line, exit 1.
WRITE = '''
import sys
import numpy as np
sys.path.insert(0, sys.argv[3] + '/tools')
from light_imports import load_light
vw = load_light('models.utils.video_writer')
rng = np.random.default_rng(0)
frames = (rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
          for _ in range(60))
try:
    if sys.argv[1] == 'pyav':
        vw.write_pyav(sys.argv[2], frames, 10, 'libx264',
                      dict(preset='ultrafast'))
    else:
        vw.write_opencv(sys.argv[2], frames, 10, ('mp4v', ))
except OSError as error:
    print(error, file=sys.stderr)
    sys.exit(1)
'''


def frames(count, size=64):
    rng = np.random.default_rng(count)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            for _ in range(count)]


def test_both_writers_write_every_frame(tmp_path):
    path = str(tmp_path / 'a.mp4')
    assert video_writer.write_pyav(path, iter(frames(12)), 10) == 12
    assert video_writer.count_frames(path) == 12
    count, codec = video_writer.write_opencv(path, frames(7), 10,
                                             ('nope', 'mp4v'))
    assert (count, codec) == (7, 'mp4v')
    assert video_writer.count_frames(path) == 7
    with pytest.raises(video_writer.NoFramesError):
        video_writer.write_pyav(str(tmp_path / 'b.mp4'), [], 10)
    assert sorted(os.listdir(tmp_path)) == ['a.mp4']


@pytest.mark.parametrize('writer', ['pyav', 'opencv'])
def test_a_full_disk_keeps_the_previous_file(tmp_path, writer):
    path = tmp_path / 'v.mp4'
    video_writer.write_pyav(str(path), frames(3), 10)
    before = path.read_bytes()

    def limit():  # ulimit -f: writes past 40 KB fail (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40000, 40000))

    proc = subprocess.run(
        [sys.executable, '-c', WRITE, writer, str(path), ROOT],
        preexec_fn=limit, capture_output=True, text=True, timeout=120)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and 'No space left on device' in lines[0]
    assert str(path) in lines[0]
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['v.mp4']


def test_a_writer_that_loses_frames_silently_is_caught(tmp_path,
                                                       monkeypatch):
    """OpenCV's writer drops what it cannot write without a word: the
    frames read back are counted."""
    import cv2
    path = tmp_path / 'v.mp4'
    video_writer.write_pyav(str(path), frames(3), 10)
    before = path.read_bytes()
    real = cv2.VideoWriter

    class Losing:

        def __init__(self, *args):
            self.real, self.count = real(*args), 0

        def isOpened(self):
            return self.real.isOpened()

        def write(self, frame):
            self.count += 1
            if self.count <= 4:
                self.real.write(frame)

        def release(self):
            self.real.release()

    monkeypatch.setattr(cv2, 'VideoWriter', Losing)
    with pytest.raises(video_writer.VideoWriteError,
                       match='4 of 9 frames could be read back'):
        video_writer.write_opencv(str(path), frames(9), 10)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['v.mp4']
