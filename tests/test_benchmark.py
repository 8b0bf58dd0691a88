"""tools/benchmark.py: the report's structure (not its timings) from one
--quick run on the CPU over a folder of videos (--video-dir), the naive
path it measures against, how a loop's time is split, the videos the loops
read, and --resume."""
import json
import os
import subprocess
import sys
import time

import av
import numpy as np
import pytest
import torch
from conftest import (RUN_TOOL, ROOT, break_decord_copies, offline_env,
                      write_video)

from models.benchmark import footage, run
from models.benchmark.loops import IterationClock
from models.benchmark.model_paths import autocast, measure, naive_predict
from models.benchmark.report import environment
from models.benchmark.videos import (annotation_list, existing_videos,
                                     make_videos, probe_video)


def write_clip(path, seed):
    """A 1 s K400-sized clip, MPEG-4 Part 2 (quick to write)."""
    write_video(str(path), num_frames=25, size=(340, 256), fps=25, seed=seed)


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    """One --quick run of every part over two K400-sized clips."""
    clips = tmp_path_factory.mktemp('clips')
    for seed in range(2):
        write_clip(clips / f'clip_{seed}.mp4', seed)
    out = tmp_path_factory.mktemp('bench')
    result = subprocess.run(
        [sys.executable, 'tools/benchmark.py', '--quick', '--device', 'cpu',
         '--out-dir', str(out), '--video-dir', str(clips), '--workers', '1'],
        cwd=ROOT, env=offline_env(), capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[
        -3000:]
    report = json.loads((out / 'benchmark.json').read_text())
    return report, (out / 'benchmark.md').read_text()


def test_naive_path_is_the_models_prediction(tiny_arch):
    from models.recognizers.actionclip import ActionClip
    torch.manual_seed(0)
    model = ActionClip(tiny_arch, 4, labels_or_label_file=['a', 'b', 'c'],
                       speedups=dict(fast_attention=False)).eval()
    inputs = torch.randn(2, 8, 3, 32, 32)  # two views each
    bank = model.prompt_bank
    with torch.no_grad():
        naive = naive_predict(model, inputs, bank.tokens.flatten(0, 1),
                              bank.num_templates)
        torch.testing.assert_close(
            naive, model.predict_scores(inputs), atol=1e-6, rtol=1e-5)


def test_measure_times_the_step_with_torch_benchmark():
    calls = []

    def step():
        calls.append(1)
        time.sleep(0.02)

    # min_seconds 0: one timed call after the warm-up (and Timer's own)
    timing = measure(step, 0, warmup=2)
    assert timing['iters'] == 1 and len(calls) >= 3
    assert 0.02 <= timing['seconds_per_iter'] < 0.5
    timing = measure(step, 0.1, warmup=0)  # blocked_autorange
    assert timing['iters'] >= 2 and 0.02 <= timing['seconds_per_iter'] < 0.5
    assert measure(step, 1.0, number=3, warmup=0)['iters'] == 3


def test_autocast_names_its_dtype_and_none_is_off():
    device = torch.device('cpu')
    with autocast(device, 'bfloat16'):
        assert torch.is_autocast_enabled('cpu')
        assert torch.get_autocast_dtype('cpu') == torch.bfloat16
        with autocast(device, None):
            assert not torch.is_autocast_enabled('cpu')


def test_iteration_clock_splits_the_timed_iterations():
    clock = IterationClock(torch.device('cpu'), 'train', skip=1,
                           max_seconds=60)
    # Three iterations: 1 s waiting for data, 1 s preprocessing, 2 s
    # step, 0 s hooks (the first is the untimed warm-up).
    for i in range(3):
        base = 10.0 * i
        for name, t in (('start', 1), ('preprocess_end', 2),
                        ('step_end', 4), ('end', 4)):
            clock.times[name].append(base + t)
    # The timed part runs from the warm-up's end (4) to 24.
    shares = clock.shares()
    assert shares['iters'] == 2 and shares['seconds'] == 20
    # Data waits 14 - 4 and 24 - 14 minus the 3 s of work each: 7 s of 10.
    assert shares['data_wait'] == pytest.approx(0.7)
    assert shares['preprocess'] == pytest.approx(0.1)
    assert shares['step'] == pytest.approx(0.2)
    assert shares['rest'] == pytest.approx(0.0)
    clock.times['end'].pop()
    with pytest.raises(RuntimeError, match='readings missing'):
        clock.shares()


def test_annotation_list_cycles_the_videos(tmp_path):
    videos = dict(dir=str(tmp_path),
                  files=[str(tmp_path / 'a.mp4'), str(tmp_path / 'b.mp4')])
    path = annotation_list(videos, 5, 3, str(tmp_path / 'list.txt'))
    assert open(path).read().split('\n')[:5] == [
        'a.mp4 0', 'b.mp4 1', 'a.mp4 2', 'b.mp4 0', 'a.mp4 1'
    ]
    videos['files'].append(str(tmp_path / 'c d.mp4'))
    with pytest.raises(ValueError, match='white space'):
        annotation_list(videos, 5, 3, str(tmp_path / 'list.txt'))


def test_videos_decord_cannot_copy_are_refused(tmp_path, monkeypatch):
    # which widths decord cannot copy depends on the CPU: forced here; the
    # decode rate would time the fallback as decord
    path = write_video(str(tmp_path / 'v.mp4'), size=(64, 48))
    assert existing_videos(str(tmp_path), [path])['width'] == 64
    break_decord_copies(monkeypatch)
    with pytest.raises(ValueError, match=r"v\.mp4' \(64x48\).*this CPU"):
        existing_videos(str(tmp_path), [path])


def test_generated_videos_report_their_probed_codec(tmp_path):
    videos = make_videos(str(tmp_path), 1, 0.4)
    probe = probe_video(videos['files'][0])
    assert (probe['width'], probe['height'], probe['fps']) == (340, 256, 25)
    assert probe['frames'] == 10
    assert videos['codec'] == probe['codec'] == 'H.264'
    with pytest.raises(ValueError, match='Cannot open video'):
        bad = tmp_path / 'bad.mp4'
        bad.write_bytes(b'not a video')
        probe_video(str(bad))


def test_footage_clips_are_kinetics_sized_crops_of_the_footage(tmp_path):
    videos = make_videos(str(tmp_path), 2, 0.4)
    assert 'bikes.mp4' in videos['source']
    first = []
    for path in videos['files']:
        probe = probe_video(path)
        assert (probe['width'], probe['height'], probe['fps'],
                probe['frames']) == (340, 256, 25, 10)
        with av.open(path) as container:
            first.append(next(container.decode(video=0)).to_ndarray(
                format='rgb24').astype(int))
    # Other crops (and the second mirrored): other pictures of one scene.
    assert np.abs(first[0] - first[1]).mean() > 10
    drawn = make_videos(str(tmp_path / 'drawn'), 1, 0.4, clips='generated')
    assert drawn['source'] == 'generated'


def test_footage_that_is_missing_or_another_file_is_refused(tmp_path,
                                                            monkeypatch):
    package, name, _ = footage.FOOTAGE
    monkeypatch.setattr(footage, 'FOOTAGE', (package, name, '0' * 64))
    with pytest.raises(ValueError, match='SHA-256 differs'):
        footage.footage_path()
    with pytest.raises(run.BenchmarkInputError,
                       match=r'^\S+bikes\.mp4 is not the footage'):
        run.run_benchmark(['decode'], [], 'cpu', quick=True)
    # A package of that name without the file: the tool stops before torch.
    (tmp_path / package).mkdir()
    (tmp_path / package / '__init__.py').write_text('')
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, '-c', RUN_TOOL, 'tools/benchmark.py', '--parts',
         'decode', '--out-dir', str(tmp_path / 'out')], cwd=ROOT,
        env=offline_env(PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT])),
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert 'bikes.mp4' in result.stderr and '--clips generated' in \
        result.stderr
    assert result.stdout.endswith('torch loaded: False\n')
    assert time.monotonic() - start < 10


