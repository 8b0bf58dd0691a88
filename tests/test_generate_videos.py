import os

import generate_videos as gen
import numpy as np
import pytest


def frame_at(path, index):
    """Frame ``index`` of a video, decoded in order with OpenCV (decord
    cannot copy the frames of some widths, which depend on the CPU, e.g.
    the generator's 96 or, scaled, 48 pixels on an AVX-512 Xeon: a single
    frame then comes back with padded rows taken for channels)."""
    import cv2
    capture = cv2.VideoCapture(path)
    for _ in range(index + 1):
        ok, frame = capture.read()
        assert ok, (path, index)
    capture.release()
    return frame


def read(path):
    with open(path) as f:
        return f.read().splitlines()


def test_classes_are_plain_english_and_held_out_pairs_are_excluded():
    seen, held = gen.split_classes(gen.DEFAULT_HELDOUT)
    assert len(seen) >= 8 and len(set(seen)) == len(seen)
    assert 'a square moving left' in seen
    assert 'a triangle growing' in held and 'a triangle growing' not in seen
    assert not any('circle rotating' in name for name in seen + held)
    with pytest.raises(ValueError, match='not classes'):
        gen.split_classes([('circle', 'rotating clockwise')])


def test_rendering_is_deterministic_and_varied():
    a, fps_a = gen.render('square', 'moving left', seed=7)
    b, fps_b = gen.render('square', 'moving left', seed=7)
    assert fps_a == fps_b and len(a) == len(b)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c, _ = gen.render('square', 'moving left', seed=8)
    assert a[0].shape != c[0].shape or not np.array_equal(a[0], c[0])


def test_motion_is_needed_to_tell_the_class():
    """The first frames of opposite motions look alike in distribution:
    where the object starts does not give its direction away."""

    def start_x(motion, seed):
        frames, _ = gen.render('square', motion, seed)
        first, last = frames[0].astype(int), frames[-1].astype(int)
        moved = np.abs(first - last).sum(-1) > 60
        cols = np.nonzero(moved.any(0))[0]
        return cols.mean() / first.shape[1]

    left = [start_x('moving left', s) for s in range(12)]
    right = [start_x('moving right', s) for s in range(12)]
    # both directions occur on both halves of the frame
    assert min(left) < 0.5 < max(left) and min(right) < 0.5 < max(right)


def test_dataset_lists_and_labels(tmp_path):
    out = str(tmp_path / 'data')
    counts = gen.generate(
        out,
        seed=3,
        per_class=dict(train=1, val=1, test=1, zeroshot=2),
        workers=1,
        progress=False)
    seen, held = gen.split_classes(gen.DEFAULT_HELDOUT)
    assert counts == dict(
        train=len(seen), val=len(seen), test=len(seen), zeroshot=2 * len(held))
    assert read(os.path.join(out, 'label_map.txt')) == seen
    assert read(os.path.join(out, 'label_map_zeroshot.txt')) == held
    assert read(os.path.join(out, 'label_map_all.txt')) == seen + held
    train = [line.split() for line in read(
        os.path.join(out, 'train_list_videos.txt'))]
    assert sorted(int(label) for _, label in train) == list(range(len(seen)))
    for name, label in train:
        assert name.startswith(seen[int(label)][2:].replace(' ', '_'))
        assert os.path.getsize(
            os.path.join(out, 'videos', 'train', name)) > 1000
    zero = read(os.path.join(out, 'zeroshot_list_videos.txt'))
    zero_all = read(os.path.join(out, 'zeroshot_all_list_videos.txt'))
    for a, b in zip(zero, zero_all):
        (name, label), (name_all, label_all) = a.split(), b.split()
        assert name == name_all
        assert held[int(label)] == (seen + held)[int(label_all)]
    # the same seed gives the same lists again, whatever other splits
    # are asked for
    again = str(tmp_path / 'again')
    gen.generate(again, seed=3, per_class=dict(train=1, zeroshot=2),
                 workers=1, progress=False)
    for name in ('train_list_videos.txt', 'zeroshot_list_videos.txt'):
        assert read(os.path.join(out, name)) == read(os.path.join(again, name))
    first = frame_at(os.path.join(out, 'videos', 'train', train[0][0]), 0)
    second = frame_at(os.path.join(again, 'videos', 'train', train[0][0]),
                      0)
    assert np.array_equal(first, second)


def assert_manifest_lists(out, files):
    """Each manifest entry is its file's size and SHA-256, read here."""
    import hashlib
    for name, entry in files.items():
        with open(os.path.join(out, name), 'rb') as f:
            data = f.read()
        assert entry == dict(size_bytes=len(data),
                             sha256=hashlib.sha256(data).hexdigest())


