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
d. decoding, on Kinetics-like videos (10 s, 340x256, 25 fps; generated,
   or ``--video-dir``): the test pipeline in one process; decord's rate
   per core (one thread per process; one process, then one per CPU: the
   physical bound); the test pipeline in
   DataLoader workers with ``VideoInit`` on one decoding thread against
   decord's default;
e. the test loop of the Kinetics-400 test config (the code ``mim test``
   runs) as shipped, with fp16 and CUDA graphs, and at batch 1: videos/s
   and the shares of waiting for data, preprocessing and the forward;
train_loop. ``mim train``'s loop of the AMP config on those videos with
   its own pipeline and data preprocessor, as shipped, compiled, and with
   the old CPU augmentation: samples/s, the same shares, beside the
   model's step on a batch already on the device and part c's.

Every iteration returns its result to the host (scores, the loss), as a
real run does; GPU work is synchronised before each clock reading. Writes
``benchmark.json`` and ``benchmark.md`` to ``--out-dir``.

This file is the command line; each part lives in ``tools/benchmarks/``
(``predict``, ``encoder``, ``train``, ``decode``, ``decode_rate``,
``loader_threads``, ``loop``, ``train_loop``; ``common``: the budgets, the
clock and the models; ``iteration_clock``: where a loop's time goes;
``videos``: the videos; ``report``: the markdown tables).

Examples (from the project root)::

    python tools/benchmark.py --out-dir work_dirs/benchmark
    python tools/benchmark.py --quick --out-dir /tmp/bench  # CPU smoke run
    # the data path only, on H.264 clips made elsewhere
    python tools/benchmark.py --skip predict encoder \\
        --video-dir clips/ --out-dir work_dirs/benchmark
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

PARTS = ('predict', 'encoder', 'train', 'decode', 'test_loop', 'train_loop')
#: Parts that decode videos.
VIDEO_PARTS = ('decode', 'test_loop', 'train_loop')
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
    parser.add_argument('--parts', nargs='+', default=list(PARTS),
                        choices=PARTS,
                        help='parts to run (default: all; decode is part d '
                        'with the decode rate per core)')
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
    parser.add_argument('--video-dir', default=None,
                        help='use the videos of this folder instead of '
                        'generating them (cycled through to the count each '
                        'loop needs; their codec is reported), e.g. H.264 '
                        'clips made on a host with an H.264 encoder')
    parser.add_argument('--workers', type=int, default=default_workers(),
                        help='DataLoader workers of the training loop and '
                        'of the test pipeline in workers (default: the '
                        'CPU count minus one, here %(default)s); the test '
                        "loop uses its config's")
    parser.add_argument('--loop-rows', nargs='+', default=None,
                        metavar='WORDS',
                        help='measure only the test/training loop rows whose '
                        'name contains one of these (e.g. "as shipped" '
                        'compile; default: every row)')
    parser.add_argument('--resume', default=None, metavar='REPORT',
                        help='an earlier benchmark.json of this host and '
                        'GPU: its parts are kept and those of this run '
                        'added (or measured again), so that parts that do '
                        'not fit one sitting make one report; refused for '
                        'another host, GPU or software')
    args = parser.parse_args(argv)
    if args.device is not None and not (args.device == 'cpu'
                                        or args.device.startswith('cuda')):
        parser.error(f'--device {args.device!r}: use cpu, cuda or cuda:N')
    if args.workers < 0:
        parser.error(f'--workers {args.workers}: must be 0 or more')
    if args.video_dir is not None and args.videos_dir is not None:
        parser.error('--video-dir (existing videos) and --videos-dir '
                     '(where to generate them): give one')
    if args.resume is not None:
        args.resumed = read_resumed(parser, args.resume)
    check_outputs(parser, args.out_dir, args.resume)
    args.parts = [p for p in PARTS if p in args.parts and p not in args.skip]
    if not args.parts:
        parser.error('--parts/--skip leave no part to run')
    args.video_files = None
    if args.video_dir is not None and set(VIDEO_PARTS) & set(args.parts):
        args.video_files = list_videos(parser, args.video_dir)
    return args


