"""models/utils/safe_io.py: whole-or-nothing writes, and output paths refused
when they would overwrite an input."""
import os
import stat

import pytest
import torch

from models.utils.safe_io import (OutputPathError, atomic_path,
                                  atomic_save_torch, atomic_write,
                                  check_output_path, same_file, temp_path)


def leftovers(folder):
    """Temporary files left in ``folder``."""
    return sorted(name for name in os.listdir(folder) if '.tmp' in name)


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'out.txt'
    path.write_text('old')
    with atomic_write(str(path), 'w') as f:
        f.write('new ü')
        # Until the block ends, readers still see the old file.
        assert path.read_text() == 'old'
    assert path.read_text(encoding='utf-8') == 'new ü'
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize('error', [RuntimeError, KeyboardInterrupt])
def test_failure_mid_write_leaves_the_old_file(tmp_path, error):
    path = tmp_path / 'out.bin'
    path.write_bytes(b'previous content')
    with pytest.raises(error):
        with atomic_write(str(path)) as f:
            f.write(b'half of the new')
            raise error('disk full')
    assert path.read_bytes() == b'previous content'
    assert leftovers(tmp_path) == []


def test_new_file_and_failed_new_file(tmp_path):
    path = tmp_path / 'new.bin'
    with pytest.raises(ValueError):
        with atomic_write(str(path)) as f:
            f.write(b'x')
            raise ValueError
    assert not path.exists() and leftovers(tmp_path) == []
    with atomic_write(str(path)) as f:
        f.write(b'x')
    assert path.read_bytes() == b'x'


def test_permissions_are_kept(tmp_path):
    path = tmp_path / 'script.sh'
    path.write_text('old')
    path.chmod(0o751)
    with atomic_write(str(path), 'w') as f:
        f.write('new')
    assert stat.S_IMODE(path.stat().st_mode) == 0o751


def test_writing_through_a_symlink_keeps_the_link(tmp_path):
    target = tmp_path / 'real.txt'
    target.write_text('old')
    link = tmp_path / 'link.txt'
    link.symlink_to(target)
    with atomic_write(str(link), 'w') as f:
        f.write('new')
    assert link.is_symlink() and target.read_text() == 'new'


def test_append_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w', 'wt' or 'wb'"):
        with atomic_write(str(tmp_path / 'x'), 'a'):
            pass


def test_atomic_path_keeps_the_extension_and_needs_a_file(tmp_path):
    path = tmp_path / 'clip.mp4'
    path.write_bytes(b'old video')
    assert temp_path(str(path), keep_ext=True).endswith('.tmp.mp4')
    assert os.path.basename(temp_path(str(path))).startswith(
        f'.clip.mp4.{os.getpid()}.')
    with atomic_path(str(path)) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)
        assert tmp.endswith('.mp4') and os.path.basename(tmp).startswith('.')
        with open(tmp, 'wb') as f:
            f.write(b'new video')
    assert path.read_bytes() == b'new video'
    # A writer that silently wrote nothing (as cv2.VideoWriter can) is an
    # error, and the previous file stays.
    with pytest.raises(FileNotFoundError, match='nothing was written'):
        with atomic_path(str(path)):
            pass
    assert path.read_bytes() == b'new video'
    assert leftovers(tmp_path) == []


def test_atomic_save_torch(tmp_path):
    path = tmp_path / 'ckpt.pth'
    atomic_save_torch({'w': torch.ones(2)}, str(path))
    assert torch.equal(torch.load(path)['w'], torch.ones(2))
    before = path.read_bytes()
    with pytest.raises(Exception):
        atomic_save_torch({'w': lambda: 0}, str(path))  # cannot pickle
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_same_file(tmp_path):
    a, b = tmp_path / 'a.mp4', tmp_path / 'b.mp4'
    a.write_bytes(b'same bytes')
    b.write_bytes(b'same bytes')
    hard, soft = tmp_path / 'hard.mp4', tmp_path / 'soft.mp4'
    os.link(a, hard)
    soft.symlink_to(a)
    assert same_file(str(a), str(a))
    assert same_file(str(hard), str(a)) and same_file(str(a), str(hard))
    assert same_file(str(soft), str(a)) and same_file(str(soft), str(hard))
    assert same_file(str(tmp_path / '.' / 'a.mp4'), str(a))
    assert not same_file(str(a), str(b))  # equal content, other file
    assert not same_file(str(tmp_path / 'missing'), str(a))
    assert not same_file(str(a), str(tmp_path / 'missing'))
    dangling = tmp_path / 'dangling'
    dangling.symlink_to(tmp_path / 'nowhere')
    assert not same_file(str(dangling), str(dangling))


def test_check_output_path_refuses_an_input(tmp_path):
    video = tmp_path / 'video.mp4'
    video.write_bytes(b'video')
    hard, soft = tmp_path / 'hard.gif', tmp_path / 'soft.json'
    os.link(video, hard)
    soft.symlink_to(video)
    for out, how in ((video, ': writing'), (hard, 'through a hard link'),
                     (soft, 'through a symbolic link')):
        with pytest.raises(OutputPathError) as info:
            check_output_path(str(out), [None, 'x.txt', str(video)], '--viz')
        message = str(info.value)
        assert message.startswith(f"--viz '{out}' is the same file as the "
                                  f"input '{video}'"), message
        assert how in message and 'choose another output name' in message
    assert video.read_bytes() == b'video'
    assert isinstance(OutputPathError('x'), ValueError)


def test_check_output_path_folders(tmp_path):
    with pytest.raises(OutputPathError, match='is a folder'):
        check_output_path(str(tmp_path), [], 'output')
    out = tmp_path / 'new' / 'deeper' / 'out.pth'
    assert check_output_path(str(out), [str(tmp_path / 'in.pt')]) == str(out)
    assert out.parent.is_dir() and not out.exists()
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    with pytest.raises(OutputPathError,
                       match=r'cannot create its folder .*in the way'):
        check_output_path(str(blocker / 'sub' / 'out.pth'), [], 'output')
    with pytest.raises(OutputPathError, match='empty'):
        check_output_path('', [], 'output')


def test_write_json_or_csv_by_extension_whole_or_not_at_all(tmp_path):
    import csv
    import json

    from models.utils.safe_io import write_json_or_csv
    document = {'name': 'café', 'values': [1, 2]}
    write_json_or_csv(str(tmp_path / 'a.json'), document, ['x', 'y'],
                      iter(()), indent=1)
    text = (tmp_path / 'a.json').read_text(encoding='utf-8')
    assert json.loads(text) == document and text.endswith('\n')
    assert 'café' in text  # not escaped
    out = tmp_path / 'a.CSV'
    write_json_or_csv(str(out), document, ['x', 'y'],
                      ([i, f'{i / 3:.3f}'] for i in range(3)))
    with open(out, newline='', encoding='utf-8') as f:
        assert list(csv.reader(f)) == [['x', 'y'], ['0', '0.000'],
                                       ['1', '0.333'], ['2', '0.667']]
    before = out.read_bytes()

    def failing_rows():
        yield [9, 9]
        raise RuntimeError('a row cannot be made')

    with pytest.raises(RuntimeError):
        write_json_or_csv(str(out), document, ['x', 'y'], failing_rows())
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.CSV', 'a.json']
