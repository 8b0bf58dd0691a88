"""Whether installed distributions still hold the files their wheel's
``RECORD`` lists (sha256): pip does not notice files written over after
installation. Standard library only: it must run where damaged packages no
longer import.
"""
import base64
import hashlib
import importlib.metadata
import os.path as osp
from typing import Iterable, List, NamedTuple, Optional


class Damage(NamedTuple):
    """An installed distribution and its ``files`` (as RECORD names them)
    that are missing or whose sha256 differs."""
    name: str
    version: str
    files: List[str]


def file_digest(path: str) -> str:
    """A file's sha256 as RECORD writes it after ``sha256=`` (urlsafe
    base64, no padding)."""
    with open(path, 'rb') as f:
        sha = hashlib.file_digest(f, 'sha256')
    return base64.urlsafe_b64encode(sha.digest()).decode().rstrip('=')


def changed_files(dist: importlib.metadata.Distribution,
                  suffixes: Optional[Iterable[str]] = None) -> List[str]:
    """The files (as RECORD names them) of the installed distribution
    ``dist`` that are missing or differ from their RECORD hash; only those
    whose name ends with one of ``suffixes`` where given (e.g. ``('.py',)``
    for a huge distribution), else every file with a hash."""
    suffixes = tuple(suffixes) if suffixes else None
    changed = []
    for f in dist.files or ():
        if f.hash is None or f.hash.mode != 'sha256':
            continue  # RECORD itself, .pyc files, INSTALLER
        if suffixes and not str(f).endswith(suffixes):
            continue
        path = str(f.locate())
        if not osp.isfile(path) or file_digest(path) != f.hash.value:
            changed.append(str(f))
    return changed


def damaged_distributions() -> List[Damage]:
    """One :class:`Damage` per installed distribution whose files differ
    from its RECORD."""
    damaged = []
    for dist in importlib.metadata.distributions():
        files = changed_files(dist)
        if files:
            damaged.append(
                Damage(dist.metadata['Name'], dist.version, files))
    return damaged
