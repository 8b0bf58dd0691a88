"""The field's evaluation protocols as data: which list of test videos,
which classes, which training list, for every split, seed, shot count or
view setting.

Every number of classes and videos is read from the shipped list files
(``data/protocols/``, see its README for their sources), never typed in.
The module also turns a protocol's list into an MMAction2 annotation list
(``<relative path> <label>``) for a user's local copy of the dataset,
naming the videos the copy lacks.

This module imports only the standard library, so that the tools can list
the protocols and refuse a wrong data root before torch is imported.
"""
import csv
import glob
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

#: The project root; the shipped lists live below it.
PROJECT_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: Where the shipped split and class lists are.
PROTOCOL_DIR = osp.join(PROJECT_ROOT, 'data', 'protocols')

_VIFI = 'vificlip/datasets_splits'
_LABELS = 'vificlip/labels'

#: ViFi-CLIP's HMDB51 label files name these classes the other way round
#: from the videos its lists give them (the lists put the ``kick`` folder's
#: videos under 20, ``kick_ball``'s under 21): ``{index: (name in the file,
#: name of the videos' folder)}``, applied to a file that holds exactly
#: those names. tests/test_protocols.py checks every UCF101 and HMDB51 list
#: against the class written in its video names.
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

_FEW_SHOT_TEST = {'hmdb51': 'hmdb_splits/val1.txt',
                  'ucf101': 'ucf_splits/val1.txt',
                  'ssv2': 'ssv2_splits/validation.txt'}
_FULL_LABELS = {'hmdb51': 'hmdb_51_labels.csv',
                'ucf101': 'ucf_101_labels.csv',
                'ssv2': 'ssv2_labels.csv',
                'k400': 'kinetics_400_labels.csv'}
_B2N = {'k400': ('k400_splits', 'kinetics_400'),
        'hmdb51': ('hmdb_splits', 'hmdb_51'),
        'ucf101': ('ucf_splits', 'ucf_101'),
        'ssv2': ('ssv2_splits', 'ssv2_174')}
_VIFI_DIR = {'hmdb51': 'hmdb_splits', 'ucf101': 'ucf_splits',
             'ssv2': 'ssv2_splits'}


class ProtocolError(ValueError):
    """A protocol, dataset or split that does not exist, or a list file
    that is missing or malformed."""


