"""Cached video features, so that a second search of the same folder embeds
only the videos that are new or changed (:func:`embed_folder_cached`), and
another question of a video neither decodes nor embeds it again
(:class:`WindowCache`).

One file (``<cache home>/features/`` or ``moments/<name>-<digits>.pt``):
:data:`CACHE_MAGIC`, then a ``torch.save`` archive (read with
``weights_only=True``) holding, per model (and window), each video's
version (size, times, inode) and features. Anything else
at the path is refused (:class:`NotACacheError`), never written over; a
damaged file of ours is rebuilt with a warning. Writers lock the folder,
merge their model's entries into the file as it is now and rename a
complete file over it.

Example:
    >>> scorer = load_scoring_model(name='ViT-B/32-8')
    >>> features, stats = embed_folder_cached(scorer, 'clips/')
    >>> len(stats.computed), len(stats.reused), stats.cache_path
    >>> cache = WindowCache('clips.actionclip_moments.pt', scorer.identity,
    ...                     2.0, 1.0)
    >>> cached = cache.lookup('clips/a.mp4', os.stat('clips/a.mp4'))
"""
import contextlib
import hashlib
import io
import os
import os.path as osp
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from models.apis.video_scoring import (ScoringModel, embed_videos,
                                       find_videos, path_problem)
from models.datasets.transforms import VideoReadError
from models.utils.paths import cache_home, file_version, not_a_file
from models.utils.safe_io import atomic_write, torch_save_to

try:
    import fcntl
except ImportError:  # Windows: no flock; concurrent searches may race
    fcntl = None

#: First bytes of every cache file: ours even when the rest is damaged.
CACHE_MAGIC = b'ACTIONCLIP-FEATURE-CACHE\n'

CACHE_KIND = 'actionclip-feature-cache'

#: Format 1 (no magic) was a bare ``torch.save`` of ``{'format': 1, ...}``.
_CACHE_FORMAT = 2

#: Bump when a change to :func:`embed_videos` alters a video's features.
EMBEDDING_VERSION = 1

#: Bump when a change to windows.py or window_stream.py alters the
#: windows or their features.
WINDOW_VERSION = 1


class NotACacheError(ValueError):
    """A cache path names something that is not one of our caches."""


def cache_file_for(path: str, kind: str) -> str:
    """``<cache home>/<kind>/<name>-<16 hex digits of its real path>.pt``."""
    real = osp.realpath(path)
    digest = hashlib.sha256(
        real.encode('utf-8', 'surrogateescape')).hexdigest()[:16]
    return osp.join(cache_home(), kind,
                    f'{osp.basename(real) or "root"}-{digest}.pt')


def default_cache_path(folder: str) -> str:
    """The default feature cache of ``folder``."""
    return cache_file_for(folder, 'features')


def model_key(identity: str) -> str:
    """The key of a model's entries: ``'<EMBEDDING_VERSION>|<identity>'``."""
    return f'{EMBEDDING_VERSION}|{identity}'


@dataclass
class CacheStats:
    """What :func:`embed_folder_cached` or ``video_windows`` did
    (``failed``: ``{entry: error message}``; ``cache_path`` None: no
    cache; ``windows``: windows embedded)."""

    computed: List[str]
    reused: List[str]
    failed: Dict[str, str]
    cache_path: Optional[str]
    saved: bool
    windows: int = 0


def _empty_cache() -> dict:
    return dict(kind=CACHE_KIND, format=_CACHE_FORMAT, models={})


def _not_a_cache(path: str, what: str) -> NotACacheError:
    return NotACacheError(
        f'The feature cache path {path!r} {what}, not a feature cache of '
        'this tool; it was left untouched: pass another --cache (or '
        '--no-cache), or delete that file if you are sure it is not needed')


def _classify(path: str, keep_body: bool = False) -> Tuple[str, bytes]:
    """``('missing' | 'ours' | 'format 1', bytes after the magic when
    keep_body)``; NotACacheError or OSError for anything else."""
    if not osp.lexists(path):
        return 'missing', b''
    if not osp.isfile(path):  # a FIFO is never opened: it would block
        raise _not_a_cache(path, path_problem(path) or not_a_file(path))
    try:
        with open(path, 'rb') as f:
            head = f.read(len(CACHE_MAGIC))
            body = f.read() if head == CACHE_MAGIC and keep_body else b''
    except OSError as error:
        raise OSError(
            f'Cannot read the feature cache {path!r} '
            f'({error.strerror or error}); pass another --cache, or '
            '--no-cache') from error
    if head == CACHE_MAGIC:
        return 'ours', body
    # Format 1 was a bare torch.save archive (a zip file); mmap reads the
    # pickle only, not the tensors, should the file be a large checkpoint.
    if head.startswith(b'PK\x03\x04'):
        try:
            old = torch.load(path, map_location='cpu', weights_only=True,
                             mmap=True)
        except Exception:  # not ours, or unrecognisable: refused
            old = None
        if (isinstance(old, dict) and old.get('format') == 1
                and isinstance(old.get('models'), dict)):
            return 'format 1', b''
    raise _not_a_cache(path, 'is a file of another kind')


