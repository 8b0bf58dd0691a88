"""The field's evaluation protocols as data: the test list, classes and
training list of every split, seed, shot count or view setting, all read
from the shipped lists (``data/protocols/``), and their videos found in a
user's copy of a dataset. Standard library only (checked before torch).
"""
import csv
import glob
import os
import os.path as osp
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..apis.video_files import VIDEO_EXTENSIONS

PROJECT_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROTOCOL_DIR = osp.join(PROJECT_ROOT, 'data', 'protocols')

_VIFI = 'vificlip/datasets_splits'
_LABELS = 'vificlip/labels'

#: ViFi-CLIP's HMDB51 label files swap these names against the videos its
#: lists give them: ``{index: (name in the file, the videos' folder)}``,
#: applied to a file that holds exactly those names.
LABEL_CORRECTIONS: Dict[str, Dict[int, Tuple[str, str]]] = {
    f'{_LABELS}/hmdb_51_labels.csv': {
        20: ('kick ball', 'kick'), 21: ('kick', 'kick ball'),
        44: ('sword exercise', 'sword'), 45: ('sword', 'sword exercise')},
    f'{_LABELS}/hmdb_51_base_labels.csv': {
        19: ('sword exercise', 'sword'), 20: ('sword', 'sword exercise')},
    f'{_LABELS}/hmdb_51_novel_labels.csv': {
        20: ('kick ball', 'kick'), 21: ('kick', 'kick ball')},
}

#: Protocols and the datasets each covers.
PROTOCOLS: Dict[str, Tuple[str, ...]] = {
    'zero-shot': ('ucf101', 'hmdb51', 'k600'),
    'base-to-novel': ('k400', 'hmdb51', 'ucf101', 'ssv2'),
    'few-shot': ('hmdb51', 'ucf101', 'ssv2'),
    'supervised': ('k400', ),
}

#: Temporal clips x spatial crops of the supervised protocol's views.
VIEWS: Dict[str, Tuple[int, int]] = {
    '1x1': (1, 1), '4x3': (4, 3), '10x3': (10, 3)}

#: ViFi-CLIP's lists of a dataset: ``(folder, stem of the base and novel
#: label files, label file, test list of few-shot and supervised)``.
_VIFI_DATASETS = {
    'k400': ('k400_splits', 'kinetics_400', 'kinetics_400_labels.csv',
             'val.txt'),
    'hmdb51': ('hmdb_splits', 'hmdb_51', 'hmdb_51_labels.csv', 'val1.txt'),
    'ucf101': ('ucf_splits', 'ucf_101', 'ucf_101_labels.csv', 'val1.txt'),
    'ssv2': ('ssv2_splits', 'ssv2_174', 'ssv2_labels.csv', 'validation.txt')}


class ProtocolError(ValueError):
    """An unknown protocol, dataset or split, or a bad list file."""


@dataclass(frozen=True)
class Split:
    """One evaluation of a protocol: a test list over its own classes.

    Attributes:
        name (str): ``'split1'``, ``'seed1-novel'``, ``'K=2'``, ``'4x3'``.
        test_list (str): Relative to :data:`PROTOCOL_DIR`.
        label_file (str): The class list the test list's labels index.
        list_format (str): ``'vificlip'`` (``<file> <label>``),
            ``'ucf101'`` (the official ``<Class>/<file>``, classes from
            ``classInd.txt``) or ``'hmdb51'`` (the official per-class
            files' glob pattern, ``<file> <1|2|0>`` for train, test or
            neither; classes sorted, as MMAction2 numbers them).
        views (tuple, optional): ``(clips, crops)`` of a multi-view test.
        train_label_file (str, optional): The training list's classes,
            where not ``label_file`` (a novel test's base classes).
        training_run (str, optional): The training run the split tests
            (``'seed1'``, ``'K=2'``); None: one model tests every split.
    """
    protocol: str
    dataset: str
    name: str
    test_list: str
    label_file: str
    list_format: str = 'vificlip'
    train_list: Optional[str] = None
    views: Optional[Tuple[int, int]] = None
    train_label_file: Optional[str] = None
    training_run: Optional[str] = None


