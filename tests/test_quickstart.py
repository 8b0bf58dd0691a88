"""tools/quickstart.py: the zero-shot report's label sets, and the options
checked before any work (the whole run is the benchmark, ``--time``, not
a test)."""
import os
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, 'tools'))
import generate_videos as gen  # noqa: E402
import quickstart  # noqa: E402


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('data'))
    gen.generate(out, seed=1, per_class=dict(zeroshot=2), workers=1,
                 progress=False, size_scale=0.667)
    return out


def test_zero_shot_label_sets(data, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    # random weights: the scores are arbitrary, the bookkeeping is not
    result = quickstart.zero_shot(quickstart.DEFAULT_CONFIG, None, data)
    out = capsys.readouterr().out
    for key in ('all', 'held_out', 'same_shape'):
        assert 0 <= result[f'zero_shot_top1_{key}'] <= 1
        assert f'{result[f"zero_shot_top1_{key}"]:.4f}' in out
    # right among all labels is right among any set holding the truth
    assert result['zero_shot_top1_same_shape'] >= result['zero_shot_top1_all']
    assert result['zero_shot_top1_held_out'] >= result['zero_shot_top1_all']
    assert 'circle, square, triangle: 6/8/8 labels' in out
    assert '"a square moving up" ' in out and '/2' in out


def test_a_subsets_top1_is_that_of_scoring_the_subset_alone(data):
    # zero_shot() takes each label set's best from one scoring against all
    # labels; the model scored against the held-out labels alone agrees.
    import mmengine
    import torch
    from mmaction.apis import inference_recognizer, init_recognizer
    labels = [' '.join(line) for line in quickstart.read_list(
        os.path.join(data, 'label_map_all.txt'))]
    unseen = [' '.join(line) for line in quickstart.read_list(
        os.path.join(data, 'label_map_zeroshot.txt'))]
    scores = {}
    for subset in (labels, unseen):
        cfg = mmengine.Config.fromfile(
            os.path.join(ROOT, quickstart.DEFAULT_CONFIG))
        cfg.model.labels_or_label_file = subset
        torch.manual_seed(0)  # the same random weights both times
        model = init_recognizer(cfg, None, device='cpu')
        scores[len(subset)] = [
            inference_recognizer(model, os.path.join(
                data, 'videos', 'zeroshot', name)).pred_score
            for name, _ in quickstart.read_list(
                os.path.join(data, 'zeroshot_list_videos.txt'))
        ]
    columns = [labels.index(u) for u in unseen]
    for every, alone in zip(scores[len(labels)], scores[len(unseen)]):
        assert int(every[columns].argmax()) == int(alone.argmax())


@pytest.mark.parametrize('args, message', [
    (['--per-class', '0'], '--per-class must be >= 1'),
    (['--config', 'no_such.py'], 'no such file'),
    (['--time', '--work-dir', 'tools'], 'needs a new or empty --work-dir'),
])
def test_bad_options_stop_before_any_work(args, message, capsys):
    with pytest.raises(SystemExit) as stop:
        quickstart.main(args)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_data_overrides_point_every_split_at_the_folder():
    options = quickstart.data_overrides('D')
    assert 'model.labels_or_label_file=D/label_map.txt' in options
    for split in ('train', 'val', 'test'):
        assert (f'{split}_dataloader.dataset.ann_file='
                f'D/{split}_list_videos.txt') in options
        assert (f'{split}_dataloader.dataset.data_prefix.video='
                f'D/videos/{split}') in options


def test_a_full_disk_while_generating_ends_in_the_generators_line(tmp_path):
    import resource
    import subprocess

    def limit():  # ulimit -f 8 KB: the lists fit, no video does
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    work = tmp_path / 'qs'
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'quickstart.py'),
         '--time', '--work-dir', str(work), '--per-class', '1'],
        preexec_fn=limit, capture_output=True, text=True, timeout=300,
        cwd=ROOT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'Traceback' not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('generate_videos.py: No space left on device')
    assert 'mim train' not in proc.stdout


@pytest.mark.parametrize('finished', [False, True])
def test_only_a_finished_set_is_used_again(tmp_path, monkeypatch, finished):
    # A set whose lists were written but not its manifest (the generator
    # was stopped) is generated again; a finished one is used as it is.
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'zeroshot_list_videos.txt').write_text('a.mp4 0\n')
    if finished:
        (data / 'manifest.json').write_text('{"files": {}}\n')
    commands = []

    class Stop(Exception):
        pass

    def run(command, *args, **kwargs):
        commands.append(command)
        raise Stop

    monkeypatch.setattr(quickstart.subprocess, 'run', run)
    monkeypatch.setattr(quickstart, 'run', run)
    args = quickstart.parse_args(['--work-dir', str(tmp_path / 'work')])
    with pytest.raises(Stop):
        quickstart.quickstart(args, str(data))
    (command, ) = commands
    assert ('tools/generate_videos.py' in command) != finished
