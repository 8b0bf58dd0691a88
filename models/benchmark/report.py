"""The benchmark's report: the environment it ran in, and its figures as
markdown tables."""
import os
import platform
import socket
import time
from typing import Any, Dict, List, Sequence

import torch

from .model_paths import NUM_SEGS

#: Per part: its title, its columns (title, key, format) and a note.
TABLES = dict(
    predict=('## Predict', [
        ('arch', 'arch', ''), ('batch', 'batch', 'd'), ('path', 'path', ''),
        ('videos/s', 'videos_per_s', '.2f'),
        ('x naive', 'speedup_vs_naive', '.1f'),
        ('max abs prob diff vs naive', 'max_abs_prob_diff_vs_naive', '.1e'),
        ('iters', 'iters', 'd')], ''),
    text_cache=('### Text cache fill (once per label set and weights)', [
        ('arch', 'arch', ''), ('precision', 'precision', ''),
        ('prompts', 'prompts', 'd'), ('seconds', 'seconds', '.3f')], ''),
    encoder=('## Video encoder', [
        ('arch', 'arch', ''), ('batch', 'batch', 'd'), ('path', 'path', ''),
        ('videos/s', 'videos_per_s', '.1f'), ('iters', 'iters', 'd')], ''),
    train=('## Training step (forward, loss, backward, AdamW)', [
        ('arch', 'arch', ''), ('batch', 'batch', 'd'), ('path', 'path', ''),
        ('samples/s', 'samples_per_s', '.1f'),
        ('peak memory (GiB)', 'peak_memory_gib', '.2f'),
        ('optim wrapper', 'optim_wrapper', ''), ('iters', 'iters', 'd')],
        ''),
    decode_rate=('## Decode rate per core and the physical bound', [
        ('decoder', 'decoder', ''), ('frames a clip', 'frames_per_clip', 'd'),
        ('clips/s, one process', 'clips_per_s_one_core', '.1f'),
        ('processes at once', 'processes', 'd'),
        ('clips/s in total (CPU bound)', 'clips_per_s_total', '.1f'),
        ('clips/s per core, all busy', 'clips_per_s_per_core', '.1f')],
        'The frames SampleFrames picks in test mode, each process pinned '
        'to a CPU.'),
    test_loop=('## Test loop of the K400 test config (mim test)', [
        ('arch', 'arch', ''), ('variant', 'variant', ''),
        ('CLIP weights', 'clip_dtype', ''), ('workers', 'num_workers', 'd'),
        ('batch', 'batch_size', 'd'), ('timed videos', 'timed_videos', 'd'),
        ('videos/s', 'videos_per_s', '.1f'),
        ('decode limit', 'decode_limit_videos_per_s', '.1f'),
        ('data wait', 'data_wait_share', '.0%'),
        ('preprocess', 'preprocess_share', '.0%'),
        ('forward', 'forward_share', '.0%'),
        ('metric, hooks', 'rest_share', '.0%')],
        "Shares of the timed iterations' time, after the warm-up (the "
        "workers' head start: 2 x workers + 2); \"data wait\" is the "
        'DataLoader\'s next(); "decode limit" is the lesser of workers x '
        "the one-core decode rate and the host's total."),
    train_loop=('## Training loop of the AMP config (mim train)', [
        ('arch', 'arch', ''), ('variant', 'variant', ''),
        ('workers', 'num_workers', 'd'), ('batch', 'batch_size', 'd'),
        ('timed iters', 'timed_iters', 'd'),
        ('samples/s', 'samples_per_s', '.1f'),
        ('data wait', 'data_wait_share', '.0%'),
        ('to device + preprocessor', 'preprocess_share', '.0%'),
        ('step (fwd, bwd, optim)', 'step_share', '.0%'),
        ('hooks', 'rest_share', '.0%'),
        ('model alone (samples/s)', 'step_on_device_samples_per_s', '.1f'),
        ('of it', 'of_step_on_device', '.0%')],
        '"model alone": the same model and optimizer stepping on one of '
        "the loop's batches already on the device."),
)


def environment(device: torch.device, quick: bool) -> Dict[str, Any]:
    """Versions and hardware, for the report."""
    cuda = device.type == 'cuda'
    return dict(
        date=time.strftime('%Y-%m-%d %H:%M:%S'), quick=quick,
        python=platform.python_version(), torch=torch.__version__,
        cuda=torch.version.cuda, device=str(device),
        device_name=(torch.cuda.get_device_name(device) if cuda else
                     platform.processor() or 'cpu'),
        gpu_uuid=(str(getattr(torch.cuda.get_device_properties(device),
                              'uuid', '')) or None) if cuda else None,
        host=socket.gethostname(), cpu_count=os.cpu_count(),
        float32_matmul_precision=torch.get_float32_matmul_precision(),
        frames=NUM_SEGS, weights='random (pretrained=False)')


def table(rows: Sequence[Dict], columns) -> List[str]:
    """Markdown table lines; ``columns`` are (title, key, format)."""
    return ['| ' + ' | '.join(c[0] for c in columns) + ' |',
            '|' + ' --- |' * len(columns)] + [
        '| ' + ' | '.join(
            'n/a' if row.get(key) is None else format(row[key], fmt)
            for _, key, fmt in columns) + ' |' for row in rows]


def to_markdown(report: Dict[str, Any]) -> str:
    """The report as markdown: the setting, then a table per part."""
    env = report['environment']
    lines = [
        '# ActionCLIP benchmark', '',
        f"{env['device_name']} ({env['device']}), {env['cpu_count']} CPUs, "
        f"torch {env['torch']} (CUDA {env['cuda']}), Python "
        f"{env['python']}, {env['date']}; {env['frames']} frames, "
        f"{env['labels']} Kinetics-400 labels x 16 templates, "
        f"{env['weights']}" + (', --quick (a smoke run with a tiny model, '
                               'not a measurement)' if env['quick'] else '')
        + '. Run time: ' + ', '.join(
            f'{k} {v:.0f} s' for k, v in report['part_seconds'].items())
        + '.', '', f"Command: `{env['command']}`", '']
    for earlier in report.get('resumed_from', []):
        lines += [f"Resumed from an earlier command on this host "
                  f"({env['host']}), {earlier['date']}: "
                  f"`{earlier['command']}` (parts "
                  f"{', '.join(earlier['parts'])}).", '']
    if report.get('videos'):
        v = report['videos']
        lines += [f"Videos ({v['source']}): {v['count']} files, "
                  f"{v['codec']} (written with {v['encoder']}), "
                  f"{v['width']}x{v['height']}, {v['fps']:g} fps, "
                  f"{v['frames']} frames, {v['mean_file_kib']:.0f} KiB on "
                  'average; the loops cycle through them.', '']
    for key, (title, columns, note) in TABLES.items():
        if report.get(key):
            lines += [title, ''] + table(report[key], columns) + [''] + (
                [note, ''] if note else [])
    if report.get('skipped'):
        lines += ['Not measured: ' + '; '.join(report['skipped']) + '.', '']
    return '\n'.join(lines)
