"""Refusals in MMAction2's scripts running this project's configs (their
runner, ActionClipRunner): one line, exit status 2. Importing the plugin
alone leaves ``sys.excepthook`` as it is."""
import subprocess
import sys

import pytest
from conftest import ROOT, offline_env

from models.checkpoints.checks import CheckpointMismatchError
from models.engine.refusals import is_mmaction_script, is_refusal, one_line

SCRIPT = '''
import sys
sys.argv[0] = {argv0!r}
hook = sys.excepthook
import models
assert sys.excepthook is hook, 'import models replaced sys.excepthook'
import torch
from mmengine.model import BaseModel
from models.engine.runner import ActionClipRunner


class Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(1, 1)

    def forward(self, *args, **kwargs):
        pass


# What mim train / mim test build for a config of this project.
ActionClipRunner(model=Toy(), work_dir={work!r})
from models.checkpoints.checks import CheckpointMismatchError
raise CheckpointMismatchError('Checkpoint x.pth does not fit\\nat all')
'''


def _run(argv0, work):
    return subprocess.run(
        [sys.executable, '-c', SCRIPT.format(argv0=argv0, work=work)],
        cwd=ROOT, env=offline_env(), capture_output=True, text=True,
        timeout=120)


def test_mmaction_scripts_are_recognised():
    assert is_mmaction_script(
        '/x/site-packages/mmaction/.mim/tools/test.py')
    assert is_mmaction_script('/src/mmaction2/tools/train.py')
    assert not is_mmaction_script('/x/tools/zero_shot.py')
    assert not is_mmaction_script('/x/mmaction/.mim/tools/analysis.py')


def test_one_line_and_exit_2_in_mmaction_scripts(tmp_path):
    # The real process end, once: status 2 through os._exit, one line.
    work = str(tmp_path / 'work')
    proc = _run('/x/mmaction/.mim/tools/test.py', work)
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        'error: CheckpointMismatchError: Checkpoint x.pth does not fit at '
        'all')


class _Exit(BaseException):
    """Stands for ``os._exit`` ending the process."""


def _runner_hook(monkeypatch, tmp_path, argv0: str):
    """The ``sys.excepthook`` after the project's runner is built in a
    script run as ``argv0``, and the hook it had before (which records
    the exceptions it is given)."""
    import uuid

    import torch
    from mmengine.model import BaseModel

    from models.engine.runner import ActionClipRunner

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(1, 1)

        def forward(self, *args, **kwargs):
            pass

    previous_calls = []

    def previous(kind, error, traceback):
        previous_calls.append(error)

    monkeypatch.setattr(sys, 'excepthook', previous)
    monkeypatch.setattr(sys, 'argv', [argv0])
    # What mim train / mim test build for a config of this project.
    ActionClipRunner(model=Toy(), work_dir=str(tmp_path / 'work'),
                     experiment_name=f'refusals_{uuid.uuid4().hex}')
    return sys.excepthook, previous_calls


def test_python_handles_what_is_not_a_refusal_here(
        monkeypatch, tmp_path, capsys, isolated_mmengine_state):
    import os
    refusal = CheckpointMismatchError('Checkpoint x.pth does not fit')

    def exit_(status):
        raise _Exit(status)

    monkeypatch.setattr(os, '_exit', exit_)
    # Another script: the runner leaves Python's handling as it is.
    hook, _ = _runner_hook(monkeypatch, tmp_path / 'other', '/x/my_script.py')
    assert not getattr(hook, '_actionclip', False)

    hook, previous = _runner_hook(monkeypatch, tmp_path,
                                  '/x/mmaction/.mim/tools/test.py')
    # Any other error: Python's traceback and exit status 1.
    bug = RuntimeError('a bug')
    hook(RuntimeError, bug, None)
    assert previous == [bug]
    # ACTIONCLIP_TRACEBACK=1: the refusal's traceback too.
    monkeypatch.setenv('ACTIONCLIP_TRACEBACK', '1')
    hook(CheckpointMismatchError, refusal, None)
    assert previous == [bug, refusal]
    monkeypatch.delenv('ACTIONCLIP_TRACEBACK')
    capsys.readouterr()
    with pytest.raises(_Exit) as exit_status:
        hook(CheckpointMismatchError, refusal, None)
    assert exit_status.value.args == (2, )
    assert capsys.readouterr().err == (
        'error: CheckpointMismatchError: Checkpoint x.pth does not fit\n')
    assert previous == [bug, refusal]


def test_worker_errors_keep_only_the_refusal():
    error = CheckpointMismatchError(
        'Caught VideoReadError in DataLoader worker process 0.\n'
        'Original Traceback (most recent call last):\n  File "x"\n'
        'models.datasets.transforms.VideoReadError: Cannot decode video '
        'a.mp4')
    assert one_line(error) == (
        'CheckpointMismatchError: Cannot decode video a.mp4')


def test_a_write_with_no_room_anywhere_is_a_refusal():
    import errno
    # e.g. mmengine's CheckpointHook writing work_dir/last_checkpoint
    full = OSError(errno.ENOSPC, 'No space left on device',
                   'work/last_checkpoint')
    assert is_refusal(full)
    assert one_line(full) == ("OSError: [Errno 28] No space left on device: "
                              "'work/last_checkpoint'")
    assert is_refusal(OSError(errno.EFBIG, 'File too large', 'x.pth'))
    assert not is_refusal(OSError(errno.EACCES, 'Permission denied', 'x'))
    assert not is_refusal(RuntimeError('a bug'))
