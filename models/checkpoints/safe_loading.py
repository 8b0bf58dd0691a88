"""Checkpoint loading under torch's ``weights_only=True``, plus an
allowlist scoped to the call (:data:`ALLOWED_GLOBAL_NAMES`: numpy arrays,
scalars, dtypes, and stand-ins that only rebuild the HistoryBuffers
mmengine's Runner saves). In mmengine's ``CheckpointLoader`` only the
released ActionCLIP URLs (:data:`RELEASE_URL_PREFIX`) are loaded so. A file
that needs more raises :class:`UnsafeCheckpointError` unless
``ACTIONCLIP_TRUST_CHECKPOINTS=1``.
"""
import functools
import logging
import os
import os.path as osp
import pickle
import pickletools
import re
import struct
import zipfile
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader

# CheckpointDownloadError is re-exported: the loaders raise it for URLs.
from models.backbones.downloads import (CheckpointDownloadError,
                                        download_to_hub_cache)
from models.checkpoints.checks import check_mapping, remember_source
from models.utils.paths import require_file

#: Set to ``1``, files needing more than the allowlist load unsafely.
TRUST_ENV = 'ACTIONCLIP_TRUST_CHECKPOINTS'

_GETATTR_GLOBAL = 'builtins.getattr'
_GETATTR_REFUSAL = 'builtins.getattr is only accepted as'
# Words of the weights_only unpickler's refusals of unsafe content, as
# opposed to failures on garbage ("Unsupported operand", EOF).
_UNSAFE_SIGNS = ('GLOBAL', 'allowlisted', 'unrecognized function', 'blocked',
                 'HistoryBuffer', _GETATTR_REFUSAL)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """Checkpoint ``path`` needs globals (``offending``, empty when not
    listed) outside the allowlist; ``reason`` is torch's. An
    :class:`pickle.UnpicklingError`, as torch's own refusal."""

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


def _corrupt(path: str, detail: str) -> CheckpointReadError:
    return CheckpointReadError(
        f'Cannot read checkpoint {path}: the file is truncated or corrupt '
        f'({detail}). Download or copy it again.')


class _LegacyHistoryBuffer(HistoryBuffer):
    """Stand-in for ``HistoryBuffer`` while unpickling: takes only the
    history data, so that a file cannot install callables on the class."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(
                f'unexpected HistoryBuffer state of type {type(state)}')
        for key in ('_log_history', '_count_history'):
            value = state.get(key)
            if not (isinstance(value, np.ndarray)
                    and value.dtype.kind in 'biuf' and value.ndim == 1):
                raise pickle.UnpicklingError(
                    f'HistoryBuffer.{key} must be a 1-d numeric array')
            self.__dict__[key] = value
        max_length = state.get('max_length', 1000000)
        if not isinstance(max_length, (int, np.integer)):
            raise pickle.UnpicklingError(
                'HistoryBuffer.max_length must be an integer')
        self.max_length = int(max_length)
        self.__class__ = HistoryBuffer
        self._set_default_statistics()  # as HistoryBuffer.__init__ does


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr``: only HistoryBuffer's statistics
    methods."""
    if obj is _LegacyHistoryBuffer and name in ('min', 'max', 'current',
                                                'mean'):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'{_GETATTR_REFUSAL} getattr(HistoryBuffer, <statistics method>) '
        f'in mmengine checkpoints, not getattr({type(obj).__name__} '
        f'object, {name!r})')


@functools.lru_cache(maxsize=None)
def _allowlist() -> tuple:
    # Found through __reduce__: their module moved from numpy.core to
    # numpy._core in numpy 2.
    reconstruct = np.array(0).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    pairs = [
        # ndarray pickles as _reconstruct(ndarray, ...) then BUILD; numpy
        # scalars (best_score, eta) as scalar(dtype, bytes); both pickle
        # their dtype as dtype(str) then BUILD.
        (reconstruct, 'numpy.core.multiarray._reconstruct'),
        (reconstruct, 'numpy._core.multiarray._reconstruct'),
        (np.ndarray, 'numpy.ndarray'),
        (scalar, 'numpy.core.multiarray.scalar'),
        (scalar, 'numpy._core.multiarray.scalar'),
        (np.dtype, 'numpy.dtype'),
        # HistoryBuffers of plain mmengine checkpoints, restricted.
        (_LegacyHistoryBuffer,
         'mmengine.logging.history_buffer.HistoryBuffer'),
        (_history_buffer_getattr, _GETATTR_GLOBAL),
    ]
    # BUILD on a dtype checks the concrete dtype class (numpy.dtypes.*),
    # which no GLOBAL names; allow those of plain numeric/text dtypes.
    for char in '?bhilqBHILQefdgFDGUS':
        cls = type(np.dtype(char))
        pairs.append((cls, f'{cls.__module__}.{cls.__qualname__}'))
    return tuple(pairs)


