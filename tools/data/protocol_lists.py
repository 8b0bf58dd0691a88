"""Write MMAction2 annotation lists of a protocol for your copy of a
dataset, and say which listed videos it lacks.

Examples (from the project root)::

    python tools/data/protocol_lists.py zero-shot --dataset ucf101 \\
        --data-root data/ucf101/videos --out-dir data/ucf101/protocol_lists
    python tools/data/protocol_lists.py base-to-novel --dataset k400 \\
        --data-root data/kinetics400 --out-dir my_lists/

For each split it writes ``<split>_test.txt`` (and ``<split>_train.txt``
where the protocol trains) as ``<path relative to --data-root> <label>``
lines, for MMAction2's ``VideoDataset`` with ``data_prefix=--data-root``,
and ``<split>_labels.txt`` (the text of label 0, 1, ... one a line, for
``model.labels_or_label_file``), with ``<split>_train_labels.txt`` for
the training list (a novel split trains on the base classes). Videos are
found by file name anywhere below ``--data-root`` (or by name without
extension, for a re-encoded copy). Listed videos the copy lacks go to
``<split>_missing.txt``, and the exit status is then 1. Exit status 2 for
a wrong argument; existing files are never written over.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional, Sequence

# tools/, for light_imports (this script sits one folder below it).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from light_imports import load_light  # noqa: E402

protocols = load_light('models.evaluation.protocols')


def build_parser() -> argparse.ArgumentParser:
    """The command line of this tool."""
    parser = load_light('models.apis.cli').tool_parser(__doc__)
    parser.add_argument('protocol', choices=list(protocols.PROTOCOLS),
                        help='the protocol whose lists to write')
    parser.add_argument('--dataset', required=True,
                        help='one of the protocol\'s datasets (--list of '
                        'tools/eval_protocol.py shows them)')
    parser.add_argument('--data-root', required=True,
                        help="folder holding the dataset's videos")
    parser.add_argument('--out-dir', required=True,
                        help='where the lists go (created)')
    parser.add_argument('--lists', default=protocols.PROTOCOL_DIR,
                        help='folder of split and class lists laid out as '
                        'data/protocols/ (default: the shipped ones)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write the lists for ``argv`` (default ``sys.argv[1:]``); returns
    the exit status of the module docstring."""
    args = build_parser().parse_args(argv)
    try:
        splits = protocols.find_splits(args.protocol, args.dataset)
        if not osp.isdir(args.data_root):
            raise protocols.ProtocolError(
                f'--data-root {args.data_root!r} is not a folder')
        names = [osp.join(args.out_dir,
                          f'{split.name.replace("=", "")}_{kind}.txt')
                 for split in splits for kind in (
                     'test', 'train', 'labels', 'train_labels', 'missing')]
        taken = [name for name in names if osp.exists(name)]
        if taken:
            raise protocols.ProtocolError(
                f'{taken[0]} exists; choose another --out-dir (files are '
                'never written over)')
        videos = protocols.index_videos(args.data_root)
        # Each list's labels index its own classes: a novel split's
        # training list numbers the base classes.
        plan = [(split, kind, protocols.class_texts(split, args.lists, train),
                 *protocols.resolve_videos(protocols.read_test_list(
                     split, args.lists, train), videos))
                for split in splits for kind, train in (
                    ('test', False), ('train', True))
                if not train or split.train_list]
    except (protocols.ProtocolError, OSError) as error:
        print(f'protocol_lists.py: error: {error}', file=sys.stderr)
        return 2
    os.makedirs(args.out_dir, exist_ok=True)
    lacking = {}
    for split, kind, texts, found, missing in plan:
        stem = osp.join(args.out_dir, split.name.replace('=', ''))
        protocols.write_lines(
            f'{stem}_{"labels" if kind == "test" else "train_labels"}.txt',
            texts)
        protocols.write_annotations(f'{stem}_{kind}.txt', found)
        lacking.setdefault(split.name, []).extend(missing)
        print(f'{split.name} {kind}: {len(found)} of '
              f'{len(found) + len(missing)} videos found -> {stem}_{kind}.txt')
    for name, missing in lacking.items():
        stem = osp.join(args.out_dir, name.replace('=', ''))
        if missing:
            protocols.write_lines(f'{stem}_missing.txt', missing)
            print(f'{name}: {len(missing)} listed videos are not below '
                  f'{args.data_root} (e.g. {missing[0]}); all in '
                  f'{stem}_missing.txt', file=sys.stderr)
    return 1 if any(lacking.values()) else 0


if __name__ == '__main__':
    sys.exit(main())
