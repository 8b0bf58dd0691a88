"""Tests for models/checkpoints/safe_loading.py (loading under weights_only).

Checkpoints come from real, tiny mmengine trainings (EpochBasedTrainLoop
with validation, CheckpointHook(save_best='auto'), AdamW, two param
schedulers), run in subprocesses once by mmengine's Runner ("plain", as
mmengine saves them anywhere) and once by the configs' ActionClipRunner
("safe"). MessageHub's state alone: test_message_hub.py; downloads:
test_downloads.py; other models untouched: test_plugin_scope.py.
"""
import errno
import functools
import glob
import importlib.util
import os
import os.path as osp
import pickle
import shutil
import socket
import subprocess
import sys
import urllib.request

import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import CheckpointLoader, load_checkpoint
from mmengine.runner import checkpoint as mmengine_checkpoint

from models.backbones import downloads
from models.checkpoints import message_hub
from models.checkpoints import safe_loading as cs
from models.engine.runner import ActionClipRunner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODELS_DIR = osp.join(ROOT, 'models')

TOY_SOURCE = '''\
"""Tiny mmengine training used by test_checkpoint_safety.py."""
import sys
import types
import uuid

import numpy as np
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels, mode='tensor'):
        out = self.linear(inputs).squeeze(-1)
        if mode == 'loss':
            return dict(loss=((out - labels)**2).mean())
        return [dict(pred=o, gt=g) for o, g in zip(out, labels)]


class ToyDataset(Dataset):
    metainfo = dict(classes=('a', 'b'))

    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.data = torch.randn(12, 2, generator=generator)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return dict(inputs=self.data[i], labels=self.data[i].sum())


class ToyMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            self.results.append(float((sample['pred'] - sample['gt']).abs()))

    def compute_metrics(self, results):
        # numpy values, as many real metrics return them
        return dict(acc=np.float64(1 / (1 + np.mean(results))))


def make_runner(work_dir, max_epochs=2, runner_cls=Runner, **kwargs):
    loader = dict(
        dataset=ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=4,
        num_workers=0,
        collate_fn=dict(type='default_collate'))
    return runner_cls(
        model=ToyModel(),
        work_dir=work_dir,
        experiment_name=f'toy_{uuid.uuid4().hex}',
        train_dataloader=loader,
        val_dataloader=loader,
        val_evaluator=[ToyMetric()],
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs,
                       val_interval=1),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-2)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.5, by_epoch=True,
                 begin=0, end=1),
            dict(type='CosineAnnealingLR', T_max=3, by_epoch=True,
                 begin=1, end=4),
        ],
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1,
                            save_best='auto'),
            logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        **kwargs)


if __name__ == '__main__':
    mode, work_dir = sys.argv[1], sys.argv[2]
    runner_cls = Runner
    if mode == 'safe':
        # The runner's modules alone: a bare package stands in for
        # models/__init__.py, which would import the whole plugin.
        models = types.ModuleType('models')
        models.__path__ = [sys.argv[3]]
        sys.modules['models'] = models
        from models.engine.runner import ActionClipRunner as runner_cls
    make_runner(work_dir, runner_cls=runner_cls).train()
    if mode == 'plain':
        # Plain mmengine (no install()) loading its own checkpoint, in the
        # process that saved it: the error, beside the work dir.
        from mmengine.runner import CheckpointLoader
        try:
            CheckpointLoader.load_checkpoint(work_dir + '/epoch_2.pth', 'cpu')
            error = 'loaded'
        except Exception as exc:  # what it says is the test's
            error = f'{type(exc).__name__}: {exc}'
        with open(work_dir + '_load_error.txt', 'w') as f:
            f.write(error)
'''

CALLS = []


def _record_call(tag):
    """Stands for code a malicious pickle would run."""
    CALLS.append(tag)
    return tag


