"""The one way this project builds a model to score videos with.

Every entry point (``init_actionclip``, ``tools/zero_shot.py``,
``tools/search_videos.py``) loads through :func:`load_model`, which builds
the model and its video preprocessing from one config:

* the config the user gives, if any;
* else, for a released name, the config of the release table;
* else the config the checkpoint records (mmengine's ``meta['cfg']``,
  written by every training run of this project), read as data;
* else, for a bare state dict, one described by the shapes of its weights
  with the released models' test pipeline;
* for plain CLIP weights (``clip=``), one from the architecture table
  with temporal mean pooling.

The weights then load strictly (``ActionClip`` refuses missing,
unexpected, reshaped and non-finite weights), so a model either is what
the checkpoint was trained as, or is not built at all.

Example:
    >>> model, preprocess = init_actionclip('ViT-B/32-8', device='cpu')
    >>> video = preprocess(dict(filename='test.mp4', start_index=0))
    >>> features = model.encode_video(video.unsqueeze(0))
"""
import copy
import hashlib
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from models.apis.preprocess import Preprocess, released_test_pipeline
from models.backbones.clip_archs import CLIP_ARCHS, infer_clip_arch
from models.backbones.clip_builder import read_clip_state_dict
from models.backbones.downloads import download_to_hub_cache
from models.backbones.pretrained import (ACTIONCLIP_CHECKPOINTS,
                                         OPENAI_CLIP_URLS,
                                         available_checkpoints,
                                         fetch_hub_checkpoint,
                                         fetch_openai_clip)
from models.checkpoints.checks import (CheckpointMismatchError,
                                       NonFiniteWeightsError, adapter_depth,
                                       describe_checkpoint, non_finite_keys,
                                       strip_module_prefix)
from models.checkpoints.recorded_config import recorded_config
from models.checkpoints.safe_loading import load_checkpoint_file
from models.recognizers.actionclip import ActionClip
from models.utils.paths import require_file

#: The project root: release-table configs and label files are relative
#: to it.
PROJECT_ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.abspath(__file__))))


def available_models() -> List[str]:
    """The released checkpoint names :func:`init_actionclip` accepts."""
    return available_checkpoints()


class ModelNotFoundError(FileNotFoundError, ValueError):
    """A model name that is neither released nor an existing file."""


def actionclip_checkpoint_path(name_or_path: str) -> str:
    """The local file of a released model (from the hub cache, downloaded
    there when missing), of an http(s) URL (likewise), or of a
    checkpoint path."""
    if name_or_path in ACTIONCLIP_CHECKPOINTS:
        entry = ACTIONCLIP_CHECKPOINTS[name_or_path]
        return fetch_hub_checkpoint(entry['url'], entry.get('sha256'))
    if name_or_path.startswith(('http://', 'https://')):
        return download_to_hub_cache(name_or_path, None, progress=True)
    if not osp.lexists(osp.expanduser(name_or_path)):
        raise ModelNotFoundError(
            f'Model {name_or_path!r} not found: it is neither a released '
            f'model ({available_models()}) nor an existing file')
    return require_file(name_or_path, 'Checkpoint')


def _release_of(name_or_path: str, path: str) -> Optional[dict]:
    """The release-table entry of a name, or of a file named like one."""
    if name_or_path in ACTIONCLIP_CHECKPOINTS:
        return ACTIONCLIP_CHECKPOINTS[name_or_path]
    for entry in ACTIONCLIP_CHECKPOINTS.values():
        if osp.basename(entry['url']) == osp.basename(path):
            return entry
    return None


def _built_config(arch: Union[str, dict], num_segs: int, **model) -> Config:
    """The config of an ActionClip model with the released models' test
    pipeline."""
    size = (CLIP_ARCHS[arch] if isinstance(arch, str) else
            arch)['image_resolution']
    return Config(
        dict(
            model=dict(
                type='ActionClip',
                clip_arch=arch,
                num_adapter_segs=num_segs,
                to_float32=True,
                **model),
            test_pipeline=released_test_pipeline(num_segs, size)))


