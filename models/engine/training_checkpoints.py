"""Checkpoints of training runs that a crash cannot destroy, and resumes
that cannot go wrong quietly.

MMEngine 0.10.7 writes a checkpoint by opening its final name and writing
into it: a full disk or a killed job leaves a partial ``epoch_N.pth``, named
in ``last_checkpoint``, and ``--resume`` then fails on it. Here:

* local checkpoints are written to a temporary file in the same folder and
  renamed, so a failed write leaves the previous file as it was
  (:func:`save_checkpoint_atomic`);
* ``--resume`` takes the newest checkpoint of the work dir that reads, and
  says which unreadable ones it passed over (:func:`find_resumable`);
* resuming from a file that holds weights only (no ``meta``) stops with a
  message pointing to ``load_from`` instead of ``KeyError: 'meta'``;
* MMEngine's resume evaluates ``meta['config']`` of the checkpoint as
  Python (``Config.fromstring``) to count GPUs; that text is dropped
  unread, so a checkpoint cannot run code.

:func:`install` applies these patches once; importing ``models`` does it.
"""
import functools
import glob
import io
import logging
import os
import os.path as osp
import re
from typing import Callable, List, Optional

import torch
from mmengine.logging import print_log
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner import runner as mmengine_runner


class ResumeError(ValueError):
    """A checkpoint cannot be resumed from; the message says what to do."""


def _is_local(filename: str) -> bool:
    return '://' not in str(filename)


def save_checkpoint_atomic(original: Callable) -> Callable:
    """Wrap MMEngine's ``save_checkpoint``: local files are written whole
    or not at all.

    Args:
        original (callable): ``mmengine.runner.checkpoint.save_checkpoint``.

    Returns:
        callable: The wrapped function (remote backends unchanged).
    """

    @functools.wraps(original)
    def save_checkpoint(checkpoint, filename, file_client_args=None,
                        backend_args=None):
        if (file_client_args is not None or backend_args is not None
                or not _is_local(filename)):
            return original(checkpoint, filename, file_client_args,
                            backend_args)
        from models.utils.safe_io import atomic_write
        os.makedirs(osp.dirname(osp.abspath(filename)), exist_ok=True)
        with io.BytesIO() as buffer:
            torch.save(checkpoint, buffer)
            with atomic_write(filename) as f:
                f.write(buffer.getbuffer())

    save_checkpoint._actionclip_atomic = True
    return save_checkpoint


def _number(path: str) -> int:
    match = re.search(r'(?:epoch|iter)_(\d+)\.pth$', osp.basename(path))
    return int(match.group(1)) if match else -1


def _problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from, or None."""
    from models.checkpoints.safe_loading import load_checkpoint_file
    try:
        checkpoint = load_checkpoint_file(path, map_location='cpu')
    except Exception as error:  # any unreadable file is passed over
        return f'{type(error).__name__}: {str(error).splitlines()[0]}'
    meta = checkpoint.get('meta')
    if not isinstance(meta, dict) or 'epoch' not in meta:
        return 'it holds no training state (meta)'
    return None


def find_resumable(work_dir: str) -> Optional[str]:
    """The newest checkpoint of a work dir that can be resumed from.

    ``last_checkpoint`` names the newest; when that file is missing or
    unreadable, the other ``epoch_N.pth`` / ``iter_N.pth`` files are tried,
    newest first, and each one passed over is reported.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        str | None: The checkpoint, or None when there is none at all.

    Raises:
        ResumeError: Checkpoints exist but none can be read.
    """
    candidates: List[str] = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named:
            candidates.append(named)
    others = glob.glob(osp.join(work_dir, 'epoch_*.pth')) + glob.glob(
        osp.join(work_dir, 'iter_*.pth'))
    for path in sorted(others, key=_number, reverse=True):
        if not any(osp.abspath(path) == osp.abspath(c) for c in candidates):
            candidates.append(path)
    if not candidates:
        print_log('Did not find last_checkpoint to be resumed.',
                  logger='current')
        return None
    passed = []
    for path in candidates:
        problem = (f'{path} does not exist' if not osp.isfile(path) else
                   _problem(path))
        if problem is None:
            for skipped, why in passed:
                print_log(
                    f'Passing over {skipped}, which cannot be resumed from '
                    f'({why}); resuming from {path} instead.',
                    logger='current',
                    level=logging.WARNING)
            return path
        passed.append((path, problem))
    raise ResumeError(
        f'No checkpoint in {work_dir} can be resumed from: ' + '; '.join(
            f'{p} ({why})' for p, why in passed) +
        '. Start without --resume, or pass a readable checkpoint with '
        '--resume PATH')


def _checked_resume(original: Callable) -> Callable:
    """Wrap ``Runner.resume``: a weights-only file is refused with advice,
    and ``meta['config']`` is never executed."""

    @functools.wraps(original)
    def resume(self, filename: str, *args, **kwargs):
        load = self.load_checkpoint

        def load_checked(name, *a, **kw):
            checkpoint = load(name, *a, **kw)
            meta = checkpoint.get('meta')
            if not isinstance(meta, dict) or 'epoch' not in meta or (
                    'iter' not in meta):
                raise ResumeError(
                    f'{name} holds model weights only (no training state '
                    "in 'meta'), so a run cannot resume from it; to start "
                    'training from these weights, set load_from (e.g. '
                    f'--cfg-options load_from={name}) without --resume')
            # Config.fromstring would run this text as Python.
            meta.pop('config', None)
            return checkpoint

        self.load_checkpoint = load_checked
        try:
            return original(self, filename, *args, **kwargs)
        finally:
            del self.load_checkpoint

    resume._actionclip_checked = True
    return resume


def install() -> None:
    """Patch MMEngine's checkpoint saving and resuming; idempotent."""
    if not getattr(mmengine_checkpoint.save_checkpoint, '_actionclip_atomic',
                   False):
        wrapped = save_checkpoint_atomic(mmengine_checkpoint.save_checkpoint)
        mmengine_checkpoint.save_checkpoint = wrapped
        # The Runner imported the function by name.
        mmengine_runner.save_checkpoint = wrapped
    mmengine_runner.find_latest_checkpoint = find_resumable
    Runner = mmengine_runner.Runner
    if not getattr(Runner.resume, '_actionclip_checked', False):
        Runner.resume = _checked_resume(Runner.resume)