def test_quick_run_model_parts(quick_run):
    report, markdown = quick_run
    assert report['environment']['quick'] is True
    assert report['environment']['device'] == 'cpu'
    assert report['environment']['command'].startswith(
        'python tools/benchmark.py --quick')
    predict = report['predict']
    assert {r['batch'] for r in predict} == {1, 2}
    for batch in (1, 2):
        rows = {r['path']: r for r in predict if r['batch'] == batch}
        # the other paths need CUDA
        assert set(rows) == {'naive fp32', 'cached fp32'}
        assert rows['naive fp32']['speedup_vs_naive'] == 1.0
        assert rows['cached fp32']['max_abs_prob_diff_vs_naive'] < 1e-5
        for row in rows.values():
            assert row['videos_per_s'] > 0 and row['iters'] >= 1
    assert [r['precision'] for r in report['text_cache']] == [
        'float32', 'bfloat16'
    ]
    assert all(r['seconds'] > 0 for r in report['text_cache'])
    # the compiled row needs --compile
    assert [r['path'] for r in report['encoder']] == [
        'fp32, original', 'fp32, fast', 'bf16, original', 'bf16, fast'
    ]
    assert all(r['videos_per_s'] > 0 for r in report['encoder'])
    train = report['train']
    assert [r['path'] for r in train] == [
        'fp32, original', 'bf16 AMP, fast, fused AdamW'
    ]
    assert all(r['samples_per_s'] > 0 and r['peak_memory_gib'] is None
               and np.isfinite(r['last_loss']) for r in train)
    assert report['skipped'] and report['part_seconds']['total'] > 0
    for title in ('## Predict', '## Video encoder', '## Training step'):
        assert title in markdown
    assert '| tiny (--quick) | 1 | cached fp32 |' in markdown