def _config_from_shapes(state: dict, path: str) -> Config:
    """A config for a bare state dict: the architecture its shapes
    describe."""
    if 'adapter.frame_position_embeddings.weight' not in state:
        raise CheckpointMismatchError(
            f'{path} records no config and has no adapter.frame_position_'
            'embeddings.weight: it is not an ActionCLIP checkpoint of this '
            'project. ' + describe_checkpoint(state))
    try:
        arch = infer_clip_arch(state, prefix='clip.')
    except ValueError:
        raise CheckpointMismatchError(
            f'{path} records no config, and its weights do not describe '
            'an ActionCLIP model. ' + describe_checkpoint(state)) from None
    return _built_config(
        arch,
        state['adapter.frame_position_embeddings.weight'].shape[0],
        num_adapter_layers=adapter_depth(state))


def _labels_of(model_cfg: dict) -> Optional[Union[str, List[str]]]:
    """The config's labels when they can be read here, else None (the
    label file of a training run may live on another machine)."""
    labels = model_cfg.get('labels_or_label_file')
    if not isinstance(labels, str):
        return labels
    return next((path for path in (labels, osp.join(PROJECT_ROOT, labels))
                 if osp.isfile(path)), None)


def _identity(model_cfg: dict, pipeline: Sequence[dict],
              weights: str) -> str:
    """What determines a video's features: the model as built (labels,
    templates and loss aside), its pipeline and the weights file (the
    feature cache adds the embedding code's version)."""
    described = {
        k: v
        for k, v in model_cfg.items() if k not in (
            'labels_or_label_file', 'templates_or_template_file',
            'template', 'loss', 'text_chunk_size', 'frozen')
    }
    text = json.dumps(
        dict(model=described, pipeline=list(pipeline)),
        sort_keys=True,
        default=repr)
    stat = os.stat(weights)
    return (f'{hashlib.sha256(text.encode()).hexdigest()[:16]}|'
            f'{osp.abspath(weights)}|{stat.st_size}|{stat.st_mtime_ns}')


@dataclass
class LoadedModel:
    """A model ready to embed videos, and how it was built.

    Attributes:
        model (ActionClip): In eval mode, on ``device``.
        preprocess (Preprocess): Video path or dict to the normalised
            ``(V * T, C, H, W)`` frames the model takes (its test pipeline,
            then its data preprocessor).
        identity (str): What the weights, the built model and the
            preprocessing are: two loads with the same identity embed a
            video alike (the feature cache is keyed by it).
        device (torch.device): Where the model runs.
        config (Config): The model and test pipeline it was built from.
        source (str): Where that config came from, for messages.
        weights (str): The file the weights were read from.
    """

    model: ActionClip
    preprocess: Preprocess
    identity: str
    device: torch.device
    config: Config
    source: str
    weights: str

    def describe(self) -> dict:
        """What a result file should say about the model: ``weights``,
        ``built_from`` and ``num_frames``."""
        return dict(
            weights=self.weights,
            built_from=self.source,
            num_frames=self.model.num_segs)

    @property
    def templates(self) -> List[str]:
        """The model's default prompt templates."""
        return list(self.model.templates)


#: Speed switches that ActionClip took as arguments of their own before
#: they were grouped under ``speedups``: checkpoints trained then record
#: them so.
_LEGACY_SPEEDUPS = dict(
    fast_attention='fast_attention',
    fast_patch_embedding='patch_embedding',
    compile='compile',
    cuda_graphs='cuda_graphs')


def _build(model_cfg: dict) -> ActionClip:
    from mmaction.registry import MODELS
    if model_cfg.get('type') not in ('ActionClip', 'mmaction.ActionClip'):
        raise ValueError(
            'The config does not build an ActionClip model (model.type is '
            f"{model_cfg.get('type')!r})")
    with DefaultScope.overwrite_default_scope('mmaction'):
        return MODELS.build(model_cfg)


