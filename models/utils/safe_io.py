"""Writing files without destroying the user's.

Everything the project writes goes through :func:`atomic_write` (or
:func:`atomic_path` for writers that take a file name, such as OpenCV's
``VideoWriter``): the data goes to a temporary file in the destination's
folder, which replaces the destination by one ``os.replace`` only once it
is complete and on disk. A failed write (an exception, Ctrl-C, a full disk)
leaves the previous file as it was, and no temporary file behind; a
write that finds no room (a full disk, a quota, ``ulimit -f``) raises
:class:`NoSpaceError`, whose message names the file in one line, also
where ``torch.save`` hides the cause (:func:`torch_save_to`).

:func:`check_output_path` refuses, before any work, an output that would
overwrite one of the inputs (the same file, also through a hard or symbolic
link) or that names a folder, and creates a missing output folder.

Only the standard library is imported here (``torch`` when
:func:`atomic_save_torch` runs), so that tools that need no model stack
(``tools/generate_videos.py``, ``tools/make_label_maps.py``) can load this
file by itself, without the ``models`` package's imports.
"""
import contextlib
import csv
import errno
import itertools
import json
import os
import os.path as osp
from typing import IO, Any, Iterable, Iterator, Optional, Sequence

# Two writes of one destination from one process (threads) must not share
# a temporary file; the pid alone only separates processes.
_counter = itertools.count()


#: ``errno`` of a write that found no room: a full disk, a full quota, a
#: file larger than ``ulimit -f`` allows.
NO_ROOM_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class NoSpaceError(OSError):
    """A write found no room: ``NoSpaceError(errno, strerror, path)``,
    whose message (``"No space left on device: <path> ..."``) names the
    file in one line; its previous version is intact."""

    def __str__(self) -> str:
        return (f'{self.strerror}: {self.filename} (not written; a previous '
                'file of that name is left as it was)')


def no_space_error(error: OSError, path: str) -> NoSpaceError:
    """:class:`NoSpaceError`, with ``error``'s errno and reason, for a
    write of ``path`` that failed with ``error`` (one of
    :data:`NO_ROOM_ERRNOS`)."""
    return NoSpaceError(error.errno, error.strerror
                        or os.strerror(error.errno), path)


class OutputPathError(ValueError):
    """An output path that must not be written: it is an input, a folder,
    or its folder cannot be created. The message names the path (and the
    input it resolves to)."""


def temp_path(path: str, keep_ext: bool = False) -> str:
    """The temporary file :func:`atomic_path` writes before renaming:
    ``<folder>/.<name>.<pid>.<n>.tmp`` in the destination ``path``'s
    folder, so that the final ``os.replace`` is a rename within one file
    system; ``...tmp.mp4`` with ``keep_ext``, for writers that choose the
    format from the extension (OpenCV's ``VideoWriter``, Pillow)."""
    folder, name = osp.split(path)
    ext = osp.splitext(name)[1] if keep_ext else ''
    return osp.join(folder,
                    f'.{name}.{os.getpid()}.{next(_counter)}.tmp{ext}')


