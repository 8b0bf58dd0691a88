"""One benchmark of ActionCLIP's test and training paths against the naive
path, on random weights (nothing is downloaded).

For ViT-B/32 and ViT-B/16 with 8 frames it measures:

a. predict with the Kinetics-400 labels x 16 templates, batch 1 and 16:
   the public MMAction2 plugin's path (every prompt encoded at 77 tokens on
   every batch, float32, ``nn.MultiheadAttention``) against this project's
   (text features cached, fast attention, bf16 or fp16 autocast, CUDA
   graphs), with each path's largest probability difference from the
   naive one;
b. the video encoder alone at batch 64, float32 against bf16 autocast;
c. a training step at batch 16 (forward, loss, backward, AdamW step) in
   float32 against bf16 AMP (``AmpOptimWrapper``), with peak GPU memory;
d. the test pipeline's decoding throughput in one process, on generated
   Kinetics-like videos (10 s, 340x256, 25 fps);
e. the test loop of the Kinetics-400 test config (the code ``mim test``
   runs) on those videos with the config's data workers: videos/s and
   whether decoding or the model bounds it.

Every iteration returns its result to the host (scores, the loss), as a
real run does; GPU work is synchronised before each clock reading. Writes
``benchmark.json`` and ``benchmark.md`` to ``--out-dir``.

This file is the command line; each part lives in ``tools/benchmarks/``
(``predict``, ``encoder``, ``train``, ``decode``, ``loop``; ``common``: the
budgets, the clock and the models; ``videos``: the generated videos;
``report``: the markdown tables).

Examples (from the project root)::

    python tools/benchmark.py --out-dir work_dirs/benchmark
    python tools/benchmark.py --quick --out-dir /tmp/bench  # CPU smoke run
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
import time
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Sequence, Tuple

# The parts import the models package when they run, from the root.
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PARTS = ('predict', 'encoder', 'train', 'decode', 'test_loop')
#: The keys of ``benchmarks.common.TEST_CONFIGS``, named here so that the
#: command line is checked before torch loads (main() checks they agree).
ARCHS = ('ViT-B/32', 'ViT-B/16')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments (bad input exits with status 2).

    Args:
        argv (list[str], optional): Arguments; default ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: The options.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out-dir', default='work_dirs/benchmark',
                        help='where benchmark.json and benchmark.md go '
                        '(default: work_dirs/benchmark)')
    parser.add_argument('--quick', action='store_true',
                        help='tiny model and iterations: a smoke run of '
                        'every path (on a CPU in well under a minute)')
    parser.add_argument('--archs', nargs='+', default=list(ARCHS),
                        choices=list(ARCHS),
                        help='architectures to measure (default: all)')
    parser.add_argument('--skip', nargs='*', default=[], choices=PARTS,
                        help='parts to leave out (default: none)')
    parser.add_argument('--compile', action='store_true',
                        help='also measure predict, the encoder and the '
                        'training step with torch.compile (compiling takes '
                        'minutes)')
    parser.add_argument('--device', default=None,
                        help='default: cuda when available, else cpu')
    parser.add_argument('--videos-dir', default=None,
                        help='where to generate the videos (default: a '
                        'temporary directory)')
    args = parser.parse_args(argv)
    if args.device is not None and not (args.device == 'cpu'
                                        or args.device.startswith('cuda')):
        parser.error(f'--device {args.device!r}: use cpu, cuda or cuda:N')
    return args


if __name__ == '__main__':
    # Checked before torch and the benchmark parts load (seconds), so that
    # a usage error answers at once; main() reads it again.
    parse_args()

import torch  # noqa: E402
from benchmarks.common import (  # noqa: E402
    FULL, LABEL_FILE, QUICK, QUICK_ARCH, TEST_CONFIGS, Budget, build_model,
    build_models, release_memory)
from benchmarks.decode import bench_decode  # noqa: E402
from benchmarks.encoder import bench_encoder  # noqa: E402
from benchmarks.loop import TEST_LOOP_VARIANTS, bench_test_loop  # noqa: E402
from benchmarks.predict import bench_predict, bench_text_cache  # noqa: E402
from benchmarks.report import environment, to_markdown  # noqa: E402
from benchmarks.train import bench_train  # noqa: E402
from benchmarks.videos import make_videos  # noqa: E402


def model_parts(report: Dict[str, Any], archs: List[Tuple[str, Any]],
                label_file: str, device: torch.device, budget: Budget,
                args: argparse.Namespace) -> None:
    """Parts a, b and c for each architecture, into ``report``."""
    parts = [p for p in ('predict', 'encoder', 'train') if p not in args.skip]
    for part in parts:
        report[part] = []
    if 'predict' in parts:
        report['text_cache'] = []
    for arch, clip_arch in archs if parts else []:
        start = time.perf_counter()
        print(f'{arch}: building models', flush=True)
        built = build_models(clip_arch, label_file, device, args.compile)
        resolution = built['naive'].clip.visual.input_resolution
        if 'predict' in parts:
            report['text_cache'] += bench_text_cache(built['eager'], arch,
                                                     device)
            report['predict'] += bench_predict(built, arch, resolution,
                                               device, budget)
        if 'encoder' in parts:
            report['encoder'] += bench_encoder(built, arch, resolution,
                                               device, budget)
        if 'train' in parts:
            for key in ('graphs', 'compiled', 'reduce_overhead'):
                built.pop(key, None)
            for model in built.values():
                model.cpu()
            release_memory(device)
            report['train'].append(
                bench_train(built['naive'], arch,
                            'fp32, original', False, resolution,
                            device, budget))
            report['train'].append(
                bench_train(built['eager'], arch,
                            'bf16 AMP, fast, fused AdamW', True, resolution,
                            device, budget))
            if args.compile and device.type == 'cuda':
                # Launches bound the ViT-B/32 step: replay the encoder
                # from CUDA graphs, forward and backward.
                compiled = build_model(
                    clip_arch, label_file, built['eager'].state_dict(),
                    compile=dict(mode='reduce-overhead'))
                report['train'].append(
                    bench_train(compiled, arch,
                                'bf16 AMP, fast, fused AdamW, compile '
                                '(reduce-overhead)', True, resolution,
                                device, budget))
                del compiled
        del built
        release_memory(device)
        report['part_seconds'][arch] = time.perf_counter() - start


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark and write its report.

    Args:
        argv (list[str], optional): Arguments; default ``sys.argv[1:]``.

    Returns:
        int: The exit status.
    """
    args = parse_args(argv)
    assert set(ARCHS) == set(TEST_CONFIGS), 'ARCHS: update from common.py'
    budget = QUICK if args.quick else FULL
    os.makedirs(args.out_dir, exist_ok=True)
    started = time.perf_counter()
    report: Dict[str, Any] = dict(
        budget=asdict(budget), skipped=[], part_seconds={})
    with tempfile.TemporaryDirectory(prefix='actionclip_bench_') as temp:
        from models.text.prompts import load_labels
        labels = load_labels(LABEL_FILE)[:budget.num_labels]
        label_file = LABEL_FILE
        if len(labels) < 400:
            label_file = osp.join(temp, 'labels.txt')
            with open(label_file, 'w') as f:
                f.write('\n'.join(labels) + '\n')
        videos = None
        if {'decode', 'test_loop'} - set(args.skip):
            # Before CUDA starts: the writers are forked processes.
            print('generating videos', flush=True)
            start = time.perf_counter()
            videos = make_videos(
                args.videos_dir or osp.join(temp, 'videos'),
                budget.num_videos, budget.video_seconds, len(labels))
            report['part_seconds']['videos'] = time.perf_counter() - start
        device = torch.device(args.device or (
            'cuda' if torch.cuda.is_available() else 'cpu'))
        report['environment'] = environment(device, args.quick)
        report['environment']['labels'] = len(labels)
        if device.type != 'cuda':
            report['skipped'].append('CUDA graphs, fp16 autocast, '
                                     'AmpOptimWrapper and peak memory '
                                     '(no CUDA device)')
        archs = [('tiny (--quick)', QUICK_ARCH)] if args.quick else [
            (a, a) for a in args.archs
        ]
        model_parts(report, archs, label_file, device, budget, args)
        decode = None
        if 'decode' not in args.skip:
            decode = report['decode'] = bench_decode(videos, budget)
        if 'test_loop' not in args.skip:
            start = time.perf_counter()
            # On a CPU the variants differ in little but bf16.
            variants = TEST_LOOP_VARIANTS[:1 if device.type != 'cuda' else
                                          None]
            report['test_loop'] = [
                bench_test_loop(arch, clip_arch, label_file, videos,
                                osp.join(temp, f'runner_{i}_{j}'), decode,
                                variant, overrides, device)
                for i, (arch, clip_arch) in enumerate(archs)
                for j, (variant, overrides) in enumerate(variants)
            ]
            report['part_seconds']['test_loop'] = (
                time.perf_counter() - start)
    report['part_seconds']['total'] = time.perf_counter() - started
    with open(osp.join(args.out_dir, 'benchmark.json'), 'w') as f:
        json.dump(report, f, indent=2)
    markdown = to_markdown(report)
    with open(osp.join(args.out_dir, 'benchmark.md'), 'w') as f:
        f.write(markdown + '\n')
    print(markdown)
    return 0


if __name__ == '__main__':
    sys.exit(main())
