"""What both checkpoint converters share: :class:`ConversionError` and the
command (:func:`run_conversion`). Standard library only at import (the
tools read it before torch, for fast usage errors)."""
import os.path as osp
import sys
from typing import Callable, List, Optional, Sequence, Tuple

from ..utils import paths, safe_io


class ConversionError(ValueError):
    """The source cannot be converted; the message says why."""


def usage_error(src: str, dst: str, count: Optional[int], flag: str,
                inputs: Sequence[Tuple[Optional[str], str]] = ()
                ) -> Optional[str]:
    """The message of a converter's bad arguments, or None: ``flag``'s
    ``count`` below 1, ``src`` or ``inputs`` (``(path, verb)``) not files,
    a ``dst`` that is an input or cannot be written (its folder made)."""
    if count is not None and count < 1:
        return f'{flag} must be >= 1, got {count}'
    for path, what in ((src, 'convert'), *inputs):
        if path is not None and not osp.isfile(path):
            return f'cannot {what} {path}: it {paths.not_a_file(path)}'
    try:
        safe_io.check_output_path(dst, [src], 'output')
    except safe_io.OutputPathError as error:
        return str(error)
    return None


def run_conversion(src: str,
                   dst: str,
                   work: Callable[[], Tuple[dict, List[str]]],
                   count: Optional[int],
                   flag: str,
                   inputs: Sequence[Tuple[Optional[str], str]] = ()) -> int:
    """The converters' command: refuse bad arguments (:func:`usage_error`)
    before torch is imported, then save the checkpoint of ``work()`` whole
    to ``dst`` and print its report lines and ``meta['ignored']``.

    Returns:
        int: 0 when converted; 2 with one line on stderr when the
        arguments are wrong or the source cannot be converted; 1 when
        writing failed (a previous ``dst`` is left as it was).
    """
    problem = usage_error(src, dst, count, flag, inputs)
    if problem:
        print(f'error: {problem}', file=sys.stderr)
        return 2
    import models  # noqa: F401  (stack fixes before loading)
    from models.backbones.downloads import CheckpointDownloadError
    from models.checkpoints.safe_loading import (CheckpointReadError,
                                                 UnsafeCheckpointError)
    from models.utils.safe_io import atomic_save_torch
    try:
        checkpoint, lines = work()
    # ValueError: ConversionError and refusals of what is not a checkpoint.
    except (ValueError, OSError, UnsafeCheckpointError, CheckpointReadError,
            CheckpointDownloadError) as error:
        print(f'error: cannot convert {src}: {error}', file=sys.stderr)
        return 2
    try:
        atomic_save_torch(checkpoint, dst)
    except OSError as error:
        print(f'error: cannot write {dst}: {error}', file=sys.stderr)
        return 1
    print(f'converted {src} -> {dst}')
    ignored = checkpoint['meta']['ignored']
    if ignored:
        lines.append(f'  ignored (not weights): {", ".join(ignored)}')
    print('\n'.join(lines + ['  loads strictly into ActionClip: yes']))
    return 0
