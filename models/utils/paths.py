"""Input files checked with a message that says what is wrong with them.

``os.path.isfile`` is False for a missing file, a folder, a broken symbolic
link and a symbolic link loop alike; a user told "does not exist" about a
link they can see looks in the wrong place.
"""
import errno
import os
import os.path as osp
from typing import Dict


def is_link_loop(path: str) -> bool:
    """Whether resolving ``path`` runs into a symbolic link loop.

    Args:
        path (str): The path.

    Returns:
        bool: True for a loop.
    """
    try:
        os.stat(path)
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def require_file(path: str, what: str, hint: str = '') -> str:
    """``path`` (with ``~`` expanded) when it is a readable file's.

    Args:
        path (str): The path given.
        what (str): What the file is, e.g. ``'Label file'``.
        hint (str): Appended to the message for a path that does not exist.

    Returns:
        str: The expanded path.

    Raises:
        IsADirectoryError: It is a folder.
        FileNotFoundError: It does not exist, or is a broken link or a
            link loop.
    """
    expanded = osp.expanduser(path)
    if osp.isfile(expanded):
        return expanded
    if osp.isdir(expanded):
        raise IsADirectoryError(f'{what} {path!r} is a folder; give the '
                                'file')
    if osp.islink(expanded):
        kind = ('a symbolic link loop' if is_link_loop(expanded) else
                'a broken symbolic link (its target does not exist)')
        raise FileNotFoundError(f'{what} {path!r} is {kind}')
    raise FileNotFoundError(
        f'{what} {path!r} does not exist' +
        (hint or '; check the spelling (relative paths start from the '
         'current directory)'))


def cache_home() -> str:
    """The plugin's folder in the user's cache, where the tools keep their
    caches unless told otherwise: nothing is written beside the user's
    videos.

    Returns:
        str: ``$XDG_CACHE_HOME/actionclip`` where that variable holds an
        absolute path (the XDG rule), else ``~/.cache/actionclip``.
    """
    base = os.environ.get('XDG_CACHE_HOME', '')
    if not osp.isabs(base):
        base = osp.join(osp.expanduser('~'), '.cache')
    return osp.join(base, 'actionclip')


def file_version(stat: os.stat_result) -> Dict[str, int]:
    """What tells one version of a file from another, for caches keyed by
    path: its size and modification time, and also its inode and status
    change time, so that two files of one size and time swapped by name
    (renames keep the inode and set the change time) or a file copied over
    with its times kept are not taken for the one cached.

    Args:
        stat (os.stat_result): The file's ``os.stat``.

    Returns:
        dict: ``size``, ``mtime_ns``, ``ino`` and ``ctime_ns``.
    """
    return dict(size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                ino=stat.st_ino, ctime_ns=stat.st_ctime_ns)
