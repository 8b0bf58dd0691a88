"""Run the field's evaluation protocols on a model and write one report.

Examples (from the project root)::

    python tools/eval_protocol.py --list --json
    python tools/eval_protocol.py zero-shot --dataset ucf101 \\
        --model ViT-B/16-8 --data-root data/ucf101/videos
    python tools/eval_protocol.py zero-shot --dataset hmdb51 \\
        --model work_dirs/my_run/best.pth --config my_config.py
    python tools/eval_protocol.py base-to-novel --dataset ucf101 \\
        --model seed1.pth --model seed2.pth --model seed3.pth
    python tools/eval_protocol.py few-shot --dataset hmdb51 \\
        --train-config my_train_config.py --model ViT-B/16-8

Base-to-novel and few-shot test one model per seed or shot count: pass
the checkpoints, one --model each, in order (seeds 1-3; K = 2, 4, 8, 16),
or --train-config to train them here through MMAction2's training loop
(``<work-dir>/<run>/train_config.py``: that config with the run's
training list and classes, no validation; --model then names the weights
every run starts from) and test the weights at the end of training; a
run whose ``trained.pth`` exists, from the same config, is not trained
again. Every split is tested through MMAction2's test loop with a config
written for it (``<work-dir>/<split>/config.py``: the model's config with
the split's classes and test list), then the report is written:
``<work-dir>/report.json`` and ``report.md`` (per split, then mean ±
std). The lists and classes are the shipped ones (``data/protocols/``);
the videos are found by name anywhere below ``--data-root``. Exit status
2, before anything is loaded, when the data root lacks the lists or any
listed video (the missing ones are written to
``<work-dir>/missing_<split>.txt``).
"""
import argparse
import json
import os.path as osp
import re
import sys
from typing import Optional, Sequence

from light_imports import load_light

cli = load_light('models.apis.cli')
CliError = cli.CliError
protocols = load_light('models.evaluation.protocols')
protocol_run = load_light('models.evaluation.protocol_run')

#: Where each dataset's videos are looked for without --data-root.
DEFAULT_ROOTS = {
    'ucf101': 'data/ucf101/videos',
    'hmdb51': 'data/hmdb51/videos',
    'k600': 'data/kinetics600',
    'k400': 'data/kinetics400',
    'ssv2': 'data/sthv2/videos',
}
#: A released model's name (checked against the release table later).
RELEASED_NAME = re.compile(r'^ViT-[BL]/\d+(@\d+px)?-\d+$')


def build_parser() -> argparse.ArgumentParser:
    """The command line of this tool."""
    parser = cli.tool_parser(__doc__)
    parser.add_argument('protocol', nargs='?',
                        help=f'one of {", ".join(protocols.PROTOCOLS)}')
    parser.add_argument('--list', action='store_true',
                        help='print every shipped protocol, dataset and '
                        'split with its classes and test videos')
    parser.add_argument('--json', action='store_true',
                        help='with --list: as JSON')
    parser.add_argument('--dataset', help='the dataset to test on')
    parser.add_argument(
        '--model', action='append',
        help='a released ActionCLIP model (ViT-B/32-8, ViT-B/16-8, ...) '
        'or the path of a checkpoint; base-to-novel and few-shot: one per '
        'seed or shot count, in order (with --train-config: the one every '
        'run starts from)')
    parser.add_argument(
        '--config',
        help="the checkpoint's MMAction2 config (default: the release "
        "table's, or the one the checkpoint records)")
    parser.add_argument(
        '--train-config',
        help='base-to-novel and few-shot: train each seed or K with this '
        'MMAction2 training config, then test it')
    parser.add_argument(
        '--data-root',
        help='folder holding the dataset\'s videos, in any layout (default: '
        + ', '.join(f'{k}: {v}' for k, v in DEFAULT_ROOTS.items()) + ')')
    parser.add_argument(
        '--views', choices=sorted(protocols.VIEWS),
        help='supervised protocol: clips x crops (default: all three)')
    parser.add_argument(
        '--work-dir',
        help='where the split configs, logs and the report go (default: '
        'work_dirs/eval_protocol/<protocol>_<dataset>)')
    parser.add_argument(
        '--lists', default=protocols.PROTOCOL_DIR,
        help='folder of split and class lists laid out as the shipped '
        'data/protocols/ (default: those)')
    parser.add_argument('--workers', type=int, default=None,
                        help="data loading processes (default: the config's)")
    return parser


