"""The whole benchmark: the parts asked for in one report, optionally added
to an earlier report of the same setting."""
import os.path as osp
import tempfile
import time
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Sequence

import torch

from . import decode_rate, loops, model_paths
from .report import environment
from .videos import existing_videos, make_videos

PARTS = ('predict', 'encoder', 'train', 'decode', 'test_loop', 'train_loop')
VIDEO_PARTS = ('decode', 'test_loop', 'train_loop')
#: Report keys that hold rows: an earlier report's are kept unless
#: measured again.
RESULT_KEYS = ('predict', 'text_cache', 'encoder', 'train', 'decode_rate',
               'test_loop', 'train_loop')
#: What names a row within its part.
ROW_KEYS = ('arch', 'batch', 'path', 'precision', 'backend', 'variant')
#: What must be equal for two runs' figures to share one report.
SAME_HOST_KEYS = ('host', 'device_name', 'gpu_uuid', 'cpu_count', 'torch',
                  'cuda', 'python', 'quick', 'labels', 'workers')
LABEL_FILE = osp.join(loops.ROOT, 'configs', 'label_map_k400.txt')


class BenchmarkInputError(ValueError):
    """An input the benchmark cannot use; the message names it."""


def merge_rows(old: List[Dict], new: List[Dict]) -> List[Dict]:
    """``old`` rows with those measured again replaced in place (by
    :data:`ROW_KEYS`), then the rest of ``new``."""
    def key(row):
        return tuple(row.get(k) for k in ROW_KEYS)

    fresh = {key(row): row for row in new}
    return [fresh.pop(key(row), row) for row in old] + list(fresh.values())


def resume(report: Dict[str, Any], earlier: Dict[str, Any]) -> None:
    """Put an earlier report's rows into ``report`` (of this run's
    environment); a :class:`BenchmarkInputError` when it had another host,
    GPU or software."""
    env, old = report['environment'], earlier['environment']
    differ = [f'{key} {old.get(key)!r} there, {env.get(key)!r} here'
              for key in SAME_HOST_KEYS if old.get(key) != env.get(key)]
    if differ:
        raise BenchmarkInputError('--resume: its figures come from another '
                                  'setting: ' + '; '.join(differ))
    report.update({key: earlier[key] for key in RESULT_KEYS + ('videos', )
                   if key in earlier})
    report['skipped'] = list(earlier.get('skipped', []))
    report['resumed_from'] = earlier.get('resumed_from', []) + [dict(
        command=old.get('command'), date=old.get('date'),
        parts=earlier.get('measured_parts', earlier.get('parts', [])),
        part_seconds=earlier['part_seconds'])]
    report['parts'] = [p for p in PARTS if p in earlier.get('parts', [])
                       or p in report['parts']]


def wanted(row: str, loop_rows: Optional[Sequence[str]]) -> bool:
    """Whether ``--loop-rows`` (None: every row) selects ``row``."""
    return loop_rows is None or any(words in row for words in loop_rows)


