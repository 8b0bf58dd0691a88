"""Generate a labelled action-video dataset whose classes only motion tells.

With ``--long N``, N long videos per set with the times of every action
(``models/datasets/synthetic_videos.py``; docs/synthetic_actions.md). The
same seed writes the same files, e.g.::

    python tools/generate_videos.py --per-class 60 --seed 0
"""
import argparse
import os
import os.path as osp
import sys

from light_imports import load_light

synthetic = load_light('models.datasets.synthetic_videos')
video_writer = load_light('models.utils.video_writer')


def __getattr__(name: str):
    # The generator's names, which this module used to hold (render ...).
    return getattr(synthetic, name)


def parse_args(argv=None) -> argparse.Namespace:
    """Parse ``argv`` (``sys.argv[1:]`` by default)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add('--out', default='data/synthetic_actions',
        help='folder the videos, file lists and label maps are written to')
    add('--seed', type=int, default=0,
        help='random seed: the same seed writes the same videos')
    add('--per-class', type=int, default=60, help='training videos per class')
    add('--val-per-class', type=int, default=10,
        help='validation videos per class')
    add('--test-per-class', type=int, default=15,
        help='test videos per class')
    add('--zeroshot-per-class', type=int, default=20,
        help='videos per held-out (zero-shot) class')
    add('--workers', type=int, default=len(os.sched_getaffinity(0)),
        help='processes rendering videos (the CPUs this process may use)')
    add('--size-scale', type=float, default=1.0,
        help='factor on the frame sizes (1.0: 96x96 to 160x120)')
    long = parser.add_argument_group(
        'long videos (instead of the dataset; docs/moments_accuracy.md)')
    long.add_argument(
        '--long', type=int, default=0, metavar='N',
        help='write N long videos of the trained classes and N of the '
        'held-out ones, each action as a clip with still pauses between '
        'them, and their ground truth, under OUT/long (0: the dataset)')
    long.add_argument('--long-minutes', type=float, default=3.0,
                      metavar='M', help='length of each long video in minutes')
    long.add_argument(
        '--long-pause', type=float, nargs=2,
        default=list(synthetic.DEFAULT_PAUSE_S), metavar=('MIN', 'MAX'),
        help='shortest and longest pause between two actions, seconds')
    return parser.parse_args(argv)


def problem(args: argparse.Namespace) -> str:
    """What is wrong with the options, or ``''``."""
    low, high = args.long_pause
    shortest = synthetic.shortest_long_s((low, high))
    checks = [
        *((getattr(args, name) < 1, f'--{name.replace("_", "-")} must be '
           'at least 1') for name in ('per_class', 'val_per_class',
                                      'test_per_class', 'zeroshot_per_class')),
        (not 0 < args.size_scale <= 8,
         f'--size-scale must be in (0, 8], got {args.size_scale}'),
        (args.workers < 1, f'--workers must be at least 1, got '
         f'{args.workers}'),
        (osp.exists(args.out) and not osp.isdir(args.out),
         f'--out {args.out!r} is a file; give a folder to write into'),
        (args.long < 0, f'--long must be at least 0, got {args.long}'),
    ]
    if args.long:
        checks += [
            (not 0 < args.long_minutes <= 600, '--long-minutes must be in '
             f'(0, 600], got {args.long_minutes:g}'),
            (not 0 < low <= high, '--long-pause MIN MAX must be 0 < MIN <= '
             f'MAX, got {low:g} {high:g}'),
            (0 < low <= high and args.long_minutes * 60 < shortest,
             f'--long-minutes {args.long_minutes:g} cannot hold an action '
             f'between two pauses: give at least {shortest / 60:.3g}'),
        ]
    return next((message for bad, message in checks if bad), '')


def main(argv=None) -> int:
    """Check the options, write the videos and say where; returns 0, 2
    for bad options, 1 when a file could not be written."""
    args = parse_args(argv)
    message = problem(args)
    if message:
        print(message, file=sys.stderr)
        return 2
    try:
        if args.long:
            out = osp.join(args.out, 'long')
            counts = synthetic.generate_long(
                out, args.long, args.long_minutes, args.seed,
                pause_s=tuple(args.long_pause), workers=args.workers,
                size_scale=args.size_scale)
            print(f'Wrote {counts} long videos of {args.long_minutes:g} min '
                  f'and their ground truth to {out}')
            return 0
        counts = synthetic.generate(
            args.out, args.seed,
            dict(train=args.per_class, val=args.val_per_class,
                 test=args.test_per_class,
                 zeroshot=args.zeroshot_per_class),
            workers=args.workers, size_scale=args.size_scale)
    except OSError as error:
        error = video_writer.explain(error, error.filename or args.out)
        print(f'generate_videos.py: {error}', file=sys.stderr)
        return 1
    print(f'Wrote {counts} videos to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
