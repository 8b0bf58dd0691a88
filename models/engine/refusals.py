"""Refusals of MMAction2's train and test scripts as one line and exit 2.

``mim train`` / ``mim test`` run MMAction2's ``tools/train.py`` and
``tools/test.py``, which import this package through the config's
``custom_imports``. When such a run stops because an input cannot give a
right result (a checkpoint that does not fit, NaN weights, labels that do
not match the annotations, an unreadable video, a setting that cannot work,
a disk with no room for a checkpoint), the message already says
what is wrong and what to do; a 40-line traceback around it hides it. In
those scripts only, and only for runs of this project's configs (their
runner, :class:`~models.engine.runner.ActionClipRunner`, installs the hook
when it is built), an uncaught refusal is printed as one line and the
process exits with status 2, as this project's own tools do; any other
exception goes to the previous hook. Importing the package changes
nothing. Set ``ACTIONCLIP_TRACEBACK=1`` to see the traceback anyway.
"""
import os
import os.path as osp
import sys
from typing import Tuple, Type

#: Environment variable that, set to 1, keeps Python's traceback.
TRACEBACK_ENV = 'ACTIONCLIP_TRACEBACK'


def refusal_types() -> Tuple[Type[BaseException], ...]:
    """The exception classes that mean "this input cannot give a right
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
    """Whether ``error`` is a refusal: one of :func:`refusal_types`, or a
    write that found no room wherever it happened (e.g. mmengine's own
    ``last_checkpoint`` file), whose message names the file."""
    from models.utils.safe_io import NO_ROOM_ERRNOS
    return isinstance(error, refusal_types()) or (
        isinstance(error, OSError) and error.errno in NO_ROOM_ERRNOS)


def one_line(error: BaseException) -> str:
    """The message of a refusal on one line.

    A DataLoader worker's error reaches the main process with the worker's
    traceback in its message; the last line is the refusal itself:
    ``'<Type>: <message>'`` without line breaks.
    """
    text = str(error).strip()
    if 'Original Traceback' in text:
        text = text.splitlines()[-1].split(': ', 1)[-1]
    return f'{type(error).__name__}: ' + ' '.join(text.split())


def is_mmaction_script(argv0: str) -> bool:
    """Whether ``sys.argv[0]`` is MMAction2's train or test script:
    ``.../mmaction/.mim/tools/{train,test}.py`` or a checkout's
    ``tools/{train,test}.py`` of mmaction2."""
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
    """In MMAction2's train/test scripts, report refusals in one line with
    exit status 2; idempotent. ``argv0``: the script, ``sys.argv[0]`` by
    default. Returns whether the hook is (now) installed.
    """
    argv0 = sys.argv[0] if argv0 is None and sys.argv else argv0
    if not is_mmaction_script(argv0 or ''):
        return False
    if not getattr(sys.excepthook, '_actionclip', False):
        sys.excepthook = _excepthook(sys.excepthook)
    return True
