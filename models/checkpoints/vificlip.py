"""Converting a ViFi-CLIP checkpoint (github.com/muzairkhattak/ViFi-CLIP) to
this project's ``ActionClip`` with temporal mean pooling.

ViFi-CLIP's ``main.py`` (``utils/tools.py: epoch_saving``) saves::

    {'model': the DistributedDataParallel state dict of its ViFiCLIP:
              module.image_encoder.*   CLIP's visual.*
              module.text_encoder.*    CLIP's transformer.*,
                                       positional_embedding, ln_final.*,
                                       text_projection
              module.logit_scale
              module.prompt_learner.complete_text_embeddings
                  the token embeddings of its class prompts
                  'a photo of a {class}.' (a buffer),
     'optimizer', 'lr_scheduler', 'max_accuracy', 'epoch',
     'config': its yacs CfgNode (DATA.NUM_FRAMES, MODEL.ARCH, ...)}

ViFi-CLIP keeps no token table: it is taken from OpenAI's CLIP, whose rows
for the re-tokenised prompts must equal the buffer. Its forward pass is
``temporal_adapter='mean'`` with ``test_logit_scale='learned'``.
Standard library only at import; torch is imported when converting.
"""
# Annotations stay strings: torch is imported inside the functions.
from __future__ import annotations

import os.path as osp
from collections import OrderedDict
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

# Relative: the tool reads this file by itself, without the package.
from .conversion import ConversionError

if TYPE_CHECKING:
    import torch

#: The prompt of ViFi-CLIP's released models (``TRAINER.ViFi_CLIP.
#: CTX_INIT + ' ' + class + '.'``).
TEMPLATE = 'a photo of a {}.'
#: The test config of ViFi-CLIP models, relative to the project root.
CONFIG = 'configs/vificlip_vit-base-p16-res224-clip-pre_1x1x16_k400-rgb.py'
BUFFER = 'prompt_learner.complete_text_embeddings'
_PREFIXES = {'image_encoder.': 'clip.visual.', 'text_encoder.': 'clip.'}


def _prompt_labels(buffer: torch.Tensor,
                   table: torch.Tensor) -> Tuple[List[str], str]:
    """The class names of the prompts in ``buffer``, read back through
    ``table``, and why not (``''`` when read)."""
    import torch
    from clip import tokenize
    from clip.simple_tokenizer import SimpleTokenizer

    # The buffer holds rows of CLIP's (float16) table: look each vector up.
    rows = {row.numpy().tobytes(): i for i, row in enumerate(table.half())}
    tokenizer = SimpleTokenizer()
    sot, eot = tokenizer.encoder['<|startoftext|>'], tokenizer.encoder[
        '<|endoftext|>']
    labels = []
    prefix, suffix = TEMPLATE.split('{}')
    for n, prompt in enumerate(buffer.half()):
        ids = [rows.get(vector.numpy().tobytes()) for vector in prompt]
        if None in ids or ids[0] != sot or eot not in ids:
            return [], (f'prompt {n} is not made of the CLIP token '
                        'embeddings given')
        text = tokenizer.decode(ids[1:ids.index(eot)]).strip()
        if not (text.startswith(prefix) and text.endswith(suffix.strip())):
            return [], (f'prompt {n} reads {text!r}, not ViFi-CLIP\'s '
                        f'{TEMPLATE!r}')
        labels.append(text[len(prefix):-len(suffix.strip())].strip())
    # Recomputed as ViFi-CLIP computes them: the table's rows of the
    # tokenised prompts.
    recomputed = table[tokenize([TEMPLATE.format(c) for c in labels])]
    if not torch.equal(recomputed.half(), buffer.half()):
        return [], 'the prompts do not tokenise back to the same embeddings'
    return labels, ''


def model_state(checkpoint: object) -> Dict[str, torch.Tensor]:
    """The checkpoint's ``'model'`` state dict, ``module.`` dropped;
    :class:`ConversionError` unless it holds the ViFi-CLIP keys."""
    import torch

    from models.checkpoints.checks import strip_module_prefix
    model = checkpoint.get('model') if isinstance(checkpoint, dict) else None
    if not isinstance(model, dict):
        keys = list(checkpoint)[:8] if isinstance(checkpoint, dict) else []
        raise ConversionError(
            "not a ViFi-CLIP checkpoint: no 'model' state dict (top-level "
            f'keys: {keys})')
    model = strip_module_prefix(model)
    needed = ['logit_scale', BUFFER, 'text_encoder.text_projection',
              'image_encoder.conv1.weight']
    missing = [k for k in needed if not isinstance(model.get(k), torch.Tensor)]
    if missing:
        raise ConversionError(
            f'not a ViFi-CLIP checkpoint: its model lacks {missing}')
    return model