def list_protocols(as_json: bool, lists: str) -> int:
    """Print every split with its counts, as a table or JSON."""
    try:
        rows = [protocols.describe(split, lists)
                for split in protocols.SPLITS]
    except protocols.ProtocolError as error:
        print(f'eval_protocol.py: error: {error}', file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2) if as_json else '\n'.join(
        f"{row['protocol']:14} {row['dataset']:7} {row['name']:12} "
        f"{row['classes']:4} classes, test {row['test_videos']}"
        + (f", train {row['train_videos']}"
           if row['train_videos'] is not None else '') for row in rows))
    return 0


def check_args(args: argparse.Namespace) -> None:
    """Check everything that needs no model, before torch: the options,
    the lists, and that the data root holds every listed video; sets
    ``args.plan`` (``[(split, [(video, label)])]``)."""
    if args.json:
        raise CliError('--json goes with --list (the run writes report.json '
                       'in --work-dir)')
    if args.protocol is None:
        raise CliError('name a protocol (' + ', '.join(protocols.PROTOCOLS)
                       + ') or pass --list')
    if args.dataset is None:
        raise CliError(f'--dataset is needed: the {args.protocol} protocol '
                       'covers '
                       + ', '.join(protocols.PROTOCOLS.get(args.protocol, ())
                                   or ['nothing']))
    try:
        splits = protocols.find_splits(args.protocol, args.dataset)
    except protocols.ProtocolError as error:
        raise CliError(str(error)) from None
    if args.views is not None:
        if args.protocol != 'supervised':
            raise CliError('--views applies to the supervised protocol only')
        splits = [s for s in splits if s.name == args.views]
    runs = list(dict.fromkeys(s.training_run for s in splits))
    if args.train_config is not None:
        check_training(args, runs)
    elif args.model is None:
        raise CliError('--model is needed: a released model (ViT-B/16-8 '
                       '...) or a checkpoint file'
                       + ('' if runs == [None] else ', one per run, or '
                          '--train-config to train them'))
    elif runs != [None] and len(args.model) != len(runs):
        raise CliError(
            f'the {args.protocol} protocol tests one model per training run '
            f'({", ".join(runs)}): pass {len(runs)} --model, in that '
            f'order, got {len(args.model)} (or --train-config to train '
            'them here)')
    elif runs == [None] and len(args.model) != 1:
        raise CliError(f'the {args.protocol} protocol tests one model: '
                       f'pass one --model, got {len(args.model)}')
    else:
        args.run_models = dict(zip(runs, args.model))
    for model in args.model or ():
        if not osp.exists(model) and not RELEASED_NAME.match(model):
            raise CliError(f'--model {model!r}: no such file, and not a '
                           'released model name such as ViT-B/16-8')
    cli.check_input_file('--config', args.config)
    cli.check_minimums(('--workers', args.workers, 0))
    args.data_root = args.data_root or DEFAULT_ROOTS[args.dataset]
    if not osp.isdir(args.data_root):
        raise CliError(f'data root {args.data_root!r} is not a folder: pass '
                       f'--data-root with your copy of {args.dataset}')
    args.work_dir = args.work_dir or osp.join(
        'work_dirs', 'eval_protocol', f'{args.protocol}_{args.dataset}')
    try:
        args.plan, args.training = protocols.plan(
            splits, args.lists, args.data_root, args.work_dir,
            train=args.train_config is not None)
    except protocols.ProtocolError as error:
        raise CliError(str(error)) from None


def check_training(args: argparse.Namespace, runs: list) -> None:
    """Check ``--train-config`` and its options; sets ``args.init``."""
    if runs == [None]:
        raise CliError(f'the {args.protocol} protocol trains nothing: '
                       '--train-config is for base-to-novel and few-shot')
    cli.check_input_file('--train-config', args.train_config,
                         ' (an MMAction2 training config)')
    if args.config is not None:
        raise CliError('--config and --train-config both give the config: '
                       'the trained runs are tested with their training '
                       'config; drop --config')
    if args.model is not None and len(args.model) > 1:
        raise CliError(
            f'with --train-config, --model names the one checkpoint every '
            f'run starts from: pass one at most, got {len(args.model)} '
            '(or drop --train-config to test checkpoints trained '
            'elsewhere)')
    args.init = args.model[0] if args.model else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` and run; returns the exit status (2: bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        return list_protocols(args.json, args.lists)
    return cli.run_cli(parser, protocol_run.run, argv, check_args)


if __name__ == '__main__':
    sys.exit(main())
