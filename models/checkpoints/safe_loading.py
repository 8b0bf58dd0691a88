"""Safe checkpoint loading under torch's ``weights_only=True``.

mmengine 0.10.7 calls ``torch.load(filename, map_location=...)``, which
defaults to ``weights_only=True`` since torch 2.6, and the checkpoints its
Runner saves cannot be loaded that way: ``message_hub`` holds
:class:`~mmengine.logging.HistoryBuffer` objects (whose pickles call
``builtins.getattr``) and numpy scalars. ``mim test``, ``--resume``,
``load_from`` and ``init_recognizer`` therefore all fail. Switching
``weights_only`` off, or allowing ``getattr``, would let any checkpoint run
arbitrary code, so this module instead:

* loads every checkpoint with ``weights_only=True`` plus a small allowlist,
  scoped to the call, for checkpoints saved by plain mmengine elsewhere:
  numpy arrays, scalars and dtypes, and a restricted stand-in for the
  ``HistoryBuffer``/``getattr`` pattern that can only rebuild the history
  data (see :data:`ALLOWED_GLOBAL_NAMES`);
* is what this project's loading goes through: ``init_actionclip`` and
  the tools, and ``load_from``/``--resume``/``mim test`` of its configs
  (:class:`~models.engine.runner.ActionClipRunner`); URLs are fetched into
  torch hub's cache by :mod:`models.backbones.downloads`;
* is registered in mmengine's :class:`~mmengine.runner.CheckpointLoader`
  for the released ActionCLIP URLs only (:data:`RELEASE_URL_PREFIX`, for
  ``init_recognizer``); local paths and other URLs keep mmengine's loader,
  so that other models load as mmengine and torch load them.

Checkpoints saved by this project's runner need no globals beyond torch's
defaults (:mod:`models.checkpoints.message_hub`).

A file that needs anything else raises :class:`UnsafeCheckpointError`,
unless the user opts in with ``ACTIONCLIP_TRUST_CHECKPOINTS=1``.
"""
import functools
import logging
import os
import os.path as osp
import pickle
import re
import struct
import zipfile
from typing import Any, Callable, FrozenSet, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader

# CheckpointDownloadError is re-exported: the loaders raise it for URLs.
from models.backbones.downloads import (CheckpointDownloadError,
                                        download_to_hub_cache)
from models.checkpoints.checks import check_mapping, remember_source

#: Environment variable that, set to ``1``, lets checkpoints needing more
#: than the allowlist load with ``weights_only=False``.
TRUST_ENV = 'ACTIONCLIP_TRUST_CHECKPOINTS'

# HistoryBuffer's built-in statistics; its pickle stores them as
# ``getattr(HistoryBuffer, name)`` (protocol 2 cannot name nested
# qualnames directly).
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
_HISTORY_BUFFER_GLOBAL = 'mmengine.logging.history_buffer.HistoryBuffer'
_GETATTR_GLOBAL = 'builtins.getattr'
_GETATTR_REFUSAL = 'builtins.getattr is only accepted as'
# Words of the weights_only unpickler's refusals of unsafe content, as
# opposed to failures on garbage ("Unsupported operand", EOF).
_UNSAFE_SIGNS = ('GLOBAL', 'allowlisted', 'unrecognized function', 'blocked',
                 'HistoryBuffer', _GETATTR_REFUSAL)