def _fsync_dir(folder: str) -> None:
    """Make a rename in ``folder`` durable, where the system allows."""
    try:
        fd = os.open(folder or '.', os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync folders; the rename stands
    finally:
        os.close(fd)


def _commit(tmp: str, dest: str, synced: bool) -> None:
    """Move a complete temporary file over ``dest``."""
    if not synced:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    # A rewritten file keeps the permissions the user gave the old one.
    try:
        os.chmod(tmp, os.stat(dest).st_mode & 0o7777)
    except FileNotFoundError:
        pass
    os.replace(tmp, dest)
    _fsync_dir(osp.dirname(dest))


def _destination(path: str) -> str:
    """Where writing ``path`` lands: through a symbolic link, its target,
    so that the link survives as a plain ``open(path, 'w')`` leaves it."""
    path = os.fspath(path)
    return osp.realpath(path) if osp.islink(path) else path


@contextlib.contextmanager
def _atomic(path: str, keep_ext: bool) -> Iterator[tuple]:
    dest = _destination(path)
    tmp = temp_path(dest, keep_ext)
    state = dict(synced=False)
    try:
        yield tmp, state
        if not osp.exists(tmp):
            raise FileNotFoundError(f'nothing was written for {path!r}')
        _commit(tmp, dest, state['synced'])
    except BaseException as error:
        # Ctrl-C included: the old file stays, the partial one goes.
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if (isinstance(error, OSError) and not isinstance(error, NoSpaceError)
                and error.errno in NO_ROOM_ERRNOS):
            raise no_space_error(error, path) from error
        raise


@contextlib.contextmanager
def atomic_path(path: str, keep_ext: bool = True) -> Iterator[str]:
    """Give a temporary file name to write; it replaces ``path`` when the
    block ends without an exception, and is removed otherwise.

    For writers that take a file name rather than a file object. Example::

        with atomic_path('out.mp4') as tmp:
            writer = cv2.VideoWriter(tmp, ...)
            ...
            writer.release()

    Through a symbolic link, the link's target is replaced and the link
    kept; ``keep_ext`` as for :func:`temp_path`. A FileNotFoundError when
    the block wrote nothing to the temporary path (``path`` is then left
    as it was).
    """
    with _atomic(path, keep_ext) as (tmp, _):
        yield tmp


@contextlib.contextmanager
def atomic_write(path: str,
                 mode: str = 'wb',
                 encoding: Optional[str] = None,
                 newline: Optional[str] = None) -> Iterator[IO]:
    """Open a file for writing that replaces ``path`` only when complete.

    The data goes to a temporary file beside ``path`` (see
    :func:`temp_path`), flushed and synced to disk, then renamed over
    ``path`` with ``os.replace`` when the block ends. On any exception,
    ``KeyboardInterrupt`` included, the temporary file is removed and
    ``path`` keeps its previous content.

    Args:
        path (str): The destination. Through a symbolic link, the link's
            target is replaced and the link kept.
        mode (str): ``'wb'`` (default), ``'w'`` or ``'wt'``.
        encoding (str, optional): Text encoding; UTF-8 by default in text
            mode.
        newline (str, optional): As for :func:`open`, text mode only.

    Yields:
        file: The open temporary file.
    """
    if mode not in ('w', 'wt', 'wb'):
        raise ValueError(f'atomic_write writes a whole file: mode must be '
                         f"'w', 'wt' or 'wb', got {mode!r}")
    text = dict(encoding=encoding or 'utf-8', newline=newline)
    with _atomic(path, keep_ext=False) as (tmp, state):
        with open(tmp, mode, **({} if 'b' in mode else text)) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        state['synced'] = True


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


class _RecordingWriter:
    """A binary file that keeps the OSError its ``write`` raised."""

    def __init__(self, f: IO):
        self.f = f
        self.error: Optional[OSError] = None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.f.flush()


def torch_save_to(obj: object, f: IO) -> None:
    """``torch.save(obj, f)`` into an open binary file, raising the file's
    own OSError when a write fails (torch turns it into ``RuntimeError:
    [enforce fail at inline_container.cc:...] unexpected pos ...``, which
    names neither the file nor the cause, e.g. a full disk)."""
    import torch
    writer = _RecordingWriter(f)
    try:
        torch.save(obj, writer)
    except RuntimeError:
        if writer.error is not None:
            raise writer.error from None
        raise


def atomic_save_torch(obj: object, path: str) -> None:
    """``torch.save(obj, path)`` through :func:`atomic_write`
    (:class:`NoSpaceError` when there is no room; the previous file is
    intact)."""
    with atomic_write(path, 'wb') as f:
        torch_save_to(obj, f)


def same_file(a: str, b: str) -> bool:
    """Whether two existing paths name one file: the same path, or linked
    by a hard or symbolic link (compared by device and inode); False also
    when either does not exist or cannot be examined."""
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
    """Refuse an output path that would destroy an input or cannot be
    written, and create its folder; meant to run before any work.

    Args:
        path (str): The output file.
        inputs (list[str]): Files the run reads (None entries and paths
            that do not exist are passed over).
        what (str): How the message names the output, e.g. ``'--viz'``.
            Defaults to ``'output'``.

    Returns:
        str: ``path``, unchanged.

    Raises:
        OutputPathError: When ``path`` is empty, is a folder, is the same
            file as one of ``inputs`` (also through a hard or symbolic
            link; the message names both), or its folder is missing and
            cannot be created, or is not writable.
    """
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