#: Report keys that hold measurements (kept from a --resume report unless
#: measured again); the rest describes the run.
RESULT_KEYS = ('videos', 'predict', 'text_cache', 'encoder', 'train',
               'decode', 'decode_rate', 'loader_threads',
               'test_loop', 'train_loop')
#: What must be equal for two runs' figures to share one report.
SAME_HOST_KEYS = ('host', 'device_name', 'gpu_uuid', 'cpu_count', 'torch',
                  'cuda', 'python', 'quick', 'labels', 'workers')


def read_resumed(parser: argparse.ArgumentParser,
                 path: str) -> Dict[str, Any]:
    """The ``--resume`` report, or a usage error naming the file."""
    try:
        with open(path) as f:
            earlier = json.load(f)
    except (OSError, ValueError) as error:
        parser.error(f'--resume {path!r}: cannot read a benchmark.json '
                     f'there ({error})')
    if not (isinstance(earlier, dict)
            and isinstance(earlier.get('environment'), dict)
            and isinstance(earlier.get('part_seconds'), dict)):
        parser.error(f'--resume {path!r} is not a benchmark.json of '
                     'tools/benchmark.py')
    return earlier


def check_outputs(parser: argparse.ArgumentParser, out_dir: str,
                  resumed: Optional[str]) -> None:
    """Refuse an ``--out-dir`` whose report files cannot be written or
    would replace the ``--resume`` report (a usage error)."""
    from light_imports import load_light
    safe_io = load_light('models.utils.safe_io')
    for name in ('benchmark.json', 'benchmark.md'):
        try:
            safe_io.check_output_path(osp.join(out_dir, name), [resumed],
                                      what='--out-dir')
        except safe_io.OutputPathError as error:
            parser.error(str(error))


def resume(report: Dict[str, Any], earlier: Dict[str, Any]) -> None:
    """Put an earlier report's measurements into ``report``, whose
    environment is this run's.

    Raises:
        ValueError: The earlier run had another host, GPU or software.
    """
    env, old = report['environment'], earlier['environment']
    differ = [
        f'{key} {old.get(key)!r} there, {env.get(key)!r} here'
        for key in SAME_HOST_KEYS if old.get(key) != env.get(key)
    ]
    if differ:
        raise ValueError('its figures come from another setting: ' +
                         '; '.join(differ))
    for key in RESULT_KEYS:
        if key in earlier:
            report[key] = earlier[key]
    report['skipped'] = list(earlier.get('skipped', []))
    report['resumed_from'] = list(earlier.get('resumed_from', [])) + [
        dict(command=old.get('command'), date=old.get('date'),
             parts=earlier.get('measured_parts', earlier.get('parts', [])),
             part_seconds=earlier['part_seconds'])
    ]
    report['parts'] = [
        p for p in PARTS if p in earlier.get('parts', []) or p in
        report['parts']
    ]


def default_workers() -> int:
    """The CPUs this process may use, minus one for the main process."""
    cpus = (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
            else os.cpu_count() or 1)
    return max(0, cpus - 1)


def list_videos(parser: argparse.ArgumentParser, folder: str) -> List[str]:
    """The video files of ``--video-dir``, or a usage error."""
    from light_imports import load_light
    video_files = load_light('models.apis.video_files')
    problem = video_files.path_problem(folder)
    if problem:
        parser.error(f'--video-dir {folder!r} {problem}')
    if not osp.isdir(folder):
        parser.error(f'--video-dir {folder!r} is not a folder')
    try:
        return video_files.find_videos([folder])
    except (OSError, ValueError) as error:
        parser.error(f'--video-dir: {error}')


if __name__ == '__main__':
    # Checked before torch and the benchmark parts load (seconds), so that
    # a usage error answers at once; main() reads it again.
    parse_args()

