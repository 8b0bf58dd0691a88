"""The protocol registry and its shipped lists: counts read from the
files, labels that name the classes their videos show, base and novel
classes that split each dataset, and the converter to MMAction2 lists."""
import csv
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from models.evaluation import protocols

SHIPPED = protocols.PROTOCOL_DIR
CONVERTER = os.path.join(ROOT, 'tools', 'data', 'protocol_lists.py')


def raw_names(relative):
    """A ViFi-CLIP label file as it is, without the corrections."""
    with open(os.path.join(SHIPPED, relative), newline='') as f:
        return [row[1] for row in list(csv.reader(f))[1:]]


def video_class(dataset, video, class_folders):
    """The class written in a UCF101 or HMDB51 video's file name."""
    name = video.split('/')[-1]
    if dataset == 'ucf101':  # v_<Class>_gXX_cYY.avi
        return name.split('_')[1].lower()
    # HMDB51 names end with _<class folder>_<camera codes>.avi; the longest
    # folder name found there (kick_ball over kick).
    return max((c for c in class_folders if f'_{c}_' in name), key=len)


def checked_lists():
    """Every (label file, list) pair of UCF101 and HMDB51."""
    pairs = set()
    for split in protocols.SPLITS:
        if split.dataset in ('ucf101', 'hmdb51'):
            pairs.add((split, False))
            if split.train_list:
                pairs.add((split, True))
    return sorted(pairs, key=lambda p: (p[0].test_list, p[0].train_list
                                        or '', p[1]))


def words(name):
    return name.replace(' ', '_').lower()


@pytest.mark.parametrize('split, train', checked_lists())
def test_labels_name_the_class_of_their_videos(split, train):
    label_file = (split.train_label_file or split.label_file
                  ) if train else split.label_file
    names = protocols.read_class_names(label_file)
    folders = [words(n) for n in protocols.read_class_names(
        'vificlip/labels/hmdb_51_labels.csv')]
    entries = protocols.read_test_list(split, train=train)
    wrong = {(names[label], video_class(split.dataset, video, folders))
             for video, label in entries
             if words(names[label]) != video_class(split.dataset, video,
                                                   folders)}
    assert not wrong


def test_the_hmdb51_corrections_are_needed():
    """Without LABEL_CORRECTIONS the files name kick videos "kick ball"."""
    split = protocols.find_splits('few-shot', 'hmdb51')[0]
    entries = protocols.read_test_list(split)
    raw = raw_names(split.label_file)
    kick = {label for video, label in entries if '_kick_f_' in video}
    assert len(kick) == 1 and raw[kick.pop()] == 'kick ball'
    for relative, fixes in protocols.LABEL_CORRECTIONS.items():
        corrected = protocols.read_class_names(relative)
        assert sorted(corrected) == sorted(raw_names(relative))
        assert all(raw_names(relative)[i] == upstream != name
                   for i, (upstream, name) in fixes.items())


def test_corrections_leave_other_label_files_alone(tmp_path):
    """A label file of one's own at a corrected file's path is read as it
    is."""
    relative = 'vificlip/labels/hmdb_51_novel_labels.csv'
    path = tmp_path / relative
    path.parent.mkdir(parents=True)
    names = [f'class {i}' for i in range(25)]
    path.write_text('id,name\n' + ''.join(
        f'{i},{n}\n' for i, n in enumerate(names)))
    assert protocols.read_class_names(relative, str(tmp_path)) == names


@pytest.mark.parametrize('dataset', ['k400', 'hmdb51', 'ucf101', 'ssv2'])
def test_base_and_novel_classes_split_the_dataset(dataset):
    splits = protocols.find_splits('base-to-novel', dataset)
    base = protocols.read_class_names(splits[0].label_file)
    novel = protocols.read_class_names(splits[1].label_file)
    full = protocols.read_class_names(
        protocols.find_splits('few-shot', dataset)[0].label_file
        if dataset != 'k400' else
        protocols.find_splits('supervised', 'k400')[0].label_file)
    assert not set(base) & set(novel)
    assert sorted(base + novel) == sorted(full)
    # 16 training videos for every base class, the same for each seed
    for split in splits:
        labels = [label for _, label in protocols.read_test_list(
            split, train=True)]
        assert sorted(set(labels)) == list(range(len(base)))
        assert len(labels) == 16 * len(base)