def test_quick_run_decoding(quick_run):
    report, markdown = quick_run
    videos = report['videos']
    assert videos['source'].startswith('--video-dir')
    assert videos['count'] == 2 and videos['codec'] == 'MPEG-4 part 2'
    assert (videos['width'], videos['height'], videos['fps']) == (340, 256,
                                                                  25)
    rates = report['decode_rate']
    assert [r['backend'] for r in rates] == ['cpu', 'pyav']
    assert rates[0]['decoder'].startswith('decord')
    assert "backend='pyav'" in rates[1]['decoder']
    for rate in rates:
        assert 'one thread' in rate['decoder']
        assert rate['processes'] == len(os.sched_getaffinity(0))
        assert rate['clips_per_s_one_core'] > 0
        assert rate['clips_per_s_per_core'] == pytest.approx(
            rate['clips_per_s_total'] / rate['processes'])
    for title in ('## Decode rate per core', 'MPEG-4 part 2'):
        assert title in markdown


def _check_shares(row, names):
    shares = [row[f'{k}_share'] for k in names]
    assert all(0 <= x <= 1 for x in shares), row
    assert abs(sum(shares) - 1) < 0.05, row


def test_quick_run_test_loop(quick_run):
    report, markdown = quick_run
    rows = {r['variant']: r for r in report['test_loop']}
    # fp16 + CUDA graphs only where there is CUDA
    assert list(rows) == ['config as shipped', 'batch 1 (the old default)']
    shipped, batch1 = rows.values()
    assert batch1['batch_size'] == 1
    assert shipped['num_workers'] == batch1['num_workers'] >= 1
    # the decode limit of the config's decoder (PyAV)
    pyav = report['decode_rate'][1]
    assert shipped['decode_limit_videos_per_s'] == pytest.approx(
        min(shipped['num_workers'] * pyav['clips_per_s_one_core'],
            pyav['clips_per_s_total']))
    for row in rows.values():
        _check_shares(row, ('data_wait', 'preprocess', 'forward', 'rest'))
        assert row['videos_per_s'] > 0 and row['timed_iters'] >= 1
        assert row['videos'] == (row['warmup_iters'] +
                                 row['timed_iters']) * row['batch_size']
        assert 'acc/top1' in row['metrics']
    assert '## Test loop of the K400 test config' in markdown


def test_quick_run_train_loop(quick_run):
    report, markdown = quick_run
    # compile=reduce-overhead only where there is CUDA
    (row, ) = report['train_loop']
    assert row['variant'] == 'AMP config as shipped'
    _check_shares(row, ('data_wait', 'preprocess', 'step', 'rest'))
    assert row['num_workers'] == 1 and row['batch_size'] == 2
    assert row['samples_per_s'] > 0 and row['timed_iters'] >= 1
    assert row['step_on_device_samples_per_s'] > 0
    assert np.isfinite(row['last_loss'])
    # AmpOptimWrapper needs a GPU
    assert row['optim_wrapper'] == 'OptimWrapper'
    assert '## Training loop of the AMP config (mim train)' in markdown


def test_loop_rows_select_rows_by_words():
    rows = ['AMP config as shipped',
            '+ model.speedups.compile=reduce-overhead',
            'batch 1 (the old default)']
    assert [run.wanted(r, None) for r in rows] == [True, True, True]
    assert [run.wanted(r, ['as shipped', 'batch 1'])
            for r in rows] == [True, False, True]