@dataclass(frozen=True)
class Split:
    """One evaluation of a protocol: a test list over its own classes.

    Attributes:
        protocol (str): ``'zero-shot'``, ``'base-to-novel'``, ...
        dataset (str): ``'ucf101'``, ``'hmdb51'``, ``'k600'``, ...
        name (str): The split, seed or setting: ``'split1'``,
            ``'seed1-novel'``, ``'K=2'``, ``'4x3'``.
        test_list (str): The test list, relative to :data:`PROTOCOL_DIR`.
        label_file (str): The class list the test list's labels index.
        list_format (str): ``'vificlip'`` (``<file> <label>`` a line),
            ``'ucf101'`` (the official ``<Class>/<file>`` a line, labels
            from ``classInd.txt``) or ``'hmdb51'`` (the official
            ``<class>_test_split<N>.txt`` files, ``<file> <1|2|0>`` a line
            for train, test or neither; labels in the sorted order of the
            classes, as MMAction2 numbers them). For ``'hmdb51'``,
            ``test_list`` and ``label_file`` are the files' glob pattern.
        train_list (str, optional): The training list, where the protocol
            trains.
        views (tuple, optional): ``(clips, crops)`` of a multi-view test.
        train_label_file (str, optional): The class list the training
            list's labels index, where not ``label_file`` (the base classes
            of a base-to-novel novel test).
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
        folder, labels = _B2N[dataset]
        for seed in (1, 2, 3):
            for part in ('base', 'novel'):
                splits.append(Split(
                    'base-to-novel', dataset, f'seed{seed}-{part}',
                    f'{_VIFI}/base2novel_splits/{folder}/{part}_val.txt',
                    f'{_LABELS}/{labels}_{part}_labels.csv',
                    train_list=f'{_VIFI}/base2novel_splits/{folder}/'
                    f'fs_base_s{seed}_train.txt',
                    train_label_file=f'{_LABELS}/{labels}_base_labels.csv'))
    for dataset in PROTOCOLS['few-shot']:
        for shots in (2, 4, 8, 16):
            splits.append(Split(
                'few-shot', dataset, f'K={shots}',
                f'{_VIFI}/{_FEW_SHOT_TEST[dataset]}',
                f'{_LABELS}/{_FULL_LABELS[dataset]}',
                train_list=f'{_VIFI}/{_VIFI_DIR[dataset]}/'
                f'train1_few_shot_{shots}.txt'))
    for name, views in VIEWS.items():
        splits.append(Split('supervised', 'k400', name,
                            f'{_VIFI}/k400_splits/val.txt',
                            f'{_LABELS}/kinetics_400_labels.csv',
                            views=views))
    return splits


#: Every split of every protocol, in a fixed order.
SPLITS: Tuple[Split, ...] = tuple(_registry())


def find_splits(protocol: str, dataset: Optional[str] = None) -> List[Split]:
    """The splits, in order, of a ``protocol`` (a key of
    :data:`PROTOCOLS`) on one ``dataset`` (all by default);
    :class:`ProtocolError` for an unknown protocol or a dataset it does not
    cover."""
    if protocol not in PROTOCOLS:
        raise ProtocolError(f'Unknown protocol {protocol!r}: choose one of '
                            f'{", ".join(PROTOCOLS)}')
    if dataset is not None and dataset not in PROTOCOLS[protocol]:
        raise ProtocolError(
            f'The {protocol} protocol has no dataset {dataset!r}: choose '
            f'one of {", ".join(PROTOCOLS[protocol])}')
    return [s for s in SPLITS if s.protocol == protocol
            and (dataset is None or s.dataset == dataset)]


def training_run(split: Split) -> Optional[str]:
    """The training run a split tests (``'seed1'`` ..., ``'K=2'`` ...),
    where the protocol trains one per seed or shot count; None for a
    protocol that tests one model on every split."""
    if split.protocol == 'base-to-novel':
        return split.name.split('-')[0]
    if split.protocol == 'few-shot':
        return split.name
    return None


def shipped_path(relative: str, root: str = PROTOCOL_DIR) -> str:
    """The path of a shipped list below ``root``; :class:`ProtocolError`
    when it is not there."""
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
    with open(path, encoding='utf-8', newline='') as f:
        # The official UCF101 files and some of ViFi-CLIP's end lines with
        # CRLF; blank lines (a trailing newline) carry nothing.
        return [line.strip() for line in f.read().splitlines()
                if line.strip()]


def read_class_names(relative: str, root: str = PROTOCOL_DIR) -> List[str]:
    """The names of label 0, 1, ... of a label file below ``root``
    (``*.csv``: ViFi-CLIP's ``id,name`` with a header; a ``classInd.txt``:
    ``<1-based id> <name>``), the corrections of :data:`LABEL_CORRECTIONS`
    applied; :class:`ProtocolError` for a missing file, or ids that are
    not 0, 1, 2 ... in order (1, 2, 3 ... for ``classInd.txt``)."""
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
    """The ``(video as the list names it: a file name or
    <folder>/<file>, label index)`` entries of a split's test list (its
    training list with ``train``), lists in ``root``; :class:`ProtocolError`
    for a missing file, a malformed line, or a label outside the split's
    classes."""
    relative = split.train_list if train else split.test_list
    if split.list_format == 'hmdb51':  # one file per class holds both
        relative = split.test_list
    if relative is None:
        raise ProtocolError(f'{split.protocol} {split.dataset} '
                            f'{split.name} has no training list')
    path = shipped_path(relative, root)
    if split.list_format == 'hmdb51':
        return _hmdb51_entries(path, '1' if train else '2')
    label_file = (split.train_label_file or split.label_file
                  ) if train else split.label_file
    names = read_class_names(label_file, root)
    num_classes = len(names)
    entries = []
    if split.list_format == 'ucf101':
        index = {name: i for i, name in enumerate(names)}
        for line in _lines(path):
            video = line.split()[0]
            folder = video.split('/')[0]
            if folder not in index:
                raise ProtocolError(f'{path}: {video!r} is in no class of '
                                    f'{label_file}')
            entries.append((video, index[folder]))
        return entries
    for number, line in enumerate(_lines(path), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise ProtocolError(f'{path} line {number}: expected "<video> '
                                f'<label>", got {line!r}')
        label = int(parts[1])
        if label >= num_classes:
            raise ProtocolError(
                f'{path} line {number}: label {label} is not a class of '
                f'{label_file} ({num_classes} classes)')
        entries.append((parts[0], label))
    return entries


def _hmdb51_classes(pattern: str) -> List[str]:
    """The class names of the official HMDB51 files of one split (one file
    per class), sorted by name: climb before climb_stairs (their file
    names sort the other way round)."""
    prefix, suffix = osp.basename(pattern).split('*')
    return sorted(osp.basename(f)[len(prefix):-len(suffix)]
                  for f in glob.glob(pattern))


def _hmdb51_entries(pattern: str, wanted: str) -> List[Tuple[str, int]]:
    """The train (``wanted`` 1) or test (2) videos of the official HMDB51
    files of one split, as ``(<class>/<file>, label)``."""
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
    """A split's fields with its counts, read from the lists in ``root``:
    ``classes``, ``test_videos``, ``train_videos`` (None without a training
    list) and ``training_run`` (:func:`training_run`: the model it
    tests)."""
    info = asdict(split)
    info['views'] = 'x'.join(map(str, split.views)) if split.views else None
    info['classes'] = len(read_class_names(split.label_file, root))
    info['test_videos'] = len(read_test_list(split, root))
    info['train_videos'] = (len(read_test_list(split, root, train=True))
                            if split.train_list else None)
    info['training_run'] = training_run(split)
    return info


#: File name endings taken for videos when a data root is walked.
VIDEO_EXTENSIONS = ('.avi', '.mp4', '.webm', '.mkv', '.mov', '.m4v', '.flv',
                    '.mpg', '.mpeg', '.wmv')


def index_videos(video_root: str) -> Dict[str, List[str]]:
    """The video files below ``video_root`` (a user's copy of a dataset,
    in any layout: ``<Class>/<file>``, ``train/<file>``, all in one folder
    ...): ``file name -> [paths relative to the root]`` and ``'stem:' +
    name without extension -> [...]`` (a copy re-encoded to another
    container still matches)."""
    found: Dict[str, List[str]] = {}
    for folder, _, files in os.walk(video_root, followlinks=True):
        for name in files:
            if not name.lower().endswith(VIDEO_EXTENSIONS):
                continue
            relative = osp.relpath(osp.join(folder, name), video_root)
            found.setdefault(name, []).append(relative)
            found.setdefault('stem:' + osp.splitext(name)[0],
                             []).append(relative)
    return found


def resolve_videos(entries: Sequence[Tuple[str, int]],
                   videos: Dict[str, List[str]]
                   ) -> Tuple[List[Tuple[str, int]], List[str]]:
    """Find each listed video in a user's copy.

    A list entry matches the file of the same name (whatever folder it is
    in), else the one video of the same name stem; a name found in two
    places is refused rather than guessed.

    Args:
        entries (list[tuple[str, int]]): From :func:`read_test_list`.
        videos (dict): From :func:`index_videos`.

    Returns:
        tuple: ``([(relative path, label)], [missing list entries])``.
    """
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


def write_annotations(path: str, rows: Sequence[Tuple[str, int]]) -> None:
    """Write an MMAction2 ``VideoDataset`` annotation list of ``(path
    relative to the video root, label)`` rows."""
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(f'{video} {label}\n' for video, label in rows)


def class_texts(split: Split, root: str = PROTOCOL_DIR,
                train: bool = False) -> List[str]:
    """The text of each class of a split, as the text encoder reads it.

    UCF101's names are CamelCase (``ApplyEyeMakeup``): they become the
    words of ``configs/label_map_ucf101.txt`` (derived from the official
    names by ``tools/make_label_maps.py``); HMDB51's class folders
    (``brush_hair``) read with spaces, as ViFi-CLIP's label files write
    them; the other label files already hold words. Returns the text of
    label 0, 1, ... of ``split``'s test list (of its training list with
    ``train``: the base classes of a novel split); lists in ``root``.
    """
    label_file = (split.train_label_file or split.label_file
                  ) if train else split.label_file
    names = read_class_names(label_file, root)
    if split.list_format == 'hmdb51':  # class folders: brush_hair
        return [name.replace('_', ' ') for name in names]
    if split.dataset != 'ucf101':
        return names
    official = [line.split()[1] for line in _lines(
        osp.join(PROJECT_ROOT, 'configs', 'classind_ucf101.txt'))]
    words = _lines(osp.join(PROJECT_ROOT, 'configs', 'label_map_ucf101.txt'))
    text = dict(zip(official, words))
    unknown = [n for n in names if n not in text]
    if unknown:
        raise ProtocolError(f'{label_file}: {unknown[0]!r} is not a '
                            'UCF101 class of configs/classind_ucf101.txt')
    return [text[n] for n in names]


def _locate(lists: Sequence[Tuple[str, str, List[Tuple[str, int]]]],
            video_root: str, work_dir: str) -> List[List[Tuple[str, int]]]:
    """Find the videos of each ``(name, missing file name, entries)`` in a
    user's copy; refuse a copy that lacks any, listing the missing ones in
    ``<work_dir>/<missing file name>``. Returns the found ``(path relative
    to video_root, label)`` of each list."""
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
            listing = osp.join(work_dir, missing_file)
            with open(listing, 'w', encoding='utf-8') as f:
                f.writelines(f'{video}\n' for video in missing)
            lacking.append(f'{len(missing)} of the {len(entries)} videos of '
                           f'{name} (e.g. {missing[0]}; all in {listing})')
    if lacking:
        raise ProtocolError(f'{video_root} lacks {"; ".join(lacking)}. A '
                            "result on part of a split is not the "
                            "protocol's")
    return founds


def plan_tests(splits: Sequence[Split], root: str, video_root: str,
               work_dir: str) -> List[Tuple[Split, List[Tuple[str, int]]]]:
    """Find every listed test video of the splits in a user's copy;
    refuse a copy that lacks any (a result on part of a split is not the
    protocol's), listing the missing ones in
    ``<work_dir>/missing_<split>.txt``. Returns ``(split, [(path relative
    to video_root, label)])`` per split; lists in ``root``.
    """
    return list(zip(splits, _locate(
        [(split.name, f'missing_{split.name}.txt',
          read_test_list(split, root)) for split in splits],
        video_root, work_dir)))


def plan_training(splits: Sequence[Split], root: str, video_root: str,
                  work_dir: str
                  ) -> Tuple[List[Tuple[Split, List[Tuple[str, int]]]],
                             Dict[str, Tuple[Split, List[Tuple[str, int]]]]]:
    """:func:`plan_tests`, and the same for the training list of each
    training run (:func:`training_run`) of the splits (missing ones in
    ``missing_<run>_train.txt``). Returns ``(plan_tests's result, {run:
    (its first split, [(path, label)])})``."""
    runs: Dict[str, Split] = {}
    for split in splits:
        run = training_run(split)
        if run is None:
            raise ProtocolError(f'The {split.protocol} protocol trains '
                                'nothing: it tests one given model')
        runs.setdefault(run, split)
    named = [(split.name, f'missing_{split.name}.txt',
              read_test_list(split, root)) for split in splits]
    named += [(f'the {run} training list', f'missing_{run}_train.txt',
               read_test_list(split, root, train=True))
              for run, split in runs.items()]
    founds = _locate(named, video_root, work_dir)
    training = {run: (split, found) for (run, split), found in zip(
        runs.items(), founds[len(splits):])}
    return list(zip(splits, founds)), training


def listing(rows: Sequence[dict]) -> List[str]:
    """One line per split of ``rows`` (:func:`describe` of each):
    protocol, dataset, name and counts."""
    return [f"{row['protocol']:14} {row['dataset']:7} {row['name']:12} "
            f"{row['classes']:4} classes, test {row['test_videos']}"
            + (f", train {row['train_videos']}"
               if row['train_videos'] is not None else '')
            for row in rows]