def test_official_ucf101_test_list_is_vificlips_val1():
    official = protocols.find_splits('zero-shot', 'ucf101')[0]
    vifi = protocols.find_splits('few-shot', 'ucf101')[0]
    a = {video.split('/')[1]: label
         for video, label in protocols.read_test_list(official)}
    b = dict(protocols.read_test_list(vifi))
    assert a == b and len(a) == 3783


def test_official_hmdb51_test_sides_are_vificlips_val_lists():
    """ViFi-CLIP's val{1,2,3}.txt list the official test videos (id 2) of
    splits 1-3, its labels numbering the sorted class folders."""
    for n, split in enumerate(protocols.find_splits('zero-shot', 'hmdb51'),
                              1):
        official = protocols.read_test_list(split)
        assert len(official) == 1530
        vifi = dict(protocols.read_test_list(protocols.Split(
            'x', 'hmdb51', 'x',
            f'vificlip/datasets_splits/hmdb_splits/val{n}.txt',
            'vificlip/labels/hmdb_51_labels.csv')))
        assert {video.split('/')[1]: label
                for video, label in official} == vifi
        # 70 training and 30 test videos per class and split
        train = protocols.read_test_list(split, train=True)
        assert len(train) == 70 * 51


def test_counts_are_read_from_the_files(tmp_path):
    lists = tmp_path / 'lists'
    (lists / 'ucf101').mkdir(parents=True)
    (lists / 'ucf101' / 'classInd.txt').write_text(
        '1 ApplyEyeMakeup\r\n2 YoYo\r\n')
    for n in (1, 2, 3):
        (lists / 'ucf101' / f'testlist0{n}.txt').write_text(
            'YoYo/v_YoYo_g01_c01.avi\r\n' * n)
    rows = [protocols.describe(s, str(lists))
            for s in protocols.find_splits('zero-shot', 'ucf101')]
    assert [(r['classes'], r['test_videos']) for r in rows] == [
        (2, 1), (2, 2), (2, 3)]
    assert protocols.read_test_list(
        protocols.find_splits('zero-shot', 'ucf101')[0],
        str(lists)) == [('YoYo/v_YoYo_g01_c01.avi', 1)]


@pytest.mark.parametrize('content, message', [
    ('id,name\n0,a\n2,b\n', 'class ids must run 0, 1'),
    ('name\n0,a\n', 'first line must be "id,name"'),
])
def test_malformed_label_files_are_refused(tmp_path, content, message):
    (tmp_path / 'labels.csv').write_text(content)
    with pytest.raises(protocols.ProtocolError, match=message):
        protocols.read_class_names('labels.csv', str(tmp_path))


def test_labels_outside_the_classes_are_refused(tmp_path):
    split = protocols.find_splits('few-shot', 'hmdb51')[0]
    folder = tmp_path / os.path.dirname(split.test_list)
    folder.mkdir(parents=True)
    (folder / os.path.basename(split.test_list)).write_text('a.avi 51\n')
    labels = tmp_path / split.label_file
    labels.parent.mkdir(parents=True)
    labels.write_text('id,name\n' + ''.join(
        f'{i},c{i}\n' for i in range(51)))
    with pytest.raises(protocols.ProtocolError, match='label 51 is not'):
        protocols.read_test_list(split, str(tmp_path))


def test_resolve_videos_by_name_stem_and_refuses_ambiguity(tmp_path):
    for path in ('A/v_A_g01_c01.avi', 'train/x_000001_000011.mp4',
                 'val/y.webm', 'B/dup.avi', 'C/dup.avi', 'notes.txt'):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b'')
    index = protocols.index_videos(str(tmp_path))
    found, missing = protocols.resolve_videos(
        [('A/v_A_g01_c01.avi', 0), ('train/x_000001_000011.mp4', 1),
         ('y.mp4', 2), ('z.avi', 3), ('B/dup.avi', 4)], index)
    assert found == [('A/v_A_g01_c01.avi', 0),
                     ('train/x_000001_000011.mp4', 1), ('val/y.webm', 2),
                     ('B/dup.avi', 4)]
    assert missing == ['z.avi']
    with pytest.raises(protocols.ProtocolError, match='matches 2 files'):
        protocols.resolve_videos([('dup.avi', 0)], index)


