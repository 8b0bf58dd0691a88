"""Distributed training on CPUs: 2 processes, gloo backend.

* ``tools/dist_check.py`` under torchrun: loss and DDP-averaged gradients
  of 2 ranks x B videos equal those of one process with 2 * B videos (and
  differ for a gather that drops the other ranks' gradients);
* the template draws of the loss: rank slices of one seeded sequence;
* ``mim train --launcher pytorch --gpus 2`` and ``mim test --launcher
  slurm`` of its checkpoint (stand-in ``srun`` and ``scontrol`` on PATH)
  through MMAction2's tools, on a tiny generated set: each launcher sets up
  the ranks alike for both scripts (mmengine's ``init_dist``), and mim's
  command lines of the other two pairs are checked in
  test_environment.py;
* ActionClipRunner starts a distributed run without a GPU (mmengine's
  Runner cannot, and is left as it is).
"""
import json
import os
import re
import socket
import stat
import subprocess
import sys

import generate_videos as gen
import pytest
import torch
from conftest import ROOT, offline_env

CONFIG = 'configs/actionclip_tiny-scratch_1x1x4_synthetic-actions.py'
TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run(cmd, env=None, expect_ok=True):
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env=env or offline_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT)
    output = proc.stdout + proc.stderr
    if expect_ok:
        assert proc.returncode == 0, output[-5000:]
    return proc.returncode, output


def torchrun(script, *args):
    return [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        f'--master_port={free_port()}', script, *args
    ]


# ---------------------------------------------------------------------------
# Loss and gradients of W ranks == one process with the whole batch
# ---------------------------------------------------------------------------


def test_loss_and_gradients_match_single_process(tmp_path):
    out = tmp_path / 'report.json'
    run(torchrun('tools/dist_check.py', '--backend', 'gloo', '--out',
                 str(out)))
    report = json.loads(out.read_text())
    assert report['ok'] and report['world_size'] == 2
    for mode in ('diagonal', 'same_label'):
        result = report['targets'][mode]
        assert result['loss_abs_diff_all_ranks'] <= 1e-5, result
        assert result['max_grad_rel_diff_all_ranks'] <= 1e-4, result
        assert result['params_with_grad'] == result[
            'single_process_params_with_grad'] > 50
    assert report['templates'] == dict(
        reproducible=True,
        ranks_differ=True,
        ranks_differ_diff_rank_seed=True,
        equal_to_single_process=True,
        ok=True)
    # and a gather that drops the other ranks' gradients fails the check
    assert report['control_wrong_gather']['min_grad_rel_diff_all_ranks'] > 0.1


def test_dist_check_refuses_an_out_that_is_its_config():
    code, output = run([sys.executable, 'tools/dist_check.py', '--config',
                        CONFIG, '--out', CONFIG],
                       env=offline_env(WORLD_SIZE='2', RANK='0'),
                       expect_ok=False)
    assert code == 2 and 'same file as the input' in output, output


def test_template_draws_are_slices_of_one_sequence(monkeypatch):
    from mmengine.runner import set_random_seed

    import models.recognizers.contrastive as contrastive
    set_random_seed(7)
    whole = contrastive.draw_template_ids(16, 2 * 64)
    monkeypatch.setattr(contrastive.dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(contrastive.dist, 'get_world_size', lambda: 2)
    parts = []
    for rank in (0, 1):
        monkeypatch.setattr(contrastive.dist, 'get_rank', lambda: rank)
        set_random_seed(7)  # every rank: the same seed (MMEngine's default)
        parts.append(contrastive.draw_template_ids(16, 64))
    assert not torch.equal(parts[0], parts[1])
    assert torch.equal(torch.cat(parts), whole)


# ---------------------------------------------------------------------------
# mim train / test with the pytorch and slurm launchers
# ---------------------------------------------------------------------------


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('dist') / 'data')
    gen.generate(
        root,
        seed=2,
        per_class=dict(train=1, val=1, test=1, zeroshot=1),
        workers=1,
        progress=False)
    return root


def options(data):
    opts = [
        f'model.labels_or_label_file={data}/label_map.txt',
        'env_cfg.dist_cfg.backend=gloo',
        'default_hooks.logger.interval=1',
        'train_cfg.max_epochs=1',
    ]
    for split in ('train', 'val', 'test'):
        opts += [
            f'{split}_dataloader.dataset.ann_file='
            f'{data}/{split}_list_videos.txt',
            f'{split}_dataloader.dataset.data_prefix.video='
            f'{data}/videos/{split}',
            f'{split}_dataloader.batch_size=4',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False',
        ]
    return opts