PathOrUrl = Union[str, os.PathLike]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs globals outside the ``weights_only`` allowlist.

    A subclass of :class:`pickle.UnpicklingError`, the error torch raises
    for the same refusal, so existing handlers keep working.

    Args:
        path (str): The checkpoint file.
        offending (list[str]): Globals it needs that are not allowed;
            empty when they could not be listed.
        reason (str): torch's reason for the refusal.
    """

    def __init__(self, path: str, offending: Sequence[str],
                 reason: str) -> None:
        self.path = path
        self.offending = list(offending)
        self.reason = reason
        needs = ', '.join(self.offending) or (
            'objects that are not plain tensors and numbers')
        super().__init__(
            f'Refusing to load checkpoint {path}: it needs globals outside '
            f'the weights_only allowlist of ActionCLIP: {needs}. Reason: '
            f'{reason}. Unpickling them can run arbitrary code. Only if you '
            f'trust this file, set the environment variable {TRUST_ENV}=1 '
            'to load it with weights_only=False.')

    def __reduce__(self) -> tuple:
        # Exceptions are pickled between processes (e.g. DataLoader
        # workers); the default would call __init__ with the message only.
        return type(self), (self.path, self.offending, self.reason)


class CheckpointReadError(RuntimeError):
    """A checkpoint file cannot be read (truncated, corrupt, TorchScript)."""


# ---------------------------------------------------------------------------
# Allowlist
# ---------------------------------------------------------------------------


class _LegacyHistoryBuffer(HistoryBuffer):
    """Stand-in for ``HistoryBuffer`` while unpickling plain mmengine files.

    Its ``__setstate__`` accepts only the history data: numeric arrays and
    ``max_length``. The pickled ``statistics_methods`` are dropped because
    HistoryBuffer registers them at class level anyway, and accepting them
    would let a file install arbitrary allowed callables there. Instances
    are turned into real ``HistoryBuffer`` objects after loading.
    """

    def __setstate__(self, state: Any) -> None:
        """Take the validated history data from ``state``.

        Args:
            state (Any): The pickled ``__dict__`` of a HistoryBuffer.
        """
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(
                f'unexpected HistoryBuffer state of type {type(state)}')
        data = {}
        for key in ('_log_history', '_count_history'):
            value = state.get(key)
            if not (isinstance(value, np.ndarray)
                    and value.dtype.kind in 'biuf' and value.ndim == 1):
                raise pickle.UnpicklingError(
                    f'HistoryBuffer.{key} must be a 1-d numeric array')
            data[key] = value
        max_length = state.get('max_length', 1000000)
        if not isinstance(max_length, (int, np.integer)):
            raise pickle.UnpicklingError(
                'HistoryBuffer.max_length must be an integer')
        data['max_length'] = int(max_length)
        self.__dict__.update(data)


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Restricted stand-in for ``builtins.getattr`` in mmengine pickles.

    Only resolves the built-in statistics methods of HistoryBuffer, which
    is the one way mmengine checkpoints use ``getattr``; anything else is
    refused, so a checkpoint cannot reach arbitrary attributes.

    Args:
        obj (Any): Object whose attribute the pickle asks for.
        name (str): Attribute name.

    Returns:
        Any: The plain function ``HistoryBuffer.<name>`` (it cannot be
        called during unpickling, since it is not allowlisted).
    """
    if obj is _LegacyHistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'{_GETATTR_REFUSAL} getattr(HistoryBuffer, <statistics method>) '
        f'in mmengine checkpoints, not getattr({type(obj).__name__} '
        f'object, {name!r})')


@functools.lru_cache(maxsize=None)
def _allowlist() -> Tuple[Tuple[Union[Callable, type], str], ...]:
    """Build the allowlist as ``(object, global name)`` pairs.

    Returns:
        tuple: Pairs for :func:`torch.serialization.safe_globals`; the name
        is the ``module.qualname`` a pickle refers to the object by.
    """
    # The reduce functions of arrays and scalars; found this way because
    # their module moved from numpy.core to numpy._core in numpy 2.
    reconstruct = np.array(0).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    pairs = [
        # ndarray pickles as _reconstruct(ndarray, ...) then BUILD.
        (reconstruct, 'numpy.core.multiarray._reconstruct'),
        (reconstruct, 'numpy._core.multiarray._reconstruct'),
        (np.ndarray, 'numpy.ndarray'),
        # numpy scalars (best_score, eta) pickle as scalar(dtype, bytes).
        (scalar, 'numpy.core.multiarray.scalar'),
        (scalar, 'numpy._core.multiarray.scalar'),
        # Both of the above pickle their dtype as dtype(str) then BUILD.
        (np.dtype, 'numpy.dtype'),
        # HistoryBuffers of plain mmengine checkpoints, restricted.
        (_LegacyHistoryBuffer, _HISTORY_BUFFER_GLOBAL),
        (_history_buffer_getattr, _GETATTR_GLOBAL),
    ]
    # BUILD on a dtype checks the concrete dtype class (numpy.dtypes.*),
    # which no GLOBAL names; allow those of plain numeric/text dtypes.
    for char in '?bhilqBHILQefdgFDGUS':
        dtype_cls = type(np.dtype(char))
        pairs.append(
            (dtype_cls, f'{dtype_cls.__module__}.{dtype_cls.__qualname__}'))
    return tuple(pairs)


