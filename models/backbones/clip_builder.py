"""The one place where a CLIP model is built from an architecture
(:mod:`.clip_archs`) and its weights (:mod:`.pretrained` or a file)."""
import os.path as osp
from typing import Dict, Union

import torch
from clip.model import CLIP

# infer_clip_arch: imported from here by the tools and tests too
from models.backbones.clip_archs import infer_clip_arch  # noqa: F401
from models.backbones.clip_archs import resolve_arch
from models.backbones.pretrained import fetch_openai_clip
from models.checkpoints.checks import CheckpointMismatchError, key_differences
from models.checkpoints.safe_loading import load_checkpoint_file

# Buffers of OpenAI's TorchScript files that are attributes, not weights.
_NON_WEIGHT_KEYS = ('input_resolution', 'context_length', 'vocab_size')


def read_clip_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The float32 CLIP state dict of OpenAI's TorchScript archive or of a
    checkpoint (optionally under ``state_dict`` and/or ``clip.``)."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'CLIP weights file {path!r} does not exist; pass pretrained=True '
            'to use the OpenAI weights or pretrained=False for random ones')
    try:
        # OpenAI publishes TorchScript archives; torch.jit.load runs no
        # pickle, so reading them needs no weights_only exception.
        state = torch.jit.load(path, map_location='cpu').state_dict()
    except RuntimeError:
        state = load_checkpoint_file(path, map_location='cpu')
        if 'model_state_dict' in state and 'fusion_model_state_dict' in state:
            raise CheckpointMismatchError(
                f'{path} is a checkpoint of the original ActionCLIP code, not '
                'plain CLIP weights: convert it with python tools/convert_'
                'actionclip_checkpoint.py IN OUT --num-segs T and load the '
                'result as an ActionCLIP model (--model / init_actionclip)')
        state = state.get('state_dict', state)
        if any(k.startswith('clip.') for k in state):
            state = {
                k[len('clip.'):]: v
                for k, v in state.items() if k.startswith('clip.')
            }
    # Entries that are not tensors (an epoch number, a config) are not
    # weights; what is left must then fit the architecture.
    return {
        k: v.float()
        for k, v in state.items()
        if k not in _NON_WEIGHT_KEYS and isinstance(v, torch.Tensor)
    }


def _check_compatible(model: CLIP, state: Dict[str, torch.Tensor],
                      source: str, clip_arch) -> None:
    """Raise a ValueError listing the differences between model and file."""
    missing, unexpected, mismatched = key_differences(model.state_dict(),
                                                      state)
    if missing or unexpected or mismatched:
        lines = [f'CLIP weights {source} do not fit clip_arch {clip_arch!r}:']
        for title, items in (('missing', missing),
                             ('unexpected', unexpected),
                             ('shape mismatch', mismatched)):
            if items:
                more = f' (+{len(items) - 5} more)' if len(items) > 5 else ''
                lines.append(f'  {title}: {items[:5]}{more}')
        raise ValueError('\n'.join(lines))


def build_clip(clip_arch: Union[str, dict],
               pretrained: Union[bool, str] = False) -> CLIP:
    """A float32 CLIP on the CPU of ``clip_arch`` (a name of
    :data:`.clip_archs.CLIP_ARCHS` or a dict of CLIP hyperparameters) with
    OpenAI's weights (``pretrained=True``, cached), a local CLIP weights
    file (a path), or random ones (``False``)."""
    model = CLIP(**resolve_arch(clip_arch))
    if pretrained is False or pretrained is None:
        return model
    if pretrained is True:
        if not isinstance(clip_arch, str):
            raise ValueError('pretrained=True needs a named clip_arch; for a '
                             'dict architecture pass pretrained=PATH')
        path = fetch_openai_clip(clip_arch)
    elif isinstance(pretrained, str):
        path = osp.expanduser(pretrained)
    else:
        raise TypeError('pretrained must be True, False or a path, got '
                        f'{pretrained!r}')
    state = read_clip_state_dict(path)
    _check_compatible(model, state, path, clip_arch)
    model.load_state_dict(state)
    return model