def run_benchmark(parts: Sequence[str], archs: Sequence[str],
                  device: Optional[str] = None, quick: bool = False,
                  compile_model: bool = False,
                  workers: int = 0, loop_rows: Optional[Sequence[str]] = None,
                  video_dir: Optional[str] = None,
                  video_files: Optional[Sequence[str]] = None,
                  videos_dir: Optional[str] = None,
                  clips: str = 'footage',
                  resumed: Optional[Dict] = None,
                  command: str = '') -> Dict[str, Any]:
    """Measure ``parts`` (of :data:`PARTS`) for the CLIP ``archs``, as
    ``tools/benchmark.py``'s options ask (``video_dir``: the folder of
    ``video_files``, else ``clips`` are written into ``videos_dir`` or a
    temporary folder; ``resumed``: an earlier report whose rows are kept).

    Returns:
        dict: The report (``environment``, ``part_seconds``, one list of
        rows per part measured or resumed).

    Raises:
        BenchmarkInputError: The earlier report is of another setting, or
            a video or ``loop_rows`` cannot be used.
    """
    budget = model_paths.QUICK if quick else model_paths.FULL
    started = time.perf_counter()
    device = torch.device(device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    from models.text.prompts import load_labels
    labels = load_labels(LABEL_FILE)[:budget.num_labels]
    report: Dict[str, Any] = dict(
        budget=asdict(budget), skipped=[], part_seconds={}, parts=list(parts),
        measured_parts=list(parts),
        environment=dict(environment(device, quick), labels=len(labels),
                         workers=workers, command=command))
    if resumed is not None:
        resume(report, resumed)
    rows_here = [name for mode in ('test', 'train') if f'{mode}_loop' in parts
                 for name, _ in loops.variants(mode, device)]
    if rows_here and not any(wanted(name, loop_rows) for name in rows_here):
        raise BenchmarkInputError(
            f'--loop-rows {" ".join(loop_rows)!r} selects none of the loop '
            f'rows measured on {device.type}: ' + '; '.join(rows_here))
    if device.type != 'cuda':
        report['skipped'] = sorted(set(report['skipped']) | {
            'CUDA graphs, fp16 autocast, AmpOptimWrapper, compile and peak '
            'memory (no CUDA device)'})
    models = ([('tiny (--quick)', model_paths.QUICK_ARCH)] if quick else
              [(arch, arch) for arch in archs])
    seconds = report['part_seconds']
    rows: Dict[str, List[Dict]] = {key: [] for key in RESULT_KEYS}
    with tempfile.TemporaryDirectory(prefix='actionclip_bench_') as temp:
        if set(VIDEO_PARTS) & set(parts):
            start = time.perf_counter()
            try:
                videos = (existing_videos(video_dir, video_files)
                          if video_dir else make_videos(
                              videos_dir or osp.join(temp, 'videos'),
                              budget.num_videos, budget.video_seconds,
                              clips))
            except ValueError as error:
                where = '--video-dir: ' if video_dir else ''
                raise BenchmarkInputError(f'{where}{error}') from None
            report['videos'] = dict(
                {k: v for k, v in videos.items() if k != 'files'},
                count=len(videos['files']))
            seconds['videos'] = time.perf_counter() - start
        if 'decode' in parts:  # forked before any model runs
            start = time.perf_counter()
            rows['decode_rate'] = decode_rate.bench_decode_rate(
                videos, budget.decode_rate_seconds)
            seconds['decode'] = time.perf_counter() - start
        if set(parts) & {'predict', 'encoder', 'train'}:
            for arch, clip_arch in models:
                start = time.perf_counter()
                _model_rows(rows, parts, arch, clip_arch, labels, device,
                            budget, compile_model)
                seconds[arch] = time.perf_counter() - start
        rates = merge_rows(report.get('decode_rate', []),
                           rows['decode_rate'])
        for mode in ('test', 'train'):
            if f'{mode}_loop' in parts:
                start = time.perf_counter()
                rows[f'{mode}_loop'] = [
                    loops.bench_loop(
                        mode, arch, clip_arch, labels, len(labels), videos,
                        osp.join(temp, f'{mode}_{i}_{j}'), variant, options,
                        workers, device, budget, rates)
                    for i, (arch, clip_arch) in enumerate(models)
                    for j, (variant, options) in enumerate(
                        loops.variants(mode, device))
                    if wanted(variant, loop_rows)]
                seconds[f'{mode}_loop'] = time.perf_counter() - start
    for key, new in rows.items():
        if new:
            report[key] = merge_rows(report.get(key, []), new)
    seconds['total'] = time.perf_counter() - started
    return report


def _model_rows(rows: Dict[str, List[Dict]], parts: Sequence[str],
                arch: str, clip_arch, labels: List[str],
                device: torch.device, budget: model_paths.Budget,
                compile_model: bool) -> None:
    """The model parts of one architecture, into ``rows``."""
    print(f'{arch}: building models', flush=True)
    built = model_paths.build_models(clip_arch, labels, device,
                                     compile_model)
    resolution = built['naive'].clip.visual.input_resolution
    if 'predict' in parts:
        rows['text_cache'] += model_paths.bench_text_cache(
            built['eager'], arch, device)
        rows['predict'] += model_paths.bench_predict(built, arch, resolution,
                                                     device, budget)
    if 'encoder' in parts:
        rows['encoder'] += model_paths.bench_encoder(built, arch, resolution,
                                                     device, budget)
    naive, eager = built.pop('naive').cpu(), built.pop('eager').cpu()
    del built
    model_paths.release_memory(device)
    if 'train' not in parts:
        return
    paths = [(naive, 'fp32, original', False),
             (eager, 'bf16 AMP, fast, fused AdamW', True)]
    if compile_model and device.type == 'cuda':
        # Launches bound the ViT-B/32 step: replay the encoder from CUDA
        # graphs, forward and backward.
        paths.append((model_paths.build_model(
            clip_arch, labels, eager.state_dict(),
            compile=dict(mode='reduce-overhead')),
            'bf16 AMP, fast, fused AdamW, compile (reduce-overhead)', True))
    for model, path, amp in paths:
        rows['train'].append(model_paths.bench_train(
            model, arch, path, amp, resolution, device, budget))
