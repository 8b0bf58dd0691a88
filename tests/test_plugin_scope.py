"""Importing the plugin leaves other models' loading, saving and training
as mmengine and torch do them.

The same script runs twice, each time in a fresh interpreter: once as is
and once with ``import models`` first (as ``custom_imports`` of a config
does, here under the name of MMAction2's train script). It saves and loads
plain ``torch.nn.Linear`` checkpoints (torch.save, mmengine's
save_checkpoint; whole modules, numpy values, broken and missing files)
and trains, saves and resumes a plain mmengine BaseModel with mmengine's
Runner. Every outcome (loaded tensors, files written, or the error's type
and message) must be identical. The script also checks that mmengine's
loaders, saving, resuming, MessageHub and ``sys.excepthook`` are the very
objects they were before the import, and so are mmengine's distributed
set-up and DDP wrapper. ActionCLIP's own runner:
test_checkpoint_safety.py, test_training_checkpoints.py and
test_distributed.py.
"""
import json
import subprocess
import sys

import pytest
from conftest import ROOT, offline_env

SCRIPT = r'''
import json
import os
import os.path as osp
import re
import sys
import uuid

import numpy as np
import torch

mode, work, out = sys.argv[1:4]
# As when MMAction2's tools/train.py imports the plugin through a config.
sys.argv[0] = '/x/mmaction/.mim/tools/train.py'


def patched_objects():
    from mmengine.dist import utils as dist_utils
    from mmengine.logging import MessageHub
    from mmengine.model import MMDistributedDataParallel
    from mmengine.runner import checkpoint, runner
    from mmengine.runner.checkpoint import CheckpointLoader
    objects = {
        f'CheckpointLoader[{p!r}]': CheckpointLoader._schemes.get(p)
        for p in ('', 'http://', 'https://')
    }
    objects.update({
        'checkpoint.save_checkpoint': checkpoint.save_checkpoint,
        'checkpoint.load_from_http': checkpoint.load_from_http,
        'checkpoint.load_from_local': checkpoint.load_from_local,
        'runner.save_checkpoint': runner.save_checkpoint,
        'runner.find_latest_checkpoint': runner.find_latest_checkpoint,
        'Runner.resume': runner.Runner.resume,
        'Runner.load_checkpoint': runner.Runner.load_checkpoint,
        'Runner.save_checkpoint': runner.Runner.save_checkpoint,
        'Runner.load_or_resume': runner.Runner.load_or_resume,
        'MessageHub.state_dict': MessageHub.state_dict,
        'MessageHub.load_state_dict': MessageHub.load_state_dict,
        'dist.utils._init_dist_pytorch': dist_utils._init_dist_pytorch,
        'dist.utils._init_dist_slurm': dist_utils._init_dist_slurm,
        'MMDistributedDataParallel.__init__':
        MMDistributedDataParallel.__init__,
        'torch.cuda.set_device': torch.cuda.set_device,
        'sys.excepthook': sys.excepthook,
    })
    return objects


before = patched_objects()
if mode == 'plugin':
    import models  # noqa: F401
changed = sorted(k for k, v in patched_objects().items() if v is not before[k])

from mmengine.model import BaseModel  # noqa: E402
from mmengine.runner import Runner, load_checkpoint  # noqa: E402
from mmengine.runner.checkpoint import (CheckpointLoader,  # noqa: E402
                                        save_checkpoint)


def text(value):
    return str(value).replace(work, '<work>')


def outcome(call):
    """What a call gave: tensors and plain values, or the error."""
    try:
        result = call()
    except BaseException as error:  # noqa: B902
        return f'{type(error).__module__}.{type(error).__qualname__}: ' + (
            text(error))
    return describe(result)


def describe(value):
    if isinstance(value, torch.Tensor):
        return dict(tensor=value.tolist(), dtype=str(value.dtype))
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return text(value)
    if isinstance(value, torch.nn.Module):
        return describe(value.state_dict())
    return type(value).__module__ + '.' + type(value).__qualname__


results = {}
torch.manual_seed(0)
linear = torch.nn.Linear(3, 2)
files = {
    'torch.save state_dict': osp.join(work, 'linear_torch.pth'),
    'save_checkpoint': osp.join(work, 'linear_mmengine.pth'),
    'torch.save module': osp.join(work, 'linear_module.pth'),
    'numpy value': osp.join(work, 'linear_numpy.pth'),
    'truncated': osp.join(work, 'linear_truncated.pth'),
    'missing': osp.join(work, 'missing.pth'),
}
results['save'] = [
    outcome(lambda: torch.save(linear.state_dict(),
                               files['torch.save state_dict'])),
    outcome(lambda: save_checkpoint({'state_dict': linear.state_dict()},
                                    files['save_checkpoint'])),
    outcome(lambda: torch.save(linear, files['torch.save module'])),
    outcome(lambda: torch.save(
        {'state_dict': linear.state_dict(), 'scale': np.float64(2.0)},
        files['numpy value'])),
]
with open(files['save_checkpoint'], 'rb') as f:
    data = f.read()
with open(files['truncated'], 'wb') as f:
    f.write(data[:len(data) // 2])
for name, path in files.items():
    target = torch.nn.Linear(3, 2)
    results[name] = dict(
        torch_load=outcome(lambda: torch.load(path)),
        load_checkpoint=outcome(
            lambda: (load_checkpoint(target, path, map_location='cpu'),
                     target)[1]),
        loader=outcome(lambda: CheckpointLoader.load_checkpoint(path)),
    )


class Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, labels, mode='tensor'):
        out = self.linear(inputs).squeeze(-1)
        if mode == 'loss':
            return dict(loss=((out - labels)**2).mean())
        return out


def run(max_iters, resume):
    data = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    dataset = [dict(inputs=x, labels=x.sum()) for x in data]
    runner = Runner(
        model=Toy(),
        work_dir=osp.join(work, 'run'),
        experiment_name=f'toy_{uuid.uuid4().hex}',
        train_dataloader=dict(
            dataset=dataset,
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', interval=1, by_epoch=False)),
        randomness=dict(seed=0),
        resume=resume)
    model = runner.train()
    return dict(iter=runner.iter, weights=model.state_dict())


results['train 1 iter'] = outcome(lambda: run(1, False))
results['resume to 2 iters'] = outcome(lambda: run(2, True))
run_dir = osp.join(work, 'run')
written = {}
for name in sorted(os.listdir(run_dir)):
    path = osp.join(run_dir, name)
    if osp.isdir(path):
        continue  # the log folder, named by the time
    if re.fullmatch(r'\d{8}_\d{6}\.py', name):
        # the config, named by the second a run started: two runs started
        # within one second write one file
        written['<time>.py'] = True
    elif name.endswith('.pth'):
        written[name] = dict(
            torch_load=outcome(lambda: torch.load(path)),
            content=outcome(lambda: torch.load(path, weights_only=False)))
    else:
        with open(path) as f:
            written[name] = text(f.read())
results['run files'] = written
for entry in written.values():  # the time, the run's random name
    if isinstance(entry, dict) and isinstance(entry['content'], dict):
        entry['content'].pop('meta', None)
        entry['content']['message_hub']['runtime_info'].pop(
            'experiment_name', None)
with open(out, 'w') as f:
    json.dump(dict(changed=changed, results=results), f, indent=1)
'''


