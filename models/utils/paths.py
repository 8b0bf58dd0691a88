"""Input files checked with a message that says what is wrong with them
(``os.path.isfile`` is False alike for a missing file, a folder, a broken
link, a link loop, and a FIFO, which ``open`` would wait on forever).
"""
import errno
import hashlib
import os
import os.path as osp
import stat
from typing import Dict, Optional, Sequence

_SPECIAL_KINDS = ((stat.S_ISFIFO, 'a FIFO'), (stat.S_ISSOCK, 'a socket'),
                  (stat.S_ISCHR, 'a character device'),
                  (stat.S_ISBLK, 'a block device'))


class NotRegularFileError(FileNotFoundError):
    """A path names a FIFO, a socket or a device (a FileNotFoundError,
    handled as a missing input is)."""


def special_file_kind(path: str) -> Optional[str]:
    """``'a FIFO'``, ``'a socket'``, ``'a character device'`` or ``'a
    block device'``; None for anything else or a path that cannot be
    stat'ed. Nothing is opened."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return next((kind for test, kind in _SPECIAL_KINDS if test(mode)), None)


def not_a_file(path: str) -> str:
    """Why ``path``, no regular file, cannot be read: a phrase to follow
    the path."""
    kind = special_file_kind(path)
    if kind is not None:
        return f'is {kind}, not a regular file'
    return 'is a folder' if osp.isdir(path) else 'does not exist'


def check_not_special(path: str, what: str) -> None:
    """Refuse a FIFO, socket or device before anything opens it
    (:class:`NotRegularFileError` naming ``path`` as ``what``)."""
    kind = special_file_kind(path)
    if kind is not None:
        raise NotRegularFileError(
            f'{what} {path!r} is {kind}, not a regular file; give a regular '
            'file')


def is_link_loop(path: str) -> bool:
    """Whether resolving ``path`` runs into a symbolic link loop."""
    try:
        os.stat(path)
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def require_file(path: str, what: str, hint: str = '') -> str:
    """``path`` with ``~`` expanded, when it is a file's, else
    IsADirectoryError, :class:`NotRegularFileError` or FileNotFoundError
    (also a broken link or a link loop) naming it as ``what`` (e.g.
    ``'Label file'``), ``hint`` ending the message of a missing path."""
    expanded = osp.expanduser(path)
    if osp.isfile(expanded):
        return expanded
    if osp.isdir(expanded):
        raise IsADirectoryError(f'{what} {path!r} is a folder; give the '
                                'file')
    check_not_special(expanded, what)
    if osp.islink(expanded):
        kind = ('a symbolic link loop' if is_link_loop(expanded) else
                'a broken symbolic link (its target does not exist)')
        raise FileNotFoundError(f'{what} {path!r} is {kind}')
    raise FileNotFoundError(
        f'{what} {path!r} does not exist' +
        (hint or '; check the spelling (relative paths start from the '
         'current directory)'))


def cache_home() -> str:
    """The tools' cache folder: ``$XDG_CACHE_HOME/actionclip`` where that
    is an absolute path, else ``~/.cache/actionclip``."""
    base = os.environ.get('XDG_CACHE_HOME', '')
    if not osp.isabs(base):
        base = osp.join(osp.expanduser('~'), '.cache')
    return osp.join(base, 'actionclip')


def file_version(stat: os.stat_result) -> Dict[str, int]:
    """What tells one version of a file from another, for caches keyed by
    path: ``size``, ``mtime_ns``, ``ino`` and ``ctime_ns`` (so that files
    swapped by name, or copied over with their times kept, differ)."""
    return dict(size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                ino=stat.st_ino, ctime_ns=stat.st_ctime_ns)


def file_identity(path: str) -> Dict[str, object]:
    """What a manifest records of a file: ``{'size_bytes': int,
    'sha256': str}``."""
    with open(path, 'rb') as f:
        digest = hashlib.file_digest(f, 'sha256').hexdigest()
    return dict(size_bytes=osp.getsize(path), sha256=digest)


def unique_names(paths: Sequence[str], prefix: str = '') -> Dict[str, str]:
    """``{path: prefix + its file name's stem}``, numbered ``_2``, ``_3``
    ... where names repeat, for output files named after inputs."""
    names, used = {}, set()
    for path in paths:
        base = prefix + osp.splitext(osp.basename(path))[0]
        name, n = base, 1
        while name in used:
            n += 1
            name = f'{base}_{n}'
        used.add(name)
        names[path] = name
    return names