def mim(*args, data, env=None):
    cmd = [sys.executable, '-m', 'mim', *args, '--cfg-options',
           *options(data)]
    return run(cmd, env=env)[1]


def assert_two_ranks(output, launcher):
    assert f'Distributed launcher: {launcher}' in output
    assert 'Distributed training: True' in output
    assert 'GPU number: 2' in output  # MMEngine's name for the world size
    assert "dist_cfg: {'backend': 'gloo'}" in output


@pytest.fixture(scope='module')
def trained(tmp_path_factory, data):
    """``mim train --launcher pytorch --gpus 2``: ``(output, work dir)``."""
    work = str(tmp_path_factory.mktemp('pytorch') / 'work')
    # A port of its own for each launch: the default 29500 may still be
    # held by the previous run's store, or by another test's run.
    out = mim('train', 'mmaction', CONFIG, '--work-dir', work, '--launcher',
              'pytorch', '--gpus', '2', '--port', str(free_port()),
              data=data)
    return out, work


def test_mim_pytorch_launcher(trained):
    out, work = trained
    assert 'torch.distributed.launch --nproc_per_node=2' in out
    assert_two_ranks(out, 'pytorch')
    assert re.search(r'Epoch\(train\) \[1\]\[3/3\].*loss_v2t', out)
    assert os.path.isfile(os.path.join(work, 'epoch_1.pth'))


# Stand-ins for the slurm tools. `srun` starts --ntasks copies of the
# command with the environment slurm gives each task; `scontrol show
# hostname NODELIST` (called by MMEngine for MASTER_ADDR) names this host.
SRUN = '''\
#!{python}
import os, subprocess, sys
args, ntasks = sys.argv[1:], 1
while args and args[0].startswith('-'):
    option = args.pop(0)
    if option.startswith('--ntasks='):
        ntasks = int(option.split('=')[1])
    elif option in ('-p', '-J', '-n', '-N'):
        args.pop(0)
procs = [
    subprocess.Popen(args, env=dict(
        os.environ, SLURM_PROCID=str(i), SLURM_LOCALID=str(i),
        SLURM_NTASKS=str(ntasks), SLURM_NODELIST='cpu-node-[01]',
        SLURM_JOB_ID='42')) for i in range(ntasks)
]
sys.exit(max(p.wait() for p in procs))
'''
SCONTROL = '''\
#!/bin/sh
echo "$@" >> "$SCONTROL_LOG"
echo localhost
'''


def test_mim_slurm_launcher(tmp_path, data, trained):
    # No --srun-args: openmim 0.3.9 under click >= 8.3 fails without it
    # ("'Sentinel' object has no attribute 'split'"); click is pinned
    # below 8.3.
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', SRUN.format(python=sys.executable)),
                       ('scontrol', SCONTROL)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / 'scontrol.log'
    # one thread per task, as torchrun sets it (2 tasks share 2 cores here)
    env = offline_env(SCONTROL_LOG=str(calls), OMP_NUM_THREADS='1')
    env['PATH'] = str(bin_dir) + os.pathsep + env['PATH']
    env.pop('MASTER_ADDR', None)  # taken from scontrol, as on a cluster
    checkpoint = os.path.join(trained[1], 'epoch_1.pth')
    out = mim('test', 'mmaction', CONFIG, '--checkpoint', checkpoint,
              '--work-dir', str(tmp_path / 'work'), '--launcher', 'slurm',
              '--gpus', '2', '--gpus-per-node', '2', '--partition', 'debug',
              '--port', str(free_port()), data=data, env=env)
    assert 'Testing command is srun -p debug' in out
    assert '--job-name=actionclip_tiny-scratch_1x1x4_synthetic-actions_test' \
        in out  # mim's default, from the config's name
    assert_two_ranks(out, 'slurm')
    assert calls.read_text().splitlines() == ['show hostname cpu-node-[01]'
                                              ] * 2
    # all 19 test videos once, though 2 ranks x 10 were scored
    assert re.search(r'Epoch\(test\) \[3/3\].*acc/top1: [0-9.]+', out)