ENV = dict(host='h200-a', device_name='NVIDIA H200', gpu_uuid='GPU-1',
           cpu_count=16, torch='2.11', cuda='13.0', python='3.12.3',
           quick=False, labels=400, workers=15, date='d2',
           command='python tools/benchmark.py --parts train_loop')


def test_resume_keeps_the_earlier_parts_of_the_same_host():
    earlier = dict(
        environment=dict(ENV, date='d1',
                         command='python tools/benchmark.py --parts train'),
        parts=['train', 'decode', 'test_loop'],
        measured_parts=['test_loop'], part_seconds=dict(train=100.0),
        train=[dict(arch='ViT-B/32', samples_per_s=600.0)],
        test_loop=[dict(variant='config as shipped')], skipped=['x'])
    report = dict(environment=dict(ENV), parts=['train_loop'], skipped=[],
                  part_seconds={})
    run.resume(report, earlier)
    assert report['train'] == earlier['train']
    assert report['test_loop'] == earlier['test_loop']
    assert report['parts'] == ['train', 'decode', 'test_loop', 'train_loop']
    assert report['skipped'] == ['x']
    (resumed, ) = report['resumed_from']
    assert resumed['command'].endswith('--parts train')
    # the parts that command measured, not those it had resumed
    assert resumed['date'] == 'd1' and resumed['parts'] == ['test_loop']
    # another card, another host or other software: refused, naming it
    for key, value in (('gpu_uuid', 'GPU-2'), ('host', 'h200-b'),
                       ('torch', '2.12'), ('workers', 7)):
        report = dict(environment=dict(ENV, **{key: value}),
                      parts=['train_loop'], skipped=[], part_seconds={})
        with pytest.raises(ValueError, match=key):
            run.resume(report, earlier)
        assert 'train' not in report


def test_resume_keeps_the_rows_loop_rows_does_not_measure(monkeypatch,
                                                          tmp_path):
    # a part measured again with --loop-rows keeps its other rows; the row
    # measured again replaces its earlier one in place
    def bench_loop(mode, arch, *args):
        return dict(arch=arch, variant=args[5], new=True)

    monkeypatch.setattr(run.loops, 'bench_loop', bench_loop)
    monkeypatch.setattr(run, 'existing_videos',
                        lambda *args: dict(files=['a.mp4'], codec='x'))
    env = dict(environment(torch.device('cpu'), True), labels=40, workers=1)
    old = [dict(arch='tiny (--quick)', variant=v, new=False)
           for v in ('config as shipped', 'batch 1 (the old default)')]
    earlier = dict(environment=env, part_seconds={}, parts=['test_loop'],
                   test_loop=old, train=[dict(arch='tiny (--quick)')])
    report = run.run_benchmark(
        ['test_loop'], [], 'cpu', quick=True, workers=1,
        loop_rows=['batch 1'], video_dir=str(tmp_path),
        video_files=['a.mp4'], resumed=earlier)
    assert report['test_loop'] == [old[0], dict(old[1], new=True)]
    assert report['train'] == earlier['train']


def test_loop_rows_that_select_nothing_are_refused():
    with pytest.raises(run.BenchmarkInputError,
                       match="'CPU augmentation' selects none.*as shipped"):
        run.run_benchmark(['train_loop'], [], 'cpu', quick=True,
                          loop_rows=['CPU augmentation'])


def test_resume_names_a_file_it_cannot_use(tmp_path):
    bad = tmp_path / 'benchmark.json'
    bad.write_text('{"not": "a report"}')
    for path, words in ((tmp_path / 'missing.json', 'cannot read'),
                        (bad, 'is not a benchmark.json')):
        result = subprocess.run(
            [sys.executable, 'tools/benchmark.py', '--quick', '--resume',
             str(path)], cwd=ROOT, env=offline_env(), capture_output=True,
            text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert str(path) in result.stderr and words in result.stderr


def test_a_fifo_in_the_video_folder_is_refused_unopened(tmp_path):
    write_video(str(tmp_path / 'a.mp4'))
    os.mkfifo(tmp_path / 'b.mp4')  # opening it would block
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, 'tools/benchmark.py', '--quick', '--parts',
         'decode', '--video-dir', str(tmp_path), '--out-dir',
         str(tmp_path / 'out')], cwd=ROOT, env=offline_env(),
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    (line, ) = [x for x in result.stderr.splitlines() if 'error' in x]
    assert str(tmp_path / 'b.mp4') in line and 'is a FIFO' in line
    assert time.monotonic() - start < 10