class _Evil:
    """An arbitrary class whose pickle calls a function when loaded."""

    def __reduce__(self):
        return _record_call, ('code ran',)


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    """Train plain and safe toy runs; return the toy module and dirs."""
    base = tmp_path_factory.mktemp('ckpt_safety')
    toy_path = str(base / 'actionclip_toy_runner.py')
    with open(toy_path, 'w') as f:
        f.write(TOY_SOURCE)
    dirs = dict(plain=str(base / 'plain'), safe=str(base / 'safe'))
    procs = {
        mode: subprocess.Popen(
            [sys.executable, toy_path, mode, work_dir, MODELS_DIR],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=str(base))
        for mode, work_dir in dirs.items()
    }
    for mode, proc in procs.items():
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, f'{mode} training failed:\n{out}'
    spec = importlib.util.spec_from_file_location('actionclip_toy_runner',
                                                  toy_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, dirs


def _ckpt(dirs, mode, name='epoch_2.pth'):
    path = osp.join(dirs[mode], name)
    assert osp.isfile(path), os.listdir(dirs[mode])
    return path


def test_plain_mmengine_checkpoint_fails_without_fix(toy):
    _, dirs = toy
    path = _ckpt(dirs, 'plain')
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    assert 'builtins.getattr' in unsafe
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in unsafe
    # Plain mmengine (no install()) cannot load its own checkpoint (tried
    # by the process that trained it).
    with open(dirs['plain'] + '_load_error.txt') as f:
        assert 'Weights only load failed' in f.read()


def test_checkpoints_need_only_allowlisted_globals(toy):
    _, dirs = toy
    saved = sorted(glob.glob(osp.join(dirs['safe'], '*.pth')))
    assert any(osp.basename(p).startswith('best_acc') for p in saved)
    for path in saved:
        # Saved with the patched MessageHub: nothing beyond torch defaults.
        assert torch.serialization.get_unsafe_globals_in_checkpoint(
            path) == []
        hub = torch.load(path, weights_only=True)['message_hub']
        assert message_hub.HISTORY_BUFFER_TAG in hub['log_scalars'][
            'val/acc']
        assert type(hub['runtime_info']['best_score']) is float
    # Plain mmengine checkpoints need nothing outside the allowlist either.
    for path in glob.glob(osp.join(dirs['plain'], '*.pth')):
        unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(
            path))
        assert unsafe <= cs.ALLOWED_GLOBAL_NAMES, unsafe


def test_release_loader_is_scoped_to_the_release_urls():
    cs.register_release_loader()
    cs.register_release_loader()  # idempotent
    get_loader = CheckpointLoader._get_checkpoint_loader
    released = cs.RELEASE_URL_PREFIX + 'x/vit-b-32-8f.pth'
    assert get_loader(released) is cs.load_from_http_safe
    # Everything else keeps mmengine's loaders, MessageHub its methods.
    assert get_loader('work_dirs/epoch_1.pth') is (
        mmengine_checkpoint.load_from_local)
    assert get_loader('https://x.org/a.pth') is (
        mmengine_checkpoint.load_from_http)
    assert get_loader('http://x.org/a.pth') is (
        mmengine_checkpoint.load_from_http)
    assert get_loader('https://download.openmmlab.com/mmaction/v1.0/'
                      'recognition/tsn/a.pth') is (
                          mmengine_checkpoint.load_from_http)
    assert not hasattr(MessageHub.state_dict, '__wrapped__')
    assert not hasattr(MessageHub.load_state_dict, '__wrapped__')


def test_load_and_resume_with_weights_only(toy, tmp_path,
                                           isolated_mmengine_state):
    module, dirs = toy
    safe_globals_before = torch.serialization.get_safe_globals()
    for mode in ('safe', 'plain'):
        path = _ckpt(dirs, mode)
        model = module.ToyModel()
        checkpoint = cs.load_checkpoint_file(path, map_location='cpu')
        model.load_state_dict(checkpoint['state_dict'])
        torch.testing.assert_close(model.linear.weight,
                                   checkpoint['state_dict']['linear.weight'])
        hub = checkpoint['message_hub']
        if mode == 'plain':
            # Rebuilt as real HistoryBuffers, not the restricted stand-in.
            assert type(hub['log_scalars']['val/acc']) is HistoryBuffer

        runner = module.make_runner(
            str(tmp_path / mode), max_epochs=3, runner_cls=ActionClipRunner,
            resume=True, load_from=path)
        runner.train()
        assert runner.epoch == 3
        history = runner.message_hub.log_scalars['val/acc']
        assert type(history) is HistoryBuffer
        assert len(history.data[0]) == 3  # two resumed, one new
    # The allowlist was scoped to our calls, weights_only stayed on.
    assert set(torch.serialization.get_safe_globals()) == set(
        safe_globals_before)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(_ckpt(dirs, 'plain'))


