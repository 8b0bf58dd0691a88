"""The benchmark's report: the environment it ran in, and its figures
as markdown tables."""
import os
import platform
import socket
import time
from typing import Any, Dict, List, Sequence, Tuple

import torch
from benchmarks.common import NUM_SEGS


def environment(device: torch.device, quick: bool) -> Dict[str, Any]:
    """Versions and hardware, for the report."""
    info = dict(
        date=time.strftime('%Y-%m-%d %H:%M:%S'),
        quick=quick,
        python=platform.python_version(),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        device=str(device),
        device_name=(torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else platform.processor()
                     or 'cpu'),
        gpu_uuid=(str(getattr(torch.cuda.get_device_properties(device),
                              'uuid', '')) or None
                  if device.type == 'cuda' else None),
        host=socket.gethostname(),
        cpu_count=os.cpu_count(),
        float32_matmul_precision=torch.get_float32_matmul_precision(),
        frames=NUM_SEGS,
        weights='random (pretrained=False)')
    return info


def _table(rows: Sequence[Dict], columns: Sequence[Tuple[str, str, str]]
           ) -> List[str]:
    """Markdown table lines: columns are (title, key, format)."""
    lines = ['| ' + ' | '.join(c[0] for c in columns) + ' |',
             '| ' + ' | '.join('---' for _ in columns) + ' |']
    for row in rows:
        cells = []
        for _, key, fmt in columns:
            value = row.get(key)
            cells.append('n/a' if value is None else format(value, fmt))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def to_markdown(report: Dict[str, Any]) -> str:
    """The report as markdown tables."""
    env = report['environment']
    lines = [
        '# ActionCLIP benchmark', '',
        f"{env['device_name']} ({env['device']}), {env['cpu_count']} CPUs, "
        f"torch {env['torch']} "
        f"(CUDA {env['cuda']}), Python {env['python']}, {env['date']}; "
        f"{env['frames']} frames, {env['labels']} Kinetics-400 labels x 16 "
        f"templates, {env['weights']}"
        + (', --quick (CPU smoke run: tiny model, not a measurement)'
           if env['quick'] else '') + '. Run time: '
        + ', '.join(f'{k} {v:.0f} s'
                    for k, v in report['part_seconds'].items()) + '.', '',
        f"Command: `{env.get('command', 'python tools/benchmark.py')}`", ''
    ]
    for earlier in report.get('resumed_from', []):
        lines += [
            f"Resumed from an earlier command on this host ({env['host']}"
            + (f", GPU {env['gpu_uuid']}" if env.get('gpu_uuid') else '')
            + f"), {earlier['date']}: `{earlier['command']}` (parts "
            f"{', '.join(earlier['parts'])}).", ''
        ]
    if report.get('videos'):
        v = report['videos']
        lines += [
            f"Videos ({v['source']}): {v['count']} files, {v['codec']} "
            f"({v['fourcc']}; written with {v['encoder']}), "
            f"{v['width']}x{v['height']}, {v['fps']:g} fps, "
            f"{v['frames']} frames, {v['mean_file_kib']:.0f} KiB on "
            "average; the loops cycle through them.", ''
        ]
    if report.get('predict'):
        lines += ['## a. Predict', ''] + _table(report['predict'], [
            ('arch', 'arch', ''), ('batch', 'batch', 'd'),
            ('path', 'path', ''), ('videos/s', 'videos_per_s', '.2f'),
            ('x naive', 'speedup_vs_naive', '.1f'),
            ('max abs prob diff vs naive', 'max_abs_prob_diff_vs_naive',
             '.1e'), ('iters', 'iters', 'd')
        ]) + ['']
    if report.get('text_cache'):
        lines += ['### Text cache fill (once per label set and weights)',
                  ''] + _table(report['text_cache'], [
                      ('arch', 'arch', ''), ('precision', 'precision', ''),
                      ('prompts', 'prompts', 'd'), ('seconds', 'seconds',
                                                    '.3f')
                  ]) + ['']
    if report.get('encoder'):
        lines += ['## b. Video encoder', ''] + _table(
            report['encoder'], [('arch', 'arch', ''),
                                ('batch', 'batch', 'd'),
                                ('path', 'path', ''),
                                ('videos/s', 'videos_per_s', '.1f'),
                                ('iters', 'iters', 'd')]) + ['']
    if report.get('train'):
        lines += ['## c. Training step (forward, loss, backward, AdamW)',
                  ''] + _table(report['train'], [
                      ('arch', 'arch', ''), ('batch', 'batch', 'd'),
                      ('path', 'path', ''),
                      ('samples/s', 'samples_per_s', '.1f'),
                      ('peak memory (GiB)', 'peak_memory_gib', '.2f'),
                      ('optim wrapper', 'optim_wrapper', ''),
                      ('iters', 'iters', 'd')
                  ]) + ['']
    lines += _decode_sections(report)
    lines += _loop_sections(report)
    if report.get('skipped'):
        lines += ['Not measured: ' + '; '.join(report['skipped']) + '.', '']
    return '\n'.join(lines)