def read_cache(path: str) -> Tuple[dict, Optional[str]]:
    """``(cache, None)``, or ``(empty cache, why ours must be rebuilt)``;
    the cache's ``models``: ``{model_key: {name: entry}}``. Raises
    :class:`NotACacheError` or OSError as :func:`check_cache_path`."""
    what, body = _classify(path, keep_body=True)
    if what == 'missing':
        return _empty_cache(), None
    if what == 'format 1':
        return _empty_cache(), 'format 1, from an older version'
    try:
        cache = torch.load(
            io.BytesIO(body), map_location='cpu', weights_only=True)
    except Exception as error:  # damaged: only costs a recompute
        return _empty_cache(), f'unreadable ({type(error).__name__})'
    if not (isinstance(cache, dict) and cache.get('kind') == CACHE_KIND
            and isinstance(cache.get('models'), dict)):
        return _empty_cache(), 'malformed'
    if cache.get('format') != _CACHE_FORMAT:
        return _empty_cache(), f'format {cache.get("format")!r}'
    return cache, None


def check_cache_path(path: str) -> str:
    """Before any work: refuse a path that is not one of our caches
    (:class:`NotACacheError`; OSError where unreadable), create its folder,
    return the absolute path."""
    path = osp.abspath(path)
    _classify(path)
    folder = osp.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise OSError(
            f'Cannot create the folder {folder!r} for the feature cache '
            f'{path!r} ({error.strerror or error}); pass another --cache, '
            'or --no-cache') from error
    return path


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """Writers take turns by a lock on the folder (the file is renamed)."""
    if fcntl is None:
        yield
        return
    fd = os.open(osp.dirname(path) or '.', os.O_RDONLY)
    try:
        # No flock on folders (some network file systems): the rename
        # still keeps the file whole.
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def save_entries(path: str, key: str, entries: dict,
                 merge: bool = False) -> bool:
    """Under the lock, read the file again and replace ``models[key]`` by
    ``entries`` (merged into its old ones with ``merge``). Returns whether
    it was written; a failure is a warning."""
    # Through a symbolic link: write the file it points to.
    target = osp.realpath(path)
    try:
        with _locked(target):
            cache, _ = read_cache(target)  # a damaged file was warned about
            old = cache['models'].get(key) if merge else None
            cache['models'][key] = {
                **(old if isinstance(old, dict) else {}), **entries}
            with atomic_write(target) as f:
                f.write(CACHE_MAGIC)
                torch_save_to(cache, f)
    except (OSError, NotACacheError) as error:
        warnings.warn(f'Could not write the feature cache {path} ({error}); '
                      'features will be computed again next time')
        return False
    return True


class EntryCache:
    """One model's entries (``key``) in the cache file ``path``, which is
    refused at once (:class:`NotACacheError`, OSError) when it is not one
    of our caches."""

    def __init__(self, path: str, key: str):
        self.path = check_cache_path(path)
        self.key = key
        cache, problem = read_cache(self.path)
        if problem:
            warnings.warn(f'Rebuilding the feature cache {self.path} '
                          f'({problem})')
        self.rebuild = problem is not None
        old = cache['models'].get(key)
        self.old: Dict[str, dict] = old if isinstance(old, dict) else {}
        self.new: Dict[str, dict] = {}

    def current(self, name: str, stat: os.stat_result) -> Optional[dict]:
        """The entry of ``name`` when it holds features and its file is
        unchanged (``stat``: its ``os.stat`` now), else None."""
        entry = self.old.get(name)
        if isinstance(entry, dict) and isinstance(
                entry.get('features'), torch.Tensor) and all(
                    entry.get(k) == v for k, v in file_version(stat).items()):
            return entry
        return None

    def put(self, name: str, stat: os.stat_result, **values) -> None:
        """Remember an entry for :meth:`save`; ``stat`` is taken before
        decoding, so a file changed meanwhile is not current."""
        self.new[name] = dict(file_version(stat), **values)

    def save(self) -> bool:
        """Merge the new entries into the file; whether it was written (a
        failed write is a warning)."""
        if not self.new and not self.rebuild:
            return False
        saved = save_entries(self.path, self.key, self.new, merge=True)
        if saved:
            self.old.update(self.new)
            self.new, self.rebuild = {}, False
        return saved


def stat_videos(
    videos: Sequence[str],
    on_failure: Optional[Callable[[str, Exception], None]] = None
) -> Tuple[Dict[str, os.stat_result], Dict[str, str]]:
    """``({video: os.stat}, {video: error message})``; each failure is
    also given to ``on_failure(video, error)``."""
    stats: Dict[str, os.stat_result] = {}
    failed: Dict[str, str] = {}
    for video in videos:
        try:
            stats[video] = os.stat(video)
        except OSError:
            problem = path_problem(video) or 'cannot be read'
            error = VideoReadError(f'Video {video!r} {problem}; fix or '
                                   'remove it')
            failed[video] = str(error)
            if on_failure is not None:
                on_failure(video, error)
    return stats, failed


