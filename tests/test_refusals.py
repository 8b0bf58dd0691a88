"""Refusals in MMAction2's scripts: one line, exit status 2."""
import subprocess
import sys

from conftest import ROOT, offline_env

from models.checkpoints.checks import CheckpointMismatchError
from models.engine.refusals import is_mmaction_script, one_line

SCRIPT = '''
import sys
sys.argv[0] = {argv0!r}
import models
from models.checkpoints.checks import CheckpointMismatchError
raise CheckpointMismatchError('Checkpoint x.pth does not fit\\nat all')
'''


def _run(argv0, **env):
    return subprocess.run(
        [sys.executable, '-c', SCRIPT.format(argv0=argv0)],
        cwd=ROOT, env=offline_env(**env), capture_output=True, text=True,
        timeout=120)


def test_mmaction_scripts_are_recognised():
    assert is_mmaction_script(
        '/x/site-packages/mmaction/.mim/tools/test.py')
    assert is_mmaction_script('/src/mmaction2/tools/train.py')
    assert not is_mmaction_script('/x/tools/zero_shot.py')
    assert not is_mmaction_script('/x/mmaction/.mim/tools/analysis.py')


def test_one_line_and_exit_2_in_mmaction_scripts():
    proc = _run('/x/mmaction/.mim/tools/test.py')
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        'error: CheckpointMismatchError: Checkpoint x.pth does not fit at '
        'all')
    traced = _run('/x/mmaction/.mim/tools/test.py', ACTIONCLIP_TRACEBACK='1')
    assert traced.returncode == 1 and 'Traceback' in traced.stderr
    other = _run('/x/my_script.py')
    assert other.returncode == 1 and 'Traceback' in other.stderr


def test_worker_errors_keep_only_the_refusal():
    error = CheckpointMismatchError(
        'Caught VideoReadError in DataLoader worker process 0.\n'
        'Original Traceback (most recent call last):\n  File "x"\n'
        'models.datasets.transforms.VideoReadError: Cannot decode video '
        'a.mp4')
    assert one_line(error) == (
        'CheckpointMismatchError: Cannot decode video a.mp4')
