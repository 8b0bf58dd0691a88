"""Refuse weights that cannot give a right answer, before they score.

mmengine's ``load_checkpoint`` loads non-strictly (missing keys keep random
values after a warning); ``ActionClip`` runs :func:`check_state_dict` on
every ``load_state_dict`` instead, so that missing, unexpected, reshaped or
non-finite weights stop the run with a message saying what the file is.
"""
import itertools
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch.utils.weak import WeakIdKeyDictionary

from models.backbones.clip_archs import infer_clip_arch
from models.backbones.pretrained import ACTIONCLIP_CHECKPOINTS


class CheckpointMismatchError(ValueError):
    """A checkpoint's weights do not fit the model they are loaded into."""


class NonFiniteWeightsError(ValueError):
    """A checkpoint holds NaN or infinite weights."""


class NotACheckpointError(ValueError):
    """A file loads, but is not a mapping of weights."""


# The first tensor of each checkpoint read -> its file, for messages (not a
# tensor attribute: torch.save would write it).
_SOURCES = WeakIdKeyDictionary()


def _first_tensor(state: dict) -> Optional[torch.Tensor]:
    # One level down too: original ActionCLIP files nest their weights.
    nested = (inner for value in state.values() if isinstance(value, dict)
              for inner in value.values())
    return next((value for value in itertools.chain(state.values(), nested)
                 if isinstance(value, torch.Tensor)), None)


def remember_source(checkpoint: Any, path: str) -> None:
    """Note that ``checkpoint``'s tensors were read from ``path``."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else None
    tensor = _first_tensor(state) if isinstance(state, dict) else None
    if tensor is not None:
        _SOURCES[tensor] = path


def strip_module_prefix(state: dict) -> dict:
    """``state`` without (Distributed)DataParallel's ``module.`` prefix."""
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state.items()}


def adapter_depth(state: dict) -> int:
    """The number of ``adapter.transformer.resblocks`` in ``state``."""
    return len({
        k.split('.')[3]
        for k in state if k.startswith('adapter.transformer.resblocks.')
    })


def check_mapping(checkpoint: Any, path: str) -> dict:
    """``checkpoint`` (loaded from ``path``), refused unless a mapping."""
    if isinstance(checkpoint, dict) and isinstance(
            checkpoint.get('state_dict', {}), dict):
        return checkpoint
    if isinstance(checkpoint, dict):
        checkpoint = checkpoint['state_dict']
        path = f"{path} ['state_dict']"
    what = type(checkpoint).__name__
    if isinstance(checkpoint, torch.Tensor):
        what = f'a bare tensor of shape {tuple(checkpoint.shape)}'
    elif isinstance(checkpoint, (list, tuple)):
        what = f'a {what} of {len(checkpoint)} items'
    raise NotACheckpointError(
        f'{path} holds {what}, not a checkpoint (a dict of named weights, '
        "optionally under 'state_dict'); save model.state_dict() or use the "
        'checkpoints a training run writes')


def _shorten(keys: Sequence[str], limit: int = 4) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f' ... (+{len(keys) - limit} more)'
                    if len(keys) > limit else '')


def describe_checkpoint(state: Dict[str, Any]) -> str:
    """One or two sentences: what ``state`` (keys without the model's
    prefix) looks made for, and what to do."""
    keys = list(state)
    if {'model_state_dict', 'fusion_model_state_dict'} & set(keys) or (
            any(k.startswith('visual.') for k in keys)
            and any(k.startswith('transformer.resblocks') for k in keys)):
        return ('It looks like a checkpoint of the original ActionCLIP code '
                "(or plain CLIP weights without the 'clip.' prefix): convert "
                'it with python tools/convert_actionclip_checkpoint.py IN OUT '
                '--num-segs T, or use --clip for plain CLIP weights.')
    if any(k.startswith(('backbone.', 'cls_head.')) for k in keys):
        return ('It looks like the weights of another MMAction2 recognizer '
                '(backbone/cls_head), not of ActionClip.')
    try:
        arch = infer_clip_arch(state, prefix='clip.')
    except ValueError:
        return ("It holds no CLIP ViT weights under 'clip.': it is not an "
                'ActionCLIP checkpoint of this project.')
    pos = state.get('adapter.frame_position_embeddings.weight')
    segs = None if pos is None else tuple(pos.shape)[0]
    arch_text = arch if isinstance(arch, str) else 'a custom CLIP'
    text = (f'It was made for clip_arch={arch_text!r}, num_adapter_segs='
            f'{segs}, num_adapter_layers={adapter_depth(state)}.')
    matches = [
        f"{name} ({entry['config']})"
        for name, entry in ACTIONCLIP_CHECKPOINTS.items()
        if entry['clip_arch'] == arch and entry['num_segs'] == segs
    ]
    if matches:
        text += ' Matching released model and config: ' + ', '.join(matches)
    return text + ' Use the config it was trained with.'


def non_finite_keys(state: Dict[str, Any]) -> List[str]:
    """Keys of floating-point tensors that hold NaN or infinite values."""
    return [
        k for k, v in state.items()
        if isinstance(v, torch.Tensor) and v.is_floating_point()
        and not bool(torch.isfinite(v).all())
    ]


def key_differences(own: Dict[str, torch.Tensor], state: Dict[str, Any]
                    ) -> Tuple[List[str], List[str], List[str]]:
    """The keys of ``state`` missing, unexpected, and of another shape
    (``'key (file shape, model shape)'``) against the model's ``own``."""
    mismatched = [
        f'{k} (file {tuple(state[k].shape)}, model {tuple(v.shape)})'
        for k, v in own.items() if k in state
        and isinstance(state[k], torch.Tensor) and state[k].shape != v.shape
    ]
    return (sorted(set(own) - set(state)), sorted(set(state) - set(own)),
            mismatched)


def check_state_dict(own: Dict[str, torch.Tensor],
                     state: Dict[str, Any],
                     prefix: str = '') -> None:
    """Refuse weights (keys under ``prefix``) that do not fit the model's
    state dict ``own`` exactly, or are not finite.

    Raises:
        CheckpointMismatchError: A key is missing, unexpected, or of
            another shape.
        NonFiniteWeightsError: A weight is NaN or infinite.
    """
    mine = {k[len(prefix):]: v for k, v in state.items()
            if k.startswith(prefix)}
    tensor = _first_tensor(mine)
    source = None if tensor is None else _SOURCES.get(tensor)
    name = f'Checkpoint {source}' if source else 'The checkpoint'
    missing, unexpected, mismatched = key_differences(own, mine)
    parts = [
        f'{len(items)} {title}: {_shorten(items)}'
        for title, items in (('missing', missing), ('unexpected', unexpected),
                             ('of another shape', mismatched)) if items
    ]
    if parts:
        raise CheckpointMismatchError(
            f'{name} does not fit this ActionClip model ('
            f'{len(own)} weights): keys ' + '; '.join(parts) + '. ' +
            describe_checkpoint(mine))
    bad = non_finite_keys(mine)
    if bad:
        raise NonFiniteWeightsError(
            f'{name} holds NaN or infinite values in {len(bad)} '
            f'weight(s): {_shorten(bad)}. Such a model gives no meaningful '
            'scores; use an earlier checkpoint of the run (training '
            'diverged?) or download the file again.')
