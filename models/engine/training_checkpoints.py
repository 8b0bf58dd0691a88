"""Training checkpoints for :class:`~models.engine.runner.ActionClipRunner`
(mmengine itself is left as it is). MMEngine 0.10.7 writes a checkpoint
into its final name, so a killed job leaves a partial ``epoch_N.pth`` named
in ``last_checkpoint``: here checkpoints are written whole or not at all,
``--resume`` takes the newest one that reads, and weights alone are refused
while the ``meta['config']`` that MMEngine would run as Python is dropped.
"""
import glob
import logging
import os
import os.path as osp
import re
from pathlib import Path
from typing import Optional

from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log

#: Name of :class:`AtomicLocalBackend` among mmengine's file backends.
ATOMIC_BACKEND = 'actionclip_atomic_local'


class ResumeError(ValueError):
    """A checkpoint cannot be resumed from; the message says what to do."""


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, writing each file whole or not at
    all; used only where ``backend_args`` name :data:`ATOMIC_BACKEND`."""

    def put(self, obj: bytes, filepath) -> None:
        """Write the bytes ``obj`` to ``filepath`` atomically."""
        from models.utils.safe_io import atomic_write
        filepath = str(filepath)
        os.makedirs(osp.dirname(osp.abspath(filepath)), exist_ok=True)
        with atomic_write(filepath) as f:
            f.write(obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        """Write the text ``obj`` to ``filepath`` atomically."""
        self.put(obj.encode(encoding), filepath)


def register_atomic_backend() -> None:
    """Add :class:`AtomicLocalBackend` to mmengine's file backends under
    its own name; idempotent, changes no existing backend."""
    # force: the name is this project's own (a module reloaded in the same
    # process registers its new class again).
    register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


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
    """The newest checkpoint of a work dir that can be resumed from (None
    when there is none at all): the one ``last_checkpoint`` names, else the
    other ``epoch_N.pth`` / ``iter_N.pth``, newest first, reporting each one
    passed over; a :class:`ResumeError` when none can be read."""
    pointer = Path(work_dir, 'last_checkpoint')
    named = pointer.read_text().strip() if pointer.is_file() else ''
    others = glob.glob(osp.join(work_dir, 'epoch_*.pth')) + glob.glob(
        osp.join(work_dir, 'iter_*.pth'))
    candidates = ([named] if named else []) + [
        path for path in sorted(others, key=_number, reverse=True)
        if osp.abspath(path) != osp.abspath(named)]
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


def check_resumable(checkpoint: dict, name: str) -> dict:
    """Refuse to resume from weights alone (a :class:`ResumeError` naming
    the file ``name`` when ``checkpoint`` has no ``meta`` with ``epoch``
    and ``iter``); returns it without the recorded ``meta['config']``."""
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