def _run(mode, tmp_path):
    work = tmp_path / mode
    work.mkdir()
    out = tmp_path / f'{mode}.json'
    proc = subprocess.run(
        [sys.executable, '-c', SCRIPT, mode, str(work), str(out)],
        cwd=ROOT, env=offline_env(), capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.fixture(scope='module')
def outcomes(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('scope')
    return {mode: _run(mode, tmp_path) for mode in ('plain', 'plugin')}


def test_import_replaces_none_of_mmengines_objects(outcomes):
    assert outcomes['plain']['changed'] == []
    assert outcomes['plugin']['changed'] == []


@pytest.mark.parametrize('case', [
    'save', 'torch.save state_dict', 'save_checkpoint', 'torch.save module',
    'numpy value', 'truncated', 'missing', 'train 1 iter',
    'resume to 2 iters', 'run files'
])
def test_same_outcome_with_and_without_the_plugin(outcomes, case):
    plain = outcomes['plain']['results'][case]
    assert outcomes['plugin']['results'][case] == plain
    assert 'ActionCLIP' not in json.dumps(plain)


def test_the_cases_reach_what_the_plugin_used_to_change(outcomes):
    """The cases touch each behaviour the plugin once replaced: the
    weights_only refusals, mmengine's saving and its checkpoints."""
    results = outcomes['plain']['results']
    assert 'Weights only load failed' in results['torch.save module'][
        'load_checkpoint']
    assert 'Weights only load failed' in results['numpy value']['loader']
    assert results['save_checkpoint']['load_checkpoint']['weight'][
        'tensor'] == results['torch.save state_dict']['torch_load'][
            'weight']['tensor']
    files = results['run files']
    assert {'iter_1.pth', 'last_checkpoint'} <= set(files)
    # mmengine's own checkpoints hold HistoryBuffers (not plain data).
    content = files['iter_1.pth']['content']
    assert any('HistoryBuffer' in json.dumps(v)
               for v in content['message_hub']['log_scalars'].values())