import torch  # noqa: E402
from benchmarks.common import (FULL, LABEL_FILE, QUICK,  # noqa: E402
                               QUICK_ARCH, TEST_CONFIGS, TRAIN_CONFIGS,
                               Budget, build_model, build_models,
                               release_memory)
from benchmarks.decode import bench_decode  # noqa: E402
from benchmarks.decode_rate import bench_decode_rate  # noqa: E402
from benchmarks.encoder import bench_encoder  # noqa: E402
from benchmarks.loader_threads import bench_loader_threads  # noqa: E402
from benchmarks.loop import TEST_LOOP_VARIANTS, bench_test_loop  # noqa: E402
from benchmarks.predict import bench_predict, bench_text_cache  # noqa: E402
from benchmarks.report import environment, to_markdown  # noqa: E402
from benchmarks.train import bench_train  # noqa: E402
from benchmarks.train_loop import (attach_model_only,  # noqa: E402
                                   bench_train_loop, train_loop_variants)
from benchmarks.videos import existing_videos, make_videos  # noqa: E402


def model_parts(report: Dict[str, Any], archs: List[Tuple[str, Any]],
                label_file: str, device: torch.device, budget: Budget,
                args: argparse.Namespace) -> None:
    """Parts a, b and c for each architecture, into ``report``."""
    parts = [p for p in ('predict', 'encoder', 'train') if p in args.parts]
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


def decode_parts(report: Dict[str, Any], videos: Dict[str, Any],
                 budget: Budget, args: argparse.Namespace) -> None:
    """Part d: the test pipeline in one process, decord's rate per core
    and the physical bound, and ``VideoInit``'s threads in workers."""
    start = time.perf_counter()
    report['decode'] = bench_decode(videos, budget)
    report['decode_rate'] = bench_decode_rate(
        videos, budget.decode_rate_seconds)
    report['loader_threads'] = bench_loader_threads(
        videos, args.workers, budget.loader_videos)
    report['part_seconds']['decode'] = time.perf_counter() - start


def wanted(row: str, args: argparse.Namespace) -> bool:
    """Whether ``--loop-rows`` selects the loop row named ``row``."""
    return args.loop_rows is None or any(words in row
                                         for words in args.loop_rows)


def loop_parts(report: Dict[str, Any], archs: List[Tuple[str, Any]],
               label_file: str, num_labels: int, videos: Dict[str, Any],
               temp: str, device: torch.device, budget: Budget,
               args: argparse.Namespace) -> None:
    """Part e (the test loop) and the training loop, into ``report``."""
    if 'test_loop' in args.parts:
        start = time.perf_counter()
        variants = [(name, overrides)
                    for name, overrides, cuda_only in TEST_LOOP_VARIANTS
                    if (device.type == 'cuda' or not cuda_only)
                    and wanted(name, args)]
        report['test_loop'] = [
            bench_test_loop(arch, clip_arch, label_file, num_labels, videos,
                            osp.join(temp, f'test_{i}_{j}'),
                            report.get('decode_rate'), variant, overrides,
                            device, budget)
            for i, (arch, clip_arch) in enumerate(archs)
            for j, (variant, overrides) in enumerate(variants)
        ]
        report['part_seconds']['test_loop'] = time.perf_counter() - start
    if 'train_loop' in args.parts:
        start = time.perf_counter()
        report['train_loop'] = [
            bench_train_loop(arch, clip_arch, label_file, num_labels,
                             videos, osp.join(temp, f'train_{i}_{j}'),
                             variant, overrides, cpu_aug, args.workers,
                             device, budget)
            for i, (arch, clip_arch) in enumerate(archs)
            for j, (variant, overrides, cpu_aug) in enumerate(
                train_loop_variants(device)) if wanted(variant, args)
        ]
        attach_model_only(report['train_loop'], report.get('train', []))
        report['part_seconds']['train_loop'] = time.perf_counter() - start


