"""Adversarial inputs over every entry point.

Each class of fault is one row of a table, run through the entry points
it reaches: the in-process APIs (``init_actionclip``, ``load_model``,
``load_scoring_model``, ``init_recognizer``), the command lines
(``tools/zero_shot.py``, ``tools/search_videos.py``,
``tools/find_moments.py``, ``tools/convert_actionclip_checkpoint.py``,
``mim test``), ``--resume``
and the checkpoint writer. The outcome is always one of:

* the right result (the same probabilities as the model that was saved);
* a refusal whose message names the culprit (file, key or value), with
  every file the user gave byte-identical (sha256 before and after), and,
  for a command line, exit status 2 and no traceback.

The command lines run in-process through their ``main`` (whose return
value is the exit status, and where a traceback would be an exception
escaping), except for a few rows run in a fresh interpreter, as users run
them, where the process itself must exit 2 without a traceback. The
table of case classes is at the end of the module.
"""
import copy
import errno
import hashlib
import json
import os
import os.path as osp
import pickle
import re
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Sequence, Tuple

import convert_actionclip_checkpoint as convert_tool
import find_moments
import pytest
import search_videos
import torch
import zero_shot
from conftest import ROOT, TINY_ARCH, offline_env, write_video

from models.apis.loading import init_actionclip, load_model
from models.apis.video_scoring import (encode_frames, load_scoring_model,
                                       query_similarity, query_text_features)
from models.checkpoints.checks import (CheckpointMismatchError,
                                       NonFiniteWeightsError,
                                       NotACheckpointError)
from models.checkpoints.recorded_config import ConfigTextError
from models.checkpoints.safe_loading import (CheckpointReadError,
                                             UnsafeCheckpointError)
from models.engine.training_checkpoints import (ATOMIC_BACKEND, ResumeError,
                                                check_resumable,
                                                find_resumable,
                                                register_atomic_backend)
from models.recognizers.actionclip import ActionClip
from models.text.prompts import load_labels

LABELS = ['juggling balls', 'riding a unicycle', 'reading a book']
TEMPLATES = ['a video of {}', '{}']
SEGS = 4
QUERY = 'a yellow square moving right'