def _preprocess(cfg: Config, model: ActionClip) -> Tuple[Preprocess, list]:
    """The model's preprocessing: the config's test pipeline (the released
    models' when it has none), then the model's own data preprocessor."""
    pipeline = cfg.get('test_pipeline') or cfg.get(
        'test_dataloader', {}).get('dataset', {}).get('pipeline')
    if not pipeline:
        pipeline = released_test_pipeline(model.num_segs,
                                          model.clip.visual.input_resolution)
    preprocess = Preprocess(pipeline, model.data_preprocessor, model.num_segs)
    return preprocess, list(pipeline)


def load_model(checkpoint: Optional[str] = None,
               config: Optional[str] = None,
               clip: Optional[str] = None,
               num_frames: int = 8,
               device: Union[str, torch.device] = 'cpu',
               labels: Optional[Union[str, List[str]]] = None,
               templates: Optional[Sequence[str]] = None) -> LoadedModel:
    """Build a model and its preprocessing from one config, then load its
    weights strictly (see the module docstring for which config).

    Args:
        checkpoint (str, optional): A released name (``'ViT-B/32-8'``,
            read from ``$TORCH_HOME/hub/checkpoints``, downloaded there
            when missing), an http(s) URL or a checkpoint file.
        config (str, optional): The MMAction2 config the checkpoint was
            trained with; overrides the one it records.
        clip (str, optional): Plain CLIP weights instead of a checkpoint:
            an OpenAI name (``'ViT-B/32'``, cached in ``~/.cache/clip``) or
            a CLIP file; frames are fused by temporal mean pooling.
        num_frames (int): Frames sampled per video with ``clip``.
        device (str | torch.device): Where to put the model.
        labels (str | list[str], optional): Class names or a label file;
            by default the config's, when its file can be read.
        templates (list[str], optional): Prompt templates; by default the
            config's.

    Returns:
        LoadedModel: The model, its preprocessing, identity and config.
    """
    if (checkpoint is None) == (clip is None):
        raise ValueError('Give exactly one model source: a checkpoint (a '
                         'released name or a file, optionally with its '
                         'config) or CLIP weights')
    if clip is not None and config is not None:
        raise ValueError('config goes with a checkpoint, not with clip')
    if num_frames < 1:
        raise ValueError(f'num_frames must be >= 1, got {num_frames}')
    device = torch.device(device)
    if clip is not None:
        cfg, state, weights, source = _clip_config(clip, num_frames)
    else:
        cfg, state, weights, source = _checkpoint_config(checkpoint, config)
    model_cfg = copy.deepcopy(dict(cfg.model))
    legacy = {
        new: model_cfg.pop(old)
        for old, new in _LEGACY_SPEEDUPS.items() if old in model_cfg
    }
    # Weights come from the checkpoint; scoring needs neither CLIP's
    # download nor training-only speed-ups.
    model_cfg.update(
        pretrained=False,
        speedups={
            **legacy,
            **(model_cfg.get('speedups') or {}), 'compile': False,
            'cuda_graphs': False
        })
    model_cfg['labels_or_label_file'] = (
        labels if labels is not None else _labels_of(model_cfg))
    # Checkpoints trained before ``template`` was the one spelling record
    # templates_or_template_file: read as template, with no warning about a
    # recorded config the user cannot edit.
    legacy = model_cfg.pop('templates_or_template_file', None)
    if model_cfg.get('template') is None:
        model_cfg['template'] = legacy
    if templates is not None:
        model_cfg['template'] = list(templates)
    model = _build(model_cfg)
    try:
        if clip is not None:
            model.clip.load_state_dict(state, strict=True)
        else:
            model.load_state_dict(state, strict=True)
    except CheckpointMismatchError as error:
        raise CheckpointMismatchError(
            f'{error} (model built from {source})') from None
    model.to(device).eval()
    # As mim test does at its first step: fp16 CLIP on CUDA unless the
    # config keeps float32.
    model.apply_test_precision()
    preprocess, pipeline = _preprocess(cfg, model)
    return LoadedModel(model, preprocess,
                       _identity(model_cfg, pipeline, weights), device, cfg,
                       source, weights)