def test_arbitrary_class_is_refused(tmp_path, monkeypatch):
    path = str(tmp_path / 'stranger.pth')
    torch.save(dict(state_dict={'w': torch.ones(1)}, extra=_Evil()), path)
    CALLS.clear()
    monkeypatch.delenv(cs.TRUST_ENV, raising=False)
    with pytest.raises(cs.UnsafeCheckpointError) as info:
        cs.load_checkpoint_file(path)
    message = str(info.value)
    assert path in message
    assert f'{__name__}._record_call' in info.value.offending
    assert f'{__name__}._record_call' in message
    assert f'{cs.TRUST_ENV}=1' in message
    assert isinstance(info.value, pickle.UnpicklingError)
    # The legacy (non-zip) format is refused the same way.
    legacy = str(tmp_path / 'stranger_legacy.pth')
    torch.save(dict(extra=_Evil()), legacy,
               _use_new_zipfile_serialization=False)
    with pytest.raises(cs.UnsafeCheckpointError) as info:
        cs.load_checkpoint_file(legacy)
    assert info.value.offending == [f'{__name__}._record_call']
    # mmengine's own load_checkpoint, left as it is, refuses it as torch
    # does (weights_only is its default).
    with pytest.raises(pickle.UnpicklingError) as info:
        load_checkpoint(torch.nn.Linear(1, 1), path)
    assert not isinstance(info.value, cs.UnsafeCheckpointError)
    # Only exactly "1" opts in.
    monkeypatch.setenv(cs.TRUST_ENV, 'true')
    with pytest.raises(cs.UnsafeCheckpointError):
        cs.load_checkpoint_file(path)
    assert CALLS == []  # nothing of the pickle ran

    warnings = []
    monkeypatch.setattr(cs, 'print_log',
                        lambda msg, **kwargs: warnings.append(msg))
    monkeypatch.setenv(cs.TRUST_ENV, '1')
    checkpoint = cs.load_checkpoint_file(path)
    assert checkpoint['extra'] == 'code ran' and CALLS == ['code ran']
    assert len(warnings) == 1 and path in warnings[0]
    assert 'weights_only=False' in warnings[0]


def test_getattr_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(cs.TRUST_ENV, raising=False)
    # A bound method pickles as builtins.getattr(obj, name).
    path = str(tmp_path / 'getattr.pth')
    torch.save(dict(method=(5).bit_length), path)
    assert 'builtins.getattr' in (
        torch.serialization.get_unsafe_globals_in_checkpoint(path))
    with pytest.raises(cs.UnsafeCheckpointError) as info:
        cs.load_checkpoint_file(path)
    assert 'builtins.getattr' in info.value.offending
    assert path in str(info.value) and cs.TRUST_ENV in str(info.value)

    # The HistoryBuffer stand-in resolves its statistics methods only.
    path = str(tmp_path / 'history_getattr.pth')
    torch.save(dict(method=HistoryBuffer.register_statistics), path)
    with pytest.raises(cs.UnsafeCheckpointError) as info:
        cs.load_checkpoint_file(path)
    assert 'builtins.getattr' in info.value.offending

    monkeypatch.setattr(cs, 'print_log', lambda *args, **kwargs: None)
    monkeypatch.setenv(cs.TRUST_ENV, '1')
    assert cs.load_checkpoint_file(path)['method'] == (
        HistoryBuffer.register_statistics)


