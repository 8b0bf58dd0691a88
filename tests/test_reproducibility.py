"""A run killed mid-way and resumed ends with the weights of an
uninterrupted one (CPU, fixed seed)."""
import functools
import os
import subprocess
import sys
from types import SimpleNamespace

import generate_videos as gen
import numpy as np
import torch
from conftest import ROOT, data_options, offline_env

from models.engine.hooks.epoch_seed_hook import EpochSeedHook, epoch_seed

CONFIG = os.path.join(ROOT, 'configs',
                      'actionclip_tiny-scratch_1x1x4_synthetic-actions.py')

# Kills its own process (SIGKILL: no clean-up, as a lost node or an OOM kill)
# once the checkpoint of epoch 1 is on disk.
KILL_HOOK = '''
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAfterFirstEpoch(Hook):
    priority = 'LOWEST'  # after CheckpointHook has saved

    def after_train_epoch(self, runner):
        if runner.epoch == 0:  # counted from 0, saved as epoch_1.pth
            os.kill(os.getpid(), signal.SIGKILL)
'''


def test_epoch_seed_depends_on_seed_epoch_and_rank():
    seeds = {epoch_seed(s, e, r) for s in (0, 1) for e in (0, 1)
             for r in (0, 1)}
    assert len(seeds) == 8
    assert epoch_seed(3, 2, 1) == epoch_seed(3, 2, 1)


def test_hook_reseeds_generators_and_fresh_workers():
    def init_fn(worker_id, num_workers, rank, seed):
        pass

    loader = SimpleNamespace(
        num_workers=2, persistent_workers=False,
        worker_init_fn=functools.partial(init_fn, num_workers=2, rank=0,
                                         seed=7))
    runner = SimpleNamespace(seed=7, epoch=3, train_dataloader=loader)
    hook = EpochSeedHook()
    hook.before_train_epoch(runner)
    first = (torch.rand(3), np.random.rand(3))
    assert loader.worker_init_fn.keywords['seed'] == epoch_seed(7, 3, 0)
    torch.rand(5)  # what the epoch consumed does not matter
    hook.before_train_epoch(runner)
    assert torch.equal(torch.rand(3), first[0])
    assert np.array_equal(np.random.rand(3), first[1])
    runner.epoch = 4
    hook.before_train_epoch(runner)
    assert loader.worker_init_fn.keywords['seed'] == epoch_seed(7, 4, 0)
    assert not torch.equal(torch.rand(3), first[0])


def mim_train(work, options, config=CONFIG, resume=False, env=None):
    cmd = [sys.executable, '-m', 'mim', 'train', 'mmaction', config,
           '--work-dir', work]
    if resume:
        cmd.append('--resume')
    cmd += ['--cfg-options', *options]
    return subprocess.run(cmd, cwd=ROOT, env=env or offline_env(),
                          capture_output=True, text=True, timeout=600)


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    data = str(tmp_path / 'data')
    gen.generate(data, seed=2,
                 per_class=dict(train=1, val=1, test=1, zeroshot=1),
                 workers=1, progress=False)
    options = data_options(data) + [
        'train_cfg.max_epochs=2',
        # workers restart each epoch, so the hook seeds them
        'train_dataloader.num_workers=1',
        'default_hooks.checkpoint.save_best=None',
        'train_cfg.val_interval=10',  # no validation: it is not the point
    ]

    straight = str(tmp_path / 'straight')
    proc = mim_train(straight, options)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    hook_dir = tmp_path / 'hooks'
    hook_dir.mkdir()
    (hook_dir / 'kill_after_first_epoch.py').write_text(KILL_HOOK)
    killed_config = tmp_path / 'killed.py'
    killed_config.write_text(
        f'_base_ = {CONFIG!r}\n'
        "custom_imports = dict(imports=['models', "
        "'kill_after_first_epoch'])\n"
        "custom_hooks = [dict(type='EpochSeedHook'), "
        "dict(type='KillAfterFirstEpoch')]\n")
    interrupted = str(tmp_path / 'interrupted')
    env = offline_env()
    env['PYTHONPATH'] = str(hook_dir) + os.pathsep + env['PYTHONPATH']
    proc = mim_train(interrupted, options, config=str(killed_config),
                     env=env)
    assert proc.returncode != 0  # killed
    assert os.path.isfile(os.path.join(interrupted, 'epoch_1.pth'))
    assert not os.path.exists(os.path.join(interrupted, 'epoch_2.pth'))

    proc = mim_train(interrupted, options, resume=True)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert 'resumed epoch: 1' in output, output[-3000:]

    def weights(work):
        return torch.load(os.path.join(work, 'epoch_2.pth'),
                          map_location='cpu')['state_dict']

    expected, resumed = weights(straight), weights(interrupted)
    assert expected.keys() == resumed.keys()
    differing = [k for k in expected if not torch.equal(expected[k],
                                                        resumed[k])]
    assert not differing, differing[:5]