def embed_folder_cached(
    scorer: ScoringModel,
    folder: str,
    cache_path: Optional[str] = None,
    batch_size: int = 8,
    progress: bool = True,
    on_failure: Optional[Callable[[str, Exception], None]] = None,
    num_workers: int = 0,
    use_cache: bool = True
) -> Tuple[Dict[str, torch.Tensor], CacheStats]:
    """Features of every video in a folder, embedding only those new or
    changed (:func:`~models.utils.paths.file_version`); removed videos are
    dropped, other models' entries kept.

    Args:
        cache_path (str, optional): Defaults to :func:`default_cache_path`.
        on_failure, num_workers, batch_size: As :func:`embed_videos`;
            ``on_failure`` also gets broken links and unlistable folders.
        use_cache (bool): False: neither read nor write a cache.

    Returns:
        tuple: ``({video: (V, D) features}, CacheStats)``, unreadable
        videos left out (and not cached).

    Raises:
        NotADirectoryError: ``folder`` is not a folder.
        NotACacheError, OSError: As :func:`check_cache_path`.
    """
    if not osp.isdir(folder):
        problem = path_problem(folder) or 'is not a folder'
        raise NotADirectoryError(f'{folder!r} {problem}: give a folder of '
                                 'videos')
    key = model_key(scorer.identity)
    cache = (EntryCache(cache_path or default_cache_path(folder), key)
             if use_cache else None)
    failed: Dict[str, str] = {}
    videos = find_videos([folder], unreadable=failed)
    if on_failure is not None:
        for name, message in failed.items():
            on_failure(name, OSError(message))
    stats, unreadable = stat_videos(videos, on_failure)
    failed.update(unreadable)
    names = {video: osp.relpath(video, folder) for video in stats}
    cached = {video: cache.current(name, stats[video])
              for video, name in names.items()} if cache else {}
    features = {video: entry['features']
                for video, entry in cached.items() if entry}
    reused = list(features)
    todo = [video for video in names if video not in features]
    new, unreadable = embed_videos(scorer, todo, batch_size,
                                   progress and bool(todo), on_failure,
                                   num_workers)
    failed.update(unreadable)
    features.update(new)
    saved = False
    if cache is not None:
        # Removed and unreadable videos are dropped from the file.
        for video, feats in features.items():
            cache.put(names[video], stats[video], features=feats)
        if new or cache.rebuild or set(cache.new) != set(cache.old):
            saved = save_entries(cache.path, key, cache.new)
    return ({v: features[v] for v in names if v in features},
            CacheStats(list(new), reused, failed, cache and cache.path,
                       saved))


def default_window_cache_path(path: str) -> str:
    """The default window cache of a folder or a video."""
    return cache_file_for(path, 'moments')


def window_cache_key(identity: str,
                     window_s: Optional[float],
                     stride_s: Optional[float],
                     window_frames: Optional[int] = None) -> str:
    """``'windows<version>|<window>|<stride>|<model key>'``, or with
    ``window_frames``, ``'windows<version>|frames<N>|<model key>'``."""
    size = (f'frames{int(window_frames)}' if window_frames is not None else
            f'{float(window_s)!r}|{float(stride_s)!r}')
    return f'windows{WINDOW_VERSION}|{size}|{model_key(identity)}'


@dataclass
class VideoWindows:
    """The windows of one video: ``(start_s, end_s)`` and ``(K, V, D)``
    normalised features of each, and of each one's still (when asked)."""

    video: str
    num_frames: int
    fps: float
    windows: List[Tuple[float, float]]
    features: torch.Tensor
    stills: Optional[torch.Tensor] = None

    @property
    def duration_s(self) -> float:
        """The video's length in seconds (the last window's end: the
        windows cover the video)."""
        return float(self.windows[-1][1])


class WindowCache(EntryCache):
    """The window features of one model (``identity``), window and stride
    (or ``window_frames``) in the cache file ``path`` (as
    :class:`EntryCache`)."""

    def __init__(self,
                 path: str,
                 identity: str,
                 window_s: Optional[float],
                 stride_s: Optional[float],
                 window_frames: Optional[int] = None):
        super().__init__(path, window_cache_key(identity, window_s, stride_s,
                                                window_frames))

    def lookup(self,
               video: str,
               stat: os.stat_result,
               stills: bool = False) -> Optional[VideoWindows]:
        """The cached windows of a video (``stat``: its ``os.stat`` now),
        with stills where asked; None when not cached or changed."""
        entry = self.current(osp.abspath(video), stat)
        if entry is None or (stills and entry.get('stills') is None):
            return None
        return VideoWindows(video, entry['num_frames'], entry['fps'],
                            [tuple(t) for t in entry['windows'].tolist()],
                            entry['features'], entry.get('stills'))

    def add(self, stat: os.stat_result, windows: VideoWindows) -> None:
        """Remember a video's windows for :meth:`save`, as :meth:`put`."""
        stills = {} if windows.stills is None else dict(
            stills=windows.stills.contiguous())
        self.put(osp.abspath(windows.video), stat,
                 num_frames=int(windows.num_frames), fps=float(windows.fps),
                 windows=torch.tensor(windows.windows, dtype=torch.float64),
                 features=windows.features.contiguous(), **stills)