def _checkpoint_config(name_or_path: str, config: Optional[str]
                       ) -> Tuple[Config, dict, str, str]:
    path = actionclip_checkpoint_path(name_or_path)
    checkpoint = load_checkpoint_file(path, map_location='cpu')
    state = strip_module_prefix(checkpoint.get('state_dict', checkpoint))
    release = _release_of(name_or_path, path)
    if config is not None:
        config = require_file(config, 'Config file')
        return Config.fromfile(config), state, path, f'config {config}'
    if release is not None:
        release_config = osp.join(PROJECT_ROOT, release['config'])
        return (Config.fromfile(release_config), state, path,
                f"the release table's config {release['config']}")
    recorded = recorded_config(checkpoint, path)
    if recorded is not None and recorded.get('model'):
        return (recorded, state, path,
                f'the config recorded in {path}')
    return (_config_from_shapes(state, path), state, path,
            f'the shapes of the weights in {path} (it records no config)')


def _clip_config(clip: str, num_frames: int
                 ) -> Tuple[Config, dict, str, str]:
    if clip in OPENAI_CLIP_URLS:
        path = fetch_openai_clip(clip)
    elif osp.lexists(osp.expanduser(clip)):
        path = require_file(clip, 'CLIP weights')
    else:
        raise FileNotFoundError(
            f'CLIP weights {clip!r} not found: give a CLIP name '
            f'({", ".join(CLIP_ARCHS)}) or the path of a CLIP .pt file')
    state = read_clip_state_dict(path)
    try:
        arch = infer_clip_arch(state)
    except ValueError as error:
        raise CheckpointMismatchError(
            f'{path} does not hold CLIP ViT weights ({error}). ' +
            describe_checkpoint(state)) from None
    bad = non_finite_keys(state)
    if bad:
        raise NonFiniteWeightsError(
            f'CLIP weights {path} hold NaN or infinite values in '
            f'{len(bad)} tensor(s), e.g. {bad[0]}; download them again')
    cfg = _built_config(arch, num_frames, temporal_adapter='mean')
    return cfg, state, path, f'CLIP weights {path}'


def init_actionclip(
    name_or_path: str,
    device: Union[str, torch.device] = 'cpu',
    labels: Optional[List[str]] = None,
    templates: Optional[List[str]] = None,
    config: Optional[str] = None
) -> Tuple[ActionClip, Preprocess]:
    """Load a released ActionCLIP model, or one saved by this project.

    A checkpoint written by a training run is built from the config it
    records (temporal shift, templates, test pipeline), as ``mim test``
    with that config would build it; see :func:`load_model`.

    Args:
        name_or_path (str): A name from :func:`available_models` (its file is
            taken from ``$TORCH_HOME/hub/checkpoints`` when there, else
            downloaded there) or the path of a checkpoint file.
        device (str | torch.device): Where to put the model.
        labels (list[str], optional): Class names, so that ``model.predict``
            / ``model.predict_scores`` work directly.
        templates (list[str], optional): Prompt templates for ``labels``.
        config (str, optional): The config the checkpoint was trained with,
            instead of the one it records.

    Returns:
        tuple: ``(model, preprocess)``: the model in eval mode and a
        :class:`~models.apis.preprocess.Preprocess` turning a video path or
        ``dict(filename=..., start_index=0)`` into the normalised
        ``(V * T, C, H, W)`` tensor on the model's device (the config's test
        pipeline, then the model's data preprocessor).
    """
    loaded = load_model(
        name_or_path,
        config=config,
        device=device,
        labels=labels,
        templates=templates)
    return loaded.model, loaded.preprocess
