"""Derive the natural-language label maps of UCF101 and HMDB51.

CLIP reads class names as text: "apply eye makeup" matches far better
than "ApplyEyeMakeup". Line ``i`` of ``configs/label_map_<dataset>.txt``
is the text of class ``i`` of ``configs/classind_<dataset>.txt`` (the
official ``classInd.txt``, MMAction2's order) by one rule (UCF101: words
of CamelCase, lower case; HMDB51: spaces for underscores) and a short
table of fixes where the rule gives wrong words.

Examples:
    python tools/make_label_maps.py          # (re)write both label maps
    python tools/make_label_maps.py --check  # exit 1 if they are stale
    # compare the stored official names with your copy of the dataset:
    python tools/make_label_maps.py \\
        --classind ucf101=data/ucf101/annotations/classInd.txt \\
        --classind hmdb51=data/hmdb51/annotations/classInd.txt
"""
import argparse
import os.path as osp
import pathlib
import re
import sys
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

from light_imports import load_light  # noqa: E402


safe_io = load_light('models.utils.safe_io')

#: Names where the CamelCase split gives the wrong words.
UCF101_FIXES: Dict[str, str] = {
    # One English word written with two capitals.
    'BreastStroke': 'breaststroke',
    'SkateBoarding': 'skateboarding',
    'SkyDiving': 'skydiving',
    # Two English words written with one capital; "push ups" as the
    # rule spells PushUps, so that the three push-up classes read alike.
    'Shotput': 'shot put',
    'HandstandPushups': 'handstand push ups',
    'WallPushups': 'wall push ups',
    # The exercise is named in the plural.
    'JumpingJack': 'jumping jacks',
    # A skijet is a jet ski; the videos show people riding one.
    'Skijet': 'jet skiing',
}

#: Names where replacing underscores gives the wrong words.
HMDB51_FIXES: Dict[str, str] = {
    # Two English words written as one.
    'pullup': 'pull up',
    'pushup': 'push up',
    'situp': 'sit up',
    # The folder name drops the preposition.
    'fall_floor': 'fall on the floor',
    # What is swung is the bat, not a baseball.
    'swing_baseball': 'swing baseball bat',
    # "sword" alone names no action; the class is sword fighting (drawing
    # a sword and sword exercise are classes of their own).
    'sword': 'sword fight',
}


def camel_case_words(name: str) -> str:
    """A CamelCase class name in lower-case words: ``'ApplyEyeMakeup'``
    -> ``'apply eye makeup'``."""
    return re.sub(r'(?<=[a-z0-9])(?=[A-Z])', ' ', name).lower()


def underscore_words(name: str) -> str:
    """A class name with spaces for underscores: ``'brush_hair'`` ->
    ``'brush hair'``."""
    return name.replace('_', ' ')


#: Per dataset: the official names, the label map, the rule and its fixes.
DATASETS: Dict[str, dict] = {
    'ucf101': dict(classind='configs/classind_ucf101.txt',
                   label_map='configs/label_map_ucf101.txt',
                   rule=camel_case_words, fixes=UCF101_FIXES),
    'hmdb51': dict(classind='configs/classind_hmdb51.txt',
                   label_map='configs/label_map_hmdb51.txt',
                   rule=underscore_words, fixes=HMDB51_FIXES),
}


def read_classind(path: str) -> List[str]:
    """The class names of a ``classInd.txt`` (``<1, 2, ...> <name>``)."""
    names = []
    with open(path, encoding='utf-8') as f:
        # The official UCF101 file has CRLF line ends.
        lines = [line.strip() for line in f.read().splitlines()]
    for number, line in enumerate((line for line in lines if line), 1):
        parts = line.split()
        if len(parts) != 2 or parts[0] != str(number):
            raise ValueError(f'{path}: expected "{number} <class name>", '
                             f'got {line!r}')
        names.append(parts[1])
    return names


def derive_labels(dataset: str) -> List[str]:
    """The labels of ``dataset``, from its stored official names."""
    spec = DATASETS[dataset]
    official = read_classind(osp.join(ROOT, spec['classind']))
    # A fix for a name that is not in the list would silently do nothing.
    stale = sorted(set(spec['fixes']) - set(official))
    if stale:
        raise ValueError(f'{dataset} fixes name unknown classes: {stale}')
    labels = [spec['fixes'].get(name) or spec['rule'](name)
              for name in official]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f'{dataset} labels repeat: {repeated}')
    return labels


def compare_classind(dataset: str, path: str) -> List[str]:
    """One line per difference between the stored official names of
    ``dataset`` and the ``classInd.txt`` at ``path``."""
    stored = read_classind(osp.join(ROOT, DATASETS[dataset]['classind']))
    theirs = read_classind(path)
    lines = [f'class {i}: stored {a!r}, {path} {b!r}'
             for i, (a, b) in enumerate(zip(stored, theirs), 1) if a != b]
    if len(stored) != len(theirs):
        lines.append(f'{len(stored)} classes stored, {len(theirs)} in {path}')
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write, check or compare the label maps; 0 when all agree."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--check', action='store_true',
        help='write nothing; exit 1 if a label map differs from a fresh '
        'derivation')
    parser.add_argument(
        '--classind', action='append', default=[], metavar='DATASET=PATH',
        help='compare the stored official names with the classInd.txt of '
        'your copy of the dataset; write nothing')
    args = parser.parse_args(argv)
    status = 0
    if args.classind:
        for item in args.classind:
            dataset, _, path = item.partition('=')
            if dataset not in DATASETS or not path:
                parser.error(f'--classind takes DATASET=PATH with DATASET in '
                             f'{sorted(DATASETS)}, got {item!r}')
            if not osp.isfile(path):
                parser.error(f'--classind {item!r}: no such file {path!r}')
            differences = compare_classind(dataset, path)
            for line in differences:
                print(f'{dataset}: {line}')
            if differences:
                status = 1
            else:
                print(f'{dataset}: {path} agrees with '
                      f'{DATASETS[dataset]["classind"]}')
        return status
    for dataset, spec in DATASETS.items():
        labels = derive_labels(dataset)
        path = osp.join(ROOT, spec['label_map'])
        if args.check:
            if not osp.isfile(path) or pathlib.Path(path).read_text(
                    encoding='utf-8').splitlines() != labels:
                print(f'{spec["label_map"]} is stale: run '
                      'python tools/make_label_maps.py')
                status = 1
            continue
        # Whole or not at all: configs read this file.
        with safe_io.atomic_write(path, 'w', encoding='utf-8') as f:
            f.write('\n'.join(labels) + '\n')
        print(f'wrote {spec["label_map"]} ({len(labels)} classes)')
    return status


if __name__ == '__main__':
    sys.exit(main())