def _decode_sections(report: Dict[str, Any]) -> List[str]:
    """Part d: the pipeline in one process, the rate per core and the
    bound, the threads of ``VideoInit`` in workers."""
    lines: List[str] = []
    if report.get('decode'):
        d = report['decode']
        lines += [
            '## d. Decoding', '',
            '### The test pipeline in one process', '',
            f"Pipeline: {' > '.join(d['pipeline'])}.", ''
        ] + _table([d], [('videos', 'videos', 'd'),
                         ('ms per video', 'ms_per_video', '.1f'),
                         ('videos/s per worker', 'videos_per_s_per_worker',
                          '.1f')]) + ['']
    if report.get('decode_rate'):
        rows = report['decode_rate']
        first = rows[0]
        lines += [
            '### Decode rate per core and the physical bound', '',
            f"{first['frames_per_clip']} frames of each {first['codec']} "
            'clip (those SampleFrames picks in test mode), each process '
            f"pinned to a CPU, {first['seconds']:g} s per process.", ''
        ] + _table(rows, [
            ('decoder', 'decoder', ''),
            ('clips/s, one process', 'clips_per_s_one_core', '.1f'),
            ('processes at once', 'processes', 'd'),
            ('clips/s in total (CPU bound)', 'clips_per_s_total', '.1f'),
            ('clips/s per core, all busy', 'clips_per_s_per_core', '.1f')
        ]) + ['']
    if report.get('loader_threads'):
        rows = report['loader_threads']
        lines += [
            "### The test pipeline in DataLoader workers: VideoInit's "
            'decoding threads', '',
            f"The K400 test pipeline decoding with decord (its VideoInit "
            f"passes num_threads={rows[0]['config_num_threads']}), batch 1, "
            "timed after the workers' first prefetch.", ''
        ] + _table(rows, [('VideoInit', 'setting', ''),
                          ('workers', 'workers', 'd'),
                          ('videos', 'videos', 'd'),
                          ('videos/s', 'videos_per_s', '.1f')]) + ['']
    return lines


def _loop_sections(report: Dict[str, Any]) -> List[str]:
    """Part e and the training loop, end to end beside the model alone."""
    lines: List[str] = []
    if report.get('test_loop'):
        lines += ['## e. Test loop of the K400 test config (mim test)',
                  ''] + _table(report['test_loop'], [
                      ('arch', 'arch', ''), ('variant', 'variant', ''),
                      ('CLIP weights', 'clip_dtype', ''),
                      ('workers', 'num_workers', 'd'),
                      ('batch', 'batch_size', 'd'),
                      ('timed videos', 'timed_videos', 'd'),
                      ('videos/s', 'videos_per_s', '.1f'),
                      ('decode limit', 'decode_limit_videos_per_s', '.1f'),
                      ('data wait', 'data_wait_share', '.0%'),
                      ('preprocess (to device, normalise)',
                       'preprocess_share', '.0%'),
                      ('forward', 'forward_share', '.0%'),
                      ('metric, hooks', 'rest_share', '.0%'),
                      ('bound by', 'bound_by', '')
                  ]) + [
                      '',
                      "Shares of the timed iterations' time, after "
                      "warm-up iterations (the workers' head start: 2 x "
                      'workers + 2); "data wait" is the DataLoader\'s '
                      'next(); "decode limit" is the lesser of workers x '
                      "the one-core decode rate and the host's total, for "
                      "the row's decoder.", ''
                  ]
    if report.get('train_loop'):
        lines += ['## Training loop of the AMP config (mim train)',
                  ''] + _table(report['train_loop'], [
                      ('arch', 'arch', ''), ('variant', 'variant', ''),
                      ('data preprocessor', 'data_preprocessor', ''),
                      ('workers', 'num_workers', 'd'),
                      ('batch', 'batch_size', 'd'),
                      ('timed iters', 'timed_iters', 'd'),
                      ('samples/s', 'samples_per_s', '.1f'),
                      ('data wait', 'data_wait_share', '.0%'),
                      ('to device + preprocessor', 'preprocess_share',
                       '.0%'),
                      ('step (fwd, bwd, optim)', 'step_share', '.0%'),
                      ('hooks', 'rest_share', '.0%'),
                      ('step on device (samples/s)',
                       'step_on_device_samples_per_s', '.1f'),
                      ('of it', 'of_step_on_device', '.0%'),
                      ('model-only, part c', 'model_only_samples_per_s',
                       '.1f'),
                      ('of part c', 'of_model_only', '.0%')
                  ]) + [
                      '',
                      '"step on device": the same model and optimizer '
                      "stepping on one of the loop's batches already on "
                      'the device (the preprocessor still runs); "model-'
                      'only, part c": part c\'s AMP step for the arch and '
                      'batch (compiled rows: its compile row, with '
                      '--compile). Pipelines: ' + '; '.join(
                          f"{r['variant']}: {' > '.join(r['pipeline'])}"
                          for r in report['train_loop']
                          if r['arch'] == report['train_loop'][0]['arch']) +
                      '.', ''
                  ]
    return lines
