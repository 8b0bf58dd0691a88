"""The benchmark's report: the environment it ran in, and its figures
as markdown tables."""
import os
import platform
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
        f"{env['device_name']} ({env['device']}), torch {env['torch']} "
        f"(CUDA {env['cuda']}), Python {env['python']}, {env['date']}; "
        f"{env['frames']} frames, {env['labels']} Kinetics-400 labels x 16 "
        f"templates, {env['weights']}"
        + (', --quick (CPU smoke run: tiny model, not a measurement)'
           if env['quick'] else '') + '. Run time: '
        + ', '.join(f'{k} {v:.0f} s'
                    for k, v in report['part_seconds'].items()) + '.', ''
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
    if report.get('decode'):
        d = report['decode']
        lines += [
            '## d. Test pipeline decoding, one worker', '',
            f"{d['codec']} videos, {d['width']}x{d['height']}, {d['fps']} "
            f"fps, {d['video_seconds']:g} s, {d['mean_file_kib']:.0f} KiB "
            f"on average; pipeline: {' > '.join(d['pipeline'])}.", ''
        ] + _table([d], [('videos', 'videos', 'd'),
                         ('ms per video', 'ms_per_video', '.1f'),
                         ('videos/s per worker', 'videos_per_s_per_worker',
                          '.1f')]) + ['']
    if report.get('test_loop'):
        lines += ['## e. Test loop of the K400 test config (mim test)',
                  ''] + _table(report['test_loop'], [
                      ('arch', 'arch', ''), ('model', 'variant', ''),
                      ('CLIP weights', 'clip_dtype', ''),
                      ('workers', 'num_workers', 'd'),
                      ('videos', 'videos', 'd'),
                      ('videos/s', 'videos_per_s', '.1f'),
                      ('decode limit (workers x d)',
                       'decode_limit_videos_per_s', '.1f'),
                      ('data wait', 'data_wait_share', '.0%'),
                      ('preprocess', 'preprocess_share', '.0%'),
                      ('forward', 'forward_share', '.0%'),
                      ('metric, hooks', 'rest_share', '.0%'),
                      ('bound by', 'bound_by', '')
                  ]) + [
                      '',
                      'Shares of the steady iterations\' time (the first '
                      'two left out); "decode limit" is the config\'s '
                      'workers times part d\'s rate.', ''
                  ]
    if report.get('skipped'):
        lines += ['Not measured: ' + '; '.join(report['skipped']) + '.', '']
    return '\n'.join(lines)