def die_at_second_video(monkeypatch):
    """The generator is killed (KeyboardInterrupt) at its second video;
    returns the list of the videos it was asked to write."""
    real = gen.write_clip
    calls = []

    def dying(*args):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(*args)

    monkeypatch.setattr(gen.synthetic, 'write_clip', dying)
    return calls


def test_clip_sets_have_a_manifest_written_last(tmp_path, monkeypatch):
    import json
    out = str(tmp_path / 'data')
    gen.generate(out, seed=3, per_class=dict(train=1, zeroshot=1),
                 workers=1, progress=False, size_scale=0.5)
    with open(os.path.join(out, 'manifest.json')) as f:
        files = json.load(f)['files']
    videos = sorted(os.path.join('videos', split, name)
                    for split in ('train', 'zeroshot')
                    for name in os.listdir(os.path.join(out, 'videos',
                                                        split)))
    assert len(videos) == 22
    assert sorted(files) == sorted(videos + [
        'train_list_videos.txt', 'zeroshot_list_videos.txt',
        'zeroshot_all_list_videos.txt', 'label_map.txt',
        'label_map_zeroshot.txt', 'label_map_all.txt'])
    assert_manifest_lists(out, files)
    # Written again and killed at the second video: no manifest is left
    # beside videos it does not describe.
    die_at_second_video(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        gen.generate(out, seed=4, per_class=dict(train=1, zeroshot=1),
                     workers=1, progress=False, size_scale=0.5)
    assert not os.path.exists(os.path.join(out, 'manifest.json'))


def test_size_scale_shrinks_every_frame_size(tmp_path):
    sizes = {gen.render('circle', 'growing', s, 0.667)[0][0].shape[:2]
             for s in range(40)}
    expected = {gen.frame_size(size, 0.667)[::-1] for size in gen.SIZES}
    assert sizes == expected == {(64, 64), (64, 86), (74, 74), (80, 106)}
    assert gen.frame_size((96, 96), 0.1) == (32, 32)  # a floor, even sizes
    import cv2
    gen.generate(str(tmp_path), per_class=dict(train=1), workers=1,
                 progress=False, size_scale=0.5)
    name = read(str(tmp_path / 'train_list_videos.txt'))[0].split()[0]
    video = cv2.VideoCapture(str(tmp_path / 'videos' / 'train' / name))
    width = video.get(cv2.CAP_PROP_FRAME_WIDTH)
    assert width in {gen.frame_size(s, 0.5)[0] for s in gen.SIZES}
    with pytest.raises(ValueError, match='size_scale'):
        gen.generate(str(tmp_path), size_scale=0)
    assert gen.main(['--out', str(tmp_path), '--size-scale', '-1']) == 2


def test_files_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    gen.generate(str(tmp_path), per_class=dict(train=1), workers=1,
                 progress=False, size_scale=0.5)
    for folder, _, names in os.walk(tmp_path):
        assert not [n for n in names if n.startswith('.')], folder
    name = read(str(tmp_path / 'train_list_videos.txt'))[0].split()[0]
    video = tmp_path / 'videos' / 'train' / name
    before = video.read_bytes()

    real_writer = gen.cv2.VideoWriter

    class FailingWriter:
        """A VideoWriter that breaks after one frame (a full disk)."""

        def __init__(self, path, *args):
            self.real = real_writer(path, *args)
            self.count = 0

        def isOpened(self):
            return self.real.isOpened()

        def write(self, frame):
            self.count += 1
            if self.count > 1:
                raise OSError(28, 'No space left on device')
            self.real.write(frame)

        def release(self):
            self.real.release()

    monkeypatch.setattr(gen.cv2, 'VideoWriter', FailingWriter)
    frames, fps = gen.render('square', 'moving left', seed=1)
    with pytest.raises(OSError, match='No space left'):
        gen.write_video(str(video), frames, fps, 'mp4v')
    assert video.read_bytes() == before
    assert not [n for n in os.listdir(video.parent) if n.startswith('.')]


# ---------------------------------------------------------------------------
# Long videos: actions in sequence, still pauses, ground truth
# ---------------------------------------------------------------------------


def changed_pixels(a, b):
    """Pixels that differ by more than the noise can make them differ
    (each frame's noise is within +-6)."""
    return int((np.abs(a.astype(int) - b.astype(int)) > 12).any(-1).sum())


def test_long_plan_is_deterministic_and_well_formed():
    seen, held = gen.split_classes(gen.DEFAULT_HELDOUT)
    plan = gen.plan_long(5, 'trained', seen, 0, 180, (1.0, 5.0), 0.667)
    assert plan == gen.plan_long(5, 'trained', seen, 0, 180, (1.0, 5.0),
                                 0.667)
    assert plan != gen.plan_long(5, 'trained', seen, 1, 180, (1.0, 5.0),
                                 0.667)
    assert plan != gen.plan_long(6, 'trained', seen, 0, 180, (1.0, 5.0),
                                 0.667)
    fps, actions = plan['fps'], plan['actions']
    assert fps in gen.FRAME_RATES and plan['num_frames'] == 180 * fps
    assert (plan['height'], plan['width']) in {
        gen.frame_size(s, 0.667)[::-1] for s in gen.SIZES}
    # every label in each round of len(labels) actions
    assert sorted(a['label'] for a in actions[:len(seen)]) == sorted(seen)
    edges = [0] + [x for a in actions for x in (a['start'], a['stop'])] + [
        plan['num_frames']]
    pauses = [b - a for a, b in zip(edges[::2], edges[1::2])]
    lengths = [a['stop'] - a['start'] for a in actions]
    assert all(20 <= n <= 40 for n in lengths)
    assert all(round(1.0 * fps) <= p for p in pauses)
    assert all(p <= round(5.0 * fps) for p in pauses[:-1])
    zero = gen.plan_long(5, 'zeroshot', held, 0, 180)
    assert {a['label'] for a in zero['actions']} == set(held)
    with pytest.raises(ValueError, match='at least'):
        gen.plan_long(0, 'trained', seen, 0, 5)
    with pytest.raises(ValueError, match='pause_s'):
        gen.plan_long(0, 'trained', seen, 0, 60, (2.0, 1.0))


def test_long_frames_move_only_inside_actions():
    seen, _ = gen.split_classes(gen.DEFAULT_HELDOUT)
    plan = gen.plan_long(1, 'trained', seen, 0, 25, (1.0, 3.0), 0.5)
    frames = gen.long_frames(plan)
    assert not isinstance(frames, (list, tuple))  # streamed, not held
    frames = list(frames)
    assert len(frames) == plan['num_frames']
    assert frames[0].shape == (plan['height'], plan['width'], 3)
    inside = np.zeros(len(frames), bool)
    for action in plan['actions']:
        inside[action['start']:action['stop']] = True
        # each action is drawn exactly as a clip of its class is
        obj, motion = action['label'][2:].split(' ', 1)
        clip = gen.scene_frames(obj, motion,
                                np.random.default_rng(action['seed']),
                                plan['width'], plan['height'],
                                action['stop'] - action['start'])
        assert all(
            np.array_equal(x, y)
            for x, y in zip(clip, frames[action['start']:action['stop']]))
    # the last pause holds the last action's last frame
    ends = {a['stop'] for a in plan['actions'][:-1]}
    moving, still = [], []
    for i in range(1, len(frames)):
        changed = changed_pixels(frames[i - 1], frames[i])
        if inside[i - 1] and inside[i]:
            moving.append(changed)
        elif not inside[i - 1] and not inside[i]:
            # nothing changes in a pause, not even the scene
            assert changed == 0, i
            still.append(changed)
        else:
            # the scene changes where an action ends, not where it starts
            assert (changed == 0) == (i not in ends), i
    assert len(still) > len(frames) // 3
    assert np.mean(np.array(moving) > 0) > 0.9, moving


def test_generate_long_writes_videos_and_ground_truth(tmp_path):
    import json

    import decord
    out = str(tmp_path / 'long')
    counts = gen.generate_long(out, 1, minutes=0.4, seed=2, workers=1,
                               progress=False, size_scale=0.5)
    assert counts == dict(trained=1, zeroshot=1)
    seen, held = gen.split_classes(gen.DEFAULT_HELDOUT)
    assert read(os.path.join(out, 'label_map.txt')) == seen
    assert read(os.path.join(out, 'label_map_zeroshot.txt')) == held
    for set_name, labels in (('trained', seen), ('zeroshot', held)):
        path = os.path.join(out, f'ground_truth_{set_name}.json')
        with open(path) as f:
            truth = json.load(f)
        assert truth['set'] == set_name and truth['labels'] == labels
        assert read(os.path.join(out, truth['label_map'])) == labels
        (video, ) = truth['videos']
        assert video['duration_s'] == pytest.approx(24, abs=0.1)
        reader = decord.VideoReader(os.path.join(out, video['video']))
        assert len(reader) == video['num_frames']
        assert reader.get_avg_fps() == pytest.approx(video['fps'])
        assert frame_at(os.path.join(out, video['video']),
                        0).shape == (video['height'], video['width'], 3)
        segments = video['segments']
        assert segments and {s['label'] for s in segments} <= set(labels)
        for a, b in zip(segments, segments[1:]):
            assert a['start_s'] < a['end_s'] < b['start_s'] < b['end_s']
        assert 0 < segments[0]['start_s']
        assert segments[-1]['end_s'] < video['duration_s']
        assert segments[0]['start_s'] == pytest.approx(
            segments[0]['start_frame'] / video['fps'])
    for folder, _, names in os.walk(out):
        assert not [n for n in names if n.startswith('.')], folder
    # the same seed writes the same ground truth and frames
    again = str(tmp_path / 'again')
    gen.generate_long(again, 1, minutes=0.4, seed=2, workers=2,
                      progress=False, size_scale=0.5)
    for name in ('ground_truth_trained.json', 'ground_truth_zeroshot.json'):
        assert read(os.path.join(out, name)) == read(
            os.path.join(again, name))
    first = frame_at(os.path.join(out, 'trained/long_0000.mp4'), 100)
    second = frame_at(os.path.join(again, 'trained/long_0000.mp4'), 100)
    assert np.array_equal(first, second)


@pytest.mark.parametrize('args, message', [
    (['--long', '-1'], '--long must be at least 0'),
    (['--long', '1', '--long-minutes', '0'], '--long-minutes must be in'),
    (['--long', '1', '--long-minutes', '0.1'], 'cannot hold an action'),
    (['--long', '1', '--long-pause', '3', '1'], '--long-pause MIN MAX'),
])
def test_long_options_are_checked(tmp_path, capsys, args, message):
    assert gen.main(['--out', str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
    assert not os.listdir(tmp_path)


# ---------------------------------------------------------------------------
# Refusals and faults: --out a file, a full disk, an interrupted long run
# ---------------------------------------------------------------------------


def run_tool(args, fsize=None):
    import resource
    import subprocess
    import sys

    from conftest import ROOT

    def limit():  # ulimit -f
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'generate_videos.py'),
         *args], preexec_fn=limit if fsize else None, capture_output=True,
        text=True, timeout=300, cwd=ROOT)


