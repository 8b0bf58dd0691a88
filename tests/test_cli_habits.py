"""What every tool in ``tools/`` does with a wrong argument: exit status 2
with one message, at once (before torch and MMAction2 are imported), and
``--help`` that documents every option."""
import os.path as osp
import time

import pytest
from conftest import ROOT, run_tool_traced

#: A wrong argument per tool that only the tool (not argparse's types)
#: refuses, with a piece of its message.
BAD_INPUT = [
    ('zero_shot.py', ['v.mp4', '--labels', 'a', '--topk', '0'],
     '--topk must be >= 1'),
    ('zero_shot.py', ['v.mp4', '--labels', 'a', '--config', 'missing.py',
                      '--checkpoint', 'missing.pth'], 'no such file'),
    ('zero_shot.py', ['v.mp4', '--labels', 'a', '--font-scale', '-1'],
     '--font-scale'),
    ('zero_shot.py', ['tests/fixtures', '--labels', 'a'],
     'holds no video files'),
    ('zero_shot.py', ['no_such_video.mp4', '--labels', 'a'],
     'does not exist'),
    ('zero_shot.py', ['v.mp4', '--labels', 'a,,b'], 'empty label'),
    ('zero_shot.py', ['v.mp4'], 'No labels'),
    ('zero_shot.py', ['v.mp4', '--labels', 'a', '--label-file', 'l.txt'],
     'not both'),
    ('zero_shot.py', ['v.mp4', '--label-file', 'no_such_labels.txt'],
     'does not exist'),
    ('zero_shot.py', ['v.mp4', '--labels', 'a', '--template', 'no braces'],
     "has no '{}'"),
    ('zero_shot.py', ['v.mp4', '--labels', 'a', '--template', 'a {} {}'],
     'cannot be filled'),
    ('zero_shot.py', ['v.mp4', '--labels', 'a', '--template', 'x {}',
                      '--template', 'y'], "'y' has no '{}'"),
    ('zero_shot.py', ['v.mp4', '--labels', 'a', '--template',
                      'no_such/templates.txt'], 'does not exist'),
    ('search_videos.py', ['.', 'q', '--topk', '0'], '--topk must be >= 1'),
    ('search_videos.py', ['no_such_folder', 'q'], 'does not exist'),
    ('search_videos.py', ['tests/fixtures', 'q'], 'holds no video files'),
    ('search_videos.py', ['.', 'q', '--out', 'r.txt'], 'unknown format'),
    ('search_videos.py', ['.', 'q', '--html', 'r.txt'],
     "--html 'r.txt': unknown format .txt"),
    ('find_moments.py', ['v.mp4', 'q', '--topk', '0'],
     '--topk must be >= 1'),
    ('find_moments.py', ['v.mp4', 'q', '--window', '1', '--stride', '2'],
     'longer than --window'),
    ('find_moments.py', ['v.mp4', 'q', 'q'], 'same text'),
    ('find_moments.py', ['v.mp4', 'q', '--window-frames', '30', '--stride',
                         '1'], 'replaces --window and --stride'),
    ('find_moments.py', ['v.mp4', 'q', '--window-frames', '1'],
     '--window-frames must be >= 2'),
    ('find_moments.py', ['v.mp4', 'q', '--out', 'r.txt'], 'unknown format'),
    ('find_moments.py', ['no_such_video.mp4', 'q'], 'does not exist'),
    ('find_moments.py', ['tests/fixtures', 'q'], 'holds no video files'),
    ('generate_videos.py', ['--per-class', '0'], 'must be at least 1'),
    ('generate_videos.py', ['--long', '1', '--long-minutes', '0.05'],
     'cannot hold an action'),
    ('generate_videos.py', ['--out', 'README.md'], 'is a file'),
    ('eval_moments.py', ['no_such_truth.json'], 'does not exist'),
    ('eval_moments.py', ['tests/fixtures'], 'is a folder'),
    ('eval_moments.py', ['t.json', '--iou', '0'], '--iou thresholds'),
    ('eval_moments.py', ['t.json', '--out', 'r.txt'], 'unknown format'),
    ('eval_moments.py', ['t.json', '--window-frames', '30', '--window',
                         '2'], 'replaces --window'),
    ('eval_moments.py', ['t.json', '--workers', '2'], 'not used'),
    ('eval_moments.py', ['t.json', '--predictions', 'p.json',
                         '--subtract-still'], 'without a model'),
    ('eval_moments.py', ['a.json', 'b.json', '--predictions', 'p.json'],
     'give one per'),
    ('convert_actionclip_checkpoint.py', ['missing.pt', 'out.pth'],
     'does not exist'),
    ('convert_actionclip_checkpoint.py', ['x.pt', 'out.pth', '--num-segs',
                                          '0'], '--num-segs'),
    ('make_label_maps.py', ['--classind', 'nope=x.txt'], '--classind'),
    ('quickstart.py', ['--per-class', '0'], '--per-class'),
    ('dist_check.py', ['--batch-size', '0'], '--batch-size'),
    ('benchmark.py', ['--device', 'tpu'], '--device'),
    ('benchmark.py', ['--video-dir', 'tests/fixtures'],
     'holds no video files'),
    ('benchmark.py', ['--video-dir', 'no_such_folder'], 'does not exist'),
    ('benchmark.py', ['--workers', '-1'], '--workers'),
    ('benchmark.py', ['--parts', 'decode', '--skip', 'decode'],
     'no part to run'),
    ('eval_protocol.py', ['zero-shot', '--dataset', 'ssv2'],
     'has no dataset'),
    ('eval_protocol.py', ['zero-shot', '--dataset', 'ucf101', '--model',
                          'ViT-B/16-8', '--data-root', 'no_such_folder'],
     'is not a folder'),
    ('data/protocol_lists.py', ['zero-shot', '--dataset', 'ssv2',
                                '--data-root', '.', '--out-dir',
                                'no_such_out'], 'has no dataset'),
]

