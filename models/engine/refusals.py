"""Refusals of MMAction2's train and test scripts as one line and exit 2.

When a ``mim train`` / ``mim test`` run of this project's configs stops
because an input cannot give a right result, the message already says what
is wrong and what to do, and a 40-line traceback hides it. In those scripts
only (:class:`~models.engine.runner.ActionClipRunner` installs the hook),
an uncaught refusal is printed as one line and the process exits with
status 2; any other exception goes to the previous hook. Importing the
package changes nothing. ``ACTIONCLIP_TRACEBACK=1`` keeps the traceback.
"""
import os
import os.path as osp
import sys
from typing import Tuple, Type

#: Environment variable that, set to 1, keeps Python's traceback.
TRACEBACK_ENV = 'ACTIONCLIP_TRACEBACK'


def refusal_types() -> Tuple[Type[BaseException], ...]:
    """The exception classes meaning "this input cannot give a right
    result"."""
    from models.checkpoints.checks import (CheckpointMismatchError,
                                           NonFiniteWeightsError,
                                           NotACheckpointError)
    from models.checkpoints.recorded_config import ConfigTextError
    from models.backbones.downloads import CheckpointDownloadError
    from models.checkpoints.safe_loading import (CheckpointReadError,
                                                 UnsafeCheckpointError)
    from models.datasets.transforms import VideoReadError
    from models.engine.config_checks import ConfigValueError
    from models.engine.hooks.label_check import LabelSetError
    from models.engine.training_checkpoints import ResumeError
    from models.utils.safe_io import NoSpaceError
    return (CheckpointMismatchError, NonFiniteWeightsError,
            NotACheckpointError, CheckpointReadError, CheckpointDownloadError,
            UnsafeCheckpointError, ConfigTextError, ConfigValueError,
            LabelSetError, ResumeError, VideoReadError, FileNotFoundError,
            NoSpaceError)


def is_refusal(error: BaseException) -> bool:
    """Whether ``error`` is one of :func:`refusal_types`, or a write that
    found no room anywhere (e.g. mmengine's ``last_checkpoint``)."""
    from models.utils.safe_io import NO_ROOM_ERRNOS
    return isinstance(error, refusal_types()) or (
        isinstance(error, OSError) and error.errno in NO_ROOM_ERRNOS)


def one_line(error: BaseException) -> str:
    """``'<Type>: <message>'`` on one line; of a DataLoader worker's
    error (its traceback in the message), the last line."""
    text = str(error).strip()
    if 'Original Traceback' in text:
        text = text.splitlines()[-1].split(': ', 1)[-1]
    return f'{type(error).__name__}: ' + ' '.join(text.split())


def is_mmaction_script(argv0: str) -> bool:
    """Whether ``argv0`` is MMAction2's ``tools/{train,test}.py`` (of
    ``mim`` or a checkout)."""
    path = osp.abspath(argv0 or '')
    return (osp.basename(path) in ('train.py', 'test.py')
            and osp.basename(osp.dirname(path)) == 'tools'
            and 'mmaction' in path)


def _excepthook(previous):

    def hook(kind, error, traceback):
        if is_refusal(error) and os.environ.get(TRACEBACK_ENV) != '1':
            sys.stdout.flush()
            print(f'error: {one_line(error)}', file=sys.stderr, flush=True)
            # os._exit: the exit status must be 2, which an excepthook
            # cannot otherwise set; nothing is left to clean up.
            os._exit(2)
        previous(kind, error, traceback)

    hook._actionclip = True
    return hook


def install_excepthook(argv0: str = None) -> bool:
    """In MMAction2's train/test scripts (``argv0``, default
    ``sys.argv[0]``), report refusals in one line with exit status 2;
    idempotent. Returns whether the hook is (now) installed."""
    argv0 = sys.argv[0] if argv0 is None and sys.argv else argv0
    if not is_mmaction_script(argv0 or ''):
        return False
    if not getattr(sys.excepthook, '_actionclip', False):
        sys.excepthook = _excepthook(sys.excepthook)
    return True
