"""Writing files without destroying the user's: whole or not at all
(:func:`atomic_write`, :func:`atomic_path`), and never over an input
(:func:`check_output_path`). Standard library only (torch when saving):
tools load this file by itself.
"""
import contextlib
import csv
import errno
import itertools
import json
import os
import os.path as osp
from typing import IO, Any, Iterable, Iterator, Optional, Sequence

# Temporary names unique across threads too (the pid separates processes)
_counter = itertools.count()

#: ``errno`` of a write that found no room (disk, quota, ``ulimit -f``).
NO_ROOM_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class NoSpaceError(OSError):
    """``NoSpaceError(errno, strerror, path)``: a write found no room; the
    one-line message names the file, whose previous version is intact."""

    def __str__(self) -> str:
        return (f'{self.strerror}: {self.filename} (not written; a previous '
                'file of that name is left as it was)')


class OutputPathError(ValueError):
    """An output path that is an input or a folder, or whose folder cannot
    be created; the message names it."""


def temp_path(path: str, keep_ext: bool = False) -> str:
    """``<folder>/.<name>.<pid>.<n>.tmp`` beside ``path`` (one file system
    for ``os.replace``); ``...tmp.mp4`` with ``keep_ext``, for writers that
    choose the format from the extension."""
    folder, name = osp.split(path)
    ext = osp.splitext(name)[1] if keep_ext else ''
    return osp.join(folder,
                    f'.{name}.{os.getpid()}.{next(_counter)}.tmp{ext}')


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(tmp: str, dest: str) -> None:
    """Move a complete temporary file, synced, over ``dest``."""
    _fsync(tmp)
    # A rewritten file keeps the permissions the user gave the old one.
    with contextlib.suppress(FileNotFoundError):
        os.chmod(tmp, os.stat(dest).st_mode & 0o7777)
    os.replace(tmp, dest)
    # The rename made durable, where the file system can sync folders
    with contextlib.suppress(OSError):
        _fsync(osp.dirname(dest) or '.')


@contextlib.contextmanager
def atomic_path(path: str, keep_ext: bool = True) -> Iterator[str]:
    """A temporary file name to write (for writers that take a name); it
    replaces ``path`` (a link's target; the link survives) when the block
    ends without an exception, and is removed otherwise. ``keep_ext`` as
    for :func:`temp_path`; FileNotFoundError when nothing was written."""
    path = os.fspath(path)
    dest = osp.realpath(path) if osp.islink(path) else path
    tmp = temp_path(dest, keep_ext)
    try:
        yield tmp
        if not osp.exists(tmp):
            raise FileNotFoundError(f'nothing was written for {path!r}')
        _commit(tmp, dest)
    except BaseException as error:
        # Ctrl-C included: the old file stays, the partial one goes.
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if (isinstance(error, OSError) and not isinstance(error, NoSpaceError)
                and error.errno in NO_ROOM_ERRNOS):
            raise NoSpaceError(error.errno, error.strerror
                               or os.strerror(error.errno), path) from error
        raise


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'wb', encoding: Optional[str] = None,
                 newline: Optional[str] = None) -> Iterator[IO]:
    """An open temporary file that replaces ``path`` (a link's target)
    when the block ends; on any exception, Ctrl-C included, ``path`` keeps
    its content. ``mode`` is ``'wb'``, ``'w'`` or ``'wt'``; text is UTF-8
    unless ``encoding`` says otherwise."""
    if mode not in ('w', 'wt', 'wb'):
        raise ValueError(f'atomic_write writes a whole file: mode must be '
                         f"'w', 'wt' or 'wb', got {mode!r}")
    text = dict(encoding=encoding or 'utf-8', newline=newline)
    with atomic_path(path, keep_ext=False) as tmp:
        with open(tmp, mode, **({} if 'b' in mode else text)) as f:
            yield f


def write_json_or_csv(path: str, document: Any, header: Sequence[str],
                      rows: Iterable[Sequence], indent: int = 2) -> None:
    """A tool's ``--out`` file by its extension, whole or not at all:
    ``document`` as JSON (``indent``) for ``.json``, else a CSV table of
    ``header`` and ``rows`` (read only for CSV)."""
    if path.lower().endswith('.json'):
        with atomic_write(path, 'w', encoding='utf-8') as f:
            json.dump(document, f, indent=indent, ensure_ascii=False)
            f.write('\n')
        return
    with atomic_write(path, 'w', encoding='utf-8', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def torch_save_to(obj: object, f: IO) -> None:
    """``torch.save(obj, f)``, raising the file's own OSError when a write
    fails (torch's RuntimeError names neither the file nor the cause)."""
    import torch
    try:
        torch.save(obj, f)
    except RuntimeError as error:
        if isinstance(error.__context__, OSError):
            raise error.__context__ from None
        raise


def atomic_save_torch(obj: object, path: str) -> None:
    """``torch.save(obj, path)`` through :func:`atomic_write`."""
    with atomic_write(path, 'wb') as f:
        torch_save_to(obj, f)


def same_file(a: str, b: str) -> bool:
    """Whether two existing paths name one file (also through a link);
    False where either cannot be examined."""
    try:
        return osp.samefile(a, b)
    except (OSError, ValueError, TypeError):
        return False


def _how_linked(path: str, source: str) -> str:
    if osp.abspath(path) == osp.abspath(source):
        return ''
    if osp.realpath(path) == osp.realpath(source):
        return ', through a symbolic link'
    return ', through a hard link'


def check_output_path(path: str,
                      inputs: Iterable[Optional[str]] = (),
                      what: str = 'output') -> str:
    """``path``, after creating its folder; before any work,
    :class:`OutputPathError` (naming it as ``what``, e.g. ``'--viz'``) for
    an empty path, a folder, one of the existing ``inputs`` (also through
    a link), or a folder that cannot be created or written."""
    if not path:
        raise OutputPathError(f'{what}: the output path is empty')
    if osp.isdir(path):
        raise OutputPathError(f'{what} {path!r} is a folder; give a file '
                              'name')
    for source in inputs:
        if source is not None and same_file(path, source):
            raise OutputPathError(
                f'{what} {path!r} is the same file as the input {source!r}'
                f'{_how_linked(path, source)}: writing it would destroy '
                'that input; choose another output name')
    folder = osp.dirname(osp.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        in_the_way = isinstance(error, (FileExistsError, NotADirectoryError))
        reason = 'a file is in the way' if in_the_way else (error.strerror
                                                            or str(error))
        raise OutputPathError(f'{what} {path!r}: cannot create its folder '
                              f'{folder!r} ({reason})') from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f'{what} {path!r}: its folder {folder!r} is '
                              'not writable')
    return path
