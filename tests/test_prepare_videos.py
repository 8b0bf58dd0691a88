"""``tools/data/prepare_videos.py``: output sizes and key-frame interval,
display rotation, resuming, sources never written over, damaged sources
named, the annotation list, and wrong arguments answered at once."""
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, run_tool_traced
from odd_videos import write

TOOL = osp.join(ROOT, 'tools', 'data', 'prepare_videos.py')


def run(*args, cwd=None):
    """The tool's completed process (one worker unless given)."""
    args = [str(a) for a in args]
    if '--num-worker' not in args:
        args += ['--num-worker', '1']
    return run_tool_traced(TOOL, *args, cwd=cwd)


def probe(path):
    """``(width, height, frames, key frames in presentation order,
    rotation)`` of a video."""
    import av
    with av.open(path) as container:
        stream = container.streams.video[0]
        packets = sorted((p for p in container.demux(stream) if p.size),
                         key=lambda p: p.pts)
        keys = [i for i, p in enumerate(packets) if p.is_keyframe]
        with av.open(path) as again:
            rotation = next(again.decode(video=0)).rotation
        return stream.width, stream.height, len(packets), keys, rotation


@pytest.fixture
def source(tmp_path):
    """``src/`` with two 128x64 videos of 48 frames (key frame every 12)."""
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('a.mp4', 'b.mp4'):
        write(str(src / name), num_frames=48, fps=10, gop=12)
    return src


def test_sizes_and_key_frames(source, tmp_path):
    out = tmp_path / 'dense'
    result = run(source, out, '--level', '1', '--scale', '32', '--dense',
                 '--num-worker', '2')
    assert result.returncode == 0, result.stderr
    assert 'torch loaded: False' in result.stdout
    for name in ('a.mp4', 'b.mp4'):
        assert probe(str(out / name)) == (64, 32, 48, [0, 16, 32], 0)
    fixed = tmp_path / 'fixed'
    result = run(source, fixed, '--level', '1', '--size', '64x64',
                 '--gop', '8')
    assert result.returncode == 0, result.stderr
    keys = [0, 8, 16, 24, 32, 40]
    assert probe(str(fixed / 'a.mp4')) == (64, 64, 48, keys, 0)
    kept = tmp_path / 'kept'
    result = run(source, kept, '--level', '1', '--keep-size', '--dense')
    assert result.returncode == 0, result.stderr
    assert probe(str(kept / 'a.mp4')) == (128, 64, 48, [0, 16, 32], 0)


def test_display_rotation_is_applied(tmp_path):
    from models.datasets.pyav_frames import read_frames
    src = tmp_path / 'src'
    src.mkdir()
    write(str(src / 'turned.mp4'), num_frames=20, rotation=90)
    result = run(src, tmp_path / 'out', '--level', '1', '--scale', '64')
    assert result.returncode == 0, result.stderr
    out = str(tmp_path / 'out' / 'turned.mp4')
    assert probe(out)[:3] == (64, 128, 20)  # upright, as the readers show
    assert probe(out)[4] == 0
    for i in (0, 19):
        shown, = read_frames(str(src / 'turned.mp4'), [i])
        prepared, = read_frames(out, [i])
        diff = np.abs(shown.astype(int) - prepared.astype(int)).mean()
        assert diff < 6, (i, diff)