# A config as this project's training configs write them: temporal shift
# on, two adapter layers, non-default templates, its own test pipeline.
CONFIG_TEXT = f'''
custom_imports = dict(imports='models')
model = dict(
    type='ActionClip',
    clip_arch={TINY_ARCH!r},
    num_adapter_segs={SEGS},
    num_adapter_layers=2,
    to_float32=True,
    pretrained=False,
    temporal_shift=True,
    labels_or_label_file={LABELS!r},
    templates_or_template_file={TEMPLATES!r})
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1,
         num_clips={SEGS}, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
'''

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def sha256(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def snapshot(*roots: str) -> Dict[str, str]:
    """sha256 of every regular file under ``roots`` (links not followed),
    and the target of every symbolic link."""
    seen = {}
    for root in roots:
        if osp.islink(root):
            seen[root] = 'link -> ' + os.readlink(root)
            continue
        if osp.isfile(root):
            seen[root] = sha256(root)
            continue
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                path = osp.join(folder, name)
                if osp.islink(path):
                    seen[path] = 'link -> ' + os.readlink(path)
                elif osp.isfile(path):
                    seen[path] = sha256(path)
    return seen


class _RunsCode:
    """Pickles as ``os.system(command)``: loading it would run the
    command."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


@dataclass
class Env:
    """The files a user has: a config, the checkpoint trained with it, a
    video; and the model that was saved, for the right results."""
    root: str
    config: str
    checkpoint: str
    state: Dict[str, torch.Tensor]
    cfg_text: str
    reference: ActionClip
    frames: torch.Tensor
    video: str
    original: str  # an original-ActionCLIP layout file
    marker: str  # created by any code a bad file manages to run

    def probs(self, model) -> torch.Tensor:
        model.eval()
        if list(model.labels) != LABELS:
            model.set_labels(LABELS)
        with torch.no_grad():
            return model.predict_scores(self.frames)


def original_layout(seed: int = 0) -> dict:
    """What the original ActionCLIP train.py saves (float16 CLIP,
    DataParallel fusion keys, 77 position rows)."""
    torch.manual_seed(seed)
    model = ActionClip(dict(TINY_ARCH, transformer_heads=1), 8)
    state = model.state_dict()
    fusion = {
        'module.' + k[len('adapter.'):]: v
        for k, v in state.items() if k.startswith('adapter.')
    }
    key = 'module.frame_position_embeddings.weight'
    fusion[key] = torch.cat(
        [fusion[key], torch.randn(69, fusion[key].shape[1])])
    return {
        'epoch': 3,
        'model_state_dict': {
            k[len('clip.'):]: v.half()
            for k, v in state.items() if k.startswith('clip.')
        },
        'fusion_model_state_dict': fusion,
    }


@pytest.fixture(scope='module')
def env(tmp_path_factory) -> Env:
    from mmaction.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    root = str(tmp_path_factory.mktemp('adversarial'))
    config = osp.join(root, 'tiny_config.py')
    with open(config, 'w') as f:
        f.write(CONFIG_TEXT)
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmaction'):
        model = MODELS.build(cfg.model).eval()
    checkpoint = osp.join(root, 'epoch_1.pth')
    torch.save(
        {
            'state_dict': model.state_dict(),
            'meta': {
                'cfg': cfg.pretty_text,
                'epoch': 1,
                'iter': 1
            }
        }, checkpoint)
    torch.manual_seed(1)
    original = osp.join(root, 'model_best.pt')
    torch.save(original_layout(), original)
    return Env(root, config, checkpoint,
               {k: v.clone() for k, v in model.state_dict().items()},
               cfg.pretty_text, model, torch.randn(2, SEGS, 3, 32, 32),
               write_video(osp.join(root, 'clip.mp4'), num_frames=12),
               original, osp.join(root, 'CODE_WAS_RUN'))


def save(env: Env, name: str, obj, **kwargs) -> str:
    folder = osp.join(env.root, 'cases')
    os.makedirs(folder, exist_ok=True)
    path = osp.join(folder, name)
    torch.save(obj, path, **kwargs)
    return path


def with_cfg(env: Env, state: dict, **meta) -> dict:
    return {
        'state_dict': state,
        'meta': dict({
            'cfg': env.cfg_text,
            'epoch': 1,
            'iter': 1
        }, **meta)
    }


def assert_refused(excinfo, patterns: Sequence[str]) -> None:
    text = str(excinfo.value)
    for pattern in patterns:
        assert re.search(pattern, text), (pattern, text)


# ---------------------------------------------------------------------------
# Bad checkpoints through the loading APIs
# ---------------------------------------------------------------------------


def _drop_layer(env):
    state = {
        k: v
        for k, v in env.state.items()
        if not k.startswith('adapter.transformer.resblocks.1.')
    }
    return save(env, 'missing_layer.pth', with_cfg(env, state))


def _extra_key(env):
    state = dict(env.state, **{'adapter.extra_gate.weight': torch.ones(3)})
    return save(env, 'extra_key.pth', with_cfg(env, state))


def _reshaped(env):
    key = 'adapter.frame_position_embeddings.weight'
    state = dict(env.state, **{key: torch.zeros(SEGS * 2, 64)})
    return save(env, 'reshaped.pth', with_cfg(env, state))


def _non_finite(value):

    def make(env):
        state = dict(env.state)
        weight = state['clip.visual.proj'].clone()
        weight[0, 0] = value
        state['clip.visual.proj'] = weight
        return save(env, f'non_finite_{value}.pth', with_cfg(env, state))

    return make


def _unrelated(env):
    torch.manual_seed(2)
    return save(
        env, 'tsn_r50.pth', {
            'state_dict': {
                'backbone.conv1.conv.weight': torch.randn(8, 3, 7, 7),
                'backbone.conv1.bn.weight': torch.ones(8),
                'cls_head.fc_cls.weight': torch.randn(400, 8),
                'cls_head.fc_cls.bias': torch.zeros(400),
            },
            'meta': {
                'epoch': 100
            }
        })


def _unsafe(fmt):

    def make(env):
        command = _RunsCode(f'touch {env.marker}')
        if fmt == 'plain pickle':
            path = osp.join(env.root, 'cases', 'evil.pkl')
            os.makedirs(osp.dirname(path), exist_ok=True)
            with open(path, 'wb') as f:
                pickle.dump({'state_dict': env.state, 'x': command}, f)
            return path
        return save(
            env, f'evil_{fmt}.pth', {
                'state_dict': env.state,
                'meta': {
                    'epoch': 1
                },
                'x': command
            },
            _use_new_zipfile_serialization=fmt == 'zip')

    return make


def _truncated(env):
    with open(env.checkpoint, 'rb') as f:
        data = f.read()
    path = osp.join(env.root, 'cases', 'truncated.pth')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    return path


def _html(env):
    path = osp.join(env.root, 'cases', 'download.pth')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('<html><body>404 Not Found</body></html>\n')
    return path


def _empty(env):
    path = osp.join(env.root, 'cases', 'empty.pth')
    os.makedirs(osp.dirname(path), exist_ok=True)
    open(path, 'wb').close()
    return path


def _folder(env):
    path = osp.join(env.root, 'cases', 'work_dir.pth')
    os.makedirs(path, exist_ok=True)
    return path


def _broken_link(env):
    path = osp.join(env.root, 'cases', 'latest.pth')
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not osp.lexists(path):
        os.symlink('epoch_9.pth', path)
    return path


def _link_loop(env):
    path = osp.join(env.root, 'cases', 'loop.pth')
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not osp.lexists(path):
        os.symlink('loop.pth', path)
    return path


def _missing(env):
    return osp.join(env.root, 'cases', 'epoch_99.pth')


def _cfg_code(text):

    def make(env):
        code = text.format(marker=env.marker)
        return save(env, f'cfg_code_{len(text)}.pth',
                    with_cfg(env, env.state, cfg=code))

    return make


def _module_prefix(env):
    state = {'module.' + k: v for k, v in env.state.items()}
    return save(env, 'ddp.pth', with_cfg(env, state))


def _half(env):
    state = {
        k: v.half() if v.is_floating_point() else v
        for k, v in env.state.items()
    }
    return save(env, 'half.pth', with_cfg(env, state))


def _recorded(env):
    return env.checkpoint


@dataclass
class CheckpointCase:
    """A checkpoint fault: how to make the file, what every entry point
    must raise (None: load it right) and what the message must say;
    ``with_config`` overrides the outcome where the user also gives the
    config (a recorded config is then never read)."""
    make: Callable[[Env], str]
    error: Optional[type]
    patterns: Tuple[str, ...] = ()
    names_file: bool = True
    with_config: Optional[Tuple[Optional[type], Tuple[str, ...]]] = None
    # The right result is that of the saved model with its weights rounded
    # to float16.
    half: bool = False
    # Outcomes that differ for one entry point, and known defects.
    per_entry: Dict[str, Tuple[Optional[type], Tuple[str, ...]]] = field(
        default_factory=dict)
    xfail: Dict[str, str] = field(default_factory=dict)
    entries: Tuple[str, ...] = ('init_actionclip', 'load_scoring_model',
                                'init_recognizer')


CONVERTER = r'tools/convert_actionclip_checkpoint\.py'
CHECKPOINT_CASES = {
    'recorded config is used':
    CheckpointCase(_recorded, None),
    'DataParallel module. prefix':
    CheckpointCase(_module_prefix, None),
    'float16 weights':
    CheckpointCase(_half, None, half=True),
    'original ActionCLIP layout':
    CheckpointCase(lambda env: env.original, CheckpointMismatchError,
                   ('original ActionCLIP', CONVERTER)),
    'unrelated recognizer (backbone.*)':
    CheckpointCase(_unrelated, CheckpointMismatchError,
                   ('backbone', 'not of ActionClip|not an ActionCLIP')),
    'one adapter layer missing':
    CheckpointCase(_drop_layer, CheckpointMismatchError,
                   ('missing', r'adapter\.transformer\.resblocks\.1\.')),
    'unexpected extra key':
    CheckpointCase(_extra_key, CheckpointMismatchError,
                   ('unexpected', r'adapter\.extra_gate\.weight')),
    'weight of another shape':
    CheckpointCase(_reshaped, CheckpointMismatchError,
                   ('another shape', r'frame_position_embeddings',
                    r'\(8, 64\)')),
    'NaN weight':
    CheckpointCase(_non_finite(float('nan')), NonFiniteWeightsError,
                   (r'NaN', r'clip\.visual\.proj')),
    'infinite weight':
    CheckpointCase(_non_finite(float('inf')), NonFiniteWeightsError,
                   (r'infinite', r'clip\.visual\.proj')),
    'bare tensor':
    CheckpointCase(lambda env: save(env, 'tensor.pth', torch.zeros(3, 4)),
                   NotACheckpointError, (r'bare tensor of shape \(3, 4\)', )),
    'list of tensors':
    CheckpointCase(lambda env: save(env, 'list.pth', [torch.zeros(2)] * 3),
                   NotACheckpointError, (r'list of 3 items', )),
    "{'state_dict': tensor}":
    CheckpointCase(
        lambda env: save(env, 'sd_tensor.pth', {'state_dict': torch.zeros(2)}),
        NotACheckpointError, (r"\['state_dict'\]", 'bare tensor')),
    'malicious pickle (zip)':
    CheckpointCase(_unsafe('zip'), UnsafeCheckpointError,
                   (r'system', 'ACTIONCLIP_TRUST_CHECKPOINTS')),
    'malicious pickle (legacy format)':
    CheckpointCase(_unsafe('legacy'), UnsafeCheckpointError,
                   (r'system', 'ACTIONCLIP_TRUST_CHECKPOINTS')),
    'malicious pickle (plain pickle.dump)':
    CheckpointCase(_unsafe('plain pickle'), UnsafeCheckpointError,
                   (r'system', 'ACTIONCLIP_TRUST_CHECKPOINTS')),
    'truncated file':
    CheckpointCase(_truncated, CheckpointReadError,
                   ('truncated or corrupt', )),
    'empty file':
    CheckpointCase(_empty, CheckpointReadError, ()),
    'HTML error page saved as .pth':
    CheckpointCase(_html, CheckpointReadError, ('not a PyTorch checkpoint', )),
    'folder given as checkpoint':
    CheckpointCase(_folder, IsADirectoryError, ('folder', )),
    'broken symbolic link':
    CheckpointCase(_broken_link, FileNotFoundError,
                   ('broken symbolic link', )),
    'symbolic link loop':
    CheckpointCase(_link_loop, FileNotFoundError, ('symbolic link loop', )),
    'file that does not exist':
    CheckpointCase(_missing, FileNotFoundError, ()),
    "meta['cfg'] holds statements":
    CheckpointCase(
        _cfg_code("import os\nos.system('touch {marker}')"),
        ConfigTextError, (r"meta\['cfg'\]", 'not plain data', 'not executed'),
        with_config=(None, ())),
    "meta['cfg'] holds a call in a value":
    CheckpointCase(
        _cfg_code("model = dict(type=__import__('os').system("
                  "'touch {marker}'))"),
        ConfigTextError, (r"meta\['cfg'\]", 'not plain data'),
        with_config=(None, ())),
}


# Faults of the file itself: it cannot be read, is not a mapping of
# weights, or needs unsafe unpickling. init_recognizer reads a local file
# with mmengine's own loader, which importing the plugin leaves as it is,
# so there it fails exactly as it does for any other model (torch's
# weights_only default still refuses code); the other entry points read
# through the plugin's safe loader and say more.
FILE_FAULTS = (NotACheckpointError, UnsafeCheckpointError,
               CheckpointReadError, IsADirectoryError, FileNotFoundError)


def _mmengine_outcome(path: str) -> Tuple[type, str]:
    """What mmengine's load_checkpoint raises for a plain torch model."""
    from mmengine.runner.checkpoint import load_checkpoint
    with pytest.raises(Exception) as excinfo:
        load_checkpoint(torch.nn.Linear(2, 2), path, map_location='cpu')
    return type(excinfo.value), str(excinfo.value)


def _load(entry: str, env: Env, path: str):
    if entry == 'init_actionclip':
        return init_actionclip(path, labels=LABELS)[0]
    if entry == 'load_scoring_model':
        return load_scoring_model(config=env.config, checkpoint=path).model
    from mmaction.apis import init_recognizer
    return init_recognizer(env.config, path, device='cpu')


CHECKPOINT_ROWS = [
    pytest.param(
        name,
        entry,
        id=f'{name} | {entry}',
        marks=[pytest.mark.xfail(strict=True, reason=case.xfail[entry])]
        if entry in case.xfail else [])
    for name, case in CHECKPOINT_CASES.items() for entry in case.entries
]


@pytest.mark.parametrize('name,entry', CHECKPOINT_ROWS)
def test_bad_checkpoint(env, name, entry):
    case = CHECKPOINT_CASES[name]
    path = case.make(env)
    error, patterns = case.error, case.patterns
    if case.with_config is not None and entry != 'init_actionclip':
        error, patterns = case.with_config
    error, patterns = case.per_entry.get(entry, (error, patterns))
    owned = (path, env.config, env.checkpoint)
    before = snapshot(*owned)
    if entry == 'init_recognizer' and error in FILE_FAULTS:
        expected = _mmengine_outcome(path)
        with pytest.raises(Exception) as excinfo:
            _load(entry, env, path)
        assert (type(excinfo.value), str(excinfo.value)) == expected
        if error is UnsafeCheckpointError:
            assert isinstance(excinfo.value, pickle.UnpicklingError)
    elif error is None:
        model = _load(entry, env, path)
        reference = env.reference
        if case.half:
            reference = copy.deepcopy(reference)
            reference.load_state_dict({
                k: v.half().float() if v.is_floating_point() else v
                for k, v in env.state.items()
            })
        torch.testing.assert_close(
            env.probs(model), env.probs(reference), atol=1e-5, rtol=0)
        if entry == 'init_actionclip':  # built from the recorded config
            assert model.temporal_shift is not None
            assert list(model.templates) == TEMPLATES
    else:
        with pytest.raises(error) as excinfo:
            _load(entry, env, path)
        assert_refused(excinfo, patterns)
        # mmengine's loader (init_recognizer) does not tell the model
        # which file its weights came from.
        if case.names_file and entry != 'init_recognizer':
            assert path in str(excinfo.value) or osp.basename(path) in str(
                excinfo.value), str(excinfo.value)
    assert not osp.exists(env.marker), 'a checkpoint ran code'
    assert snapshot(*owned) == before


def test_recorded_config_builds_the_trained_model(env):
    """The model comes back as trained: temporal shift, templates and the
    test pipeline of the recorded config (the quickstart top-1 0.83 ->
    0.056 bug)."""
    loaded = load_model(checkpoint=env.checkpoint, labels=LABELS)
    assert 'recorded' in loaded.source and env.checkpoint in loaded.source
    assert loaded.model.temporal_shift is not None
    assert list(loaded.model.templates) == TEMPLATES
    assert [t['type'] for t in loaded.config.test_pipeline][:2] == [
        'DecordInit', 'SampleFrames'
    ]
    assert loaded.preprocess(env.video).shape == (SEGS, 3, 32, 32)


# ---------------------------------------------------------------------------
# One checkpoint, the same probabilities through every entry point
# ---------------------------------------------------------------------------


def test_same_probabilities_through_every_entry_point(env, tmp_path, capsys):
    from mmaction.apis import init_recognizer
    frames_of = load_model(checkpoint=env.checkpoint).preprocess
    frames = frames_of(env.video).unsqueeze(0)
    with torch.no_grad():
        expected = env.reference.predict_scores(frames)[0]
    got = {}
    model, preprocess = init_actionclip(env.checkpoint, labels=LABELS)
    with torch.no_grad():
        got['init_actionclip'] = model.predict_scores(
            preprocess(env.video).unsqueeze(0))[0]
    scorer = load_scoring_model(config=env.config, checkpoint=env.checkpoint)
    scorer.model.set_labels(LABELS)
    with torch.no_grad():
        got['load_scoring_model(config)'] = scorer.model.predict_scores(
            scorer.preprocess(env.video).unsqueeze(0))[0]
    recognizer = init_recognizer(env.config, env.checkpoint, device='cpu')
    with torch.no_grad():
        got['init_recognizer'] = recognizer.predict_scores(frames)[0]
    out = tmp_path / 'out.json'
    status = zero_shot.main([
        env.video, '--labels', ','.join(LABELS), '--model', env.checkpoint,
        '--out',
        str(out), '--topk', '3', '--device', 'cpu', '--no-progress'
    ])
    assert status == 0, capsys.readouterr().err
    data = json.loads(out.read_text())
    assert data['templates'] == TEMPLATES
    predictions = data['results'][0]['predictions']
    got['zero_shot.py --model'] = torch.tensor([
        {p['label']: p['probability']
         for p in predictions}[label] for label in LABELS
    ])
    for entry, probs in got.items():
        torch.testing.assert_close(
            probs, expected, atol=1e-5, rtol=0, msg=entry)

    # search_videos.py --model: the same video features.
    folder = tmp_path / 'videos'
    folder.mkdir()
    os.link(env.video, folder / 'clip.mp4')
    capsys.readouterr()
    status = search_videos.main([
        str(folder), QUERY, '--model', env.checkpoint, '--no-cache',
        '--device', 'cpu', '--no-progress'
    ])
    out_text = capsys.readouterr().out
    assert status == 0
    similarity = float(re.search(r'^\s+1\s+(-?[0-9.]+)\s', out_text,
                                 re.M).group(1))
    expected_sim = query_similarity(
        encode_frames(env.reference, frames),
        query_text_features(env.reference, QUERY))
    assert similarity == pytest.approx(float(expected_sim[0]), abs=1e-4)


# ---------------------------------------------------------------------------
# The feature cache's identity: what changes a video's features changes it
# ---------------------------------------------------------------------------

PREPROCESSOR = ("data_preprocessor=dict(type='ActionDataPreprocessor', "
                "mean=[122.771, 116.746, 104.093], std=[68.5, 66.632, "
                "70.323], format_shape='NCHW'),")


def _edit_base(folder, env):
    base = osp.join(folder, 'base.py')
    with open(base) as f:
        text = f.read()
    with open(base, 'w') as f:
        f.write(text.replace('122.771', '100.0'))


def _new_weights(folder, env):
    state = dict(env.state)
    state['clip.visual.proj'] = state['clip.visual.proj'] * 2
    torch.save(with_cfg(env, state), osp.join(folder, 'weights.pth'))


def _edit_templates(folder, env):
    base = osp.join(folder, 'base.py')
    with open(base) as f:
        text = f.read()
    with open(base, 'w') as f:
        f.write(text.replace("'a video of {}'", "'a clip of {}'"))


IDENTITY_CASES = {
    # name: (edit, whether the features (and so the identity) change)
    'a value in the _base_ file edited': (_edit_base, True),
    'the weights file rewritten': (_new_weights, True),
    'only the templates edited': (_edit_templates, False),
}


@pytest.mark.parametrize('name', list(IDENTITY_CASES))
def test_cache_identity(env, tmp_path, name):
    edit, changes = IDENTITY_CASES[name]
    with open(osp.join(tmp_path, 'base.py'), 'w') as f:
        f.write(CONFIG_TEXT.replace("    to_float32=True,",
                                    '    to_float32=True,\n    ' +
                                    PREPROCESSOR))
    config = osp.join(tmp_path, 'child.py')
    with open(config, 'w') as f:
        f.write("_base_ = './base.py'\n")
    weights = osp.join(tmp_path, 'weights.pth')
    torch.save(with_cfg(env, env.state), weights)
    os.utime(weights, ns=(10**18, 10**18))
    before = load_scoring_model(config=config, checkpoint=weights)
    edit(str(tmp_path), env)
    after = load_scoring_model(config=config, checkpoint=weights)
    with torch.no_grad():
        same_features = torch.equal(
            encode_frames(before.model, before.preprocess(env.video)[None]),
            encode_frames(after.model, after.preprocess(env.video)[None]))
    assert same_features != changes
    assert (after.identity != before.identity) == changes


# ---------------------------------------------------------------------------
# --clip (plain CLIP weights)
# ---------------------------------------------------------------------------


def _clip_file(kind):

    def make(env):
        if kind == 'original layout':
            return env.original
        torch.manual_seed(0)
        from models.backbones.clip_builder import build_clip
        state = build_clip(dict(TINY_ARCH, transformer_heads=1)).state_dict()
        if kind == 'NaN':
            state['visual.proj'][0, 0] = float('nan')
        elif kind == 'not CLIP':
            state = {'backbone.conv.weight': torch.zeros(2, 3, 3, 3)}
        return save(env, f'clip_{kind.replace(" ", "_")}.pt', state)

    return make


CLIP_CASES = {
    'plain CLIP weights load':
    (_clip_file('ok'), None, ()),
    'original ActionCLIP layout':
    (_clip_file('original layout'), (CheckpointMismatchError, ),
     ('original ActionCLIP|model_state_dict', )),
    'NaN in CLIP weights':
    (_clip_file('NaN'), (NonFiniteWeightsError, ), ('NaN', )),
    'weights of another model':
    (_clip_file('not CLIP'), (CheckpointMismatchError, ), ('backbone', )),
}


@pytest.mark.parametrize('name', list(CLIP_CASES))
def test_bad_clip_weights(env, name):
    make, errors, patterns = CLIP_CASES[name]
    path = make(env)
    before = snapshot(path)
    if errors is None:
        loaded = load_model(clip=path, num_frames=SEGS)
        assert loaded.model.adapter.__class__.__name__ == 'MeanPoolAdapter'
    else:
        with pytest.raises(errors) as excinfo:
            load_model(clip=path, num_frames=SEGS)
        assert_refused(excinfo, patterns)
        assert path in str(excinfo.value)
    assert snapshot(path) == before


# ---------------------------------------------------------------------------
# Label files
# ---------------------------------------------------------------------------


LABEL_CASES = {
    # name: (bytes, labels expected or (error, patterns))
    'plain UTF-8': (b'juggling balls\nreading a book\n',
                    ['juggling balls', 'reading a book']),
    'CRLF line ends': (b'juggling balls\r\nreading a book\r\n',
                       ['juggling balls', 'reading a book']),
    'trailing blank lines': (b'a\nb\n\n\n', ['a', 'b']),
    'UTF-8 BOM': ('\ufeffjuggling balls\nreading a book\n'.encode(),
                  ['juggling balls', 'reading a book']),
    'non-ASCII UTF-8': ('caf\u00e9 au lait\nna\u00efve dance\n'.encode(),
                        ['caf\u00e9 au lait', 'na\u00efve dance']),
    'non-UTF-8 (Latin-1)': ('caf\u00e9\nthe\n'.encode('latin-1'),
                            (ValueError, ('labels.txt', 'UTF-8'))),
    'blank line inside':
    (b'a\n\nb\n', (ValueError, ('labels.txt', 'line 2', 'blank'))),
    'empty file': (b'', (ValueError, ('labels.txt', 'no labels'))),
    'only blank lines':
    (b'\n\n  \n', (ValueError, ('labels.txt', 'no labels'))),
}


@pytest.mark.parametrize('name', list(LABEL_CASES))
@pytest.mark.parametrize('entry', ['load_labels', 'ActionClip'])
def test_label_file(tmp_path, name, entry):
    data, expected = LABEL_CASES[name]
    path = tmp_path / 'labels.txt'
    path.write_bytes(data)

    def read():
        if entry == 'load_labels':
            return load_labels(str(path))
        model = ActionClip(
            TINY_ARCH, SEGS, num_adapter_layers=1,
            labels_or_label_file=str(path))
        return model.labels

    if isinstance(expected, list):
        assert read() == expected
    else:
        error, patterns = expected
        with pytest.raises(error) as excinfo:
            read()
        assert_refused(excinfo, patterns)
    assert path.read_bytes() == data


# ---------------------------------------------------------------------------
# Command lines (in-process main: the return value is the exit status)
# ---------------------------------------------------------------------------


def run_main(tool, args, capsys):
    capsys.readouterr()
    status = tool.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@dataclass
class CliCase:
    """A command line over prepared files: ``prepare(env, tmp)`` returns
    ``(args, files the user owns)``; the run must exit ``status`` with
    every pattern in stderr (and, for status 2, one line, no traceback)."""
    tool: str
    prepare: Callable
    status: int
    patterns: Tuple[str, ...] = ()
    check: Optional[Callable] = None
    subprocess: bool = False
    xfail: Optional[str] = None


def _videos_folder(env, tmp, names=('a.mp4', 'b.mp4')):
    folder = tmp / 'videos'
    folder.mkdir(exist_ok=True)
    for name in names:
        os.link(env.video, folder / name)
    return folder


def _zs(*extra):

    def prepare(env, tmp):
        return [
            env.video, '--labels', ','.join(LABELS), '--model',
            env.checkpoint, *extra
        ], [env.video, env.checkpoint]

    return prepare


def _zs_output_is_input(option, how):

    def prepare(env, tmp):
        video = tmp / 'input.mp4'
        os.link(env.video, video)
        target = video
        if how != 'same':
            target = tmp / ('out.json' if option == '--out' else 'viz.mp4')
            (os.link if how == 'hard link' else os.symlink)(video, target)
        return [
            str(video), '--labels', ','.join(LABELS), '--model',
            env.checkpoint, option,
            str(target)
        ], [str(video), str(target)]

    return prepare


def _zs_out_is_label_file(env, tmp):
    labels = tmp / 'labels.csv'
    labels.write_text('\n'.join(LABELS) + '\n')
    return [
        env.video, '--label-file',
        str(labels), '--model', env.checkpoint, '--out',
        str(labels)
    ], [str(labels), env.video]


def _zs_viz_name_of_another_input(env, tmp):
    # With several videos, --viz out.mp4 writes out_<stem>.mp4 per video:
    # here that name is one of the inputs.
    folder = _videos_folder(env, tmp, ('a.mp4', 'out_a.mp4'))
    return [
        str(folder), '--labels', ','.join(LABELS), '--model', env.checkpoint,
        '--viz',
        str(folder / 'out.mp4')
    ], [str(folder)]


def _zs_checkpoint(make):

    def prepare(env, tmp):
        path = make(env)
        return [env.video, '--labels', ','.join(LABELS), '--model',
                path], [path, env.video]

    return prepare


def _zs_clip(make):

    def prepare(env, tmp):
        path = make(env)
        return [
            env.video, '--labels', ','.join(LABELS), '--clip', path,
            '--num-frames', SEGS
        ], [path, env.video]

    return prepare


def _zs_label_file(data):

    def prepare(env, tmp):
        path = tmp / 'labels.txt'
        path.write_bytes(data)
        return [
            env.video, '--label-file',
            str(path), '--model', env.checkpoint
        ], [str(path)]

    return prepare


def _zs_outputs_in_missing_folder(env, tmp):
    return [
        env.video, '--labels', ','.join(LABELS), '--model', env.checkpoint,
        '--out',
        str(tmp / 'new' / 'res.json'), '--viz',
        str(tmp / 'new2' / 'sub' / 'viz.mp4')
    ], [env.video]


def _exists(*names):

    def check(env, tmp, out, err):
        for name in names:
            assert (tmp / name).is_file(), name

    return check


def _zs_with_corrupt_video(env, tmp):
    folder = _videos_folder(env, tmp)
    (folder / 'corrupt.mp4').write_bytes(b'\x00\x01 not a video' * 40)
    return [
        str(folder), '--labels', ','.join(LABELS), '--model', env.checkpoint
    ], [str(folder)]


def _scored(*names):

    def check(env, tmp, out, err):
        tables = re.findall(r'^(\S+)\n  rank  probability  label', out, re.M)
        assert sorted(osp.basename(t) for t in tables) == sorted(names), out

    return check


def _zs_video_loop(env, tmp):
    os.symlink('me.mp4', tmp / 'me.mp4')
    return [str(tmp / 'me.mp4'), '--labels', ','.join(LABELS), '--model',
            env.checkpoint], [str(tmp / 'me.mp4')]


def _damaged_cache(env, tmp, folder):
    from models.apis.feature_cache import CACHE_MAGIC
    path = tmp / 'cache.pt'
    path.write_bytes(CACHE_MAGIC + b'PK\x03\x04 half a cache')
    return path


def _cache_rebuilt(env, tmp, out, err):
    from models.apis.feature_cache import read_cache
    cache, problem = read_cache(str(tmp / 'cache.pt'))
    assert problem is None and len(cache['models']) == 1
    (entries, ) = cache['models'].values()
    assert sorted(entries) == ['a.mp4', 'b.mp4']


def _search(cache=None, folder_names=('a.mp4', 'b.mp4'), extra=(),
            own_cache=True):

    def prepare(env, tmp):
        folder = _videos_folder(env, tmp, folder_names)
        args = [str(folder), QUERY, '--model', env.checkpoint]
        owned = [str(folder)]
        if cache is not None:
            path = cache(env, tmp, folder)
            args += ['--cache', str(path)]
            if own_cache and osp.lexists(str(path)):
                owned.append(str(path))
        return args + list(extra), owned

    return prepare


def _text_file(env, tmp, folder):
    path = tmp / 'notes.txt'
    path.write_text('my notes, not a cache\n')
    return path


def _search_links(env, tmp):
    folder = _videos_folder(env, tmp)
    os.symlink('gone.mp4', folder / 'dangling.mp4')
    os.symlink('loop.mp4', folder / 'loop.mp4')
    os.symlink('..', folder / 'up')  # a link to a parent folder
    return [str(folder), QUERY, '--model', env.checkpoint], [str(folder)]


def _ranked(*names, failed=None):

    def check(env, tmp, out, err):
        ranked = re.findall(r'^\s+\d+\s+-?[0-9.]+\s+(\S+)$', out, re.M)
        assert sorted(osp.basename(r) for r in ranked) == sorted(names), out
        if failed is not None:
            assert f'{failed} of {failed + len(names)} videos failed' in err

    return check


def _convert(dst, src=None):

    def prepare(env, tmp):
        source = tmp / 'model_best.pt'
        if src is None:
            os.link(env.original, source)
        else:
            torch.save(src(env), source)
        target = dst(tmp, source)
        owned = [str(source)] + ([str(target)]
                                 if osp.lexists(str(target)) else [])
        return [str(source), str(target), '--num-segs', 8], owned

    return prepare


def _link_to(kind):

    def dst(tmp, source):
        target = tmp / 'converted.pth'
        (os.link if kind == 'hard' else os.symlink)(source, target)
        return target

    return dst


def _nan_original(env):
    checkpoint = original_layout()
    key = 'module.frame_position_embeddings.weight'
    checkpoint['fusion_model_state_dict'][key][0, 0] = float('nan')
    return checkpoint


def _converted_loads(env, tmp, out, err):
    model, _ = init_actionclip(str(tmp / 'new' / 'deeper' / 'dst.pth'))
    assert model.num_segs == 8


def _moments(*extra, cache=True):
    """find_moments.py over a folder of two videos, ``extra`` options
    formatted with ``{folder}`` and ``{tmp}``; links named ``LINK->TARGET``
    in ``extra`` are made first."""

    def prepare(env, tmp):
        folder = _videos_folder(env, tmp)
        args = [str(folder), QUERY, '--model', env.checkpoint]
        owned = [str(folder)]
        for item in extra:
            item = str(item).format(folder=folder, tmp=tmp)
            if '->' in item:
                link, target = item.split('->')
                os.symlink(target, link)
                owned.append(link)
                item = link
            args.append(item)
        return args + ([] if cache else ['--no-cache']), owned

    return prepare


def _search_html_link(env, tmp):
    folder = _videos_folder(env, tmp)
    page = tmp / 'page.html'
    os.symlink(folder / 'a.mp4', page)
    return [str(folder), QUERY, '--model', env.checkpoint, '--html',
            str(page)], [str(folder), str(page)]


def _moments_with_corrupt_video(env, tmp):
    folder = _videos_folder(env, tmp)
    (folder / 'corrupt.mp4').write_bytes(b'\x00\x01 not a video' * 40)
    return [str(folder), QUERY, '--model', env.checkpoint,
            '--no-cache', '--out', str(tmp / 'moments.json')], [str(folder)]


def _moments_written(*names):

    def check(env, tmp, out, err):
        document = json.loads((tmp / 'moments.json').read_text())
        assert sorted(osp.basename(v['video'])
                      for v in document['videos']) == sorted(names)
        assert list(document['failures']) == [
            str(tmp / 'videos' / 'corrupt.mp4')]

    return check


def _fifo_moments(inside_folder):
    """find_moments.py on a FIFO named ``a.mp4``: given itself, or inside
    the folder searched (opening it would wait forever for a writer)."""

    def prepare(env, tmp):
        if not inside_folder:
            os.mkfifo(tmp / 'pipe.mp4')
            return [str(tmp / 'pipe.mp4'), QUERY, '--model',
                    env.checkpoint], []
        folder = _videos_folder(env, tmp, ('b.mp4', ))
        os.mkfifo(folder / 'a.mp4')
        return [str(folder), QUERY, '--model', env.checkpoint,
                '--no-cache'], [str(folder)]

    return prepare


def _moments_fifo_option(option):
    """find_moments.py with ``option`` naming a FIFO."""

    def prepare(env, tmp):
        os.mkfifo(tmp / 'pipe')
        model = (['--config', str(tmp / 'pipe'), '--checkpoint',
                  env.checkpoint] if option == '--config' else
                 ['--model', env.checkpoint, option, str(tmp / 'pipe')])
        return [str(_videos_folder(env, tmp)), QUERY, *model], []

    return prepare


def _zs_label_fifo(env, tmp):
    os.mkfifo(tmp / 'labels.txt')
    return [env.video, '--label-file', str(tmp / 'labels.txt'), '--model',
            env.checkpoint], []


def _absent(name):

    def check(env, tmp, out, err):
        assert not osp.lexists(tmp / name), name

    return check


def _one_window_each(env, tmp, out, err):
    # A window longer than the video is one window over all of it.
    document = json.loads((tmp / 'moments.json').read_text())
    assert len(document['videos']) == 2
    for video in document['videos']:
        assert video['windows'] == [[0.0, video['duration_s']]], video


def _ranked_moments(*names):

    def check(env, tmp, out, err):
        searched = re.findall(r'^(\S+) \(\d\d:\d\d', out, re.M)
        assert sorted(osp.basename(v) for v in searched) == sorted(names), out

    return check


CLI_CASES = {
    # tools/zero_shot.py: bad checkpoints and weights
    'zero_shot --model original layout':
    CliCase('zero_shot', _zs_checkpoint(lambda env: env.original), 2,
            ('model_best.pt', 'original ActionCLIP', CONVERTER)),
    'zero_shot --model NaN weights':
    CliCase('zero_shot', _zs_checkpoint(_non_finite(float('nan'))), 2,
            ('non_finite_nan.pth', 'NaN')),
    'zero_shot --model missing adapter layer':
    CliCase('zero_shot', _zs_checkpoint(_drop_layer), 2,
            ('missing_layer.pth', r'adapter\.transformer\.resblocks\.1\.')),
    'zero_shot --model bare tensor':
    CliCase('zero_shot', _zs_checkpoint(
        lambda env: save(env, 'tensor.pth', torch.zeros(3, 4))), 2,
        ('tensor.pth', 'bare tensor')),
    'zero_shot --model malicious pickle':
    CliCase('zero_shot', _zs_checkpoint(_unsafe('zip')), 2,
            ('evil_zip.pth', 'ACTIONCLIP_TRUST_CHECKPOINTS'),
            subprocess=True),
    'zero_shot --model truncated':
    CliCase('zero_shot', _zs_checkpoint(_truncated), 2,
            ('truncated.pth', 'truncated or corrupt')),
    'zero_shot --model folder':
    CliCase('zero_shot', _zs_checkpoint(_folder), 2,
            ('work_dir.pth', 'folder')),
    "zero_shot --model meta['cfg'] with code":
    CliCase('zero_shot', _zs_checkpoint(
        _cfg_code("import os\nos.system('touch {marker}')")), 2,
        (r"meta\['cfg'\]", 'not plain data')),
    'zero_shot --clip original layout':
    CliCase('zero_shot', _zs_clip(lambda env: env.original), 2,
            ('model_best.pt', )),
    'zero_shot --clip NaN weights':
    CliCase('zero_shot', _zs_clip(_clip_file('NaN')), 2,
            ('clip_NaN.pt', 'NaN')),
    # tools/zero_shot.py: outputs that are inputs
    '--viz is the input video':
    CliCase('zero_shot', _zs_output_is_input('--viz', 'same'), 2,
            ('input.mp4', 'same file as the input', 'destroy')),
    '--viz hard link to the input':
    CliCase('zero_shot', _zs_output_is_input('--viz', 'hard link'), 2,
            ('viz.mp4', 'input.mp4', 'hard link')),
    '--viz symbolic link to the input':
    CliCase('zero_shot', _zs_output_is_input('--viz', 'symlink'), 2,
            ('viz.mp4', 'input.mp4', 'symbolic link')),
    '--out symbolic link to the input video':
    CliCase('zero_shot', _zs_output_is_input('--out', 'symlink'), 2,
            ('out.json', 'input.mp4', 'symbolic link')),
    '--out is the label file':
    CliCase('zero_shot', _zs_out_is_label_file, 2,
            ('labels.csv', 'same file as the input')),
    '--viz per-video name is another input':
    CliCase('zero_shot', _zs_viz_name_of_another_input, 2,
            ('out_a.mp4', 'same file as the input')),
    '--out/--viz in missing folders':
    CliCase('zero_shot', _zs_outputs_in_missing_folder, 0,
            check=_exists('new/res.json', 'new2/sub/viz.mp4')),
    '--out under a file':
    CliCase('zero_shot', _zs('--out', '{tmp}/in_the_way/res.json'), 2,
            ('in_the_way', 'a file is in the way')),
    '--out is a folder':
    CliCase('zero_shot', _zs('--out', '{tmp}/results.json'), 2,
            ('results.json', 'is a folder')),
    'zero_shot: one corrupt video among good ones':
    CliCase('zero_shot', _zs_with_corrupt_video, 1,
            ('1 of 3 videos failed', 'corrupt.mp4'),
            check=_scored('a.mp4', 'b.mp4')),
    'zero_shot: video path is a symbolic link loop':
    CliCase('zero_shot', _zs_video_loop, 2, ('me.mp4', 'link loop')),
    # tools/zero_shot.py: label files
    '--label-file non-UTF-8':
    CliCase('zero_shot', _zs_label_file('caf\u00e9\n'.encode('latin-1')), 2,
            ('labels.txt', 'UTF-8')),
    '--label-file with a blank line':
    CliCase('zero_shot', _zs_label_file(b'a\n\nb\n'), 2,
            ('labels.txt', 'line 2')),
    # tools/search_videos.py
    'search --cache is a text file':
    CliCase('search_videos', _search(_text_file), 2,
            ('notes.txt', 'not a feature cache', 'left untouched'),
            subprocess=True),
    'search --cache is a video of the folder':
    CliCase('search_videos',
            _search(lambda env, tmp, folder: folder / 'a.mp4'), 2,
            ('a.mp4', 'not a feature cache')),
    'search --cache is the model checkpoint':
    CliCase('search_videos',
            _search(lambda env, tmp, folder: env.checkpoint), 2,
            ('epoch_1.pth', 'not a feature cache')),
    'search --cache is a folder':
    CliCase('search_videos',
            _search(lambda env, tmp, folder: folder), 2,
            ('videos', 'is a folder')),
    'search --cache under a file':
    CliCase('search_videos',
            _search(lambda env, tmp, folder: folder / 'a.mp4' / 'c.pt'), 2,
            ('a.mp4', 'Cannot create the folder')),
    'search --cache in a missing folder':
    CliCase('search_videos',
            _search(lambda env, tmp, folder: tmp / 'new' / 'deep' / 'c.pt'),
            0, check=_exists('new/deep/c.pt')),
    'search: damaged cache of ours is rebuilt':
    # (the "Rebuilding the feature cache" warning is pytest's to capture)
    CliCase('search_videos', _search(_damaged_cache, own_cache=False), 0,
            check=_cache_rebuilt),
    'search: dangling link and link loop in the folder':
    CliCase('search_videos', _search_links, 1,
            ('dangling.mp4.* broken symbolic link',
             'loop.mp4.* symbolic link loop'),
            check=_ranked('a.mp4', 'b.mp4', failed=2)),
    'search --model NaN weights':
    CliCase('search_videos', lambda env, tmp: (
        [str(_videos_folder(env, tmp)), QUERY, '--model',
         _non_finite(float('nan'))(env)], [env.checkpoint]), 2,
        ('non_finite_nan.pth', 'NaN')),
    'search --html symbolic link to a video of the folder':
    CliCase('search_videos', _search_html_link, 2,
            ('page.html', 'same file as the input', 'symbolic link')),
    # tools/find_moments.py
    'moments --model NaN weights':
    CliCase('find_moments', lambda env, tmp: (
        [str(_videos_folder(env, tmp)), QUERY, '--model',
         _non_finite(float('nan'))(env), '--no-cache'], [env.checkpoint]), 2,
        ('non_finite_nan.pth', 'NaN')),
    'moments --out symbolic link to a video':
    CliCase('find_moments', _moments(
        '--out', '{tmp}/moments.json->{folder}/a.mp4'), 2,
        ('moments.json', 'a.mp4', 'symbolic link')),
    'moments --html symbolic link to a video':
    CliCase('find_moments', _moments(
        '--html', '{tmp}/page.html->{folder}/b.mp4'), 2,
        ('page.html', 'same file as the input', 'destroy')),
    'moments --cache is the model checkpoint':
    CliCase('find_moments', lambda env, tmp: (
        [str(_videos_folder(env, tmp)), QUERY, '--model', env.checkpoint,
         '--cache', env.checkpoint], [str(tmp / 'videos')]), 2,
        ('epoch_1.pth', 'not a feature cache', 'left untouched')),
    'moments --device meta':
    CliCase('find_moments', _moments('--device', 'meta'), 2,
            ("--device 'meta'", 'cpu, cuda')),
    'moments --device mps (no MPS here)':
    CliCase('find_moments', _moments('--device', 'mps'), 2,
            ('--device mps', 'use --device cpu')),
    'moments --window 1e308 (longer than any video)':
    CliCase('find_moments', _moments('--window', '1e308', '--out',
                                     '{tmp}/moments.json'), 0,
            check=_one_window_each),
    'moments --out is the new --cache file':
    CliCase('find_moments', _moments('--out', '{tmp}/c.json', '--cache',
                                     '{tmp}/c.json'), 2,
            ('c.json', 'is the --cache file'), check=_absent('c.json')),
    'moments: the video is a FIFO':
    CliCase('find_moments', _fifo_moments(False), 2,
            ('pipe.mp4', 'is a FIFO, not a regular file'), subprocess=True),
    'moments: a FIFO in the folder':
    CliCase('find_moments', _fifo_moments(True), 1,
            ('a.mp4.* is a FIFO, not a regular file', ),
            check=_ranked_moments('b.mp4'), subprocess=True),
    'moments --config is a FIFO':
    CliCase('find_moments', _moments_fifo_option('--config'), 2,
            ("--config '.*pipe' is a FIFO, not a regular file", ),
            subprocess=True),
    'moments --background is a FIFO':
    CliCase('find_moments', _moments_fifo_option('--background'), 2,
            ("--background '.*pipe' is a FIFO, not a regular file", ),
            subprocess=True),
    'moments --cache is a FIFO':
    CliCase('find_moments', _moments_fifo_option('--cache'), 2,
            ("cache path '.*pipe' is a FIFO, not a regular file",
             'left untouched'), subprocess=True),
    'zero_shot --label-file is a FIFO':
    CliCase('zero_shot', _zs_label_fifo, 2,
            ('labels.txt', 'is a FIFO, not a regular file'),
            subprocess=True),
    'moments: one corrupt video among good ones':
    CliCase('find_moments', _moments_with_corrupt_video, 1,
            ('corrupt.mp4', ),
            check=_moments_written('a.mp4', 'b.mp4')),
    # tools/convert_actionclip_checkpoint.py
    'convert: output is the input':
    CliCase('convert', _convert(lambda tmp, src: src), 2,
            ('model_best.pt', 'same file as the input'), subprocess=True),
    'convert: output hard link to the input':
    CliCase('convert', _convert(_link_to('hard')), 2,
            ('converted.pth', 'hard link')),
    'convert: output symbolic link to the input':
    CliCase('convert', _convert(_link_to('symbolic')), 2,
            ('converted.pth', 'symbolic link')),
    'convert: output is a folder':
    CliCase('convert', _convert(lambda tmp, src: tmp), 2, ('is a folder', )),
    'convert: output under a file':
    CliCase('convert', _convert(lambda tmp, src: src / 'dst.pth'), 2,
            ('a file is in the way', )),
    'convert: output in a missing folder':
    CliCase('convert', _convert(lambda tmp, src: tmp / 'new' / 'deeper' /
                                'dst.pth'), 0, check=_converted_loads),
    'convert: malicious source':
    CliCase('convert', _convert(
        lambda tmp, src: tmp / 'dst.pth',
        src=lambda env: {'x': _RunsCode(f'touch {env.marker}')}), 2,
        ('model_best.pt', 'ACTIONCLIP_TRUST_CHECKPOINTS')),
    'convert: source is a list':
    CliCase('convert', _convert(lambda tmp, src: tmp / 'dst.pth',
                                src=lambda env: [torch.zeros(2)]), 2,
            ('model_best.pt', 'list')),
    'convert: NaN in the source':
    CliCase('convert', _convert(lambda tmp, src: tmp / 'dst.pth',
                                src=_nan_original), 2,
            ('model_best.pt', 'NaN')),
}

TOOLS = {
    'zero_shot': zero_shot,
    'search_videos': search_videos,
    'find_moments': find_moments,
    'convert': convert_tool
}


def _cli_param(name):
    case = CLI_CASES[name]
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)
             ] if case.xfail else []
    return pytest.param(
        name, marks=marks,
        id=('[subprocess] ' if case.subprocess else '') + name)