def test_truncated_and_empty_files(toy, tmp_path):
    _, dirs = toy
    with open(_ckpt(dirs, 'safe'), 'rb') as f:
        data = f.read()
    truncated = str(tmp_path / 'truncated.pth')
    with open(truncated, 'wb') as f:
        f.write(data[:len(data) // 2])
    empty = str(tmp_path / 'empty.pth')
    open(empty, 'wb').close()
    damaged = str(tmp_path / 'damaged.pth')  # bytes flipped inside the zip
    with open(damaged, 'wb') as f:
        f.write(data[:200] + bytes(b ^ 0xff for b in data[200:400]) +
                data[400:])
    legacy = str(tmp_path / 'legacy.pth')  # torch < 1.6 format, truncated
    torch.save(dict(w=torch.ones(8)), legacy,
               _use_new_zipfile_serialization=False)
    with open(legacy, 'r+b') as f:
        f.truncate(os.path.getsize(legacy) // 2)
    for path in (truncated, empty, damaged, legacy):
        with pytest.raises(cs.CheckpointReadError) as info:
            cs.load_checkpoint_file(path)
        assert path in str(info.value)
        assert 'truncated or corrupt' in str(info.value), str(info.value)
    # What a failed download often leaves behind.
    html = str(tmp_path / 'error_page.pth')
    with open(html, 'w') as f:
        f.write('<html><body>403 Forbidden</body></html>')
    with pytest.raises(cs.CheckpointReadError) as info:
        cs.load_checkpoint_file(html)
    assert f'{html} is not a PyTorch checkpoint' in str(info.value)
    with pytest.raises(FileNotFoundError):
        cs.load_checkpoint_file(str(tmp_path / 'missing.pth'))


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """A fresh $TORCH_HOME, and every way to the network fails."""

    def no_network(*args, **kwargs):
        raise OSError('network disabled by the test')

    torch_home = tmp_path / 'torch_home'
    monkeypatch.setenv('TORCH_HOME', str(torch_home))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    monkeypatch.setattr(socket.socket, 'connect', no_network)
    monkeypatch.setattr(socket, 'create_connection', no_network)
    return torch_home


def test_http_url_uses_hub_cache_without_network(toy, offline):
    module, dirs = toy
    cache_dir = offline / 'hub' / 'checkpoints'
    cache_dir.mkdir(parents=True)
    shutil.copy(_ckpt(dirs, 'safe'), cache_dir / 'toy_epoch_2.pth')
    # mmengine's load_checkpoint (init_recognizer) reads the released
    # ActionCLIP URLs through torch hub's cache, with the safe loader.
    url = cs.RELEASE_URL_PREFIX + 'toy/toy_epoch_2.pth'
    assert downloads.hub_cache_path(url) == str(cache_dir /
                                                'toy_epoch_2.pth')

    model = module.ToyModel()
    checkpoint = load_checkpoint(model, url, map_location='cpu')
    torch.testing.assert_close(model.linear.weight,
                               checkpoint['state_dict']['linear.weight'])
    assert 'state_dict' in cs.load_checkpoint_file(url)


def test_http_url_not_cached_offline(offline):
    url = cs.RELEASE_URL_PREFIX + 'toy/missing.pth'
    expected = str(offline / 'hub' / 'checkpoints' / 'missing.pth')
    with pytest.raises(cs.CheckpointDownloadError) as info:
        cs.load_checkpoint_file(url)
    message = str(info.value)
    assert url in message and expected in message
    assert not osp.exists(expected)
    with pytest.raises(cs.CheckpointDownloadError):
        load_checkpoint(torch.nn.Linear(2, 1), url)


def test_http_url_downloads_into_hub_cache(toy, offline, monkeypatch):
    _, dirs = toy
    fetched = []

    def fake_download(url, dst, timeout, progress=True):
        fetched.append((url, dst))
        os.makedirs(osp.dirname(dst), exist_ok=True)
        shutil.copy(_ckpt(dirs, 'safe'), dst)

    monkeypatch.setattr(downloads, 'download_file', fake_download)
    url = 'https://download.example.invalid/actionclip/fresh.pth?x=1'
    expected = str(offline / 'hub' / 'checkpoints' / 'fresh.pth')
    assert 'state_dict' in cs.load_checkpoint_file(url)
    assert fetched == [(url, expected)] and osp.isfile(expected)
    cs.load_checkpoint_file(url)
    assert len(fetched) == 1  # cached now


def test_runner_reads_safely_and_checks_resumes(toy, tmp_path,
                                                isolated_mmengine_state,
                                                monkeypatch):
    """load_from, mim test --checkpoint and --resume of the configs'
    runner: unsafe and broken files are refused, each with its message."""
    module, dirs = toy
    monkeypatch.delenv(cs.TRUST_ENV, raising=False)
    runner = module.make_runner(
        str(tmp_path / 'run'), runner_cls=ActionClipRunner)
    evil = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, extra=_Evil()), evil)
    truncated = str(tmp_path / 'truncated.pth')
    with open(_ckpt(dirs, 'safe'), 'rb') as f:
        data = f.read()
    with open(truncated, 'wb') as f:
        f.write(data[:len(data) // 2])
    weights = str(tmp_path / 'weights.pth')
    torch.save({'state_dict': module.ToyModel().state_dict()}, weights)
    CALLS.clear()
    with pytest.raises(cs.UnsafeCheckpointError, match='evil.pth'):
        runner.load_checkpoint(evil)
    with pytest.raises(cs.CheckpointReadError, match='truncated or corrupt'):
        runner.load_checkpoint(truncated)
    from models.engine.training_checkpoints import ResumeError
    with pytest.raises(ResumeError, match=f'load_from={weights}'):
        runner.resume(weights)
    assert CALLS == []
    # The same weights load with load_from.
    runner.load_checkpoint(weights)

    # A checkpoint write that fails (a full disk) leaves nothing behind.
    out = tmp_path / 'out'

    def full(fd):
        raise OSError(errno.ENOSPC, 'No space left on device')

    save = functools.partial(runner.save_checkpoint, str(out), 'epoch_9.pth',
                             save_optimizer=False, save_param_scheduler=False)
    with monkeypatch.context() as patched:
        patched.setattr(os, 'fsync', full)
        with pytest.raises(OSError, match='No space'):
            save()
    assert os.listdir(out) == []
    save()
    assert os.listdir(out) == ['epoch_9.pth']
    assert torch.serialization.get_unsafe_globals_in_checkpoint(
        str(out / 'epoch_9.pth')) == []


def test_runner_records_the_labels_and_refuses_them_reordered_in_a_test(
        toy, tmp_path, isolated_mmengine_state):
    """Checkpoints of the configs' runner record the model's labels; a
    validation or test run whose labels are that set in another order is
    refused (annotations numbered in the training order would be scored
    against other texts); another set (zero-shot) and training are not."""
    from models.engine.hooks.label_check import LabelSetError
    module, _ = toy
    runner = module.make_runner(
        str(tmp_path / 'run'), runner_cls=ActionClipRunner)
    for hook in runner.hooks:  # no training: no best checkpoint to save
        if type(hook).__name__ == 'CheckpointHook':
            hook.after_val_epoch = lambda *args, **kwargs: None
    trained = ['waving', 'jumping', 'reading']
    runner.model.labels = trained
    runner.model.label_source = 'label file labels.txt'
    runner.save_checkpoint(str(tmp_path), 'epoch_1.pth',
                           save_optimizer=False, save_param_scheduler=False)
    path = str(tmp_path / 'epoch_1.pth')
    assert cs.load_checkpoint_file(path)['meta']['labels'] == trained

    def validate(labels):
        runner.model.labels = labels
        runner._load_from, runner._has_loaded = path, False
        return runner.val()

    with pytest.raises(LabelSetError) as info:
        validate(['waving', 'reading', 'jumping'])
    assert ("label file labels.txt holds the 3 labels "
            f"{path} was trained with, in another order: class 1 is "
            "'reading' there but 'jumping' in training") in str(info.value)
    assert 'acc' in validate(trained)
    assert 'acc' in validate(['cooking', 'swimming'])
    runner.model.labels = trained[::-1]  # a new training run's own order
    runner.load_checkpoint(path)