def _registry() -> List[Split]:
    splits = [Split('zero-shot', 'ucf101', f'split{n}',
                    f'ucf101/testlist0{n}.txt', 'ucf101/classInd.txt',
                    list_format='ucf101') for n in (1, 2, 3)]
    splits += [Split('zero-shot', 'hmdb51', f'split{n}',
                     f'hmdb51/*_test_split{n}.txt',
                     f'hmdb51/*_test_split{n}.txt', list_format='hmdb51')
               for n in (1, 2, 3)]
    splits += [Split('zero-shot', 'k600', f'split{n}',
                     f'{_VIFI}/k600_splits/ZS_split{n}_K600_eval.txt',
                     f'{_LABELS}/ZS_split{n}_K600.csv') for n in (1, 2, 3)]
    for dataset in PROTOCOLS['base-to-novel']:
        folder, stem, *_ = _VIFI_DATASETS[dataset]
        splits += [Split(
            'base-to-novel', dataset, f'seed{seed}-{part}',
            f'{_VIFI}/base2novel_splits/{folder}/{part}_val.txt',
            f'{_LABELS}/{stem}_{part}_labels.csv',
            train_list=f'{_VIFI}/base2novel_splits/{folder}/'
            f'fs_base_s{seed}_train.txt',
            train_label_file=f'{_LABELS}/{stem}_base_labels.csv',
            training_run=f'seed{seed}')
            for seed in (1, 2, 3) for part in ('base', 'novel')]
    for dataset in PROTOCOLS['few-shot']:
        folder, _, labels, test = _VIFI_DATASETS[dataset]
        splits += [Split(
            'few-shot', dataset, f'K={shots}', f'{_VIFI}/{folder}/{test}',
            f'{_LABELS}/{labels}', training_run=f'K={shots}',
            train_list=f'{_VIFI}/{folder}/train1_few_shot_{shots}.txt')
            for shots in (2, 4, 8, 16)]
    folder, _, labels, test = _VIFI_DATASETS['k400']
    splits += [Split('supervised', 'k400', name, f'{_VIFI}/{folder}/{test}',
                     f'{_LABELS}/{labels}', views=views)
               for name, views in VIEWS.items()]
    return splits


#: Every split of every protocol, in a fixed order.
SPLITS: Tuple[Split, ...] = tuple(_registry())


def find_splits(protocol: str, dataset: Optional[str] = None) -> List[Split]:
    """The splits of ``protocol`` on ``dataset`` (all by default);
    :class:`ProtocolError` for an unknown protocol or dataset."""
    if protocol not in PROTOCOLS:
        raise ProtocolError(f'Unknown protocol {protocol!r}: choose one of '
                            f'{", ".join(PROTOCOLS)}')
    if dataset is not None and dataset not in PROTOCOLS[protocol]:
        raise ProtocolError(
            f'The {protocol} protocol has no dataset {dataset!r}: choose '
            f'one of {", ".join(PROTOCOLS[protocol])}')
    return [s for s in SPLITS if s.protocol == protocol
            and (dataset is None or s.dataset == dataset)]


def shipped_path(relative: str, root: str = PROTOCOL_DIR) -> str:
    """The path of a list below ``root``; :class:`ProtocolError` if absent."""
    path = osp.join(root, relative)
    if '*' in relative and glob.glob(path):
        return path
    if not osp.isfile(path):
        raise ProtocolError(
            f'Protocol list {path} is missing: the lists ship with the '
            'project under data/protocols/ (restore them with git checkout '
            '-- data/protocols)')
    return path


def _lines(path: str) -> List[str]:
    return [line.strip() for line in
            Path(path).read_text(encoding='utf-8').splitlines()
            if line.strip()]


def read_class_names(relative: str, root: str = PROTOCOL_DIR) -> List[str]:
    """The names of label 0, 1, ... of a label file below ``root``
    (``*.csv``: ``id,name`` with a header; ``classInd.txt``: ``<1-based
    id> <name>``), :data:`LABEL_CORRECTIONS` applied;
    :class:`ProtocolError` for a missing file or ids out of order."""
    path = shipped_path(relative, root)
    if '*' in relative:  # the official HMDB51 files: one per class
        return _hmdb51_classes(path)
    if relative.endswith('.csv'):
        rows = list(csv.reader(_lines(path)))
        if not rows or [c.strip() for c in rows[0]] != ['id', 'name']:
            raise ProtocolError(f'{path}: the first line must be "id,name"')
        ids = [row[0].strip() for row in rows[1:]]
        names = [','.join(row[1:]).strip() for row in rows[1:]]
        first = 0
    else:
        pairs = [line.split(maxsplit=1) for line in _lines(path)]
        ids = [p[0] for p in pairs]
        names = [p[1].strip() if len(p) > 1 else '' for p in pairs]
        first = 1
    expected = [str(i) for i in range(first, first + len(ids))]
    if ids != expected or '' in names:
        raise ProtocolError(f'{path}: class ids must run {first}, '
                            f'{first + 1}, ... in order, each with a name')
    fixes = LABEL_CORRECTIONS.get(relative, {})
    if all(index < len(names) and names[index] == upstream
           for index, (upstream, _) in fixes.items()):
        for index, (_, name) in fixes.items():
            names[index] = name
    return names


