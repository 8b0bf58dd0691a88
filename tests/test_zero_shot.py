"""tools/zero_shot.py as users run it: a fresh interpreter, offline, with
each of the three model sources; output files, drawn videos, and one-line
errors for bad input."""
import csv
import json
import os
import os.path as osp
import subprocess
import sys
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
import torch
import zero_shot
from conftest import (ROOT, make_tiny_clip, make_tiny_config, make_videos,
                      offline_env, run_tool_traced, write_video)
from PIL import Image

from models.visualization import prediction_video

TOOL = osp.join(ROOT, 'tools', 'zero_shot.py')

LABELS = 'juggling balls,riding a unicycle,reading a book'


def run_tool(args, torch_home=None, cwd=ROOT, **extra):
    if torch_home:
        extra['TORCH_HOME'] = torch_home
    return subprocess.run([sys.executable, TOOL, *args, '--no-progress'],
                          cwd=cwd,
                          env=offline_env(**extra),
                          capture_output=True,
                          text=True,
                          timeout=300)


def count_mp4_frames(path):
    capture = cv2.VideoCapture(path)
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def test_released_model_from_hub_cache_json_and_gif(tmp_path, torch_home):
    video = write_video(str(tmp_path / 'clip.mp4'), num_frames=10,
                        size=(96, 64))
    out, viz = tmp_path / 'res' / 'out.json', tmp_path / 'viz.gif'
    proc = run_tool([
        video, '--labels', LABELS, '--model', 'ViT-B/32-8', '--topk', '2',
        '--out', str(out), '--viz', str(viz), '--template', 'a video of {}'
    ], torch_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'rank  probability  label' in proc.stdout
    data = json.loads(out.read_text())
    assert data['labels'] == LABELS.split(',')
    assert data['templates'] == ['a video of {}'] and data['topk'] == 2
    assert data['model']['weights'].endswith('vit-b-32-8f.pth')
    assert 'release table' in data['model']['built_from']
    assert data['model']['num_frames'] == 8 and data['failures'] == []
    (result, ) = data['results']
    assert result['video'] == video
    probs = [p['probability'] for p in result['predictions']]
    assert len(probs) == 2 and probs[0] >= probs[1] and sum(probs) <= 1
    assert result['predictions'][0]['label'] in proc.stdout
    with Image.open(viz) as gif:
        # 96x64 is scaled up to VIZ_MIN_WIDTH wide, over the text band.
        assert gif.n_frames == 10 and gif.size[0] == 320
        assert gif.size[1] > 213
    assert f'Wrote {viz} (GIF)' in proc.stderr


def test_config_checkpoint_csv_mp4_and_unreadable_video(tmp_path):
    config, checkpoint = make_tiny_config(str(tmp_path))
    folder = str(tmp_path / 'videos')
    videos = make_videos(folder, 2, num_frames=9)
    with open(osp.join(folder, 'broken.mp4'), 'wb') as f:
        f.write(b'\x00\x01 not a video' * 30)
    out = tmp_path / 'out.csv'
    proc = run_tool([
        folder, '--labels', LABELS, '--config', config, '--checkpoint',
        checkpoint, '--out',
        str(out), '--viz',
        str(tmp_path / 'viz.mp4'), '--batch-size', '2', '--workers', '2',
        '--verbose'
    ])
    # One video unreadable: the others are still scored, then exit 1.
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert '1 of 3 videos failed' in proc.stderr
    assert 'broken.mp4' in proc.stderr.split('failed:')[-1]
    # FFmpeg's and decord's own lines come back with --verbose (hidden
    # without: test_third_party_noise_is_hidden_unless_verbose).
    assert 'moov atom not found' in proc.stderr, proc.stderr
    assert 'skipped:' in proc.stderr
    with open(out, newline='') as f:
        rows = list(csv.DictReader(f))
    assert [(r['video'], r['rank']) for r in rows] == [
        (v, str(k)) for v in videos for k in (1, 2, 3)
    ]

    # The same numbers as the model's own predict_scores in this process.
    from models.apis.video_scoring import load_scoring_model
    scorer = load_scoring_model(config=config, checkpoint=checkpoint)
    scorer.model.set_labels(LABELS.split(','))
    frames = torch.stack([scorer.preprocess(v) for v in videos])
    with torch.no_grad():
        expected = scorer.model.predict_scores(frames)
    for row in rows:
        i, label = videos.index(row['video']), row['label']
        j = LABELS.split(',').index(label)
        assert float(row['probability']) == pytest.approx(
            float(expected[i, j]), abs=1e-5)

    for video in videos:
        stem = osp.splitext(osp.basename(video))[0]
        drawn = tmp_path / f'viz_{stem}.mp4'
        assert count_mp4_frames(str(drawn)) == 9
    assert not (tmp_path / 'viz_broken.mp4').exists()


@pytest.fixture(scope='module')
def plain_clip_run(tmp_path_factory):
    """One run on plain CLIP weights over a folder of a video and an
    unreadable file, read by the tests of the weights and of the quiet
    output: ``(weights, folder, out, proc)``."""
    root = tmp_path_factory.mktemp('plain_clip')
    weights = make_tiny_clip(str(root / 'tiny_clip.pt'))
    folder = root / 'videos'
    make_videos(str(folder), 1, num_frames=4)
    (folder / 'broken.mp4').write_bytes(b'not a video' * 30)
    out = root / 'out.json'
    args = [str(folder), '--labels', LABELS, '--clip', weights,
            '--num-frames', '4', '--device', 'cpu', '--template',
            'a video of {}', '--template', 'someone {}', '--out', str(out)]
    # Set up before each test's own cache folder: one of its own.
    proc = run_tool(args, XDG_CACHE_HOME=str(root / 'xdg_cache'))
    return weights, folder, out, proc


def test_plain_clip_weights_file(plain_clip_run):
    weights, folder, out, proc = plain_clip_run
    assert proc.returncode == 1, proc.stderr[-3000:]  # broken.mp4 only
    data = json.loads(out.read_text())
    assert data['model'] == dict(weights=weights, num_frames=4,
                                 built_from=f'CLIP weights {weights}')
    assert data['templates'] == ['a video of {}', 'someone {}']
    (result, ) = data['results']
    assert result['video'] == str(folder / 'video_0.mp4')
    probs = [p['probability'] for p in result['predictions']]
    assert len(probs) == 3 and sum(probs) == pytest.approx(1, abs=1e-5)


def test_released_model_missing_offline_names_the_cache_path(
        tmp_path, capsys, monkeypatch):
    video = write_video(str(tmp_path / 'v.mp4'))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty_home'))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError('network unreachable')

    monkeypatch.setattr(urllib.request, 'urlopen', offline)
    assert zero_shot.main([video, '--labels', LABELS]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert ': error: Failed to download' in error, error
    expected = osp.join(str(tmp_path), 'empty_home', 'hub', 'checkpoints',
                        'vit-b-32-8f.pth')
    assert expected in error


@pytest.mark.parametrize('args, message', [
    (['{video}', '{folder}/nope.mp4', '--labels', 'a'],
     "Video path '{folder}/nope.mp4' does not exist; check the spelling"),
    (['{folder}', '--labels', 'a,b', '--model', 'ViT-X/99'],
     "Model 'ViT-X/99' not found"),
    (['{empty}', '--labels', 'a,b'], 'holds no video files'),
    (['{video}'], 'No labels: pass --labels'),
    (['{video}', '--labels', ' , '], 'No labels'),
    (['{video}', '--labels', 'a,,b'], 'has an empty label'),
    (['{video}', '--label-file', '{folder}/labels.txt'],
     'labels.txt\' does not exist'),
    (['{video}', '--labels', 'a', '--template', 'no slot'], "has no '{{}}'"),
    (['{video}', '--labels', 'a', '--out', 'r.txt'], "unknown format .txt"),
    (['{video}', '--labels', 'a', '--viz', 'v.avi'], 'end the name with .mp4'),
    (['{video}', '--labels', 'a', '--topk', '0'], '--topk must be >= 1'),
    (['{video}', '--labels', 'a', '--checkpoint', 'x.pth'],
     '--checkpoint needs the --config'),
    (['{video}', '--labels', 'a', '--model', 'ViT-B/32-8', '--clip', 'x'],
     '--model and --clip both choose a model'),
    (['{video}', '--labels', 'a', '--workers', '-1'],
     '--workers must be >= 0, got -1'),
    (['{video}', '--labels', 'a', '--num-frames', '4'],
     '--num-frames only applies to --clip'),
    (['{video}', '--labels', 'a', '--clip', '{folder}/none.pt'],
     'none.pt\' not found'),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    folder = tmp_path / 'videos'
    folder.mkdir()
    (tmp_path / 'empty').mkdir()
    video = write_video(str(folder / 'v.mp4'))
    fill = dict(folder=str(folder), empty=str(tmp_path / 'empty'),
                video=video)
    status = zero_shot.main([a.format(**fill) for a in args])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1 and ': error: ' in err, err
    assert message.format(**fill) in err, err


# ---------------------------------------------------------------------------
# --out / --viz: never over an input, folders created, bounded GIFs
# ---------------------------------------------------------------------------


def no_model(args):
    raise AssertionError('the model was loaded before the outputs were '
                         'checked')


@pytest.mark.parametrize('out, how', [
    (['--viz', '{video}'], ''),
    (['--viz', '{hard}'], 'through a hard link'),
    (['--out', '{soft}'], 'through a symbolic link'),
    (['--out', '{labels}', '--label-file', '{labels}'], ''),
    (['{folder}/viz_v.gif', '--viz', '{folder}/viz.gif'], ''),
])
def test_output_at_an_input_is_refused_before_the_model_loads(
        tmp_path, capsys, monkeypatch, out, how):
    folder = tmp_path / 'videos'
    folder.mkdir()
    video = write_video(str(folder / 'v.mp4'), num_frames=60)
    # A second input video named as --viz names its output for 'v.mp4'.
    second = str(folder / 'viz_v.gif')
    os.rename(write_video(str(folder / 'w.mp4'), num_frames=8), second)
    labels = tmp_path / 'labels.csv'
    labels.write_text('juggling\nreading\n')
    hard, soft = tmp_path / 'hard.mp4', tmp_path / 'soft.json'
    os.link(video, hard)
    soft.symlink_to(video)
    fill = dict(video=video, hard=str(hard), soft=str(soft),
                labels=str(labels), folder=str(folder))
    args = [a.format(**fill) for a in out]
    if '--label-file' not in args:
        args += ['--labels', 'a,b']
    before = {p: open(p, 'rb').read() for p in (video, second, labels)}
    monkeypatch.setattr(zero_shot, 'load_model_from_args', no_model)
    status = zero_shot.main([video, *args])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1, err
    assert 'is the same file as the input' in err and how in err, err
    assert {p: open(p, 'rb').read() for p in before} == before
    assert count_mp4_frames(video) == 60
    assert sorted(os.listdir(folder)) == ['v.mp4', 'viz_v.gif']


def test_outputs_in_missing_folders_are_created(tmp_path, capsys):
    weights = make_tiny_clip(str(tmp_path / 'tiny_clip.pt'))
    folder = tmp_path / 'videos'
    videos = make_videos(str(folder), 2, num_frames=9)
    with open(folder / 'broken.mp4', 'wb') as f:
        f.write(b'not a video' * 30)
    out = tmp_path / 'results' / 'deeper' / 'r.json'
    viz = tmp_path / 'drawn' / 'x.mp4'
    status = zero_shot.main([
        str(folder), '--labels', LABELS, '--clip', weights, '--num-frames',
        '4', '--out', str(out), '--viz', str(viz), '--no-progress'
    ])
    assert status == 1, capsys.readouterr().err  # broken.mp4
    assert len(json.loads(out.read_text())['results']) == 2
    # Names are made over all videos: a failed one does not rename others.
    assert sorted(os.listdir(viz.parent)) == ['x_video_0.mp4',
                                              'x_video_1.mp4']
    for video in videos:
        stem = osp.splitext(osp.basename(video))[0]
        assert count_mp4_frames(str(viz.parent / f'x_{stem}.mp4')) == 9
    assert not [n for n in os.listdir(out.parent) if n.startswith('.')]


def test_gif_of_a_large_video_is_scaled_down(tmp_path, capsys):
    weights = make_tiny_clip(str(tmp_path / 'tiny_clip.pt'))
    video = write_video(str(tmp_path / 'big.mp4'), num_frames=6,
                        size=(1920, 1080), fps=30)
    viz = tmp_path / 'new' / 'big.gif'
    status = zero_shot.main([
        video, '--labels', LABELS, '--clip', weights, '--num-frames', '4',
        '--viz', str(viz), '--no-progress'
    ])
    assert status == 0, capsys.readouterr().err
    with Image.open(viz) as gif:
        # 30 fps capped at 15: every other frame, shown twice as long.
        # The video part is 480x270; the text band adds to the height.
        width, height = gif.size
        assert width == 480 and 270 < height < 270 + 120
        assert gif.n_frames == 3
        assert gif.info['duration'] == 60  # 1000 * 2 / 30, in 10 ms steps


def test_long_gif_keeps_a_bounded_number_of_frames(tmp_path, monkeypatch):
    # The drawing's own bound (the tool re-exports the writer).
    monkeypatch.setattr(prediction_video, 'GIF_MAX_FRAMES', 8)
    video = write_video(str(tmp_path / 'long.mp4'), num_frames=40, fps=10)
    out = str(tmp_path / 'long.gif')
    count = zero_shot.write_annotated_video(video, out, [('a', 0.5)])
    with Image.open(out) as gif:
        assert gif.n_frames == count and 4 <= count <= 8
        # 40 frames at 10 fps still last 4 s: the step grew to 8 frames.
        assert gif.n_frames * gif.info['duration'] == 5 * 800
        # Scaled up to VIZ_MIN_WIDTH (aspect kept), over the text band.
        layout = zero_shot.viz_layout(320, 240, [('a', 0.5)])
        assert gif.size == (320, 240 + layout.band_height)


LONG_PREDICTIONS = [('a triangle growing', 1.0),
                    ('a square rotating counterclockwise and moving left '
                     'across the frame', 0.0)]


@pytest.mark.parametrize('size', [(74, 74), (96, 64), (1920, 1080)])
def test_viz_layout_keeps_every_label_whole_beside_the_frame(size):
    width, height = zero_shot.frame_size(*size)
    assert width >= zero_shot.VIZ_MIN_WIDTH and width / height == \
        pytest.approx(size[0] / size[1], rel=0.02)
    layout = zero_shot.viz_layout(width, height, LONG_PREDICTIONS)
    assert layout.band_height > 0 and layout.text_width <= width
    assert layout.font_scale >= zero_shot.MIN_FONT_SCALE
    assert (height + layout.band_height) % 2 == 0
    # Wrapped, not cut: the drawn lines hold the whole text, and all of
    # them lie in the band under the video.
    drawn = ' '.join(text for text, *_ in layout.lines)
    assert drawn.split() == ' '.join(
        f'{p * 100:.1f}% {label}' for label, p in LONG_PREDICTIONS).split()
    assert all(height < y <= height + layout.band_height
               for _, _, y, _ in layout.lines)
    frame = np.full((size[1], size[0], 3), 90, np.uint8)
    out = zero_shot.draw_predictions(frame, LONG_PREDICTIONS)
    assert out.shape == (height + layout.band_height, width, 3)
    # The video part is the frame, scaled, not shaded.
    assert (out[:height] == 90).all() and out[height:].any()


def test_viz_font_scale_and_target_resolution(tmp_path, capsys):
    video = write_video(str(tmp_path / 'small.mp4'), num_frames=5,
                        size=(74, 74))
    out = str(tmp_path / 'drawn.mp4')
    info = {}
    count = zero_shot.write_annotated_video(
        video, out, LONG_PREDICTIONS, font_scale=0.9, target=(200, -1),
        info=info)
    assert count == 5 and info['codec'] in zero_shot.MP4_CODECS
    layout = zero_shot.viz_layout(200, 200, LONG_PREDICTIONS, 0.9)
    assert layout.font_scale == 0.9 and layout.text_width <= 200
    capture = cv2.VideoCapture(out)
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (200 + layout.band_height, 200, 3)
    # OpenCV's FFmpeg names the missing H.264 encoder on stderr by
    # itself: hidden unless verbose.
    assert 'avc1' not in capsys.readouterr().err


@pytest.mark.parametrize('args, message', [
    (['--font-scale', '0'], '--font-scale must be'),
    (['--target-resolution', '0', '10'], '--target-resolution W H'),
    (['--target-resolution', '-1', '-1'], '--target-resolution W H'),
    (['--viz', 'x.avi'], 'unknown format'),
])
def test_viz_option_errors(args, message, tmp_path, capsys):
    video = write_video(str(tmp_path / 'v.mp4'), num_frames=2)
    assert zero_shot.main([video, '--labels', 'a,b', *args]) == 2
    assert message in capsys.readouterr().err


def test_failed_viz_leaves_the_previous_file(tmp_path):
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'not a video' * 30)
    for name in ('old.mp4', 'old.gif'):
        out = tmp_path / name
        out.write_bytes(b'previous')
        with pytest.raises(OSError, match='read no frame'):
            zero_shot.write_annotated_video(str(broken), str(out),
                                            [('a', 1.0)])
        assert out.read_bytes() == b'previous'
    assert sorted(os.listdir(tmp_path)) == ['broken.mp4', 'old.gif',
                                            'old.mp4']


# ---------------------------------------------------------------------------
# The shared options (models/apis/cli.py)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('tool', ['zero_shot.py', 'search_videos.py'])
@pytest.mark.parametrize('args', [['--help'], ['--topk', 'x']])
def test_help_and_option_errors_do_not_load_torch(tool, args):
    proc = run_tool_traced(osp.join(ROOT, 'tools', tool), *args)
    assert 'torch loaded: False' in proc.stdout, proc.stdout + proc.stderr
    assert ('--workers N' in proc.stdout if args == ['--help'] else
            'invalid int value' in proc.stderr)


def test_decoding_workers_default_to_none_on_the_cpu():
    from models.apis import cli
    assert cli.default_workers(torch.device('cpu')) == 0
    assert cli.default_workers(torch.device('cuda')) == min(
        4, os.cpu_count())
    args = zero_shot.build_parser().parse_args(['v.mp4'])
    assert args.workers is None
    assert cli.decode_workers(args, torch.device('cpu')) == 0
    args.workers = 3
    assert cli.decode_workers(args, torch.device('cpu')) == 3


def test_third_party_noise_is_hidden_unless_verbose(plain_clip_run):
    """Without --verbose; the same run with it shows FFmpeg's lines:
    test_config_checkpoint_csv_mp4_and_unreadable_video."""
    quiet = plain_clip_run[3]
    assert quiet.returncode == 1, quiet.stderr[-3000:]  # broken.mp4
    assert 'skipped:' in quiet.stderr and 'broken.mp4' in quiet.stderr
    noise = ('moov atom not found', 'ERROR opening', 'pkg_resources',
             'MultiScaleDeformableAttention', 'FileClient')
    assert not [n for n in noise if n in quiet.stderr], quiet.stderr


def test_one_template_option_may_be_a_file(tmp_path, monkeypatch):
    """--template FILE reads the file, as the config's template does."""
    templates = tmp_path / 'templates.txt'
    templates.write_text('a video of {}\nsomeone {}\n')
    seen = {}

    def fake_load(spec):
        seen['spec'] = spec
        raise zero_shot.CliError('stop here')

    import models.text.prompts as prompts
    monkeypatch.setattr(prompts, 'load_templates', fake_load)
    video = write_video(str(tmp_path / 'v.mp4'))
    assert zero_shot.main([video, '--labels', 'a,b', '--template',
                           str(templates), '--clip', 'ViT-B/32']) == 2
    assert seen['spec'] == str(templates)


def test_viz_on_a_full_disk_keeps_the_previous_file(tmp_path, capfd):
    """OpenCV's writer hides write errors: the frames are counted after
    writing, and a full disk (a file-size limit here) says so."""
    import resource
    video = write_video(str(tmp_path / 'v.mp4'), num_frames=40,
                        size=(128, 96))
    out = tmp_path / 'viz.mp4'
    assert zero_shot.write_annotated_video(video, str(out),
                                           [('a', 1.0)]) == 40
    before = out.read_bytes()
    capfd.readouterr()
    # ulimit -f of this process, for the one call (Python ignores
    # SIGXFSZ: a write past it fails with EFBIG): a third of the file fits
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) // 3, hard))
    try:
        with pytest.raises(OSError) as info:
            zero_shot.write_annotated_video(video, str(out), [('b', 0.5)])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(info.value).startswith('No space left on device'), info.value
    # OpenCV's failed frames: counted, not reported by OpenCV
    assert 'WARN' not in capfd.readouterr().err
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ['v.mp4', 'viz.mp4']
