"""The one way this project builds a model to score videos with
(:func:`load_model`), from one config: the one given; else a released
name's in the release table; else the one the checkpoint records
(``meta['cfg']``); else one described by a bare state dict's shapes; for
plain CLIP weights, one with temporal mean pooling. The weights then load
strictly: the model is what the checkpoint was trained as, or none.

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

#: Release-table configs and label files are relative to it.
PROJECT_ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.abspath(__file__))))


#: The released checkpoint names :func:`init_actionclip` accepts.
available_models = available_checkpoints


class ModelNotFoundError(FileNotFoundError, ValueError):
    """Neither a released model name nor an existing file."""


def actionclip_checkpoint_path(name_or_path: str) -> str:
    """The local file of a released name or an http(s) URL (from the hub
    cache, downloaded there when missing), or of a checkpoint path."""
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


def _built_config(arch: Union[str, dict], num_segs: int, **model) -> Config:
    """An ActionClip config with the released test pipeline."""
    size = (CLIP_ARCHS[arch] if isinstance(arch, str) else
            arch)['image_resolution']
    return Config(dict(
        model=dict(type='ActionClip', clip_arch=arch,
                   num_adapter_segs=num_segs, to_float32=True, **model),
        test_pipeline=released_test_pipeline(num_segs, size)))


def _config_from_shapes(state: dict, path: str) -> Config:
    """A config for a bare state dict, from its shapes."""
    try:
        arch = infer_clip_arch(state, prefix='clip.')
        segs = state['adapter.frame_position_embeddings.weight'].shape[0]
    except (KeyError, ValueError):
        raise CheckpointMismatchError(
            f'{path} records no config, and its weights do not describe '
            'an ActionCLIP model of this project. ' +
            describe_checkpoint(state)) from None
    return _built_config(arch, segs, num_adapter_layers=adapter_depth(state))


def _labels_of(model_cfg: dict) -> Optional[Union[str, List[str]]]:
    """The config's labels, or None where their file is not here."""
    labels = model_cfg.get('labels_or_label_file')
    if not isinstance(labels, str):
        return labels
    return next((path for path in (labels, osp.join(PROJECT_ROOT, labels))
                 if osp.isfile(path)), None)


def _identity(model_cfg: dict, pipeline: Sequence[dict],
              weights: str) -> str:
    """What determines a video's features: the model as built (labels,
    templates and loss aside), its pipeline and the weights file."""
    described = {
        k: v for k, v in model_cfg.items() if k not in (
            'labels_or_label_file', 'templates_or_template_file',
            'template', 'loss', 'text_chunk_size', 'frozen')}
    text = json.dumps(dict(model=described, pipeline=list(pipeline)),
                      sort_keys=True, default=repr)
    stat = os.stat(weights)
    return (f'{hashlib.sha256(text.encode()).hexdigest()[:16]}|'
            f'{osp.abspath(weights)}|{stat.st_size}|{stat.st_mtime_ns}')


@dataclass
class LoadedModel:
    """A model in eval mode, its preprocessing, and how it was built:
    ``identity`` is equal for loads that embed a video alike (the caches'
    key); ``source`` says where ``config`` came from."""

    model: ActionClip
    preprocess: Preprocess
    identity: str
    device: torch.device
    config: Config
    source: str
    weights: str

    def describe(self) -> dict:
        """What a result file says of the model."""
        return dict(weights=self.weights, built_from=self.source,
                    num_frames=self.model.num_segs)

    @property
    def templates(self) -> List[str]:
        """The model's default prompt templates."""
        return list(self.model.templates)


#: Speed switches older checkpoints record outside ``speedups``.
_LEGACY_SPEEDUPS = dict(
    fast_attention='fast_attention', fast_patch_embedding='patch_embedding',
    compile='compile', cuda_graphs='cuda_graphs')


def _build(model_cfg: dict) -> ActionClip:
    from mmaction.registry import MODELS
    if model_cfg.get('type') not in ('ActionClip', 'mmaction.ActionClip'):
        raise ValueError(
            'The config does not build an ActionClip model (model.type is '
            f"{model_cfg.get('type')!r})")
    with DefaultScope.overwrite_default_scope('mmaction'):
        return MODELS.build(model_cfg)


def _test_pipeline(cfg: Config, model: ActionClip) -> list:
    """The config's test pipeline, else the released one."""
    pipeline = cfg.get('test_pipeline') or cfg.get(
        'test_dataloader', {}).get('dataset', {}).get('pipeline')
    return list(pipeline or released_test_pipeline(
        model.num_segs, model.clip.visual.input_resolution))