def test_unknown_protocol_and_dataset():
    with pytest.raises(protocols.ProtocolError, match='Unknown protocol'):
        protocols.find_splits('one-shot')
    with pytest.raises(protocols.ProtocolError, match='no dataset'):
        protocols.find_splits('supervised', 'ucf101')


def run_converter(*args):
    return subprocess.run([sys.executable, CONVERTER, *args],
                          capture_output=True, text=True, timeout=60)


def test_converter_writes_lists_and_names_missing_videos(tmp_path):
    videos = tmp_path / 'hmdb51'
    split = protocols.find_splits('few-shot', 'hmdb51')[0]
    test = protocols.read_test_list(split)
    train = protocols.read_test_list(split, train=True)
    # Every training video and all test videos but the first, as
    # MMAction2 lays HMDB51 out: <class>/<video>.avi
    for video, label in train + test[1:]:
        path = videos / f'class{label}' / video
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'')
    out = tmp_path / 'out'
    proc = run_converter('few-shot', '--dataset', 'hmdb51', '--data-root',
                         str(videos), '--out-dir', str(out))
    assert proc.returncode == 1, proc.stderr
    assert (out / 'K2_missing.txt').read_text() == f'{test[0][0]}\n'
    assert f'{len(test) - 1} of {len(test)} videos found' in proc.stdout
    rows = (out / 'K2_train.txt').read_text().splitlines()
    assert rows[0] == f'class{train[0][1]}/{train[0][0]} {train[0][1]}'
    assert len(rows) == len(train) == 102
    labels = (out / 'K2_labels.txt').read_text().splitlines()
    assert len(labels) == 51 and labels[20] == 'kick'
    assert (out / 'K2_train_labels.txt').read_text().splitlines() == labels
    # Never over existing files.
    again = run_converter('few-shot', '--dataset', 'hmdb51', '--data-root',
                          str(videos), '--out-dir', str(out))
    assert again.returncode == 2 and 'exists' in again.stderr


def test_a_novel_splits_training_list_comes_with_the_base_labels(tmp_path):
    """seedN-novel trains on the base classes: its training list's labels
    index those, not the novel classes of its test list."""
    novel, = [s for s in protocols.find_splits('base-to-novel', 'hmdb51')
              if s.name == 'seed1-novel']
    train = protocols.read_test_list(novel, train=True)
    test = protocols.read_test_list(novel)
    for video, label in train + test:
        path = tmp_path / 'v' / f'class{label}' / video
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'')
    out = tmp_path / 'out'
    proc = run_converter('base-to-novel', '--dataset', 'hmdb51',
                         '--data-root', str(tmp_path / 'v'), '--out-dir',
                         str(out))
    # the other splits' videos are missing (exit status 1), not seed1-novel's
    assert proc.returncode == 1, proc.stderr
    assert not (out / 'seed1-novel_missing.txt').exists()
    base = protocols.class_texts(novel, train=True)
    assert (out / 'seed1-novel_train_labels.txt').read_text(
    ).splitlines() == base
    assert (out / 'seed1-novel_labels.txt').read_text().splitlines() == (
        protocols.class_texts(novel))
    assert set(base).isdisjoint(protocols.class_texts(novel))
    rows = (out / 'seed1-novel_train.txt').read_text().splitlines()
    assert max(int(r.split()[-1]) for r in rows) == len(base) - 1


def test_converter_refuses_a_wrong_dataset(tmp_path):
    proc = run_converter('zero-shot', '--dataset', 'ssv2', '--data-root',
                         str(tmp_path), '--out-dir', str(tmp_path / 'o'))
    assert proc.returncode == 2 and 'has no dataset' in proc.stderr
    assert not (tmp_path / 'o').exists()