TOOLS = sorted({tool for tool, _, _ in BAD_INPUT})


def run_tool(tool, args):
    start = time.monotonic()
    proc = run_tool_traced(osp.join(ROOT, 'tools', tool), *args)
    return proc, time.monotonic() - start


@pytest.mark.parametrize('tool, args, message', BAD_INPUT,
                         ids=[f'{t} {" ".join(a)}' for t, a, _ in BAD_INPUT])
def test_bad_input_exits_2_at_once(tool, args, message):
    proc, seconds = run_tool(tool, args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr, proc.stderr
    assert 'torch loaded: False' in proc.stdout, proc.stderr
    assert 'Traceback' not in proc.stderr, proc.stderr
    # Under a second on an idle machine; loose for a busy CI (importing
    # torch and MMAction2 took 4.5 to 5 s).
    assert seconds < 3, seconds


@pytest.mark.parametrize('tool', TOOLS)
def test_help_documents_every_option(tool):
    proc, _ = run_tool(tool, ['--help'])
    assert proc.returncode == 0 and 'torch loaded: False' in proc.stdout
    lines = proc.stdout.splitlines()
    options = [i for i, line in enumerate(lines)
               if line.startswith('  -') and not line.startswith('  -h')]
    assert options, proc.stdout
    for i in options:
        # The help follows the option on its line or the next one.
        words = lines[i].split('  ')
        text = ' '.join(w for w in words[2:] if w.strip()) if len(
            words) > 2 else ''
        following = lines[i + 1] if i + 1 < len(lines) else ''
        assert text.strip() or following.startswith(' ' * 8), (
            f'{tool}: {lines[i]!r} has no help')


def test_generate_videos_help_gives_the_defaults():
    proc, _ = run_tool('generate_videos.py', ['--help'])
    text = ' '.join(proc.stdout.split())
    for default in ('default: data/synthetic_actions', 'default: 0)',
                    'default: 60', 'default: 10', 'default: 15',
                    'default: 20', 'default: 1.0'):
        assert default in text, text