def load_model(checkpoint: Optional[str] = None,
               config: Optional[str] = None,
               clip: Optional[str] = None,
               num_frames: int = 8,
               device: Union[str, torch.device] = 'cpu',
               labels: Optional[Union[str, List[str]]] = None,
               templates: Optional[Sequence[str]] = None) -> LoadedModel:
    """Build a model and its preprocessing from one config (module
    docstring), then load its weights strictly.

    Args:
        checkpoint (str, optional): A released name (``'ViT-B/32-8'``, in
            ``$TORCH_HOME/hub/checkpoints``), an http(s) URL or a file.
        config (str, optional): Overrides the config the checkpoint records.
        clip (str, optional): Plain CLIP weights instead: an OpenAI name
            (cached in ``~/.cache/clip``) or a CLIP file.
        num_frames (int): Frames sampled per video with ``clip``.
        labels (str | list[str], optional): By default the config's, when
            its file can be read.
        templates (list[str], optional): By default the config's.
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
    cfg, state, weights, source = (
        _clip_config(clip, num_frames) if clip is not None else
        _checkpoint_config(checkpoint, config))
    model_cfg = copy.deepcopy(dict(cfg.model))
    legacy = {new: model_cfg.pop(old)
              for old, new in _LEGACY_SPEEDUPS.items() if old in model_cfg}
    # No CLIP download, no training-only speed-ups.
    model_cfg.update(pretrained=False, speedups={
        **legacy, **(model_cfg.get('speedups') or {}), 'compile': False,
        'cuda_graphs': False})
    model_cfg['labels_or_label_file'] = (
        labels if labels is not None else _labels_of(model_cfg))
    # Older checkpoints record templates_or_template_file: read as
    # template, with no warning about a config the user cannot edit.
    legacy = model_cfg.pop('templates_or_template_file', None)
    if model_cfg.get('template') is None:
        model_cfg['template'] = legacy
    if templates is not None:
        model_cfg['template'] = list(templates)
    model = _build(model_cfg)
    try:
        (model if clip is None else model.clip).load_state_dict(state,
                                                                strict=True)
    except CheckpointMismatchError as error:
        raise CheckpointMismatchError(
            f'{error} (model built from {source})') from None
    model.to(device).eval()
    # As mim test: fp16 CLIP on CUDA unless the config keeps float32.
    model.apply_test_precision()
    pipeline = _test_pipeline(cfg, model)
    preprocess = Preprocess(pipeline, model.data_preprocessor, model.num_segs)
    return LoadedModel(model, preprocess,
                       _identity(model_cfg, pipeline, weights), device, cfg,
                       source, weights)


def _checkpoint_config(name_or_path: str, config: Optional[str]
                       ) -> Tuple[Config, dict, str, str]:
    path = actionclip_checkpoint_path(name_or_path)
    checkpoint = load_checkpoint_file(path, map_location='cpu')
    state = strip_module_prefix(checkpoint.get('state_dict', checkpoint))
    # The release-table entry of a name, or of a file named like one.
    release = ACTIONCLIP_CHECKPOINTS.get(name_or_path) or next(
        (entry for entry in ACTIONCLIP_CHECKPOINTS.values()
         if osp.basename(entry['url']) == osp.basename(path)), None)
    if config is not None:
        config = require_file(config, 'Config file')
        return Config.fromfile(config), state, path, f'config {config}'
    if release is not None:
        release_config = osp.join(PROJECT_ROOT, release['config'])
        return (Config.fromfile(release_config), state, path,
                f"the release table's config {release['config']}")
    recorded = recorded_config(checkpoint, path)
    if recorded is not None and recorded.get('model'):
        return recorded, state, path, f'the config recorded in {path}'
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


def init_actionclip(name_or_path: str,
                    device: Union[str, torch.device] = 'cpu',
                    labels: Optional[List[str]] = None,
                    templates: Optional[List[str]] = None,
                    config: Optional[str] = None
                    ) -> Tuple[ActionClip, Preprocess]:
    """Load a released ActionCLIP model (:func:`available_models`) or a
    checkpoint of this project, as :func:`load_model` does; ``labels`` make
    ``model.predict`` work directly.

    Returns:
        tuple: ``(model, preprocess)``: the model in eval mode and a
        :class:`~models.apis.preprocess.Preprocess` turning a video path or
        ``dict(filename=..., start_index=0)`` into the normalised
        ``(V * T, C, H, W)`` tensor on the model's device.
    """
    loaded = load_model(name_or_path, config=config, device=device,
                        labels=labels, templates=templates)
    return loaded.model, loaded.preprocess