#: Globals allowed beyond torch's ``weights_only`` defaults.
ALLOWED_GLOBAL_NAMES = frozenset(name for _, name in _allowlist())


def _torch_reason(error: BaseException) -> str:
    """The unpickler's own reason (the context of torch's long message)."""
    if isinstance(error.__context__, pickle.UnpicklingError):
        text = str(error.__context__)
    else:
        text = str(error)
        match = re.search(r'WeightsUnpickler error:\s*(\S.*)', text)
        text = match.group(1) if match else text
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _legacy_pickle_globals(path: str, limit: int = 1 << 20) -> list:
    """The globals a legacy (non-zip) pickle names, read with pickletools
    (which runs nothing), in at most ``limit`` opcodes."""
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
    return names


def _refusal(path: str, error: pickle.UnpicklingError) -> Exception:
    """torch's refusal as an :class:`UnsafeCheckpointError`, or a
    :class:`CheckpointReadError` for an unreadable file."""
    reason = _torch_reason(error)
    is_zip = zipfile.is_zipfile(path)
    if is_zip:
        try:
            named = torch.serialization.get_unsafe_globals_in_checkpoint(
                path)
        except Exception as scan_error:
            return _corrupt(path, f'{reason}; {scan_error}')
    else:  # torch cannot scan the legacy format
        named = _legacy_pickle_globals(path)
    offending = [n for n in named if n not in ALLOWED_GLOBAL_NAMES]
    # The unpickler names the first global it refused.
    match = re.search(r'GLOBAL (\S+) (?:was not an allowed global|whose)',
                      reason)
    if match:
        offending.append(match.group(1))
    if _GETATTR_REFUSAL in reason:
        offending.append(_GETATTR_GLOBAL)
    if offending or any(sign in reason for sign in _UNSAFE_SIGNS):
        return UnsafeCheckpointError(path, list(dict.fromkeys(offending)),
                                     reason)
    if not is_zip:
        with open(path, 'rb') as f:
            if f.read(1) != b'\x80':  # the pickle PROTO opcode
                return CheckpointReadError(
                    f'{path} is not a PyTorch checkpoint ({reason}); it may '
                    'be a partial download or an HTML error page. Download '
                    'or copy it again.')
    return _corrupt(path, reason)


def _safe_torch_load(path: str, map_location: Any) -> dict:
    try:
        with torch.serialization.safe_globals(list(_allowlist())):
            checkpoint = torch.load(
                path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        refusal = _refusal(path, error)
        if not (isinstance(refusal, UnsafeCheckpointError)
                and os.environ.get(TRUST_ENV, '') == '1'):
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
    except OSError:
        raise  # e.g. permissions; the message already names the file
    except Exception as error:  # garbage makes the unpickler fail anyhow
        if 'TorchScript' in str(error):
            raise CheckpointReadError(
                f'{path} is a TorchScript archive, not a checkpoint; load it '
                'with torch.jit.load') from error
        if isinstance(error, (EOFError, UnicodeDecodeError, struct.error)
                      ) or any(sign in str(error) for sign in (
                          'PytorchStreamReader', 'central directory',
                          'invalid header', 'truncated', 'Ran out of input')):
            raise _corrupt(path,
                           f'{type(error).__name__}: {error}') from error
        raise CheckpointReadError(
            f'Failed to load checkpoint {path}: {error}') from error
    check_mapping(checkpoint, path)
    remember_source(checkpoint, path)
    return checkpoint


def load_from_http_safe(filename: str,
                        map_location: Any = None,
                        model_dir: Optional[str] = None,
                        progress: bool = os.isatty(0)) -> Any:
    """mmengine's ``load_from_http``, loading safely: cached in
    ``model_dir`` (default ``$TORCH_HOME/hub/checkpoints``), downloaded by
    rank 0 only."""
    rank, world_size = get_dist_info()
    if rank == 0:
        cached_file = download_to_hub_cache(filename, model_dir, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            cached_file = download_to_hub_cache(filename, model_dir, progress)
    return _safe_torch_load(cached_file, map_location)


def load_checkpoint_file(path_or_url: Union[str, os.PathLike],
                         map_location: Any = 'cpu') -> dict:
    """Load a checkpoint safely from a local path or an http(s) URL (cached
    in ``$TORCH_HOME/hub/checkpoints``).

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
    return _safe_torch_load(
        require_file(osp.expanduser(path_or_url), 'Checkpoint'), map_location)


#: The released ActionCLIP checkpoints: mmengine's ``load_checkpoint`` loads
#: URLs under it with :func:`load_from_http_safe` (longest prefix wins).
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
    'load_checkpoint_file', 'load_from_http_safe', 'register_release_loader'
]
