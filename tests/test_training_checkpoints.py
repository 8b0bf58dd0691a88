"""Training checkpoints of ActionClipRunner written whole or not at all;
resumes that pass over unreadable checkpoints and refuse weights-only
files. The runner itself: test_checkpoint_safety.py."""
import os

import pytest
import torch
from mmengine.runner import checkpoint as mmengine_checkpoint

from models.engine import training_checkpoints as training_checkpoints
from models.engine.training_checkpoints import (ATOMIC_BACKEND, ResumeError,
                                                check_resumable,
                                                find_resumable,
                                                register_atomic_backend)


def _write(path, epoch, **extra):
    torch.save({
        'state_dict': {'w': torch.full((2, ), float(epoch))},
        'meta': dict(epoch=epoch, iter=epoch * 10),
        **extra
    }, path)


def _atomic_save(checkpoint, path):
    """What ActionClipRunner.save_checkpoint has mmengine do."""
    mmengine_checkpoint.save_checkpoint(
        checkpoint, path, backend_args=dict(backend=ATOMIC_BACKEND))


def test_runner_saves_atomically(tmp_path, monkeypatch):
    register_atomic_backend()
    register_atomic_backend()  # idempotent
    path = str(tmp_path / 'epoch_1.pth')
    save = _atomic_save
    save({'meta': {'epoch': 1}}, path)
    before = open(path, 'rb').read()

    def full_disk(obj, f, *args, **kwargs):
        f.write(b'partial')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', full_disk)
    with pytest.raises(OSError, match='No space'):
        save({'meta': {'epoch': 2}}, path)
    assert open(path, 'rb').read() == before
    assert os.listdir(tmp_path) == ['epoch_1.pth']


def test_resume_passes_over_an_unreadable_last_checkpoint(tmp_path,
                                                          monkeypatch):
    logged = []
    monkeypatch.setattr(training_checkpoints, 'print_log',
                        lambda message, **kwargs: logged.append(message))
    work = str(tmp_path)
    for epoch in (1, 2, 3):
        _write(os.path.join(work, f'epoch_{epoch}.pth'), epoch)
    last = os.path.join(work, 'epoch_3.pth')
    with open(last, 'r+b') as f:
        f.truncate(100)  # a crash mid-write of an older mmengine
    with open(os.path.join(work, 'last_checkpoint'), 'w') as f:
        f.write(last)
    assert find_resumable(work) == os.path.join(work, 'epoch_2.pth')
    assert len(logged) == 1 and 'Passing over' in logged[0]
    assert 'epoch_3.pth' in logged[0] and 'truncated' in logged[0]


def test_resume_without_last_checkpoint_file(tmp_path):
    assert find_resumable(str(tmp_path)) is None
    _write(str(tmp_path / 'epoch_1.pth'), 1)
    _write(str(tmp_path / 'epoch_10.pth'), 10)
    assert find_resumable(str(tmp_path)).endswith('epoch_10.pth')


def test_no_readable_checkpoint_is_refused(tmp_path):
    (tmp_path / 'epoch_1.pth').write_bytes(b'garbage')
    torch.save({'state_dict': {}}, tmp_path / 'epoch_2.pth')
    with pytest.raises(ResumeError) as info:
        find_resumable(str(tmp_path))
    assert 'epoch_1.pth' in str(info.value)
    assert 'no training state' in str(info.value)


def test_resume_from_weights_only_is_refused_with_advice(tmp_path):
    path = str(tmp_path / 'weights.pth')
    torch.save({'state_dict': {}}, path)
    with pytest.raises(ResumeError, match=f'load_from={path}'):
        check_resumable(torch.load(path, weights_only=True), path)


def test_recorded_config_text_is_never_executed(tmp_path):
    marker = tmp_path / 'ran'
    path = str(tmp_path / 'epoch_1.pth')
    _write(path, 1)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint['meta']['config'] = f"open('{marker}', 'w')"
    seen = check_resumable(checkpoint, path)['meta']
    assert 'config' not in seen and seen['epoch'] == 1
    assert not marker.exists()