def convert(model: Dict[str, torch.Tensor],
            clip_state: Dict[str, torch.Tensor],
            clip_source: str) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """``(state_dict, labels)``: float32 ``clip.*`` weights and the prompt
    buffer's class names (lower case), the token table taken from OpenAI's
    ``clip_state`` (read from ``clip_source``).

    Raises:
        ConversionError: Not a fully fine-tuned ViFi-CLIP model, or its
            prompt embeddings do not come from these CLIP weights.
    """
    import torch
    model = dict(model)
    state = {'clip.logit_scale': model.pop('logit_scale').float()}
    buffer = model.pop(BUFFER)
    for key, value in model.items():
        prefix = next((p for p in _PREFIXES if key.startswith(p)), None)
        if prefix is None or not isinstance(value, torch.Tensor):
            # prompt_learner.ctx, VPT prompts: the prompting variants.
            raise ConversionError(
                f'{key!r} has no counterpart in CLIP: only fully fine-tuned '
                'ViFi-CLIP models (no learned prompts) convert')
        state[_PREFIXES[prefix] + key[len(prefix):]] = value.float()
    table = clip_state.get('token_embedding.weight')
    if table is None or table.shape[1:] != buffer.shape[2:]:
        raise ConversionError(
            f'{clip_source} has no token table of width {buffer.shape[-1]} '
            '(--clip must name the CLIP the model was fine-tuned from)')
    labels, problem = _prompt_labels(buffer, table)
    if problem:
        raise ConversionError(
            f'{BUFFER} does not match the token embeddings of {clip_source}: '
            f'{problem}')
    state['clip.token_embedding.weight'] = table.float().clone()
    return state, labels


def model_config(arch, num_frames: int):
    """The resolved :data:`CONFIG` a converted model records, for
    ``arch`` and ``num_frames`` per view."""
    from mmengine.config import Config

    from models.apis.loading import PROJECT_ROOT
    cfg = Config.fromfile(osp.join(PROJECT_ROOT, CONFIG))
    cfg.model.update(clip_arch=arch, num_adapter_segs=num_frames)
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'SampleFrames':
            step['num_clips'] = num_frames
    cfg.test_pipeline = cfg.test_dataloader.dataset.pipeline
    for name in ('_cpus', 'data_workers'):  # this machine's, not the model's
        cfg.pop(name, None)
    return cfg


def convert_file(src: str, num_frames: Optional[int], clip: str,
                 clip_weights: Optional[str]) -> Tuple[dict, List[str]]:
    """Convert the ViFi-CLIP checkpoint ``src`` for
    :func:`~models.checkpoints.conversion.run_conversion`: the
    checkpoint to save (``state_dict`` and ``meta`` with the recorded
    config, loaded strictly into the model it builds) and the report lines.

    ``num_frames`` defaults to the recorded ``DATA.NUM_FRAMES``; the token
    table comes from OpenAI CLIP ``clip`` unless ``clip_weights`` names a
    file of it.
    """
    import torch

    from models.backbones.clip_builder import (infer_clip_arch,
                                               read_clip_state_dict)
    from models.backbones.pretrained import fetch_openai_clip
    from models.checkpoints.safe_loading import load_checkpoint_file
    from models.recognizers.actionclip import ActionClip
    # yacs' CfgNode read as an OrderedDict, the one dict type whose items
    # and attributes weights_only loading may set.
    with torch.serialization.safe_globals([(OrderedDict,
                                            'yacs.config.CfgNode')]):
        checkpoint = load_checkpoint_file(src, map_location='cpu')
    weights = model_state(checkpoint)
    if num_frames is None:
        config = checkpoint.get('config')
        data = config.get('DATA') if isinstance(config, dict) else None
        num_frames = data.get('NUM_FRAMES') if isinstance(data, dict) else None
        if not (isinstance(num_frames, int) and num_frames > 0):
            raise ConversionError('it records no DATA.NUM_FRAMES; give '
                                  '--num-frames')
    clip_path = clip_weights or fetch_openai_clip(clip)
    state, labels = convert(weights, read_clip_state_dict(clip_path),
                            clip_path)
    try:
        arch = infer_clip_arch(state, prefix='clip.')
    except ValueError as error:
        raise ConversionError(f'not CLIP ViT weights ({error})') from None
    cfg = model_config(arch, num_frames)
    model = ActionClip(**{k: v for k, v in cfg.model.items() if k != 'type'})
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as error:
        raise ConversionError(f'strict loading failed: {error}') from None
    meta = dict(
        cfg=cfg.pretty_text,
        converted_from=osp.basename(src),
        source_format='github.com/muzairkhattak/ViFi-CLIP checkpoint',
        clip_arch=arch,
        num_segs=num_frames,
        prompt_labels=labels,
        ignored=sorted(str(k) for k in checkpoint if k != 'model'))
    return {'state_dict': state, 'meta': meta}, [
        f'  clip_arch={arch!r}, {num_frames} frames, mean pooling, '
        f'{len(labels)} class prompts checked against {clip_path}'
    ]
