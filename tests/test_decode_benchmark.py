"""tools/decode_benchmark.py's work folder: clips written whole, reused, and
never over a file the tool did not write; clips decord cannot copy named."""
import hashlib
import json
import os.path as osp
import subprocess
import sys

import pytest
from conftest import ROOT, break_decord_copies, write_video

TOOL = osp.join(ROOT, 'tools', 'decode_benchmark.py')
SMALL = ['--clips', '2', '--seconds', '1', '--fps', '8', '--size', '64x48',
         '--codec', 'mp4v', '--frames', '4']


def run(*args):
    return subprocess.run([sys.executable, TOOL, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_writes_clips_and_manifest_then_reuses_them(tmp_path):
    work = str(tmp_path / 'work')
    first = run('--write-clips', '--workdir', work, *SMALL)
    assert first.returncode == 0, first.stderr
    manifest = json.load(open(osp.join(work, 'clips.json')))
    assert manifest['files'] == ['clip_mp4v_0000.mp4', 'clip_mp4v_0001.mp4']
    before = {n: digest(osp.join(work, n)) for n in manifest['files']}
    second = run('--write-clips', '--workdir', work, *SMALL)
    assert second.returncode == 0, second.stderr
    assert {n: digest(osp.join(work, n)) for n in before} == before
    assert sorted(p.name for p in (tmp_path / 'work').iterdir()) == [
        'clip_mp4v_0000.mp4', 'clip_mp4v_0001.mp4', 'clips.json']


def test_refuses_a_file_it_did_not_write(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    mine = work / 'clip_mp4v_0001.mp4'
    mine.write_bytes(b'my own video')
    proc = run('--write-clips', '--workdir', str(work), *SMALL)
    assert proc.returncode == 2
    assert 'was not written by decode_benchmark.py' in proc.stderr
    assert str(mine) in proc.stderr
    assert mine.read_bytes() == b'my own video'
    assert not (work / 'clips.json').exists()


def test_refuses_a_foreign_manifest(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'clips.json').write_text('{"my": "settings"}')
    proc = run('--write-clips', '--workdir', str(work), *SMALL)
    assert proc.returncode == 2
    assert 'is not a clip list of decode_benchmark.py' in proc.stderr
    assert (work / 'clips.json').read_text() == '{"my": "settings"}'


def test_names_clips_whose_frames_decord_cannot_copy(tmp_path, monkeypatch):
    # which widths decord cannot copy depends on the CPU: forced here
    import decode_benchmark
    path = write_video(str(tmp_path / 'v.mp4'), size=(64, 48))
    assert decode_benchmark.time_passes([path], 'path', 4, 1, 1)
    break_decord_copies(monkeypatch)
    with pytest.raises(SystemExit, match=r"v\.mp4' on this CPU.*--size"):
        decode_benchmark.time_passes([path], 'path', 4, 1, 1)