def test_out_naming_a_file_is_refused_at_once(tmp_path):
    out = tmp_path / 'notes.txt'
    out.write_text('mine')
    proc = run_tool(['--out', str(out), '--per-class', '1'])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f'--out {str(out)!r} is a file; give a folder to write into']
    assert out.read_text() == 'mine'


def test_a_full_disk_says_so_in_one_line(tmp_path):
    out = tmp_path / 'data'
    # 8 KB: the lists and label maps fit, no video does
    proc = run_tool(['--out', str(out), '--per-class', '1',
                     '--val-per-class', '1', '--test-per-class', '1',
                     '--zeroshot-per-class', '1', '--workers', '2'], 8192)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('generate_videos.py: No space left on device')
    assert 'Traceback' not in proc.stderr
    for folder, _, names in os.walk(out):
        assert not [n for n in names if n.startswith('.')], folder
        assert not [n for n in names if n.endswith('.mp4')], folder


def test_long_sets_have_a_manifest_written_last(tmp_path, monkeypatch):
    import json
    out = str(tmp_path / 'long')
    gen.generate_long(out, 1, minutes=0.2, seed=4, workers=1,
                      progress=False, size_scale=0.5)
    with open(os.path.join(out, 'manifest.json')) as f:
        files = json.load(f)['files']
    assert sorted(files) == sorted([
        'trained/long_0000.mp4', 'zeroshot/long_0000.mp4',
        'ground_truth_trained.json', 'ground_truth_zeroshot.json',
        'label_map.txt', 'label_map_zeroshot.txt', 'label_map_all.txt'])
    assert_manifest_lists(out, files)
    # Written again with another seed and killed at the second video: no
    # ground truth or manifest is left beside videos they do not describe.
    calls = die_at_second_video(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        gen.generate_long(out, 1, minutes=0.2, seed=5, workers=1,
                          progress=False, size_scale=0.5)
    assert len(calls) == 2
    left = sorted(os.listdir(out))
    assert left == ['label_map.txt', 'label_map_all.txt',
                    'label_map_zeroshot.txt', 'trained', 'zeroshot']