def allowed_global_names() -> FrozenSet[str]:
    """Names of the globals a checkpoint may use beyond torch's defaults.

    Returns:
        frozenset[str]: ``module.qualname`` strings.
    """
    return frozenset(name for _, name in _allowlist())


#: Globals allowed beyond torch's ``weights_only`` defaults.
ALLOWED_GLOBAL_NAMES = allowed_global_names()

# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def _trusted() -> bool:
    """Whether the user opted in to loading checkpoints unsafely."""
    return os.environ.get(TRUST_ENV, '') == '1'


def _torch_reason(error: BaseException) -> str:
    """Extract the unpickler's own reason from torch's long message."""
    # torch re-raises the unpickler's error "from None", with a long
    # explanation; the original is still the context.
    if isinstance(error.__context__, pickle.UnpicklingError):
        text = str(error.__context__)
    else:
        text = str(error)
        match = re.search(r'WeightsUnpickler error:\s*(\S.*)', text)
        if match:
            text = match.group(1)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _starts_like_pickle(path: str) -> bool:
    """Whether a non-zip file starts like a legacy ``torch.save`` file."""
    with open(path, 'rb') as f:
        return f.read(1) == b'\x80'  # pickle PROTO opcode


def _legacy_pickle_globals(path: str, limit: int = 1 << 20) -> list:
    """Globals named by a plain (non-zip) pickle, read with pickletools,
    which decodes opcodes without running any.

    Args:
        path (str): The file.
        limit (int): Opcodes looked at, at most.

    Returns:
        list[str]: ``module.name`` of each GLOBAL / STACK_GLOBAL, in order.
    """
    import pickletools
    names, strings = [], []
    try:
        with open(path, 'rb') as f:
            for count, (op, arg, _) in enumerate(pickletools.genops(f)):
                if count > limit:
                    break
                if op.name == 'GLOBAL':
                    names.append(str(arg).replace(' ', '.'))
                elif op.name == 'STACK_GLOBAL' and len(strings) >= 2:
                    names.append(f'{strings[-2]}.{strings[-1]}')
                elif isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # garbage, or the end of a partial file
        pass
    return list(dict.fromkeys(names))


def _refusal(path: str, error: pickle.UnpicklingError) -> Exception:
    """Turn torch's weights_only refusal into a clear exception.

    Args:
        path (str): The checkpoint file.
        error (UnpicklingError): What ``torch.load`` raised.

    Returns:
        Exception: An :class:`UnsafeCheckpointError`, or a
        :class:`CheckpointReadError` when the file is not readable at all.
    """
    reason = _torch_reason(error)
    is_zip = zipfile.is_zipfile(path)
    offending = []
    if is_zip:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(
                path)
        except Exception as scan_error:
            return CheckpointReadError(
                f'Cannot read checkpoint {path}: the file is truncated or '
                f'corrupt ({reason}; {scan_error}). Download or copy it '
                'again.')
        offending = [n for n in unsafe if n not in ALLOWED_GLOBAL_NAMES]
    # The legacy (non-zip) format cannot be scanned, but the unpickler
    # names the first global it refused.
    if not is_zip:
        offending += [
            n for n in _legacy_pickle_globals(path)
            if n not in ALLOWED_GLOBAL_NAMES and n not in offending
        ]
    match = re.search(r'GLOBAL (\S+) (?:was not an allowed global|whose)',
                      reason)
    if match and match.group(1) not in offending:
        offending.append(match.group(1))
    if _GETATTR_REFUSAL in reason:
        offending.append(_GETATTR_GLOBAL)
    if offending or any(sign in reason for sign in _UNSAFE_SIGNS):
        return UnsafeCheckpointError(path, offending, reason)
    if not is_zip and not _starts_like_pickle(path):
        return CheckpointReadError(
            f'{path} is not a PyTorch checkpoint ({reason}); it may be a '
            'partial download or an HTML error page. Download or copy it '
            'again.')
    return CheckpointReadError(
        f'Cannot read checkpoint {path}: the file is truncated or corrupt '
        f'({reason}). Download or copy it again.')


