"""CI-sized `mim train`, `mim test` from its checkpoint, then `--resume`, on
a tiny generated set, through the same commands users run: a run killed
mid-way and resumed with `--resume` goes on from its last checkpoint and
ends with the weights of the uninterrupted one (CPU, fixed seed)."""
import glob
import os
import re
import subprocess
import sys

import generate_videos as gen
import pytest
import torch
from conftest import ROOT, data_options, offline_env

CONFIG = 'configs/actionclip_tiny-scratch_1x1x4_synthetic-actions.py'

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


def mim(*args, options=(), env=None, killed=False):
    """Run ``mim *args``; its output, once it succeeded (or, if
    ``killed``, failed)."""
    cmd = [sys.executable, '-m', 'mim', *args]
    if options:
        cmd += ['--cfg-options', *options]
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env=env or offline_env(),
        capture_output=True,
        text=True,
        timeout=600)
    output = proc.stdout + proc.stderr
    if killed:
        assert proc.returncode != 0, output[-4000:]
    else:
        assert proc.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Two epochs of `mim train` on a tiny generated set, then `mim test
    --dump` of the last checkpoint, shared by the tests of this module:
    ``(data, work dir, options, train output, test output, dump file)``.

    The training data come from a worker process, which restarts each
    epoch: the killed and resumed run must reseed it as well."""
    root = tmp_path_factory.mktemp('train')
    data = str(root / 'data')
    gen.generate(
        data,
        seed=1,
        per_class=dict(train=1, val=1, test=1, zeroshot=1),
        workers=1,
        progress=False)
    work = str(root / 'work')
    options = data_options(data) + [
        'default_hooks.logger.interval=1', 'train_dataloader.num_workers=1'
    ]
    out = mim('train', 'mmaction', CONFIG, '--work-dir', work,
              options=options + ['train_cfg.max_epochs=2'])
    dump = str(root / 'dump.pkl')
    tested = mim('test', 'mmaction', CONFIG, '--checkpoint',
                 os.path.join(work, 'epoch_2.pth'), '--work-dir', work,
                 '--dump', dump, options=options)
    return data, work, options, out, tested, dump


def test_train_then_test(trained):
    data, work, _, out, tested, _ = trained
    assert 'Epoch(val) [2]' in out and 'acc/top1' in out
    assert re.search(r'loss_v2t: [0-9.]+', out)
    last = os.path.join(work, 'epoch_2.pth')
    assert os.path.isfile(last)
    assert glob.glob(os.path.join(work, 'best_acc_top1_epoch_*.pth'))

    # the checkpoint needs no unsafe unpickling
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(last)
    assert not [g for g in unsafe if not g.startswith('torch.')], unsafe
    # it records its labels: a test with them reordered is refused
    with open(os.path.join(data, 'label_map.txt')) as f:
        labels = f.read().split('\n')[:-1]
    from models.checkpoints.safe_loading import load_checkpoint_file
    assert load_checkpoint_file(last)['meta']['labels'] == labels

    assert re.search(r'acc/top1: [0-9.]+', tested)
    assert re.search(r'acc/mean1: [0-9.]+', tested)


def test_killed_run_resumes_to_the_same_weights(tmp_path, trained):
    # The uninterrupted run is the module's: two epochs, same options.
    _, straight, options, *_ = trained
    hook_dir = tmp_path / 'hooks'
    hook_dir.mkdir()
    (hook_dir / 'kill_after_first_epoch.py').write_text(KILL_HOOK)
    killed_config = tmp_path / 'killed.py'
    killed_config.write_text(
        f'_base_ = {os.path.join(ROOT, CONFIG)!r}\n'
        "custom_imports = dict(imports=['models', "
        "'kill_after_first_epoch'])\n"
        "custom_hooks = [dict(type='EpochSeedHook'), "
        "dict(type='KillAfterFirstEpoch')]\n")
    interrupted = str(tmp_path / 'interrupted')
    env = offline_env()
    env['PYTHONPATH'] = str(hook_dir) + os.pathsep + env['PYTHONPATH']
    train = ('train', 'mmaction')
    run_options = options + ['train_cfg.max_epochs=2']
    mim(*train, str(killed_config), '--work-dir', interrupted,
        options=run_options, env=env, killed=True)
    assert os.path.isfile(os.path.join(interrupted, 'epoch_1.pth'))
    assert not os.path.exists(os.path.join(interrupted, 'epoch_2.pth'))

    output = mim(*train, CONFIG, '--work-dir', interrupted, '--resume',
                 options=run_options)
    # `--resume` goes on from the last checkpoint, to the next epoch's
    assert 'resumed epoch: 1' in output, output[-3000:]
    assert re.search(r'Epoch\(train\) +\[2\]', output), output[-3000:]
    assert os.path.isfile(os.path.join(interrupted, 'epoch_2.pth'))

    def weights(work):
        return torch.load(os.path.join(work, 'epoch_2.pth'),
                          map_location='cpu')['state_dict']

    expected, resumed = weights(straight), weights(interrupted)
    assert expected.keys() == resumed.keys()
    differing = [k for k in expected if not torch.equal(expected[k],
                                                        resumed[k])]
    assert not differing, differing[:5]


def _zero_shot_probs(args, data, out):
    """Per-video probabilities of every label from tools/zero_shot.py (in
    this process: tests/test_zero_shot.py runs it as a command)."""
    import contextlib
    import json

    import zero_shot
    with contextlib.chdir(ROOT):  # as the command runs from the root
        assert zero_shot.main([
            f'{data}/videos/test', '--label-file', f'{data}/label_map.txt',
            '--topk', '1000', '--no-progress', '--device', 'cpu', '--out',
            out, *args]) == 0
    with open(out) as f:
        results = json.load(f)['results']
    return {
        os.path.basename(r['video']):
        {p['label']: p['probability']
         for p in r['predictions']}
        for r in results
    }


def test_one_checkpoint_same_scores_through_every_entry_point(
        tmp_path, trained):
    """A checkpoint of the project's own config (temporal shift on, two
    non-default templates) scores the same through init_actionclip,
    zero_shot.py --model / --config, init_recognizer and mim test."""
    import pickle

    from mmaction.apis import inference_recognizer, init_recognizer

    from models.apis.loading import init_actionclip
    data, work, _, _, _, dump = trained
    ckpt = os.path.join(work, 'epoch_2.pth')
    with open(dump, 'rb') as f:  # written by this test: trusted
        dumped = pickle.load(f)
    with open(f'{data}/test_list_videos.txt') as f:
        names = [line.split()[0] for line in f if line.strip()]
    with open(f'{data}/label_map.txt') as f:
        labels = [line.strip() for line in f if line.strip()]
    reference = {
        name: torch.as_tensor(sample['pred_score']).float()
        for name, sample in zip(names, dumped)
    }

    model, preprocess = init_actionclip(ckpt, labels=labels)
    assert model.temporal_shift is not None
    assert model.templates == ['a video of {}', '{}']
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(ROOT, CONFIG))
    cfg.model.labels_or_label_file = f'{data}/label_map.txt'
    recognizer = init_recognizer(cfg, ckpt, device='cpu')
    by_model = _zero_shot_probs(['--model', ckpt], data,
                                str(tmp_path / 'model.json'))
    by_config = _zero_shot_probs(
        ['--config', CONFIG, '--checkpoint', ckpt], data,
        str(tmp_path / 'config.json'))
    for name, expected in reference.items():
        video = f'{data}/videos/test/{name}'
        with torch.no_grad():
            direct = model.predict_scores(preprocess(video)[None])[0]
        torch.testing.assert_close(direct, expected, atol=1e-5, rtol=0)
        result = inference_recognizer(recognizer, video)
        torch.testing.assert_close(
            result.pred_score.float(), expected, atol=1e-5, rtol=0)
        for scores in (by_model, by_config):
            got = torch.tensor([scores[name][label] for label in labels])
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_a_full_disk_during_mim_train_is_one_line(tmp_path):
    # ulimit -f: every file of the run may hold 200 KB, the logs fit, no
    # checkpoint does (a real failed write: EFBIG, as a full disk's ENOSPC).
    import resource

    from test_adversarial import snapshot

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    data = str(tmp_path / 'data')
    gen.generate(data, seed=1, per_class=dict(train=1, val=1), workers=1,
                 progress=False)
    before = snapshot(data)
    work = tmp_path / 'work'
    cmd = [sys.executable, '-m', 'mim', 'train', 'mmaction', CONFIG,
           '--work-dir', str(work), '--cfg-options', *data_options(data),
           'train_cfg.max_epochs=1', 'train_cfg.val_interval=2']
    proc = subprocess.run(cmd, cwd=ROOT, env=offline_env(),
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=limit)
    err = proc.stderr
    # openmim ends a script's status 2 in its own CalledProcessError
    # traceback (docs/troubleshooting.md); the script's is one line.
    assert proc.returncode == 1, err[-4000:]
    assert err.count('Traceback') == 1, err[-4000:]
    assert 'returned non-zero exit status 2' in err, err[-4000:]
    (line, ) = [x for x in err.splitlines() if x.startswith('error: ')]
    assert 'epoch_1.pth' in line and (
        'No space left' in line or 'File too large' in line), line
    # the frame cache found no room either: a warning, the run went on
    assert 'frame cache could not be written' in proc.stdout + err
    # no checkpoint cut short, no temporary file left, the data untouched
    assert not [p for p in work.rglob('*') if p.name.startswith('.')
                or p.suffix == '.pth'], sorted(work.rglob('*'))
    assert snapshot(data) == before


def test_the_fused_optimizer_steps_as_the_plain_one(tiny_arch):
    """The tiny config's fused AdamW (one kernel a tensor) against
    PyTorch's plain loop over the tensors, from the same weights and
    gradients."""
    import copy

    from mmengine import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmaction.registry import MODELS
    cfg = Config.fromfile(os.path.join(ROOT, CONFIG))
    assert cfg.optim_wrapper.optimizer.fused is True
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmaction'):
        model = MODELS.build(
            dict(type='ActionClip', clip_arch=tiny_arch, num_adapter_segs=4,
                 labels_or_label_file=['a', 'b']))
    plain_cfg = copy.deepcopy(cfg.optim_wrapper)
    plain_cfg.optimizer.pop('fused')
    twin = copy.deepcopy(model)
    fused = build_optim_wrapper(model, cfg.optim_wrapper)
    plain = build_optim_wrapper(twin, plain_cfg)
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        for a, b in zip(model.parameters(), twin.parameters()):
            a.grad = torch.randn(a.shape, generator=generator)
            b.grad = a.grad.clone()
        fused.step()
        plain.step()
    for (name, a), b in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7, msg=name)
