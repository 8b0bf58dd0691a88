"""tools/make_label_maps.py: the UCF101 and HMDB51 label maps come from the
official class names by a rule and a table of fixes."""
import os
import shutil

import make_label_maps as maps
import pytest
from conftest import ROOT

from models.text.prompts import load_labels


def read(relative):
    with open(os.path.join(ROOT, relative), encoding='utf-8') as f:
        return f.read().splitlines()


def test_committed_label_maps_are_what_the_tool_derives(capsys):
    assert maps.main(['--check']) == 0, capsys.readouterr().out


@pytest.mark.parametrize('dataset,count', [('ucf101', 101), ('hmdb51', 51)])
def test_label_maps_have_one_unique_label_per_class(dataset, count):
    spec = maps.DATASETS[dataset]
    lines = read(spec['label_map'])
    assert len(lines) == count == len(set(lines))
    assert all(line == line.strip() and line for line in lines)
    assert load_labels(os.path.join(ROOT, spec['label_map'])) == lines
    assert len(maps.read_classind(os.path.join(ROOT,
                                               spec['classind']))) == count


def test_official_lists_are_in_index_order():
    ucf = maps.read_classind(os.path.join(ROOT, 'configs/classind_ucf101.txt'))
    # classInd.txt sorts without regard to case: Hammering before
    # HammerThrow, JumpingJack before JumpRope.
    assert ucf == sorted(ucf, key=str.lower)
    assert ucf[:3] == ['ApplyEyeMakeup', 'ApplyLipstick', 'Archery']
    assert ucf[36] == 'HandstandPushups' and ucf[-1] == 'YoYo'
    hmdb = maps.read_classind(os.path.join(ROOT,
                                           'configs/classind_hmdb51.txt'))
    # MMAction2 numbers the sorted folder names.
    assert hmdb == sorted(hmdb)
    assert hmdb[0] == 'brush_hair' and hmdb[-1] == 'wave'


def test_rules_and_fixes():
    ucf = dict(
        zip(maps.read_classind(
            os.path.join(ROOT, 'configs/classind_ucf101.txt')),
            read('configs/label_map_ucf101.txt')))
    assert ucf['ApplyEyeMakeup'] == 'apply eye makeup'
    assert ucf['YoYo'] == 'yo yo'
    assert ucf['PlayingDaf'] == 'playing daf'
    assert ucf['TaiChi'] == 'tai chi'
    assert ucf['BlowDryHair'] == 'blow dry hair'
    assert ucf['HandstandPushups'] == 'handstand push ups'
    assert ucf['Skijet'] == 'jet skiing'
    assert ucf['JumpingJack'] == 'jumping jacks'
    hmdb = dict(
        zip(maps.read_classind(
            os.path.join(ROOT, 'configs/classind_hmdb51.txt')),
            read('configs/label_map_hmdb51.txt')))
    assert hmdb['brush_hair'] == 'brush hair'
    assert hmdb['flic_flac'] == 'flic flac'
    assert hmdb['pullup'] == 'pull up'
    assert maps.camel_case_words('CleanAndJerk') == 'clean and jerk'
    assert maps.underscore_words('shake_hands') == 'shake hands'


def test_a_fix_for_an_unknown_class_is_an_error(monkeypatch):
    monkeypatch.setitem(maps.UCF101_FIXES, 'HandStandPushups', 'x')
    with pytest.raises(ValueError, match='unknown classes'):
        maps.derive_labels('ucf101')


def test_repeated_labels_are_an_error(monkeypatch):
    monkeypatch.setitem(maps.HMDB51_FIXES, 'sit', 'sit up')
    with pytest.raises(ValueError, match='repeat'):
        maps.derive_labels('hmdb51')


def test_check_reports_a_stale_map(tmp_path, monkeypatch, capsys):
    stale = tmp_path / 'configs'
    stale.mkdir()
    for name in ('classind_ucf101.txt', 'classind_hmdb51.txt',
                 'label_map_ucf101.txt', 'label_map_hmdb51.txt'):
        (stale / name).write_text(
            open(os.path.join(ROOT, 'configs', name)).read())
    (stale / 'label_map_hmdb51.txt').write_text('brush hair\n')
    monkeypatch.setattr(maps, 'ROOT', str(tmp_path))
    assert maps.main(['--check']) == 1
    assert 'label_map_hmdb51.txt is stale' in capsys.readouterr().out
    assert maps.main([]) == 0
    assert maps.main(['--check']) == 0


def test_classind_of_a_dataset_copy_is_compared(tmp_path, capsys):
    names = maps.read_classind(os.path.join(ROOT,
                                            'configs/classind_ucf101.txt'))
    same = tmp_path / 'classInd.txt'
    # The official file has CRLF line ends.
    same.write_bytes(''.join(f'{i} {n}\r\n'
                             for i, n in enumerate(names, 1)).encode())
    assert maps.main(['--classind', f'ucf101={same}']) == 0
    assert 'agrees' in capsys.readouterr().out
    swapped = tmp_path / 'swapped.txt'
    names[0], names[1] = names[1], names[0]
    swapped.write_text(''.join(f'{i} {n}\n' for i, n in enumerate(names, 1)))
    assert maps.main(['--classind', f'ucf101={swapped}']) == 1
    assert "class 1: stored 'ApplyEyeMakeup'" in capsys.readouterr().out


def test_writing_replaces_the_label_maps_whole(tmp_path, monkeypatch):
    for spec in maps.DATASETS.values():
        target = tmp_path / spec['classind']
        target.parent.mkdir(exist_ok=True)
        shutil.copy(os.path.join(ROOT, spec['classind']), target)
        (tmp_path / spec['label_map']).write_text('stale\n')
    monkeypatch.setattr(maps, 'ROOT', str(tmp_path))
    assert maps.main([]) == 0
    for spec in maps.DATASETS.values():
        written = (tmp_path / spec['label_map']).read_text().splitlines()
        assert written == read(spec['label_map'])
    assert sorted(os.listdir(tmp_path / 'configs')) == sorted(
        os.path.basename(spec[key]) for spec in maps.DATASETS.values()
        for key in ('classind', 'label_map'))