@pytest.mark.parametrize('name', [_cli_param(n) for n in CLI_CASES])
def test_command_line(env, tmp_path, capsys, name):
    case = CLI_CASES[name]
    args, owned = case.prepare(env, tmp_path)
    args = [str(a).format(tmp=tmp_path) for a in args]
    if case.tool != 'convert':
        args += ['--no-progress'] + ([] if '--device' in args else
                                     ['--device', 'cpu'])
    (tmp_path / 'in_the_way').write_text('a file, not a folder\n')
    (tmp_path / 'results.json').mkdir()
    owned = [str(p) for p in owned] + [env.config, env.checkpoint]
    before = snapshot(*owned)
    tool = TOOLS[case.tool]
    if case.subprocess:
        proc = subprocess.run([sys.executable, tool.__file__, *args],
                              cwd=ROOT,
                              env=offline_env(),
                              capture_output=True,
                              text=True,
                              timeout=300)
        status, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        status, out, err = run_main(tool, args, capsys)
    assert status == case.status, err[-3000:]
    assert 'Traceback' not in err, err[-3000:]
    for pattern in case.patterns:
        assert re.search(pattern, err), (pattern, err[-3000:])
    if case.status == 2:
        assert len(err.strip().splitlines()) == 1, err
        assert 'error' in err
    if case.check is not None:
        case.check(env, tmp_path, out, err)
    assert not osp.exists(env.marker), 'a checkpoint ran code'
    after = snapshot(*owned)
    if case.status == 0 and case.tool == 'search_videos':
        # the cache beside the folder is ours to write; nothing else
        after = {k: v for k, v in after.items() if k in before}
    assert after == before