def write_report(report: Dict[str, Any], out_dir: str) -> str:
    """``benchmark.json`` and ``benchmark.md`` into ``out_dir``, each
    replaced only when whole; returns the markdown."""
    from light_imports import load_light
    safe_io = load_light('models.utils.safe_io')
    markdown = to_markdown(report)
    with safe_io.atomic_write(osp.join(out_dir, 'benchmark.json'),
                              'w') as f:
        json.dump(report, f, indent=2)
    with safe_io.atomic_write(osp.join(out_dir, 'benchmark.md'), 'w') as f:
        f.write(markdown + '\n')
    return markdown


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark and write its report.

    Args:
        argv (list[str], optional): Arguments; default ``sys.argv[1:]``.

    Returns:
        int: The exit status.
    """
    args = parse_args(argv)
    assert set(ARCHS) == set(TEST_CONFIGS) == set(TRAIN_CONFIGS), (
        'ARCHS: update from common.py')
    budget = QUICK if args.quick else FULL
    os.makedirs(args.out_dir, exist_ok=True)
    started = time.perf_counter()
    report: Dict[str, Any] = dict(
        budget=asdict(budget), skipped=[], part_seconds={},
        parts=args.parts, measured_parts=list(args.parts))
    with tempfile.TemporaryDirectory(prefix='actionclip_bench_') as temp:
        from models.text.prompts import load_labels
        labels = load_labels(LABEL_FILE)[:budget.num_labels]
        label_file = LABEL_FILE
        if len(labels) < 400:
            label_file = osp.join(temp, 'labels.txt')
            with open(label_file, 'w') as f:
                f.write('\n'.join(labels) + '\n')
        videos = None
        if set(VIDEO_PARTS) & set(args.parts):
            start = time.perf_counter()
            if args.video_files:
                print(f'probing {len(args.video_files)} videos of '
                      f'{args.video_dir}', flush=True)
                try:
                    videos = existing_videos(args.video_dir,
                                             args.video_files)
                except ValueError as error:
                    print(f'benchmark.py: error: --video-dir: {error}',
                          file=sys.stderr)
                    return 2
            else:
                # Before CUDA starts: the writers are forked processes.
                print('generating videos', flush=True)
                videos = make_videos(
                    args.videos_dir or osp.join(temp, 'videos'),
                    budget.num_videos, budget.video_seconds, len(labels))
            report['videos'] = {
                k: v
                for k, v in videos.items() if k not in ('files', 'ann_file')
            }
            report['videos']['count'] = len(videos['files'])
            report['part_seconds']['videos'] = time.perf_counter() - start
        device = torch.device(args.device or (
            'cuda' if torch.cuda.is_available() else 'cpu'))
        report['environment'] = environment(device, args.quick)
        report['environment']['labels'] = len(labels)
        report['environment']['command'] = ' '.join(
            ['python', 'tools/benchmark.py'] +
            list(sys.argv[1:] if argv is None else argv))
        report['environment']['workers'] = args.workers
        if args.resume is not None:
            try:
                resume(report, args.resumed)
            except ValueError as error:
                print(f'benchmark.py: error: --resume {args.resume!r}: '
                      f'{error}', file=sys.stderr)
                return 2
        no_cuda = ('CUDA graphs, fp16 autocast, AmpOptimWrapper, compile '
                   "(the loops' fp16 + CUDA graphs and compile rows) and "
                   'peak memory (no CUDA device)')
        if device.type != 'cuda' and no_cuda not in report['skipped']:
            report['skipped'].append(no_cuda)
        archs = [('tiny (--quick)', QUICK_ARCH)] if args.quick else [
            (a, a) for a in args.archs
        ]
        model_parts(report, archs, label_file, device, budget, args)
        if 'decode' in args.parts:
            decode_parts(report, videos, budget, args)
        loop_parts(report, archs, label_file, len(labels), videos, temp,
                   device, budget, args)
    report['part_seconds']['total'] = time.perf_counter() - started
    print(write_report(report, args.out_dir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
