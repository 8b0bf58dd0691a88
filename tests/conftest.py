"""Shared test helpers and fixtures: small CLIP architectures, tiny
ActionClip configs and checkpoints, real mp4 files, a fake scorer, and
the command-line options of the synthetic-data runs.

Test modules import helpers from here (``from conftest import ...``), never
from one another. The project root and ``tools/`` are put on ``sys.path``
once, here: the tests import ``models`` and the tools' modules
(``import zero_shot``) as the tools themselves do.
"""
import contextlib
import hashlib
import os
import os.path as osp
import subprocess
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (ROOT, os.path.join(ROOT, 'tools')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

# One CPU thread per test process, set before torch is imported and
# inherited by the tools the tests run: `make test` runs one pytest worker
# per core, and a worker's own intra-op threads then outnumber the cores;
# OpenMP's barriers wait for threads that are not scheduled, and the tiny
# models' operations took 20 to 30 times longer (0.9 ms against 22 ms per
# linear + layer norm on 2 busy cores). The tests' models are too small to
# gain from a second thread. A value the user sets is kept.
for _name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_name, '1')

import models  # noqa: E402,F401  (applies the stack fixes first)


#: Files of few but long tests (training runs, fresh interpreters),
#: longest first (70 to 13 s of CPU each). ``--dist loadfile`` hands out
#: the files with the most tests first, which left these to run alone at
#: the end: the first of them took two minutes while the other worker
#: idled.
LONG_FILES = ('test_train_synthetic.py', 'test_distributed.py',
              'test_seed_snippets.py', 'test_eval_protocol_training.py',
              'test_compat.py', 'test_mim_test.py',
              'test_zeroshot_configs.py', 'test_decoder_robustness.py',
              'test_plugin_scope.py', 'test_environment.py')


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` that starts with :data:`LONG_FILES`."""
    if config.getvalue('dist') != 'loadfile':
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongFilesFirst(LoadFileScheduling):

        def _assign_work_unit(self, node):
            for name in reversed(LONG_FILES):
                for scope in [s for s in self.workqueue
                              if osp.basename(s) == name]:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LongFilesFirst(config, log)


@pytest.fixture(autouse=True)
def user_cache_home(tmp_path_factory, monkeypatch) -> str:
    """Each test's own ``XDG_CACHE_HOME`` (the tools' default cache
    folder), outside its ``tmp_path``: the tests never write into the
    user's ``~/.cache``, and see only their own cache files."""
    home = str(tmp_path_factory.mktemp('xdg_cache'))
    monkeypatch.setenv('XDG_CACHE_HOME', home)
    return home


@contextlib.contextmanager
def restored_mmengine_state():
    """Undo the global instances an in-process Runner leaves behind.

    A Runner makes its DefaultScope ('mmengine'), MessageHub, logger and
    visualizer the current instances, which would break later tests that
    build from mmaction's registries.
    """
    from mmengine.utils import ManagerMixin

    def managers():
        found, stack = [], [ManagerMixin]
        while stack:
            for sub in stack.pop().__subclasses__():
                if sub not in found:
                    found.append(sub)
                    stack.append(sub)
        return found

    saved = {cls: OrderedDict(cls._instance_dict) for cls in managers()}
    try:
        yield
    finally:
        for cls in managers():
            cls._instance_dict.clear()
            cls._instance_dict.update(saved.get(cls, {}))


@pytest.fixture
def isolated_mmengine_state():
    """:func:`restored_mmengine_state` around a test."""
    with restored_mmengine_state():
        yield


#: A CLIP small enough to run in milliseconds on a CPU.
TINY_ARCH = dict(
    embed_dim=64,
    image_resolution=32,
    vision_layers=2,
    vision_width=64,
    vision_patch_size=16,
    transformer_width=64,
    transformer_heads=2,
    transformer_layers=2)


def write_video(path: str,
                num_frames: int = 16,
                size: tuple = (64, 48),
                fps: int = 8,
                seed: int = 0) -> str:
    """Write an mp4 of a square moving over noise; returns ``path``."""
    import cv2
    rng = np.random.default_rng(seed)
    width, height = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (width, height))
    assert writer.isOpened(), f'cannot write {path}'
    background = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    side = max(4, min(width, height) // 4)
    for i in range(num_frames):
        frame = background.copy()
        x = int((width - side) * i / max(1, num_frames - 1))
        frame[height // 3:height // 3 + side, x:x + side] = (40, 200, 240)
        writer.write(frame)
    writer.release()
    return path


#: decord's error where it cannot copy a frame (which widths depends on
#: the CPU: docs/decoding.md).
DECORD_COPY_ERROR = ('Check failed: from_size == to_size (24576 vs. 18432) '
                     'DECORDArrayCopyFromTo: The size must exactly match')


def decord_copies(path: str) -> bool:
    """Whether decord, on this machine, gives the frames of ``path``
    (False where it fails to copy them, raising or returning padded rows
    as channels; any other error is raised)."""
    import decord
    reader = decord.VideoReader(path, num_threads=1)
    try:
        batch = reader.get_batch([0]).asnumpy()
    except decord._ffi.base.DECORDError as error:
        if 'size must exactly match' not in str(error):
            raise
        return False
    single = reader[0].asnumpy()
    assert batch.shape[1:] == single.shape or single.shape[2] != 3, (
        batch.shape, single.shape)
    return single.shape[2] == 3


def break_decord_copies(monkeypatch) -> None:
    """Make decord fail to copy every frame, as it does on some CPUs for
    some widths: ``get_batch`` raises its error, a single frame comes back
    with padded rows taken for channels."""
    import decord

    def get_batch(self, indices):
        raise decord._ffi.base.DECORDError(DECORD_COPY_ERROR)

    def padded(frame):
        frame = frame.asnumpy()
        height, width = frame.shape[:2]
        rows = np.zeros((height, width * 4), np.uint8)
        rows[:, :width * 3] = frame.reshape(height, -1)
        return decord.nd.array(rows.reshape(height, width, 4))

    get_next = decord.VideoReader.next  # reader[i] seeks, then next()
    monkeypatch.setattr(decord.VideoReader, 'get_batch', get_batch)
    monkeypatch.setattr(decord.VideoReader, 'next',
                        lambda self: padded(get_next(self)))


@pytest.fixture
def tiny_arch() -> dict:
    return dict(TINY_ARCH)


@pytest.fixture
def video_file(tmp_path) -> str:
    return write_video(str(tmp_path / 'video.mp4'))


@pytest.fixture(scope='session')
def torch_home(tmp_path_factory) -> str:
    """A TORCH_HOME whose hub cache holds a random-weight ViT-B/32-8
    checkpoint under the released file name, as a user's would after one
    download."""
    import torch

    from models.backbones.pretrained import ACTIONCLIP_CHECKPOINTS
    from models.recognizers.actionclip import ActionClip
    home = tmp_path_factory.mktemp('torch_home')
    cache = home / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    url = ACTIONCLIP_CHECKPOINTS['ViT-B/32-8']['url']
    torch.manual_seed(0)
    model = ActionClip('ViT-B/32', 8)
    torch.save({'state_dict': model.state_dict()},
               cache / os.path.basename(url))
    return str(home)


# Runs a tool as `python tools/x.py` does (its folder first on the path,
# which runpy does not do), then says whether torch was imported; exits
# with the tool's status.
RUN_TOOL = '''
import os, runpy, sys
sys.argv = [sys.argv[1], *sys.argv[2:]]
sys.path.insert(0, os.path.dirname(sys.argv[0]))
code = 0
try:
    runpy.run_path(sys.argv[0], run_name='__main__')
except SystemExit as exit:
    code = exit.code if isinstance(exit.code, int) else 1
print('torch loaded:', 'torch' in sys.modules)
sys.exit(code)
'''


def run_tool_traced(tool: str, *args, cwd=ROOT) -> subprocess.CompletedProcess:
    """Run ``tool`` with ``args`` offline through :data:`RUN_TOOL`: its
    stdout ends with ``torch loaded: True|False``."""
    return subprocess.run(
        [sys.executable, '-c', RUN_TOOL, tool, *map(str, args)], cwd=cwd,
        env=offline_env(), capture_output=True, text=True, timeout=120)


def mim_test_in_process(config: str, checkpoint: str, work_dir: str,
                        *options: str, dump: str = None) -> dict:
    """Run MMAction2's ``tools/test.py`` (the script ``mim test mmaction``
    runs) on ``config`` and ``checkpoint`` in this process, from the
    project root, with ``options`` as its ``--cfg-options`` (and ``--dump
    dump``); returns the metrics of its ``runner.test()`` (its exception,
    raised). The global instances of its Runner are undone.

    For tests of a config, not of the command (tests of ``mim test``
    itself run it as users do): a fresh interpreter costs ~7 s of CPU.
    """
    import runpy
    from unittest import mock

    import mmaction
    from mmengine.runner import Runner
    script = osp.join(osp.dirname(mmaction.__file__), '.mim', 'tools',
                      'test.py')
    argv = [script, config, checkpoint, '--work-dir', work_dir]
    if dump:
        argv += ['--dump', dump]
    if options:
        argv += ['--cfg-options', *options]
    metrics, run_test = [], Runner.test

    def test(self):
        metrics.append(run_test(self))
        return metrics[-1]

    # the script sets LOCAL_RANK in os.environ: undone with the rest
    with mock.patch.object(Runner, 'test', test), mock.patch.object(
            sys, 'argv', argv), mock.patch.dict(os.environ), \
            contextlib.chdir(ROOT), restored_mmengine_state():
        runpy.run_path(script, run_name='__main__')
    (result, ) = metrics
    return result


def offline_env(**extra) -> dict:
    """Environment for subprocesses in which any download fails at once."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=ROOT + os.pathsep + env.get('PYTHONPATH', ''),
        http_proxy='http://127.0.0.1:9',
        https_proxy='http://127.0.0.1:9',
        HTTP_PROXY='http://127.0.0.1:9',
        HTTPS_PROXY='http://127.0.0.1:9',
        no_proxy='',
        NO_PROXY='')
    env.update(extra)
    return env


# ---------------------------------------------------------------------------
# Tiny models: a config with its checkpoint, plain CLIP weights
# ---------------------------------------------------------------------------

#: Frames of the tiny config's model.
TINY_FRAMES = 4

TINY_CONFIG = f'''
custom_imports = dict(imports='models')
model = dict(
    type='ActionClip',
    clip_arch={TINY_ARCH!r},
    num_adapter_segs={TINY_FRAMES},
    num_adapter_layers=1,
    to_float32=True,
    pretrained=True,  # would download: the tools must not build it so
    labels_or_label_file='data/not_here/label_map.txt',
    templates_or_template_file=['a video of {{}}', '{{}}'])
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1,
         num_clips={TINY_FRAMES}, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
'''


def make_tiny_config(folder: str, seed: int = 0) -> tuple:
    """Write a tiny ActionClip config and a checkpoint trained "with" it.

    Args:
        folder (str): Where to write ``tiny_config.py`` and ``tiny.pth``.
        seed (int): Seed of the random weights.

    Returns:
        tuple: ``(config path, checkpoint path)``.
    """
    import torch

    from models.recognizers.actionclip import ActionClip
    config = osp.join(folder, 'tiny_config.py')
    with open(config, 'w') as f:
        f.write(TINY_CONFIG)
    torch.manual_seed(seed)
    model = ActionClip(
        TINY_ARCH, TINY_FRAMES, num_adapter_layers=1, to_float32=True)
    checkpoint = osp.join(folder, 'tiny.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 1}},
               checkpoint)
    return config, checkpoint


@pytest.fixture(scope='module')
def scorer(tmp_path_factory):
    """The tiny config's model as the tools load it, one per test module."""
    from models.apis.video_scoring import load_scoring_model
    config, checkpoint = make_tiny_config(
        str(tmp_path_factory.mktemp('tiny')))
    return load_scoring_model(config=config, checkpoint=checkpoint)


def make_tiny_clip(path: str, seed: int = 0) -> str:
    """Save plain CLIP weights of a tiny architecture whose hyperparameters
    can be read back from the shapes (OpenAI's 64-wide heads).

    Args:
        path (str): The ``.pt`` file to write.
        seed (int): Seed of the random weights.

    Returns:
        str: ``path``.
    """
    import torch

    from models.backbones.clip_builder import build_clip
    torch.manual_seed(seed)
    clip = build_clip(dict(TINY_ARCH, transformer_heads=1))
    torch.save(clip.state_dict(), path)
    return path


def make_videos(folder: str, count: int, num_frames: int = 12) -> list:
    """Write ``count`` small mp4 files of different widths.

    Args:
        folder (str): Where to write ``video_<i>.mp4`` (created).
        count (int): How many.
        num_frames (int): Frames of each.

    Returns:
        list[str]: Their paths, sorted.
    """
    os.makedirs(folder, exist_ok=True)
    return [
        write_video(
            osp.join(folder, f'video_{i}.mp4'),
            num_frames=num_frames,
            size=(64 + 16 * i, 48),
            seed=i) for i in range(count)
    ]


# ---------------------------------------------------------------------------
# A fake scorer: features from a file's bytes, no model to load
# ---------------------------------------------------------------------------

#: Feature size of :func:`fake_scorer`.
FEATURE_DIM = 8


class FakeModel:
    """Stands for ActionClip: a video's "frames" are already its feature,
    a text's feature is its first tokens."""

    def encode_video(self, frames):
        return frames.flatten(1)

    def encode_text(self, tokens):
        return tokens[:, 1:1 + FEATURE_DIM].float()


class FakePreprocess:
    """Stands for :class:`models.apis.preprocess.Preprocess`: a file's
    "decoded frames" are a hash of its bytes; files that start with
    ``bad`` cannot be "decoded".

    Args:
        on_read (callable, optional): Called with each file before it is
            read.
    """

    def __init__(self, on_read=None):
        self.on_read = on_read
        #: The files read, in order.
        self.reads = []

    def pipeline(self, path: str) -> dict:
        import torch

        from models.datasets.transforms import VideoReadError
        if self.on_read is not None:
            self.on_read(path)
        self.reads.append(path)
        with open(path, 'rb') as f:
            data = f.read()
        if data.startswith(b'bad'):
            raise VideoReadError(f'Cannot decode video {path!r}')
        digest = hashlib.sha256(data).digest()[:FEATURE_DIM]
        inputs = torch.tensor(list(digest), dtype=torch.float32)[None] + 1
        return dict(inputs=inputs, data_samples=None)

    def normalize(self, packed):
        import torch
        return torch.stack([p['inputs'] for p in packed])

    def __call__(self, path: str):
        return self.normalize([self.pipeline(path)])[0]


def fake_scorer(identity: str = 'fake-a', on_read=None):
    """A scorer whose feature of a file is a hash of its bytes (see
    :class:`FakePreprocess`); ``scorer.reads`` lists the files embedded.

    Args:
        identity (str): The scorer's identity (the cache's model key).
        on_read (callable, optional): Called with each file before it is
            read.

    Returns:
        types.SimpleNamespace: ``model``, ``preprocess``, ``identity``,
        ``device`` and ``reads``.
    """
    import torch
    preprocess = FakePreprocess(on_read)
    return types.SimpleNamespace(
        model=FakeModel(), preprocess=preprocess, identity=identity,
        device=torch.device('cpu'), reads=preprocess.reads)


def make_files(folder: str, count: int) -> list:
    """``count`` distinct fake videos (``video_<i>.mp4``).

    Args:
        folder (str): Where to write them (created).
        count (int): How many.

    Returns:
        list[str]: Their paths.
    """
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        path = osp.join(folder, f'video_{i}.mp4')
        with open(path, 'wb') as f:
            f.write(f'video {i}'.encode() * (i + 1))
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------
# Runs on the synthetic dataset
# ---------------------------------------------------------------------------


def data_options(data: str) -> list:
    """``--cfg-options`` pointing the tiny synthetic config at a generated
    dataset, with small batches and no worker processes.

    Args:
        data (str): The dataset folder (``tools/generate_videos.py``'s
            ``--out``).

    Returns:
        list[str]: The options.
    """
    options = [f'model.labels_or_label_file={data}/label_map.txt']
    for split, loader in (('train', 'train'), ('val', 'val'),
                          ('test', 'test')):
        options += [
            f'{loader}_dataloader.dataset.ann_file='
            f'{data}/{split}_list_videos.txt',
            f'{loader}_dataloader.dataset.data_prefix.video='
            f'{data}/videos/{split}',
            f'{loader}_dataloader.batch_size=8',
            f'{loader}_dataloader.num_workers=0',
            f'{loader}_dataloader.persistent_workers=False',
        ]
    return options