# ---------------------------------------------------------------------------
# mmengine paths: mim test
# ---------------------------------------------------------------------------

MIM_CONFIG = 'configs/actionclip_tiny-scratch_1x1x4_synthetic-actions.py'


@pytest.fixture(scope='module')
def mim_data(tmp_path_factory):
    """A checkpoint of the shipped tiny config, 20 labels, and three
    videos annotated with classes 0, 5 and 17; the same checkpoint
    recording its labels, and those labels in another order; annotation
    lists with class -1 and with a FIFO."""
    from mmaction.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    root = tmp_path_factory.mktemp('mim')
    labels20 = root / 'labels20.txt'
    labels20.write_text('\n'.join(f'action number {i}'
                                  for i in range(20)) + '\n')
    labels3 = root / 'labels3.txt'
    labels3.write_text('waving\njumping\nreading\n')
    names = [f'action number {i}' for i in range(20)]
    names[3], names[7] = names[7], names[3]
    reordered = root / 'labels20_reordered.txt'
    reordered.write_text('\n'.join(names) + '\n')
    cfg = Config.fromfile(osp.join(ROOT, MIM_CONFIG))
    cfg.model.labels_or_label_file = str(labels20)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmaction'):
        model = MODELS.build(cfg.model)
    state = model.state_dict()
    full = root / 'full.pth'
    torch.save({'state_dict': state, 'meta': {'epoch': 1}}, full)
    recorded = root / 'recorded.pth'
    torch.save({'state_dict': state, 'meta': {
        'epoch': 1, 'labels': [f'action number {i}' for i in range(20)]}},
        recorded)
    partial = root / 'missing_layer.pth'
    torch.save({'state_dict': {
        k: v
        for k, v in state.items()
        if not k.startswith('adapter.transformer.resblocks.1.')
    }}, partial)
    videos = root / 'videos'
    videos.mkdir()
    lines = []
    for i, label in enumerate([0, 5, 17]):
        write_video(str(videos / f'v{i}.mp4'), num_frames=8, seed=i)
        lines.append(f'v{i}.mp4 {label}')
    ann = root / 'ann.txt'
    ann.write_text('\n'.join(lines) + '\n')
    negative = root / 'ann_negative.txt'
    negative.write_text('v0.mp4 0\nv1.mp4 -1\n')
    pipe = root / 'pipe.mp4'  # outside videos/: a snapshot never opens it
    os.mkfifo(pipe)
    with_fifo = root / 'ann_fifo.txt'
    with_fifo.write_text(f'v0.mp4 0\n{pipe} 5\nv2.mp4 17\n')
    return dict(root=root, full=full, partial=partial, videos=videos,
                ann=ann, labels20=labels20, labels3=labels3,
                recorded=recorded, reordered=reordered, negative=negative,
                with_fifo=with_fifo)


