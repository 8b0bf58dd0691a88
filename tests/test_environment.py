"""The installed environment: every package as its wheel installed it,
untouched by the plugin, one owner per file, and the pins that keep
openmim and setuptools working (mim's commands run in processes that never
import the plugin)."""
import importlib.metadata
import json
import os
import subprocess
import sys

from models.compat import changed_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The distributions the project imports or runs, and what breaks them.
PROJECT_DISTS = ('mmaction2', 'clip-anytorch', 'openmim', 'mmengine',
                 'mmcv-lite', 'torch', 'torchvision', 'setuptools', 'click',
                 'opencv-python', 'decord2', 'av', 'numpy')
# torch's compiled libraries take most of the hashing time; its Python
# files are what a patch would touch.
PY_ONLY = {'torch': ('.py', )}


def _changed(dists=PROJECT_DISTS) -> dict:
    return {
        name: files
        for name in dists
        for files in [changed_files(importlib.metadata.distribution(name),
                                    PY_ONLY.get(name))] if files
    }


def test_importing_the_plugin_leaves_the_packages_alone():
    """Importing ``models`` and what it repairs (mmaction's models, clip)
    writes no installed file: after it, every file a wheel's RECORD lists
    with a sha256 is there, as installed (``make install`` checks every
    distribution)."""
    code = ('import models\n'
            'from mmaction.utils import register_all_modules\n'
            'register_all_modules()\n'
            'import clip\n'
            'import mmaction.models\n'
            'print("imported")\n')
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip().endswith('imported'), proc.stderr[-3000:]
    assert _changed() == {}


def test_one_distribution_per_package():
    """opencv-python and opencv-contrib-python both install ``cv2``, decord
    and decord2 ``decord``, each over the other's files: one of each."""
    owners = importlib.metadata.packages_distributions()
    assert sorted(owners['cv2']) == ['opencv-python']
    assert sorted(owners['decord']) == ['decord2']


def test_setuptools_does_not_warn_on_import():
    """mim and mmengine import pkg_resources in every run; setuptools 80.9
    and later print a UserWarning for each import, 80.8 does not."""
    code = ('import mim.commands.list, mmengine.utils.package_utils\n'
            'import mmaction.utils\n')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'pkg_resources' not in proc.stderr, proc.stderr


# Runs mim's train, test and gridsearch commands as `mim` would, with
# subprocess.check_call (srun, torch.distributed.launch) stubbed out.
MIM_COMMANDS = '''
import importlib
import os
import subprocess

import click.core
from click.testing import CliRunner

import mim

commands = {name: importlib.import_module('mim.commands.' + name)
            for name in ('train', 'test', 'gridsearch')}
calls = []
subprocess.check_call = lambda cmd, **kwargs: calls.append(cmd) or 0
open('cfg.py', 'w').close()
SLURM = ['--launcher', 'slurm', '--gpus', '2', '--gpus-per-node', '2',
         '--partition', 'debug', '--port', '29999']


def invoke(name, *args):
    calls.clear()
    result = CliRunner().invoke(commands[name].cli,
                                ['mmaction', 'cfg.py', *args])
    error = result.exception
    if isinstance(error, SystemExit) and not error.code:
        error = None
    return dict(
        error=None if error is None else f'{type(error).__name__}: {error}',
        cmd=' '.join(map(str, calls[0])) if calls else None)


def gridsearch_values():
    seen = {}
    module = commands['gridsearch']
    real, module.gridsearch = module.gridsearch, (
        lambda **kwargs: seen.update(kwargs) or (True, 'ok'))
    try:
        CliRunner().invoke(module.cli, ['mmaction', 'cfg.py'])
    finally:
        module.gridsearch = real
    return {k: repr(v) for k, v in seen.items()
            if k in ('srun_args', 'search_args', 'partition')}


out = dict(
    mim_file=mim.__file__,
    unset=repr(getattr(click.core, 'UNSET', None)),
    train=invoke('train', *SLURM),
    train_srun_args=invoke('train', *SLURM, '--srun-args', '-J x --time=5'),
    train_no_partition=invoke('train', '--launcher', 'slurm'),
    test=invoke('test', '--checkpoint', 'ckpt.pth', *SLURM),
    test_pytorch=invoke('test', '--checkpoint', 'ckpt.pth', '--launcher',
                        'pytorch'),
    gridsearch=gridsearch_values())
# mim's Python API, which never saw the sentinel: None and a string.
for key, srun_args in (('api_none', None), ('api_str', '--time=5')):
    calls.clear()
    commands['train'].train(
        package='mmaction', config='cfg.py', gpus=2, gpus_per_node=2,
        partition='debug', launcher='slurm', port=29999,
        srun_args=srun_args)
    out[key] = ' '.join(calls[0])
print(json.dumps(out))
'''


def test_mim_commands_see_none_for_options_not_given(tmp_path):
    """openmim 0.3.9 copies click's ``parse_args`` from before click 8.3,
    whose ``UNSET`` sentinel it would pass on: ``mim train --launcher
    slurm`` without ``--srun-args`` failed with ``'Sentinel' object has no
    attribute 'split'``. click is pinned below 8.3."""
    proc = subprocess.run(
        [sys.executable, '-c', 'import json\n' + MIM_COMMANDS],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out['unset'] == 'None'  # no click.core.UNSET
    for key in ('train', 'train_srun_args', 'test'):
        assert out[key]['error'] is None, (key, out[key])
        assert out[key]['cmd'].startswith(
            'srun -p debug --gres=gpu:2 --ntasks=2 --ntasks-per-node=2 ')
        assert 'Sentinel' not in out[key]['cmd']
    assert '--job-name=cfg_train' in out['train']['cmd']
    assert '--kill-on-bad-exit=1 -J x --time=5 ' in (
        out['train_srun_args']['cmd'])
    assert '--job-name' not in out['train_srun_args']['cmd']
    assert '--job-name=cfg_test' in out['test']['cmd']
    assert out['test']['cmd'].endswith(
        'tools/test.py cfg.py ckpt.pth --launcher slurm')
    # Options not given are None, so mim's own checks work.
    assert out['train_no_partition'] == dict(
        error='AssertionError: If launcher is slurm, gpus-per-node and '
        'partition should not be None', cmd=None)
    assert out['test_pytorch']['cmd'].startswith(
        f'{sys.executable} -m torch.distributed.launch --nproc_per_node=None')
    assert out['gridsearch'] == dict(
        partition='None', srun_args='None', search_args='None')
    assert '--job-name=cfg_train' in out['api_none']
    assert '--time=5 --job-name=cfg_train' in out['api_str']
