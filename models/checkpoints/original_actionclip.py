"""Converting a checkpoint of the original ActionCLIP code
(github.com/sallymmx/ActionCLIP); the format and the mapping are described
in ``tools/convert_actionclip_checkpoint.py``. Standard library only at
import (the tools read it before torch, for fast
usage errors).
"""
# Annotations stay strings: torch is imported inside the functions.
from __future__ import annotations

import os.path as osp
from collections import Counter
from typing import TYPE_CHECKING, Dict, List, Sequence, Tuple

from .conversion import ConversionError

if TYPE_CHECKING:
    import torch

#: The entries of an original checkpoint that hold weights.
MODEL_KEY = 'model_state_dict'
FUSION_KEY = 'fusion_model_state_dict'
POSITION_KEY = 'frame_position_embeddings.weight'
# Buffers of OpenAI's TorchScript archives that are attributes, not
# weights; a CLIP state dict taken from one may still hold them.
_CLIP_ATTRIBUTES = ('input_resolution', 'context_length', 'vocab_size')


def _weights(checkpoint: dict, key: str) -> Dict[str, torch.Tensor]:
    """``checkpoint[key]``, checked to hold only tensors."""
    import torch
    state = checkpoint[key]
    if not isinstance(state, dict) or not state:
        raise ConversionError(f'{key!r} is not a non-empty state dict '
                              f'(got {type(state).__name__})')
    not_tensors = sorted(k for k, v in state.items()
                         if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise ConversionError(f'{key!r} holds entries that are not tensors: '
                              f'{not_tensors[:5]}')
    from models.checkpoints.checks import strip_module_prefix
    return strip_module_prefix(state)


def _list(keys: Sequence[str], limit: int = 8) -> str:
    keys = sorted(keys)
    more = f' ... and {len(keys) - limit} more' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def convert(checkpoint: object,
            num_segs: int = 8) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Map an original ActionCLIP checkpoint to this project's keys,
    keeping the first ``num_segs`` rows of the position table.

    Returns:
        tuple: float32 weights under ``clip.``/``adapter.``, and a report:
        ``groups`` (tensors per group), ``dropped``, ``ignored``.
    """
    if not isinstance(checkpoint, dict):
        raise ConversionError(
            'expected a dict with '
            f'{MODEL_KEY!r} and {FUSION_KEY!r} (as the original ActionCLIP '
            f'saves), got {type(checkpoint).__name__}')
    missing = [k for k in (MODEL_KEY, FUSION_KEY) if k not in checkpoint]
    if missing:
        hint = ''
        inner = checkpoint.get('state_dict', checkpoint)
        if isinstance(inner, dict) and any(
                str(k).startswith('clip.') for k in inner):
            hint = (' It holds "clip." keys: it is already in this '
                    "project's layout and needs no conversion.")
        raise ConversionError(
            f'not an original ActionCLIP checkpoint: no {missing} entry '
            f'(top-level keys: {_list(map(str, checkpoint))}).{hint}')
    if num_segs < 1:
        raise ConversionError(f'--num-segs must be >= 1, got {num_segs}')

    clip_state = _weights(checkpoint, MODEL_KEY)
    fusion = _weights(checkpoint, FUSION_KEY)
    state: Dict[str, torch.Tensor] = {}
    dropped: List[str] = []
    for key, value in clip_state.items():
        if key in _CLIP_ATTRIBUTES:
            dropped.append(f'{MODEL_KEY}.{key} (not a weight)')
            continue
        state['clip.' + key] = value.float()

    if POSITION_KEY not in fusion:
        raise ConversionError(
            f'{FUSION_KEY!r} has no {POSITION_KEY!r}: only the "Transf" '
            'fusion (sim_header) of ActionCLIP maps to this project\'s '
            f'adapter; its keys are: {_list(fusion)}')
    table = fusion.pop(POSITION_KEY)
    if table.dim() != 2 or table.shape[0] < num_segs:
        raise ConversionError(
            f'{POSITION_KEY} has shape {tuple(table.shape)}: fewer than '
            f'--num-segs={num_segs} rows')
    state['adapter.' + POSITION_KEY] = table[:num_segs].float().clone()
    if table.shape[0] > num_segs:
        dropped.append(f'{FUSION_KEY}.{POSITION_KEY} rows {num_segs}..'
                       f'{table.shape[0] - 1} (never read for T={num_segs})')
    unmatched = [k for k in fusion if not k.startswith('transformer.')]
    if unmatched:
        raise ConversionError(
            f'{FUSION_KEY!r} has keys with no counterpart in this project\'s '
            f'transformer adapter: {_list(unmatched)}')
    for key, value in fusion.items():
        state['adapter.' + key] = value.float()

    names = (('clip.visual.', 'clip.visual (image encoder)'),
             ('clip.', 'clip (text encoder, logit scale)'),
             ('', 'adapter (temporal transformer)'))
    groups = Counter(next(name for prefix, name in names
                          if key.startswith(prefix)) for key in state)
    ignored = sorted(
        str(k) for k in checkpoint if k not in (MODEL_KEY, FUSION_KEY))
    report = dict(groups=dict(groups), dropped=dropped, ignored=ignored)
    return state, report


def build_and_load(state: Dict[str, torch.Tensor]):
    """``(model, arch)``: an ActionClip built for :func:`convert`'s
    weights, loaded strictly, and its ``clip_arch``."""
    import models  # noqa: F401  (stack fixes, registry)
    from models.backbones.clip_builder import infer_clip_arch
    from models.checkpoints.checks import adapter_depth
    from models.recognizers.actionclip import ActionClip
    try:
        arch = infer_clip_arch(state, prefix='clip.')
    except ValueError as error:
        raise ConversionError(
            f'{MODEL_KEY!r} is not a CLIP ViT state dict ({error})') from None
    width = state['clip.ln_final.weight'].shape[0]
    embed_dim = state['clip.text_projection'].shape[1]
    # The original fusion transformer has text_width // 64 heads, this
    # adapter embed_dim // 64: the same weights would compute differently.
    if width // 64 != max(1, embed_dim // 64):
        raise ConversionError(
            f'the original fusion transformer has {width // 64} heads '
            f'(text width {width} // 64), this adapter {embed_dim // 64} '
            f'(embed_dim {embed_dim} // 64); such a model cannot be '
            'converted faithfully')
    layers = adapter_depth(state)
    model = ActionClip(
        clip_arch=arch,
        num_adapter_segs=state['adapter.' + POSITION_KEY].shape[0],
        num_adapter_layers=layers)
    try:  # ActionClip's load hook names missing and unexpected keys
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as error:
        raise ConversionError(f'strict loading failed: {error}') from None
    return model, arch


def convert_file(src: str, num_segs: int) -> Tuple[dict, List[str]]:
    """Convert the original checkpoint ``src`` (:func:`convert`,
    :func:`build_and_load`) for :func:`run_conversion`: the checkpoint to
    save (``state_dict`` and a plain-data ``meta``) and the report lines."""
    from models.checkpoints.safe_loading import load_checkpoint_file
    checkpoint = load_checkpoint_file(src, map_location='cpu')
    state, report = convert(checkpoint, num_segs)
    model, arch = build_and_load(state)
    epoch = checkpoint.get('epoch')
    meta = dict(
        converted_from=osp.basename(src),
        source_format='github.com/sallymmx/ActionCLIP checkpoint '
        f'({MODEL_KEY} + {FUSION_KEY})',
        clip_arch=arch,
        num_segs=num_segs,
        num_adapter_layers=len(model.adapter.transformer.resblocks),
        epoch=epoch if isinstance(epoch, int) else None,
        dropped=report['dropped'],
        ignored=report['ignored'])
    lines = [f'  clip_arch={arch!r}, num_adapter_segs={num_segs}, '
             f'num_adapter_layers={meta["num_adapter_layers"]}']
    lines += [f'  {count:4d} tensors  {group}'
              for group, count in report['groups'].items()]
    lines += [f'  dropped: {item}' for item in report['dropped']]
    return {'state_dict': state, 'meta': meta}, lines