MIM_CASES = {
    # name: (checkpoint, label file, the one-line refusal, its culprit,
    # xfail reason, more --cfg-options formatted with mim_data)
    'checkpoint missing an adapter layer':
    ('partial', 'labels20', ('^error: CheckpointMismatchError', ),
     ('missing_layer.pth', r'adapter\.transformer\.resblocks\.1\.'), None,
     ()),
    'label file with fewer classes than the annotations':
    ('full', 'labels3', ('^error: LabelSetError', ),
     ('ann.txt', 'class 17', '3 labels'), None, ()),
    'the training labels in another order':
    ('recorded', 'reordered', ('^error: LabelSetError', ),
     ('labels20_reordered.txt', 'recorded.pth', 'another order',
      "class 3 is 'action number 7' there but 'action number 3'"), None,
     ()),
    'class -1 in the annotation list':
    ('full', 'labels20', ('^error: LabelSetError', ),
     ('ann_negative.txt', 'class -1', 'line 2', 'without a class'), None,
     ('test_dataloader.dataset.ann_file={negative}', )),
    'a FIFO in the annotation list':
    ('full', 'labels20', ('^error: VideoReadError', ),
     ('pipe.mp4', 'is a FIFO, not a regular file', 'skip_unreadable'), None,
     ('test_dataloader.dataset.ann_file={with_fifo}', )),
    '--cfg-options batch_size=0':
    ('full', 'labels20', ('^error: ConfigValueError', ),
     ('test_dataloader.batch_size=0', ), None,
     ('test_dataloader.batch_size=0', )),
    '--cfg-options template=[]':
    ('full', 'labels20', ('^error: ConfigValueError', ),
     ('model', 'template list is empty'), None, ('model.template=[]', )),
    '--cfg-options with a misspelt model key':
    ('full', 'labels20', ('^error: ConfigValueError', ),
     ('model.temporal_shfit', "did you mean 'temporal_shift'"), None,
     ('model.temporal_shfit=True', )),
    '--cfg-options lr=nan':
    ('full', 'labels20', ('^error: ConfigValueError', ),
     ('optim_wrapper.optimizer.lr=nan', ), None,
     ('optim_wrapper.optimizer.lr=nan', )),
}
MIM_ASPECTS = ('script exits 2, one error line, no traceback of its own',
               'names the culprit')