def test_resume_skips_finished_and_redoes_partial(source, tmp_path):
    out = tmp_path / 'out'
    assert run(source, out, '--level', '1', '--dense').returncode == 0
    kept = os.stat(out / 'a.mp4')
    data = (out / 'b.mp4').read_bytes()
    (out / 'b.mp4').write_bytes(data[:len(data) // 2])  # a partial copy
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale = out / f'.b.mp4.{dead.pid}.0.tmp.mp4'  # left by a killed run
    stale.write_bytes(b'partial')
    result = run(source, out, '--level', '1', '--dense')
    assert result.returncode == 0, result.stderr
    assert '1 prepared, 1 already done, 0 failed' in result.stdout
    again = os.stat(out / 'a.mp4')
    assert (again.st_ino, again.st_mtime_ns) == (kept.st_ino,
                                                 kept.st_mtime_ns)
    assert probe(str(out / 'b.mp4'))[2:4] == (48, [0, 16, 32])
    assert sorted(os.listdir(out)) == ['a.mp4', 'b.mp4']


def test_sources_are_never_written_over(source, tmp_path):
    before = {p: (source / p).read_bytes() for p in os.listdir(source)}
    link = tmp_path / 'link'
    link.symlink_to(source)
    for dst in (source, link, tmp_path / 'src' / '..' / 'src'):
        result = run(source, dst, '--level', '1')
        assert result.returncode == 2
        assert 'never written over' in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    # A list whose video names are the outputs' own (.mp4 into the same
    # place through another path).
    (tmp_path / 'list.txt').write_text('a.mp4 0\n')
    result = run(link, source, '--ann-file', tmp_path / 'list.txt')
    assert result.returncode == 2
    assert {p: (source / p).read_bytes()
            for p in os.listdir(source)} == before


def test_damaged_source_is_named_and_fails(source, tmp_path):
    (source / 'broken.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42' +
                                        os.urandom(3000))
    (tmp_path / 'list.txt').write_text('a.mp4 0\nbroken.mp4 1\nb.mp4 2\n')
    out = tmp_path / 'out'
    result = run(source, out, '--ann-file', tmp_path / 'list.txt',
                 '--num-worker', '2')
    assert result.returncode == 1
    failed = [line for line in result.stderr.splitlines()
              if line.startswith('FAILED')]
    assert len(failed) == 1 and 'broken.mp4: ' in failed[0]
    assert '2 prepared, 0 already done, 1 failed' in result.stdout
    assert sorted(os.listdir(out)) == ['a.mp4', 'b.mp4', 'list.txt']
    assert (out / 'list.txt').read_text() == 'a.mp4 0\nb.mp4 2\n'


def test_annotation_lists(tmp_path):
    src = tmp_path / 'src'
    for folder in ('ApplyEyeMakeup', 'apply_lipstick'):
        (src / folder).mkdir(parents=True)
        write(str(src / folder / 'v.avi'), num_frames=12, fmt='avi')
    labels = tmp_path / 'classes.txt'
    labels.write_text('apply lipstick\napply eye makeup\n')
    result = run(src, tmp_path / 'out', '--label-map', labels,
                 '--ext', 'avi')
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'out' / 'list_videos.txt').read_text() == (
        'ApplyEyeMakeup/v.mp4 1\napply_lipstick/v.mp4 0\n')
    # From a list: the same lines with the new names.
    listed = tmp_path / 'val_list.txt'
    listed.write_text('apply_lipstick/v.avi 7\nApplyEyeMakeup/v.avi 3\n')
    result = run(src, tmp_path / 'out2', '--ann-file', listed)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'out2' / 'val_list.txt').read_text() == (
        'apply_lipstick/v.mp4 7\nApplyEyeMakeup/v.mp4 3\n')
    # A re-run finds its own list; another existing list is kept.
    assert run(src, tmp_path / 'out2', '--ann-file', listed).returncode == 0
    mine = tmp_path / 'mine.txt'
    mine.write_text('keep me\n')
    result = run(src, tmp_path / 'out3', '--ann-file', listed,
                 '--out-list', mine)
    assert result.returncode == 2 and 'never written over' in result.stderr
    assert mine.read_text() == 'keep me\n'
    assert not (tmp_path / 'out3').exists()
    write(str(src / 'apply_lipstick' / 'a b.avi'), num_frames=12, fmt='avi')
    result = run(src, tmp_path / 'out4', '--label-map', labels,
                 '--ext', 'avi')
    assert result.returncode == 2 and 'white space' in result.stderr


BAD_ARGS = [
    (['--size', '340by256'], "--size '340by256': give WxH"),
    (['--size', '341x256'], 'must be even'),
    (['--scale', '255'], '--scale 255'),
    (['--gop', '0'], '--gop 0'),
    (['--dense', '--gop', '8'], 'not both'),
    (['--keep-size', '--size', '64x64'], '--keep-size or --size'),
    (['--crf', '60'], '--crf 60'),
    (['--num-worker', '0'], '--num-worker 0'),
    (['--ann-file', 'no_such_list.txt'], 'does not exist'),
    (['--label-map', 'l.txt', '--ann-file', 'a.txt'], 'not both'),
    (['--level', '1', '--ext', 'mkv'], 'holds no .mkv'),
]


@pytest.mark.parametrize('args,message', BAD_ARGS)
def test_wrong_arguments_exit_2_at_once(source, tmp_path, args, message):
    start = time.perf_counter()
    result = run(source, tmp_path / 'out', '--level', '1', *args)
    elapsed = time.perf_counter() - start
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert 'torch loaded: False' in result.stdout
    assert not (tmp_path / 'out').exists()
    assert elapsed < 5, elapsed


def test_help_documents_every_option():
    result = run('--help')
    assert result.returncode == 0
    for option in ('--dense', '--gop', '--scale', '--size', '--level',
                   '--ext', '--num-worker', '--ann-file', '--label-map',
                   '--out-list', '--crf', '--preset'):
        assert option in result.stdout


def test_check_output_names_what_differs(tmp_path):
    from models.datasets.prepare import check_output
    source = write(str(tmp_path / 'source.mp4'), num_frames=40)
    assert check_output(source, source) == ''
    short = write(str(tmp_path / 'short.mp4'), num_frames=30)
    assert check_output(source, short) == (
        'the output has 30 frames, the source 40')
    slow = write(str(tmp_path / 'slow.mp4'), num_frames=40, fps=5)
    assert check_output(source, slow) == (
        'the output lasts 8.00 s, the source 4.00 s')
    (tmp_path / 'cut.mp4').write_bytes(open(source, 'rb').read()[:2000])
    assert check_output(source, str(tmp_path / 'cut.mp4')).startswith(
        'the output does not decode')