def _to_history_buffers(obj: Any) -> Any:
    """Replace restricted stand-ins by real HistoryBuffers, recursively.

    Args:
        obj (Any): A loaded checkpoint or part of it.

    Returns:
        Any: ``obj`` with every :class:`_LegacyHistoryBuffer` replaced.
    """
    if isinstance(obj, _LegacyHistoryBuffer):
        buffer = HistoryBuffer(max_length=obj.max_length)
        buffer._log_history = obj._log_history
        buffer._count_history = obj._count_history
        return buffer
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, (dict, list, _LegacyHistoryBuffer)):
                obj[key] = _to_history_buffers(value)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            if isinstance(value, (dict, list, _LegacyHistoryBuffer)):
                obj[i] = _to_history_buffers(value)
    return obj


def _is_corrupt(error: BaseException) -> bool:
    """Whether a ``torch.load`` error means a truncated/corrupt file."""
    if isinstance(error, (EOFError, UnicodeDecodeError, struct.error)):
        return True
    text = str(error)
    return any(
        sign in text for sign in ('PytorchStreamReader', 'central directory',
                                  'invalid header', 'truncated',
                                  'Ran out of input'))


def _safe_torch_load(path: str, map_location: Any) -> Any:
    """``torch.load`` with ``weights_only=True`` and our scoped allowlist.

    Args:
        path (str): Local checkpoint file.
        map_location (Any): Same as :func:`torch.load`.

    Returns:
        Any: The loaded object.
    """
    try:
        with torch.serialization.safe_globals(list(_allowlist())):
            checkpoint = torch.load(
                path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        refusal = _refusal(path, error)
        if not (isinstance(refusal, UnsafeCheckpointError) and _trusted()):
            raise refusal from error
        print_log(
            f'{TRUST_ENV}=1: loading {path} with weights_only=False although '
            f'it needs {", ".join(refusal.offending) or "unknown globals"}. '
            'Unpickling can run arbitrary code; only do this for files you '
            'trust.',
            logger='current',
            level=logging.WARNING)
        checkpoint = torch.load(
            path, map_location=map_location, weights_only=False)
        return _checked(checkpoint, path)
    except OSError:
        raise  # e.g. permissions; the message already names the file
    except Exception as error:  # garbage makes the unpickler fail anyhow
        if 'TorchScript' in str(error):
            raise CheckpointReadError(
                f'{path} is a TorchScript archive, not a checkpoint; load it '
                'with torch.jit.load') from error
        if _is_corrupt(error):
            raise CheckpointReadError(
                f'Cannot read checkpoint {path}: the file is truncated or '
                f'corrupt ({type(error).__name__}: {error}). Download or copy '
                'it again.') from error
        raise CheckpointReadError(
            f'Failed to load checkpoint {path}: {error}') from error
    return _checked(_to_history_buffers(checkpoint), path)


def _checked(checkpoint: Any, path: str) -> dict:
    """Refuse what is not a mapping; note the file its tensors came from
    (for the messages of :mod:`models.checkpoints.checks`)."""
    check_mapping(checkpoint, path)
    remember_source(checkpoint, path)
    return checkpoint


def load_from_local_safe(filename: PathOrUrl,
                         map_location: Any = None) -> Any:
    """Safe replacement of mmengine's ``load_from_local``.

    Args:
        filename (str | PathLike): Local checkpoint path.
        map_location (Any): Same as :func:`torch.load`.

    Returns:
        Any: The loaded checkpoint.
    """
    filename = osp.expanduser(os.fspath(filename))
    if not osp.isfile(filename):
        from models.utils.paths import require_file
        require_file(filename, 'Checkpoint')
    return _safe_torch_load(filename, map_location)


def load_from_http_safe(filename: str,
                        map_location: Any = None,
                        model_dir: Optional[str] = None,
                        progress: bool = os.isatty(0)) -> Any:
    """Safe replacement of mmengine's ``load_from_http``.

    Like mmengine, the file goes to torch hub's checkpoint cache (a file
    already there is used without network access), and in distributed
    runs only rank 0 downloads.

    Args:
        filename (str): http(s) URL of the checkpoint.
        map_location (Any): Same as :func:`torch.load`.
        model_dir (str, optional): Cache directory. Defaults to None:
            ``$TORCH_HOME/hub/checkpoints``.
        progress (bool): Whether to show a progress bar.

    Returns:
        Any: The loaded checkpoint.
    """
    rank, world_size = get_dist_info()
    if rank == 0:
        cached_file = download_to_hub_cache(filename, model_dir, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            cached_file = download_to_hub_cache(filename, model_dir, progress)
    return _safe_torch_load(cached_file, map_location)


def load_checkpoint_file(path_or_url: PathOrUrl,
                         map_location: Any = 'cpu') -> dict:
    """Load a checkpoint safely from a local path or an http(s) URL.

    Everything is unpickled with ``weights_only=True`` and the allowlist
    :data:`ALLOWED_GLOBAL_NAMES`; set ``ACTIONCLIP_TRUST_CHECKPOINTS=1`` to
    load files that need more (with a warning).

    Args:
        path_or_url (str | PathLike): Local file, or http(s) URL cached in
            ``$TORCH_HOME/hub/checkpoints``.
        map_location (Any): Same as :func:`torch.load`. Defaults to
            ``'cpu'``.

    Returns:
        dict: The checkpoint.

    Raises:
        FileNotFoundError: The local file does not exist.
        UnsafeCheckpointError: The file needs globals outside the
            allowlist and ``ACTIONCLIP_TRUST_CHECKPOINTS`` is not ``1``.
        CheckpointReadError: The file is truncated, corrupt or TorchScript.
        CheckpointDownloadError: The URL is not cached and cannot be
            downloaded.
    """
    path_or_url = os.fspath(path_or_url)
    if path_or_url.startswith(('http://', 'https://')):
        return load_from_http_safe(path_or_url, map_location=map_location)
    return load_from_local_safe(path_or_url, map_location=map_location)


#: Where MMAction2 publishes the released ActionCLIP checkpoints; only URLs
#: under it go through :func:`load_from_http_safe` in mmengine's
#: ``load_checkpoint`` (``init_recognizer``), since mmengine picks the
#: loader of the longest matching prefix. Every other path and URL keeps
#: mmengine's own loader.
RELEASE_URL_PREFIX = ('https://download.openmmlab.com/mmaction/v1.0/'
                      'projects/actionclip/')


def register_release_loader() -> None:
    """Load the released ActionCLIP URLs safely in mmengine's
    ``load_checkpoint``, through torch hub's cache; idempotent."""
    if RELEASE_URL_PREFIX not in CheckpointLoader._schemes:
        CheckpointLoader.register_scheme(
            prefixes=RELEASE_URL_PREFIX, loader=load_from_http_safe)


__all__ = [
    'ALLOWED_GLOBAL_NAMES', 'RELEASE_URL_PREFIX', 'TRUST_ENV',
    'CheckpointDownloadError', 'CheckpointReadError', 'UnsafeCheckpointError',
    'allowed_global_names', 'load_checkpoint_file', 'load_from_http_safe',
    'load_from_local_safe', 'register_release_loader'
]