def read_test_list(split: Split, root: str = PROTOCOL_DIR,
                   train: bool = False) -> List[Tuple[str, int]]:
    """The ``(video as the list names it, label)`` entries of a split's
    test list (training list with ``train``); :class:`ProtocolError` for a
    missing file, a malformed line or a label outside the classes."""
    if split.list_format == 'hmdb51':  # one file per class holds both
        return _hmdb51_entries(shipped_path(split.test_list, root),
                               '1' if train else '2')
    relative = split.train_list if train else split.test_list
    if relative is None:
        raise ProtocolError(f'{split.protocol} {split.dataset} '
                            f'{split.name} has no training list')
    path = shipped_path(relative, root)
    label_file = (train and split.train_label_file) or split.label_file
    names = read_class_names(label_file, root)
    entries = []
    if split.list_format == 'ucf101':
        index = {name: i for i, name in enumerate(names)}
        for line in _lines(path):
            video = line.split()[0]
            if video.split('/')[0] not in index:
                raise ProtocolError(f'{path}: {video!r} is in no class of '
                                    f'{label_file}')
            entries.append((video, index[video.split('/')[0]]))
        return entries
    for number, line in enumerate(_lines(path), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise ProtocolError(f'{path} line {number}: expected "<video> '
                                f'<label>", got {line!r}')
        label = int(parts[1])
        if label >= len(names):
            raise ProtocolError(
                f'{path} line {number}: label {label} is not a class of '
                f'{label_file} ({len(names)} classes)')
        entries.append((parts[0], label))
    return entries


def _hmdb51_classes(pattern: str) -> List[str]:
    """The classes of the official HMDB51 files of a split, sorted by name
    (climb before climb_stairs, unlike their file names)."""
    prefix, suffix = osp.basename(pattern).split('*')
    return sorted(osp.basename(f)[len(prefix):-len(suffix)]
                  for f in glob.glob(pattern))


def _hmdb51_entries(pattern: str, wanted: str) -> List[Tuple[str, int]]:
    """The train (``wanted`` 1) or test (2) ``(<class>/<file>, label)``."""
    prefix, suffix = osp.basename(pattern).split('*')
    entries = []
    for label, name in enumerate(_hmdb51_classes(pattern)):
        path = osp.join(osp.dirname(pattern), f'{prefix}{name}{suffix}')
        for number, line in enumerate(_lines(path), 1):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ('0', '1', '2'):
                raise ProtocolError(f'{path} line {number}: expected '
                                    f'"<video> <0|1|2>", got {line!r}')
            if parts[1] == wanted:
                entries.append((f'{name}/{parts[0]}', label))
    return entries


def describe(split: Split, root: str = PROTOCOL_DIR) -> dict:
    """A split's fields with ``classes``, ``test_videos`` and
    ``train_videos`` (None without a training list)."""
    info = asdict(split)
    info['views'] = 'x'.join(map(str, split.views)) if split.views else None
    info['classes'] = len(read_class_names(split.label_file, root))
    info['test_videos'] = len(read_test_list(split, root))
    info['train_videos'] = (len(read_test_list(split, root, train=True))
                            if split.train_list else None)
    return info


def index_videos(video_root: str) -> Dict[str, List[str]]:
    """The videos below ``video_root``, in any layout: ``file name ->
    [relative paths]``, and ``'stem:' + stem -> [...]`` (a copy in another
    container still matches)."""
    found: Dict[str, List[str]] = {}
    for folder, _, files in os.walk(video_root, followlinks=True):
        for name in files:
            if name.lower().endswith(VIDEO_EXTENSIONS):
                relative = osp.relpath(osp.join(folder, name), video_root)
                for key in (name, 'stem:' + osp.splitext(name)[0]):
                    found.setdefault(key, []).append(relative)
    return found


def resolve_videos(entries: Sequence[Tuple[str, int]],
                   videos: Dict[str, List[str]]
                   ) -> Tuple[List[Tuple[str, int]], List[str]]:
    """``([(relative path, label)], [missing entries])`` of
    :func:`read_test_list` entries in :func:`index_videos`: by file name
    in any folder, else by stem; a name found twice is refused."""
    found, missing = [], []
    for video, label in entries:
        name = video.replace('\\', '/').split('/')[-1]
        candidates = videos.get(name) or videos.get(
            'stem:' + osp.splitext(name)[0], [])
        if len(candidates) > 1:
            # The list's own folder (train/, <Class>/) may tell them apart.
            exact = [c for c in candidates
                     if c.replace(os.sep, '/').endswith(video)]
            if len(exact) != 1:
                raise ProtocolError(
                    f'{video} matches {len(candidates)} files: '
                    f'{", ".join(sorted(candidates)[:3])}; keep one copy')
            candidates = exact
        if candidates:
            found.append((candidates[0].replace(os.sep, '/'), label))
        else:
            missing.append(video)
    return found, missing


def dataloader(ann_file: str, video_root: str,
               workers: Optional[int] = None) -> dict:
    """The ``*_dataloader`` override of a written config: the list
    ``ann_file`` (paths relative to ``video_root``), and ``workers``."""
    loader: Dict[str, object] = dict(dataset=dict(
        ann_file=osp.abspath(ann_file),
        data_prefix=dict(video=osp.abspath(video_root))))
    if workers is not None:
        loader.update(num_workers=workers, persistent_workers=workers > 0)
    return loader


def build_runner(cfg):
    """The runner of ``cfg``, built as MMAction2's tools/train.py does."""
    from mmaction.registry import RUNNERS
    from mmengine.runner import Runner
    return (Runner.from_cfg(cfg) if 'runner_type' not in cfg else
            RUNNERS.build(cfg))


def write_lines(path: str, lines: Iterable[str]) -> None:
    """Write ``lines`` to a UTF-8 text file."""
    Path(path).write_text(''.join(f'{line}\n' for line in lines),
                          encoding='utf-8')


def write_annotations(path: str, rows: Sequence[Tuple[str, int]]) -> None:
    """Write a ``VideoDataset`` annotation list of ``(path, label)``."""
    write_lines(path, (f'{video} {label}' for video, label in rows))


def class_texts(split: Split, root: str = PROTOCOL_DIR,
                train: bool = False) -> List[str]:
    """The text of label 0, 1, ... of a split's test list (training list
    with ``train``) as the text encoder reads it: UCF101's CamelCase names
    as the words of ``configs/label_map_ucf101.txt``, HMDB51's folders
    with spaces; other label files already hold words."""
    label_file = (train and split.train_label_file) or split.label_file
    names = read_class_names(label_file, root)
    if split.list_format == 'hmdb51':  # class folders: brush_hair
        return [name.replace('_', ' ') for name in names]
    if split.dataset != 'ucf101':
        return names
    official = [line.split()[1] for line in _lines(
        osp.join(PROJECT_ROOT, 'configs', 'classind_ucf101.txt'))]
    words = _lines(osp.join(PROJECT_ROOT, 'configs', 'label_map_ucf101.txt'))
    text = dict(zip(official, words))
    for name in names:
        if name not in text:
            raise ProtocolError(f'{label_file}: {name!r} is not a UCF101 '
                                'class of configs/classind_ucf101.txt')
    return [text[n] for n in names]


def plan(splits: Sequence[Split], root: str, video_root: str, work_dir: str,
         train: bool = False
         ) -> Tuple[List[Tuple[Split, List[Tuple[str, int]]]],
                    Dict[str, Tuple[Split, List[Tuple[str, int]]]]]:
    """The videos below ``video_root`` of each split's test list and,
    with ``train``, of each training run's list.

    Returns:
        tuple: ``([(split, [(path relative to video_root, label)])], {run:
        (its first split, [(path, label)])})``; :class:`ProtocolError`
        when the copy lacks any listed video (a result on part of a split
        is not the protocol's), the missing ones written to
        ``<work_dir>/missing_<split>.txt`` (``missing_<run>_train.txt``).
    """
    runs: Dict[str, Split] = {}
    for split in splits if train else ():
        runs.setdefault(split.training_run, split)
    lists = [(split.name, f'missing_{split.name}.txt',
              read_test_list(split, root)) for split in splits]
    lists += [(f'the {run} training list', f'missing_{run}_train.txt',
               read_test_list(split, root, train=True))
              for run, split in runs.items()]
    videos = index_videos(video_root)
    if not videos:
        raise ProtocolError(f'data root {video_root!r} holds no videos '
                            '(.avi, .mp4, .webm ...)')
    founds, lacking = [], []
    for name, missing_file, entries in lists:
        found, missing = resolve_videos(entries, videos)
        founds.append(found)
        if missing:
            os.makedirs(work_dir, exist_ok=True)
            write_lines(osp.join(work_dir, missing_file), missing)
            lacking.append(f'{len(missing)} of the {len(entries)} videos of '
                           f'{name} (e.g. {missing[0]}; all in '
                           f'{osp.join(work_dir, missing_file)})')
    if lacking:
        raise ProtocolError(f'{video_root} lacks {"; ".join(lacking)}. A '
                            "result on part of a split is not the "
                            "protocol's")
    training = {run: (split, found) for (run, split), found in zip(
        runs.items(), founds[len(splits):])}
    return list(zip(splits, founds)), training
