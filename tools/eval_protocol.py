"""Run the field's evaluation protocols on a model and write one report.

Examples (from the project root)::

    python tools/eval_protocol.py --list --json
    python tools/eval_protocol.py zero-shot --dataset ucf101 \\
        --model ViT-B/16-8 --data-root data/ucf101/videos
    python tools/eval_protocol.py zero-shot --dataset hmdb51 \\
        --model work_dirs/my_run/best.pth --config my_config.py
    python tools/eval_protocol.py base-to-novel --dataset ucf101 \\
        --model seed1.pth --model seed2.pth --model seed3.pth

Base-to-novel and few-shot train one model per seed or shot count (with
the training lists of tools/data/protocol_lists.py); pass those
checkpoints with one --model each, in order (seeds 1-3; K = 2, 4, 8, 16).
Every split of the protocol is tested through MMAction2's test loop with
a config written for it (``<work-dir>/<split>/config.py``: the model's
config with the split's classes and test list), then the report is
written: ``<work-dir>/report.json`` and ``report.md`` (per split, then
mean ± std). The lists and classes are the shipped ones
(``data/protocols/``); the videos are found by name anywhere below
``--data-root``. Exit status 2, before anything is loaded, when the data
root lacks the lists or any listed video (the missing ones are written to
``<work-dir>/missing_<split>.txt``).
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
from typing import List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from light_imports import load_light  # noqa: E402

_cli = load_light('models.apis.cli')
CliError = _cli.CliError
protocols = load_light('models.evaluation.protocols')

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
    """The command line of this tool.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog=__doc__.split('\n\n', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
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
        'seed or shot count, in order')
    parser.add_argument(
        '--config',
        help="the checkpoint's MMAction2 config (default: the release "
        "table's, or the one the checkpoint records)")
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
    """Print every split with its counts, read from the shipped files.

    Args:
        as_json (bool): JSON instead of a table.
        lists (str): The folder of the lists.

    Returns:
        int: The exit status.
    """
    try:
        rows = [protocols.describe(split, lists)
                for split in protocols.SPLITS]
    except protocols.ProtocolError as error:
        print(f'eval_protocol.py: error: {error}', file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        train = (f", train {row['train_videos']}"
                 if row['train_videos'] is not None else '')
        print(f"{row['protocol']:14} {row['dataset']:7} {row['name']:12} "
              f"{row['classes']:4} classes, test {row['test_videos']}"
              f"{train}")
    return 0


def check_args(args: argparse.Namespace) -> None:
    """Check everything that needs no model, before torch is imported:
    the protocol, dataset and model options, the shipped lists, and that
    the data root holds every listed video.

    Args:
        args (argparse.Namespace): Parsed arguments; ``args.plan`` is set
            to ``[(split, [(video, label)])]``.
    """
    if args.list:
        return
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
    if args.model is None:
        raise CliError('--model is needed: a released model (ViT-B/16-8 '
                       '...) or a checkpoint file')
    runs = list(dict.fromkeys(protocols.training_run(s) for s in splits))
    if runs != [None] and len(args.model) != len(runs):
        raise CliError(
            f'the {args.protocol} protocol tests one model per training run '
            f'({", ".join(runs)}): pass {len(runs)} --model, in that '
            f'order, got {len(args.model)} (train them on the lists of '
            'tools/data/protocol_lists.py)')
    if runs == [None] and len(args.model) != 1:
        raise CliError(f'the {args.protocol} protocol tests one model: '
                       f'pass one --model, got {len(args.model)}')
    args.run_models = dict(zip(runs, args.model)) if runs != [None] else {
        None: args.model[0]}
    for model in args.model:
        if not osp.exists(model) and not RELEASED_NAME.match(model):
            raise CliError(f'--model {model!r}: no such file, and not a '
                           'released model name such as ViT-B/16-8')
    if args.config is not None and not osp.isfile(args.config):
        raise CliError(f'--config {args.config!r}: no such file')
    if args.workers is not None and args.workers < 0:
        raise CliError(f'--workers must be >= 0, got {args.workers}')
    root = args.data_root or DEFAULT_ROOTS[args.dataset]
    if not osp.isdir(root):
        raise CliError(f'data root {root!r} is not a folder: pass '
                       f'--data-root with your copy of {args.dataset}')
    args.data_root = root
    args.work_dir = args.work_dir or osp.join(
        'work_dirs', 'eval_protocol', f'{args.protocol}_{args.dataset}')
    videos = protocols.index_videos(root)
    if not videos:
        raise CliError(f'data root {root!r} holds no videos (.avi, .mp4, '
                       '.webm ...)')
    args.plan, lacking = [], []
    for split in splits:
        try:
            entries = protocols.read_test_list(split, args.lists)
            found, missing = protocols.resolve_videos(entries, videos)
        except protocols.ProtocolError as error:
            raise CliError(str(error)) from None
        args.plan.append((split, found))
        if missing:
            os.makedirs(args.work_dir, exist_ok=True)
            listing = osp.join(args.work_dir, f'missing_{split.name}.txt')
            with open(listing, 'w', encoding='utf-8') as f:
                f.writelines(f'{video}\n' for video in missing)
            lacking.append(f'{len(missing)} of the {len(entries)} videos of '
                           f'{split.name} (e.g. {missing[0]}; all in '
                           f'{listing})')
    if lacking:
        raise CliError(f'{root} lacks {"; ".join(lacking)}. A result on part '
                       'of a split is not the protocol\'s')


def _model_files(args: argparse.Namespace, model: str,
                 work_dir: str) -> tuple:
    """The checkpoint file and the config to inherit, resolved with the
    project's loading rules (downloads a released model when missing)."""
    from models.apis.loading import PROJECT_ROOT, actionclip_checkpoint_path
    from models.backbones.pretrained import ACTIONCLIP_CHECKPOINTS
    from models.checkpoints.recorded_config import recorded_config
    from models.checkpoints.safe_loading import load_checkpoint_file
    if not osp.exists(model) and model not in ACTIONCLIP_CHECKPOINTS:
        raise CliError(f'--model {model!r}: not a released model ('
                       + ', '.join(ACTIONCLIP_CHECKPOINTS) + ')')
    checkpoint = actionclip_checkpoint_path(model)
    if args.config is not None:
        return checkpoint, args.config
    if model in ACTIONCLIP_CHECKPOINTS:
        return checkpoint, osp.join(
            PROJECT_ROOT, ACTIONCLIP_CHECKPOINTS[model]['config'])
    recorded = recorded_config(
        load_checkpoint_file(checkpoint, map_location='cpu'), checkpoint)
    if recorded is None or 'test_dataloader' not in recorded:
        raise CliError(f'{checkpoint} records no config with a test '
                       'pipeline: pass --config with the one it was trained '
                       'with')
    os.makedirs(work_dir, exist_ok=True)
    config = osp.join(work_dir, 'model_config.py')
    recorded.dump(config)
    return checkpoint, config


def run(args: argparse.Namespace) -> int:
    """Test every split and write the report.

    Args:
        args (argparse.Namespace): Checked arguments.

    Returns:
        int: The exit status.
    """
    if args.list:
        return list_protocols(args.json, args.lists)
    from models.evaluation.protocol_report import write_report
    from models.evaluation.protocol_run import (run_split, split_config_text,
                                                view_pipeline)
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    files = {run: _model_files(args, model, osp.join(work_dir, run or ''))
             for run, model in args.run_models.items()}
    rows: List[dict] = []
    for split, found in args.plan:
        run_name = protocols.training_run(split)
        checkpoint, model_config = files[run_name]
        folder = osp.join(work_dir, split.name)
        os.makedirs(folder, exist_ok=True)
        labels = osp.join(folder, 'labels.txt')
        with open(labels, 'w', encoding='utf-8') as f:
            texts = protocols.class_texts(split, args.lists)
            f.writelines(f'{text}\n' for text in texts)
        ann = osp.join(folder, 'test_list.txt')
        protocols.write_annotations(ann, found)
        try:
            pipeline = (view_pipeline(model_config, *split.views)
                        if split.views else None)
        except ValueError as error:
            raise CliError(f'{model_config}: {error}') from None
        config = osp.join(folder, 'config.py')
        with open(config, 'w', encoding='utf-8') as f:
            f.write(split_config_text(model_config, labels, ann,
                                      args.data_root, args.workers,
                                      pipeline))
        # The runner's own folder: it writes its logs and a copy of the
        # resolved config named as ours.
        metrics = run_split(config, checkpoint, osp.join(folder, 'run'))
        # TolerantAccMetric's count of unreadable videos left out.
        skipped = int(metrics.get('acc/skipped_videos', 0))
        info = protocols.describe(split, args.lists)
        rows.append({
            'split': split.name,
            'views': 'x'.join(map(str, split.views)) if split.views else None,
            'classes': info['classes'],
            'test_videos': info['test_videos'],
            'videos_tested': len(found) - skipped,
            'config': config,
            'checkpoint': checkpoint,
            **{k: float(v) for k, v in metrics.items()
               if k in ('acc/top1', 'acc/top5')},
            'skipped_videos': skipped,
        })
    models = args.model if len(args.model) > 1 else args.model[0]
    report = dict(protocol=args.protocol, dataset=args.dataset,
                  model=models, data_root=args.data_root, splits=rows)
    for path in write_report(osp.join(work_dir, 'report'), report):
        print(f'Wrote {path}', file=sys.stderr)
    with open(osp.join(work_dir, 'report.md'), encoding='utf-8') as f:
        print(f.read(), end='')
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the command line and run; errors become one line and exit 2.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` by default.

    Returns:
        int: The exit status.
    """
    parser = build_parser()
    if argv is None:
        argv = sys.argv[1:]
    args = parser.parse_args(argv)
    if args.list:
        # Only the standard library: no torch for a listing.
        return list_protocols(args.json, args.lists)
    return _cli.run_cli(parser, run, argv, check_args)


if __name__ == '__main__':
    sys.exit(main())
