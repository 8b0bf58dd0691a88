"""Finding the video files that paths name: files as given, folders walked.
Only the standard library: the tools check their paths with it before torch.
"""
import errno
import os
import os.path as osp
import warnings
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..utils.paths import special_file_kind

#: File name endings taken as videos when a folder is walked (lower case).
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mkv', '.webm', '.mov', '.m4v', '.mpg',
                    '.mpeg', '.wmv', '.flv', '.3gp', '.ts', '.ogv')


class NoVideosError(ValueError):
    """A folder given as input holds no video files."""


def path_problem(path: str) -> Optional[str]:
    """Why ``os.stat`` refuses ``path``, as a phrase to follow it (``'does
    not exist'`` ...), or None."""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return ('is a symbolic link loop (following it leads back to '
                    'itself)')
        if osp.islink(path) and error.errno == errno.ENOENT:
            return ('is a broken symbolic link (nothing exists at '
                    f'{osp.realpath(path)!r})')
        if error.errno == errno.ENOENT:
            return 'does not exist'
        if error.errno == errno.EACCES:
            return 'cannot be read: permission denied'
        return f'cannot be read: {error.strerror or error}'
    return None


def find_videos(paths: Sequence[str],
                extensions: Sequence[str] = VIDEO_EXTENSIONS,
                unreadable: Optional[Dict[str, str]] = None) -> List[str]:
    """Video files named by ``paths``, each once: files as given, folders
    walked in sorted order for ``extensions``, skipping hidden entries and
    links to folders; broken links inside are returned for the reader to
    report. ``unreadable`` receives ``{subfolder: message}`` of those that
    cannot be listed (else each is a warning).

    Raises:
        FileNotFoundError: A path does not exist, is a broken symbolic
            link or a symbolic link loop (the message says which).
        PermissionError: A folder given cannot be listed.
        NoVideosError: A folder holds no video file.
    """
    if not paths:
        raise NoVideosError('No video given: name video files or folders')
    found: Dict[str, str] = {}  # by real path: each file once
    for path in paths:
        if osp.isfile(path):
            videos = [path]
        elif osp.isdir(path):
            unlisted: Dict[str, str] = {}
            videos = list(_walk_videos(path, tuple(extensions), unlisted))
            if path in unlisted:
                raise PermissionError(unlisted[path])
            if not videos:
                raise NoVideosError(
                    f'Folder {path!r} holds no video files (looked for '
                    f'{", ".join(extensions)}, in subfolders too'
                    + (f'; {len(unlisted)} subfolder(s) cannot be listed, '
                       f'e.g. {next(iter(unlisted))!r}' if unlisted else '')
                    + '); point to the folder that has them, or name the '
                    'files')
            if unreadable is None:
                for message in unlisted.values():
                    warnings.warn(message)
            else:
                unreadable.update(unlisted)
        else:
            kind = special_file_kind(path)
            if kind is not None:  # never opened: a FIFO would block
                raise FileNotFoundError(f'Video path {path!r} is {kind}, '
                                        'not a regular file or a folder')
            problem = path_problem(path) or 'is not a file or a folder'
            raise FileNotFoundError(
                f'Video path {path!r} {problem}; check the spelling '
                '(relative paths start from the current directory)')
        for video in videos:
            found.setdefault(osp.realpath(video), video)
    return list(found.values())


def _walk_videos(folder: str, extensions: Tuple[str, ...],
                 unlisted: Dict[str, str]) -> Iterable[str]:
    def note(error: OSError) -> None:
        # os.walk would skip a folder it cannot list without a word.
        name = error.filename or folder
        unlisted[name] = (f'Folder {name!r} cannot be listed '
                          f'({error.strerror or error}); its videos are '
                          'left out')

    # followlinks=False: a link back to a parent folder cannot loop.
    for root, dirs, files in os.walk(folder, onerror=note):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        for name in sorted(files):
            if not name.startswith('.') and name.lower().endswith(extensions):
                yield osp.join(root, name)
