"""Distributed training on CPUs: 2 processes, gloo backend.

* ``tools/dist_check.py`` under torchrun: loss and DDP-averaged gradients
  of 2 ranks x B videos equal those of one process with 2 * B videos (and
  differ for a gather that drops the other ranks' gradients);
* the template draws of the loss: rank slices of one seeded sequence;
* ``mim train/test --launcher pytorch --gpus 2`` and ``mim train
  --launcher slurm`` (stand-in ``srun`` and ``scontrol`` on PATH) through
  MMAction2's tools, on a tiny generated set;
* the fix (models/compat/, breakage e) that lets MMEngine's
  ``init_dist`` and DDP wrapper run without a GPU.
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


def test_mim_pytorch_launcher(tmp_path, data):
    work = str(tmp_path / 'work')
    # A port of its own for each launch: the default 29500 may still be
    # held by the previous run's store, or by another test's run.
    out = mim('train', 'mmaction', CONFIG, '--work-dir', work, '--launcher',
              'pytorch', '--gpus', '2', '--port', str(free_port()),
              data=data)
    assert 'torch.distributed.launch --nproc_per_node=2' in out
    assert_two_ranks(out, 'pytorch')
    assert re.search(r'Epoch\(train\) \[1\]\[3/3\].*loss_v2t', out)
    checkpoint = os.path.join(work, 'epoch_1.pth')
    assert os.path.isfile(checkpoint)

    out = mim('test', 'mmaction', CONFIG, '--checkpoint', checkpoint,
              '--work-dir', work, '--launcher', 'pytorch', '--gpus', '2',
              '--port', str(free_port()), data=data)
    assert_two_ranks(out, 'pytorch')
    # all 19 test videos once, though 2 ranks x 10 were scored
    assert re.search(r'Epoch\(test\) \[3/3\].*acc/top1: [0-9.]+', out)


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


def test_mim_slurm_launcher(tmp_path, data):
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
    work = str(tmp_path / 'work')
    out = mim('train', 'mmaction', CONFIG, '--work-dir', work, '--launcher',
              'slurm', '--gpus', '2', '--gpus-per-node', '2', '--partition',
              'debug', '--port', str(free_port()), data=data, env=env)
    assert 'Training command is srun -p debug' in out
    assert '--job-name=actionclip_tiny-scratch_1x1x4_synthetic-actions_train' \
        in out  # mim's default, from the config's name
    assert_two_ranks(out, 'slurm')
    assert calls.read_text().splitlines() == ['show hostname cpu-node-[01]'
                                              ] * 2
    assert os.path.isfile(os.path.join(work, 'epoch_1.pth'))


# ---------------------------------------------------------------------------
# The fix for distributed runs without a GPU (models/compat/runtime.py)
# ---------------------------------------------------------------------------

INIT_WITHOUT_GPU = '''\
import importlib.util, json, os, sys
import torch
original_set_device = torch.cuda.set_device
spec = importlib.util.spec_from_file_location(
    'actionclip_compat', os.path.join({compat!r}, '__init__.py'),
    submodule_search_locations=[{compat!r}])
compat = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = compat  # for the package's relative imports
spec.loader.exec_module(compat)
order = sys.argv[1]
if order == 'fix-first':  # patched on import, by the import hook
    compat.fix_dist_without_gpu()
from mmengine.dist import get_world_size, init_dist
from mmengine.model import MMDistributedDataParallel
out = dict(cuda=torch.cuda.is_available())
if order == 'import-first':  # patched in place
    try:
        init_dist('pytorch', backend='gloo')
    except RuntimeError as error:
        out['unpatched_error'] = str(error)
    compat.fix_dist_without_gpu()
    compat.fix_dist_without_gpu()  # idempotent
init_dist('pytorch', backend='gloo')
ddp = MMDistributedDataParallel(
    module=torch.nn.Linear(2, 2), device_ids=[0], broadcast_buffers=False)
out.update(world_size=get_world_size(), ddp_device_ids=ddp.device_ids,
           set_device_restored=torch.cuda.set_device is original_set_device)
print(json.dumps(out))
'''


@pytest.mark.parametrize('order', ['import-first', 'fix-first'])
def test_init_dist_without_gpu(tmp_path, order):
    if torch.cuda.is_available():
        pytest.skip('the fix only acts without CUDA')
    script = tmp_path / 'init.py'
    script.write_text(
        INIT_WITHOUT_GPU.format(
            compat=os.path.join(ROOT, 'models', 'compat')))
    env = offline_env(
        RANK='0',
        LOCAL_RANK='0',
        WORLD_SIZE='1',
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(free_port()))
    env['PYTHONPATH'] = ''  # neither models/ nor a sitecustomize
    output = run([sys.executable, str(script), order], env=env)[1]
    out = json.loads(
        [line for line in output.splitlines() if line.startswith('{')][-1])
    assert out['world_size'] == 1 and out['ddp_device_ids'] is None
    assert out['set_device_restored']
    if order == 'import-first':
        # what MMEngine 0.10.7 does without the fix
        assert 'NVIDIA' in out['unpatched_error'] or 'CUDA' in out[
            'unpatched_error']


def test_gpu_machines_are_left_alone(monkeypatch):
    from models.compat import runtime
    calls = []
    monkeypatch.setattr(torch.cuda, 'set_device', calls.append)

    def init(local_rank):
        torch.cuda.set_device(local_rank)
        return 'initialised'

    wrapped = runtime._without_cuda_set_device(init)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert wrapped(3) == 'initialised' and calls == [3]
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert wrapped(5) == 'initialised' and calls == [3]
    assert torch.cuda.set_device == calls.append  # put back after the call

    from mmengine.dist import utils
    from mmengine.model import MMDistributedDataParallel
    assert utils._init_dist_pytorch._actionclip_compat
    assert utils._init_dist_slurm._actionclip_compat
    assert MMDistributedDataParallel.__init__._actionclip_compat
    # with CUDA, device_ids reach DistributedDataParallel untouched
    seen = {}
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(
        torch.nn.parallel.DistributedDataParallel, '__init__',
        lambda self, **kwargs: seen.update(kwargs))
    MMDistributedDataParallel(module=torch.nn.Linear(1, 1), device_ids=[1])
    assert seen['device_ids'] == [1]