def _mim_options(d: dict, checkpoint: str, labels: str,
                 extra: Sequence[str] = ()) -> list:
    """``--work-dir`` and ``--cfg-options`` of the tiny config over
    ``mim_data``; ``extra`` options (formatted with ``d``) come last and
    win."""
    return [
        '--work-dir',
        str(d['root'] / f'work_{checkpoint}'), '--cfg-options',
        f'model.labels_or_label_file={d[labels]}',
        f'test_dataloader.dataset.ann_file={d["ann"]}',
        f'test_dataloader.dataset.data_prefix.video={d["videos"]}',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'test_dataloader.batch_size=3',
        *(option.format(**d) for option in extra)
    ]


def _mim_test(d: dict, checkpoint: str, labels: str,
              extra: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """``mim test`` of the tiny config over ``mim_data``."""
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    return subprocess.run([
        mim, 'test', 'mmaction', MIM_CONFIG, '--checkpoint',
        str(d[checkpoint]), *_mim_options(d, checkpoint, labels, extra)
    ],
                          cwd=ROOT,
                          env=offline_env(),
                          capture_output=True,
                          text=True,
                          timeout=300)


class _Exit(BaseException):
    """Stands for ``os._exit`` ending the process."""


def _test_script(d: dict, checkpoint: str, labels: str, extra: Sequence[str],
                 monkeypatch, capsys) -> Tuple[int, str, str]:
    """What ``mim test`` runs (MMAction2's ``tools/test.py`` with mim's
    arguments), in this process and ended as the process would end:
    ``(exit status, stdout, stderr)``. An exception escaping the script goes to
    ``sys.excepthook`` as Python's own; a hook that ends the process gives
    its status, otherwise the status is 1."""
    import runpy

    import mmaction
    script = osp.join(osp.dirname(mmaction.__file__), '.mim', 'tools',
                      'test.py')

    def exit_(status):
        raise _Exit(status)

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv('LOCAL_RANK', '0')  # what the script would set
    monkeypatch.setattr(sys, 'argv', [
        script, MIM_CONFIG,
        str(d[checkpoint]), '--launcher', 'none',
        *_mim_options(d, checkpoint, labels, extra)
    ])
    monkeypatch.setattr(sys, 'excepthook', sys.__excepthook__)
    monkeypatch.setattr(os, '_exit', exit_)
    capsys.readouterr()
    status = 0
    try:
        runpy.run_path(script, run_name='__main__')
    except Exception as error:
        status = 1
        try:
            sys.excepthook(type(error), error, error.__traceback__)
        except _Exit as ended:
            status = ended.args[0]
    out, err = capsys.readouterr()
    return status, out, err


def test_mim_test_leaves_out_a_fifo_with_skip_unreadable(mim_data):
    """skip_unreadable=True: the FIFO is left out of the accuracy, unopened
    (opening it would wait forever for a writer)."""
    proc = _mim_test(mim_data, 'full', 'labels20', (
        'test_dataloader.dataset.ann_file={with_fifo}',
        'test_dataloader.dataset.skip_unreadable=True'))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    output = proc.stdout + proc.stderr
    assert 'is a FIFO, not a regular file' in output
    assert re.search(r'acc/skipped_videos: 1\b', output), output[-4000:]


def _mim_param(name, aspect):
    reason = MIM_CASES[name][4] if aspect == MIM_ASPECTS[1] else None
    return pytest.param(
        name, aspect, id=f'{name} | {aspect}',
        marks=[pytest.mark.xfail(strict=True, reason=reason)]
        if reason else [])


@pytest.fixture(scope='module')
def mim_runs():
    return {}


#: The case run through ``mim test`` itself, in a fresh interpreter, as
#: users run it (a FIFO opened by mistake blocks only that process); the
#: others run the script ``mim test`` runs in this process.
MIM_SUBPROCESS_CASE = 'a FIFO in the annotation list'


@pytest.mark.parametrize('name,aspect', [
    _mim_param(name, aspect) for name in MIM_CASES for aspect in MIM_ASPECTS
])
def test_mim_test_refuses(mim_data, mim_runs, name, aspect, monkeypatch,
                          capsys, isolated_mmengine_state):
    checkpoint, labels, refusal, culprit, _, extra = MIM_CASES[name]
    d = mim_data
    owned = [
        str(d[k])
        for k in ('full', 'partial', 'recorded', 'ann', 'negative',
                  'with_fifo', 'labels3', 'labels20', 'reordered', 'videos')
    ]
    if name not in mim_runs:  # one run answers both aspects
        before = snapshot(*owned)
        if name == MIM_SUBPROCESS_CASE:
            proc = _mim_test(d, checkpoint, labels, extra)
            status, err = proc.returncode, proc.stderr
            output = proc.stdout + err
        else:
            status, out, err = _test_script(d, checkpoint, labels, extra,
                                            monkeypatch, capsys)
            output = out + err
        mim_runs[name] = (status, err, output, snapshot(*owned) == before)
    status, err, output, intact = mim_runs[name]
    lines = [line for line in err.splitlines() if line.startswith('error: ')]
    if aspect == MIM_ASPECTS[0]:
        if name == MIM_SUBPROCESS_CASE:
            # openmim 0.3.9 runs the script with subprocess.check_call:
            # its status 2 ends in mim's own CalledProcessError traceback
            # and exit status 1 (docs/troubleshooting.md: how to get the
            # status).
            assert status == 1, output[-4000:]
            assert err.count('Traceback') == 1, err[-4000:]
            assert re.search(r'\nsubprocess\.CalledProcessError: Command .* '
                             r'returned non-zero exit status 2\.\n$', err), (
                                 err[-4000:])
        else:
            assert status == 2, output[-4000:]
            assert 'Traceback' not in err, err[-4000:]
        assert len(lines) == 1, err[-4000:]
        for pattern in refusal:
            assert re.search(pattern, lines[0]), (pattern, lines[0])
        assert intact
    else:
        assert len(lines) == 1, err[-4000:]
        for pattern in culprit:
            assert re.search(pattern, lines[0]), (pattern, lines[0])


@pytest.mark.parametrize('name', ['one adapter layer missing', 'NaN weight',
                                  'original ActionCLIP layout'])
def test_load_from_refuses(env, name):
    """mmengine's load_checkpoint (``init_recognizer``) only warns about
    weights that do not fit: the model refuses instead."""
    from mmengine.runner.checkpoint import load_checkpoint
    case = CHECKPOINT_CASES[name]
    path = case.make(env)
    model = ActionClip(TINY_ARCH, SEGS, num_adapter_layers=2,
                       temporal_shift=True)
    with pytest.raises(case.error) as excinfo:
        load_checkpoint(model, path, map_location='cpu')
    assert_refused(excinfo, case.patterns)


# ---------------------------------------------------------------------------
# --resume and checkpoint writing
# ---------------------------------------------------------------------------


def _training_checkpoint(path, epoch, **extra):
    meta = dict(epoch=epoch, iter=epoch * 10, **extra)
    torch.save({'state_dict': {'w': torch.full((2, ), float(epoch))},
                'meta': meta, 'optimizer': {}}, path)


def _work_dir(tmp, newest, pointer=True):
    """epoch_1 and epoch_2 readable; epoch_3 as ``newest`` makes it."""
    for epoch in (1, 2):
        _training_checkpoint(str(tmp / f'epoch_{epoch}.pth'), epoch)
    name = str(tmp / 'epoch_3.pth')
    if newest == 'truncated':
        _training_checkpoint(name, 3)
        data = open(name, 'rb').read()
        open(name, 'wb').write(data[:len(data) // 3])
    elif newest == 'empty':
        open(name, 'wb').close()
    elif newest == 'weights only':
        torch.save({'w': torch.ones(2)}, name)
    elif newest == 'malicious':
        torch.save({'meta': {'epoch': 3}, 'x': _RunsCode(
            f'touch {tmp / "CODE_WAS_RUN"}')}, name)
    if pointer:
        (tmp / 'last_checkpoint').write_text(name)
    return name


RESUME_CASES = {
    'newest readable': ('readable', 'epoch_3.pth'),
    'newest truncated': ('truncated', 'epoch_2.pth'),
    'newest empty (killed while writing)': ('empty', 'epoch_2.pth'),
    'newest holds weights only': ('weights only', 'epoch_2.pth'),
    'newest is a malicious pickle': ('malicious', 'epoch_2.pth'),
    'last_checkpoint names a deleted file': ('missing', 'epoch_2.pth'),
}


@pytest.mark.parametrize('name', list(RESUME_CASES))
def test_find_resumable(tmp_path, name, caplog):
    newest, expected = RESUME_CASES[name]
    if newest == 'readable':
        _work_dir(tmp_path, None)
        _training_checkpoint(str(tmp_path / 'epoch_3.pth'), 3)
    else:
        _work_dir(tmp_path, newest)
    before = snapshot(str(tmp_path))
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    messages = []

    class Keep:
        level = 0

        def handle(self, record):
            messages.append(record.getMessage())

    handler = Keep()
    logger.handlers.append(handler)
    try:
        found = find_resumable(str(tmp_path))
    finally:
        logger.handlers.remove(handler)
    assert found is not None and osp.basename(found) == expected
    if expected != 'epoch_3.pth':
        assert any('epoch_3.pth' in m and 'Passing over' in m
                   for m in messages), messages
    assert not (tmp_path / 'CODE_WAS_RUN').exists()
    assert snapshot(str(tmp_path)) == before


def test_find_resumable_with_nothing_readable_says_so(tmp_path):
    (tmp_path / 'epoch_1.pth').write_bytes(b'')
    (tmp_path / 'epoch_2.pth').write_bytes(b'\x80\x02garbage')
    with pytest.raises(ResumeError, match=r'epoch_2\.pth.*epoch_1\.pth'):
        find_resumable(str(tmp_path))
    assert find_resumable(str(tmp_path / 'empty_dir_is_none')) is None


def _resume(path):
    """What ActionClipRunner.resume reads before it restores anything."""
    from models.checkpoints.safe_loading import load_checkpoint_file
    return check_resumable(load_checkpoint_file(path, map_location='cpu'),
                           path)


RESUME_FROM = {
    'bare state dict': (lambda p, m: torch.save({'w': torch.ones(2)}, p),
                        ResumeError, ('weights only', 'load_from')),
    "{'state_dict'} without meta":
    (lambda p, m: torch.save({'state_dict': {'w': torch.ones(2)}}, p),
     ResumeError, ('load_from', )),
    'meta without iter':
    (lambda p, m: torch.save({'state_dict': {}, 'meta': {'epoch': 1}}, p),
     ResumeError, ('training state', )),
    "meta['config'] holds code (never run)":
    (lambda p, m: torch.save({
        'state_dict': {},
        'meta': {'epoch': 1, 'iter': 1,
                 'config': f"import os\nos.system('touch {m}')"}
    }, p), None, ()),
    'truncated':
    (lambda p, m: open(p, 'wb').write(b'PK\x03\x04' + b'\0' * 40),
     CheckpointReadError, ()),
}


@pytest.mark.parametrize('name', list(RESUME_FROM))
def test_resume_from(tmp_path, name):
    make, error, patterns = RESUME_FROM[name]
    path = str(tmp_path / 'ckpt.pth')
    marker = str(tmp_path / 'CODE_WAS_RUN')
    make(path, marker)
    before = snapshot(path)
    if error is None:
        checkpoint = _resume(path)
        assert 'config' not in checkpoint['meta']
    else:
        with pytest.raises(error) as excinfo:
            _resume(path)
        assert_refused(excinfo, patterns + ('ckpt.pth', ))
    assert not osp.exists(marker)
    assert snapshot(path) == before


def test_runs_of_the_configs_resume_and_save_through_their_runner():
    import glob

    from mmaction.registry import RUNNERS
    from mmengine.config import Config
    from mmengine.runner import runner as mmengine_runner

    from models.engine.runner import ActionClipRunner
    configs = glob.glob(osp.join(ROOT, 'configs', '*.py'))
    assert configs
    for config in configs:
        assert Config.fromfile(config).runner_type == 'ActionClipRunner', (
            config)
    assert RUNNERS.get('ActionClipRunner') is ActionClipRunner
    # mmengine's own Runner is left as it is.
    assert mmengine_runner.find_latest_checkpoint is not find_resumable
    assert ActionClipRunner.resume is not mmengine_runner.Runner.resume


def _atomic_save(checkpoint, path):
    """What ActionClipRunner.save_checkpoint has mmengine do."""
    from mmengine.runner.checkpoint import save_checkpoint
    register_atomic_backend()
    save_checkpoint(checkpoint, path,
                    backend_args=dict(backend=ATOMIC_BACKEND))


def _fail_in_torch_save(monkeypatch):
    real = torch.save

    def half_then_fail(obj, f, *args, **kwargs):
        real(obj, f, *args, **kwargs)
        if hasattr(f, 'truncate'):
            f.truncate(10)
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(torch, 'save', half_then_fail)


def _fail_at_fsync(monkeypatch):

    def full(fd):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', full)


def _fail_at_rename(monkeypatch):

    def refuse(src, dst):
        raise OSError(errno.EIO, 'Input/output error')

    monkeypatch.setattr(os, 'replace', refuse)


def _interrupted(monkeypatch):
    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'fsync', interrupt)


WRITE_FAILURES = {
    'torch.save fails half-way (disk full)': (_fail_in_torch_save, OSError),
    'disk full when flushing (fsync)': (_fail_at_fsync, OSError),
    'rename fails': (_fail_at_rename, OSError),
    'Ctrl-C while writing': (_interrupted, KeyboardInterrupt),
}


@pytest.mark.parametrize('name', list(WRITE_FAILURES))
def test_failed_checkpoint_write_leaves_the_previous_file(
        tmp_path, monkeypatch, name):
    save_checkpoint = _atomic_save
    fail, error = WRITE_FAILURES[name]
    _work_dir(tmp_path, 'readable')
    target = tmp_path / 'epoch_2.pth'  # rewritten, e.g. a rerun
    before = snapshot(str(tmp_path))
    fail(monkeypatch)
    with pytest.raises(error):
        save_checkpoint({'state_dict': {'w': torch.zeros(2)},
                         'meta': {'epoch': 2, 'iter': 20}}, str(target))
    with pytest.raises(error):
        save_checkpoint({'state_dict': {'w': torch.zeros(2)},
                         'meta': {'epoch': 4, 'iter': 40}},
                        str(tmp_path / 'epoch_4.pth'))
    monkeypatch.undo()
    assert snapshot(str(tmp_path)) == before  # no partial or temp file
    assert osp.basename(find_resumable(str(tmp_path))) == 'epoch_2.pth'
    # and the next write, with room on the disk, succeeds
    save_checkpoint({'state_dict': {'w': torch.zeros(2)},
                     'meta': {'epoch': 4, 'iter': 40}},
                    str(tmp_path / 'epoch_4.pth'))
    assert osp.basename(find_resumable(str(tmp_path))) == 'epoch_4.pth'


class _FullDisk:
    """A file that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.f.__exit__(*exc)


def _disk_full_after(monkeypatch, room: int) -> None:
    """Every file written through models.utils.safe_io fills the disk
    after ``room`` bytes."""
    from models.utils import safe_io

    def full_open(path, mode='r', **kwargs):
        return _FullDisk(open(path, mode, **kwargs), room)

    monkeypatch.setattr(safe_io, 'open', full_open, raising=False)


def _one_line_no_space(text: str, path: str) -> None:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in text, text
    assert f'No space left on device: {path}' in lines[0], text


@pytest.mark.parametrize('room', [0, 100, 4096])
def test_full_disk_while_converting_keeps_the_old_file(env, tmp_path,
                                                       monkeypatch, capsys,
                                                       room):
    """torch.save reports a failed write as "enforce fail at
    inline_container.cc": the converter says there is no room, and the
    file it would replace is intact."""
    source, target = tmp_path / 'model_best.pt', tmp_path / 'converted.pth'
    os.link(env.original, source)
    target.write_bytes(b'the previous conversion')
    before = snapshot(str(tmp_path))
    _disk_full_after(monkeypatch, room)
    status, out, err = run_main(convert_tool,
                                [source, target, '--num-segs', 8], capsys)
    assert status == 1
    _one_line_no_space(err, str(target))
    assert snapshot(str(tmp_path)) == before


def test_full_disk_while_saving_a_checkpoint_keeps_the_old_file(
        tmp_path, monkeypatch):
    from models.utils.safe_io import NoSpaceError
    _work_dir(tmp_path, 'readable')
    target = tmp_path / 'epoch_2.pth'
    before = snapshot(str(tmp_path))
    _disk_full_after(monkeypatch, 1000)
    with pytest.raises(NoSpaceError) as info:
        _atomic_save({'state_dict': {'w': torch.zeros(1000)},
                      'meta': {'epoch': 2, 'iter': 20}}, str(target))
    _one_line_no_space(str(info.value), str(target))
    assert snapshot(str(tmp_path)) == before
    # in MMAction2's scripts, a refusal: one line, exit status 2
    from models.engine.refusals import refusal_types
    assert isinstance(info.value, refusal_types())


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_ulimit_while_converting_keeps_the_old_file(env, tmp_path):
    """A real failed write (``ulimit -f``: EFBIG, as ENOSPC is reported
    by torch.save) in a fresh interpreter."""
    source, target = tmp_path / 'model_best.pt', tmp_path / 'converted.pth'
    os.link(env.original, source)
    target.write_bytes(b'the previous conversion')
    before = snapshot(str(tmp_path))
    proc = subprocess.run(
        [sys.executable, convert_tool.__file__, str(source), str(target),
         '--num-segs', '8'], cwd=ROOT, env=offline_env(),
        capture_output=True, text=True, timeout=300,
        preexec_fn=_file_size_limit(4096))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'inline_container' not in proc.stderr
    assert 'Traceback' not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if 'error' in line]
    assert len(lines) == 1 and f'File too large: {target}' in lines[0], (
        proc.stderr[-3000:])
    assert snapshot(str(tmp_path)) == before


def test_find_moments_with_no_room_for_its_cache_still_answers(env,
                                                               tmp_path):
    """The window cache cannot be written (``ulimit -f``): a warning, and
    the segments are found all the same."""
    folder = _videos_folder(env, tmp_path)
    cache = tmp_path / 'cache.pt'
    proc = subprocess.run(
        [sys.executable, find_moments.__file__, str(folder), QUERY,
         '--model', env.checkpoint, '--cache', str(cache), '--device', 'cpu',
         '--no-progress'], cwd=ROOT, env=offline_env(), capture_output=True,
        text=True, timeout=300, preexec_fn=_file_size_limit(1024))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    assert 'Could not write the feature cache' in proc.stderr
    assert re.findall(r'^\S+/([ab]\.mp4) \(', proc.stdout,
                      re.M) == ['a.mp4', 'b.mp4'], proc.stdout
    assert not osp.exists(cache) and os.listdir(tmp_path) == ['videos']


@pytest.mark.parametrize('how', ['the same file', 'symbolic link'])
def test_benchmark_does_not_write_over_the_report_it_resumes(tmp_path, how):
    # tools/benchmark.py --resume REPORT with --out-dir where REPORT (or a
    # link to it) would be replaced by the merged report
    earlier = tmp_path / 'a' / 'benchmark.json'
    earlier.parent.mkdir()
    earlier.write_text(json.dumps(dict(
        environment=dict(host='h', command='python tools/benchmark.py'),
        part_seconds=dict(total=1.0), parts=['train'])))
    out_dir = earlier.parent
    if how == 'symbolic link':
        out_dir = tmp_path / 'b'
        out_dir.mkdir()
        (out_dir / 'benchmark.json').symlink_to(earlier)
    before = snapshot(str(tmp_path))
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'benchmark.py'), '--quick',
         '--device', 'cpu', '--resume', str(earlier), '--out-dir',
         str(out_dir)], cwd=ROOT, env=offline_env(), capture_output=True,
        text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'same file as the input' in proc.stderr
    assert str(earlier) in proc.stderr
    assert snapshot(str(tmp_path)) == before


# ---------------------------------------------------------------------------
# Case classes (what each table above covers)
# ---------------------------------------------------------------------------
#
# class                         | rows / entry points         | outcome
# ------------------------------+-----------------------------+---------------
# recorded config (meta.cfg):   | CHECKPOINT_CASES x 3 APIs,  | right result:
#   temporal shift, templates,  | zero_shot, search_videos    | same probs
#   test pipeline               |                             | (<= 1e-5)
# harmless variants (module.,   | CHECKPOINT_CASES x 3 APIs   | right result
#   float16)                    |                             |
# keys matching none (original  | CHECKPOINT_CASES, --model,  | Checkpoint-
#   layout, another recognizer) | load_from                   | MismatchError
# missing / unexpected /        | CHECKPOINT_CASES, --model,  | Checkpoint-
#   reshaped keys               | load_from, mim test         | MismatchError
# non-finite weights            | CHECKPOINT_CASES, --model,  | NonFinite-
#                               | --clip, converter, load_from| WeightsError
# not a mapping (tensor, list,  | CHECKPOINT_CASES, --model,  | NotA-
#   state_dict=tensor)          | converter                   | CheckpointError
# code in a pickle (zip, legacy,| CHECKPOINT_CASES, --model,  | Unsafe-
#   plain pickle)               | converter, find_resumable   | CheckpointError
#                               |                             | ; nothing runs
# code in meta['cfg'] /         | CHECKPOINT_CASES, --model,  | ConfigTextError
#   meta['config']              | resume                      | or not read;
#                               |                             | nothing runs
# unreadable file (truncated,   | CHECKPOINT_CASES, --model,  | Checkpoint-
#   empty, HTML)                | resume                      | ReadError
# wrong kind of path (folder,   | CHECKPOINT_CASES, --model,  | error naming
#   broken link, link loop,     | video path                  | it and what
#   missing)                    |                             | is wrong
# --clip with wrong weights     | CLIP_CASES, --clip          | refusal
# label files (BOM, Latin-1,    | LABEL_CASES x load_labels / | right labels
#   CRLF, blank line, empty)    | ActionClip, --label-file    | or ValueError
# label set < annotation classes| mim test                    | LabelSetError
# one corrupt video among good  | zero_shot                   | exit 1, rest
#   ones                        |                             | scored
# output = input (same, hard,   | --viz, --out, converter,    | exit 2, file
#   symbolic link, per-video    | benchmark --out-dir against | intact
#   --viz name)                 | its --resume report         |
# cache path not ours (text,    | search --cache              | exit 2, file
#   video, checkpoint, folder)  |                             | intact
# damaged cache of ours         | search --cache              | rebuilt
# cache identity (edited _base_,| IDENTITY_CASES              | recomputed /
#   new weights, templates only)|                             | reused
# missing output folder         | --out, --viz, --cache,      | created
#                               | converter                   |
# output folder blocked by file | --out, --cache, converter   | exit 2 first
# dangling link / link loop in  | search                      | listed, rest
#   a searched folder           |                             | ranked
# resume: bad newest checkpoint | RESUME_CASES: find_resumable| previous one
# resume from weights only      | RESUME_FROM: check_resumable| ResumeError
# failed checkpoint write (disk | WRITE_FAILURES:             | previous file
#   full, rename, Ctrl-C)       | save_checkpoint             | byte-identical