# ---------------------------------------------------------------------------
# Distributed runs without a GPU: ActionClipRunner (models/engine/runner.py)
# ---------------------------------------------------------------------------

RUNNER_WITHOUT_GPU = '''\
import json, sys
import torch
set_device = torch.cuda.set_device
import models  # noqa: F401  (what custom_imports does)
from mmaction.registry import RUNNERS
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import MODELS


@MODELS.register_module()
class Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.linear(inputs)


def config(name, **kwargs):
    return Config(dict(
        model=dict(type='Toy'), work_dir=sys.argv[1], experiment_name=name,
        launcher='pytorch', env_cfg=dict(dist_cfg=dict(backend='gloo')),
        **kwargs))


def error(build):
    try:
        build()
    except Exception as error:
        return f'{type(error).__name__}: {error}'


out = dict(cuda=torch.cuda.is_available())
out['plain_setup'] = error(lambda: RUNNERS.build(config('plain_setup')))
out['set_device_after_plain'] = torch.cuda.set_device is set_device
runner = RUNNERS.build(config(
    'actionclip', runner_type='ActionClipRunner', find_unused_parameters=True))
model = runner.model
out.update(
    runner=type(runner).__name__, world_size=runner.world_size,
    wrapper=type(model).__name__, device_ids=model.device_ids,
    broadcast_buffers=model.broadcast_buffers,
    find_unused_parameters=model.find_unused_parameters,
    set_device_restored=torch.cuda.set_device is set_device)
# init_dist has run now, so mmengine's Runner gets as far as wrapping.
out['plain_wrap'] = error(lambda: RUNNERS.build(config('plain_wrap')))
print(json.dumps(out))
'''


def test_runner_starts_distributed_without_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip('the runner changes nothing with CUDA')
    script = tmp_path / 'runner.py'
    script.write_text(RUNNER_WITHOUT_GPU)
    env = offline_env(
        RANK='0',
        LOCAL_RANK='0',
        WORLD_SIZE='1',
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(free_port()))
    output = run([sys.executable, str(script), str(tmp_path / 'work')],
                 env=env)[1]
    out = json.loads(
        [line for line in output.splitlines() if line.startswith('{')][-1])
    assert out['runner'] == 'ActionClipRunner' and out['world_size'] == 1
    assert out['wrapper'] == 'MMDistributedDataParallel'
    assert out['device_ids'] is None
    # mmengine's other defaults, and find_unused_parameters of the config
    assert out['broadcast_buffers'] is False
    assert out['find_unused_parameters'] is True
    assert out['set_device_restored'] and out['set_device_after_plain']
    # mmengine's own Runner fails as mmengine 0.10.7 does: in init_dist's
    # torch.cuda.set_device, then in DDP's check of device_ids.
    assert out['plain_setup'].startswith(('RuntimeError', 'AssertionError'))
    assert 'CUDA' in out['plain_setup'] or 'NVIDIA' in out['plain_setup']
    assert 'device_ids' in out['plain_wrap'], out['plain_wrap']


def test_runner_leaves_gpu_machines_alone(monkeypatch):
    from mmengine.runner import Runner

    from models.engine.runner import ActionClipRunner, _skip_cuda_set_device
    calls = []
    monkeypatch.setattr(torch.cuda, 'set_device', calls.append)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    with _skip_cuda_set_device():
        torch.cuda.set_device(3)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with _skip_cuda_set_device():
        torch.cuda.set_device(5)
    assert calls == [3]
    assert torch.cuda.set_device == calls.append  # put back after the block

    # On a GPU (or with a model_wrapper_cfg), wrap_model is mmengine's.
    seen = []
    monkeypatch.setattr(Runner, 'wrap_model',
                        lambda self, cfg, model: seen.append(cfg))
    runner = ActionClipRunner.__new__(ActionClipRunner)
    runner._distributed = True
    monkeypatch.setattr('models.engine.runner.get_device', lambda: 'cuda')
    runner.wrap_model(None, torch.nn.Linear(1, 1))
    monkeypatch.setattr('models.engine.runner.get_device', lambda: 'cpu')
    runner.wrap_model(dict(type='MMDistributedDataParallel'),
                      torch.nn.Linear(1, 1))
    assert seen == [None, dict(type='MMDistributedDataParallel')]
