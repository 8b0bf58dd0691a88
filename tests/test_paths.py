"""Input files: a message for each way a path can fail to be a file."""
import pytest

from models.utils.paths import is_link_loop, require_file


def test_each_way_a_path_is_not_a_file(tmp_path):
    real = tmp_path / 'real.txt'
    real.write_text('x')
    assert require_file(str(real), 'Label file') == str(real)
    with pytest.raises(IsADirectoryError, match='is a folder'):
        require_file(str(tmp_path), 'Label file')
    dangling = tmp_path / 'dangling'
    dangling.symlink_to(tmp_path / 'gone')
    with pytest.raises(FileNotFoundError, match='broken symbolic link'):
        require_file(str(dangling), 'Checkpoint')
    loop = tmp_path / 'loop'
    loop.symlink_to(tmp_path / 'loop2')
    (tmp_path / 'loop2').symlink_to(loop)
    assert is_link_loop(str(loop)) and not is_link_loop(str(real))
    with pytest.raises(FileNotFoundError, match='symbolic link loop'):
        require_file(str(loop), 'Checkpoint')
    with pytest.raises(FileNotFoundError, match="'nothing' does not exist"):
        require_file('nothing', 'Checkpoint')
