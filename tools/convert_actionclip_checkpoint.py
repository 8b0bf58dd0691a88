"""Convert a checkpoint of the original ActionCLIP code to this project.

The original repository (github.com/sallymmx/ActionCLIP, ``train.py`` and
``utils/saving.py``) saves::

    {'epoch': int,
     'model_state_dict': CLIP's state dict (``visual.*``, ``transformer.*``,
                         ``token_embedding.weight``, ... as OpenAI's CLIP),
     'fusion_model_state_dict': its ``visual_prompt`` fusion model with
                         ``sim_header='Transf'``: ``frame_position_embeddings
                         .weight`` and ``transformer.resblocks.N.*``,
     'optimizer_state_dict': ...}

with ``module.`` before the fusion keys, since it trains the fusion model
inside ``DataParallel`` (a ``module.`` before CLIP keys is removed too).
This project's :class:`~models.ActionClip` holds the same tensors under
``clip.`` and ``adapter.``, with the same names below. One shape differs:
the original's position table has a row per text token (77) but its
forward pass only reads the first T (``position_ids = arange(T)``), so the
adapter keeps those T rows and the rest are dropped. CLIP, saved in
float16 when trained on GPUs, is stored in float32 as in the released
checkpoints. The optimizer state and other entries are not weights and are
left out.

The result is checked by loading it strictly into an ``ActionClip`` of the
architecture its shapes describe (:func:`models.backbones.clip_builder.
infer_clip_arch`), and saved as ``{'state_dict': ..., 'meta': ...}``, plain
tensors and numbers that ``torch.load(weights_only=True)``, ``mim test
--checkpoint`` and ``init_actionclip(PATH)`` read.

One numerical difference remains, in the model, not in the weights: the
original fusion transformer's LayerNorm uses eps=1e-12, CLIP's (and so this
adapter's, as in MMAction2's port of the released models) 1e-5.

The output is written whole or not at all (a temporary file beside it,
renamed at the end); an output that is the input (also through a hard or
symbolic link) or a folder is refused, and a missing output folder is
created, before any conversion work.

Exit status: 0 when converted; 2 with one line on stderr when the input
cannot be converted or the output cannot be written there; 1 when writing
the output failed (a previous file at that path is left as it was).

Example:
    python tools/convert_actionclip_checkpoint.py model_best.pt \\
        vit-b-32-8f_converted.pth --num-segs 8
"""
# Annotations stay strings: torch is imported only after the arguments
# are checked, so that a usage error answers at once.
from __future__ import annotations

import argparse
import os.path as osp
import sys
from collections import Counter
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

#: The entries of an original checkpoint that hold weights.
MODEL_KEY = 'model_state_dict'
FUSION_KEY = 'fusion_model_state_dict'
POSITION_KEY = 'frame_position_embeddings.weight'
# Buffers of OpenAI's TorchScript archives that are attributes, not
# weights; a CLIP state dict taken from one may still hold them.
_CLIP_ATTRIBUTES = ('input_resolution', 'context_length', 'vocab_size')


class ConversionError(ValueError):
    """The source is not an original ActionCLIP checkpoint this tool can
    convert; the message says why and names the keys."""


def _weights(checkpoint: dict, key: str) -> Dict[str, torch.Tensor]:
    """One state dict of the checkpoint, checked to hold only tensors."""
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
    from models.apis.loading import strip_module_prefix
    return strip_module_prefix(state)


def _list(keys: Sequence[str], limit: int = 8) -> str:
    keys = sorted(keys)
    more = f' ... and {len(keys) - limit} more' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def convert(checkpoint: object,
            num_segs: int = 8) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Map an original ActionCLIP checkpoint to this project's keys.

    Args:
        checkpoint (object): What ``torch.load`` returned for the file.
        num_segs (int): Frames per view T of the model; the first T rows
            of the original position table are kept.

    Returns:
        tuple: ``(state_dict, report)``: the float32 weights under
        ``clip.``/``adapter.``, and a dict telling what was mapped
        (``groups``: tensors per group), dropped (``dropped``) and ignored
        (``ignored``: top-level entries that are not weights).
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

    groups = Counter()
    for key in state:
        if key.startswith('clip.visual.'):
            groups['clip.visual (image encoder)'] += 1
        elif key.startswith('clip.'):
            groups['clip (text encoder, logit scale)'] += 1
        else:
            groups['adapter (temporal transformer)'] += 1
    ignored = sorted(
        str(k) for k in checkpoint if k not in (MODEL_KEY, FUSION_KEY))
    report = dict(groups=dict(groups), dropped=dropped, ignored=ignored)
    return state, report


def build_and_load(state: Dict[str, torch.Tensor]):
    """Load converted weights strictly into an ActionClip built for them.

    Args:
        state (dict): The output of :func:`convert`.

    Returns:
        tuple: ``(model, arch)``: the :class:`~models.ActionClip` with the
        weights loaded, and its ``clip_arch`` (a name or a dict).
    """
    import models  # noqa: F401  (stack fixes, registry)
    from models.apis.loading import adapter_depth
    from models.backbones.clip_builder import infer_clip_arch
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
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        lines = []
        if unexpected:
            lines.append(f'keys with no counterpart in ActionClip: '
                         f'{_list(unexpected)}')
        if missing:
            lines.append(f'weights the checkpoint lacks: {_list(missing)}')
        raise ConversionError(
            f'the converted weights do not fit ActionClip(clip_arch={arch!r}'
            f', num_adapter_layers={layers}): ' + '; '.join(lines))
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as error:
        raise ConversionError(f'strict loading failed: {error}') from None
    return model, arch


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Convert SRC to DST.

    Args:
        argv (list[str], optional): Command-line arguments.

    Returns:
        int: The exit status (see the module docstring): 2 with a message
        on stderr when SRC cannot be converted or DST is refused.
    """
    parser = argparse.ArgumentParser(
        description='Convert a checkpoint of the original ActionCLIP '
        'repository (model_state_dict + fusion_model_state_dict) to this '
        "project's layout (state_dict with clip.* and adapter.* keys).")
    parser.add_argument('src', help='original ActionCLIP checkpoint')
    parser.add_argument('dst', help='where to write the converted file')
    parser.add_argument(
        '--num-segs',
        type=int,
        default=8,
        help='frames per view T the model was trained with (default: 8); '
        'the first T rows of the position table are kept')
    args = parser.parse_args(argv)

    # Checked before torch and the package are imported (seconds), so
    # that a usage error answers at once.
    from light_imports import load_light
    safe_io = load_light('models.utils.safe_io')
    if args.num_segs < 1:
        print(f'error: --num-segs must be >= 1, got {args.num_segs}',
              file=sys.stderr)
        return 2
    if not osp.isfile(args.src):
        kind = load_light('models.utils.paths').special_file_kind(args.src)
        problem = (f'is {kind}, not a regular file' if kind else
                   'is a folder' if osp.isdir(args.src) else 'does not exist')
        print(f'error: cannot convert {args.src}: it {problem}',
              file=sys.stderr)
        return 2
    try:
        # Before any work: refuse DST = SRC, create DST's folder.
        safe_io.check_output_path(args.dst, [args.src], 'output')
    except safe_io.OutputPathError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2

    import models  # noqa: F401  (stack fixes before loading)
    from models.checkpoints.safe_loading import (CheckpointReadError,
                                                 UnsafeCheckpointError,
                                                 load_checkpoint_file)
    from models.utils.safe_io import atomic_save_torch
    try:
        # Safe loading: tensors, numbers and containers only; anything
        # else is refused, naming ACTIONCLIP_TRUST_CHECKPOINTS.
        checkpoint = load_checkpoint_file(args.src, map_location='cpu')
        state, report = convert(checkpoint, args.num_segs)
        model, arch = build_and_load(state)
    # ValueError: ConversionError and the loader's refusals of what is not
    # a checkpoint; OSError: SRC unreadable.
    except (ValueError, OSError, UnsafeCheckpointError,
            CheckpointReadError) as error:
        print(f'error: cannot convert {args.src}: {error}', file=sys.stderr)
        return 2

    epoch = checkpoint.get('epoch')
    meta = dict(
        converted_from=osp.basename(args.src),
        source_format='github.com/sallymmx/ActionCLIP checkpoint '
        f'({MODEL_KEY} + {FUSION_KEY})',
        clip_arch=arch,
        num_segs=args.num_segs,
        num_adapter_layers=len(model.adapter.transformer.resblocks),
        epoch=epoch if isinstance(epoch, int) else None,
        dropped=report['dropped'],
        ignored=report['ignored'])
    try:
        atomic_save_torch({'state_dict': state, 'meta': meta}, args.dst)
    except OSError as error:
        print(f'error: cannot write {args.dst}: {error}', file=sys.stderr)
        return 1

    print(f'converted {args.src} -> {args.dst}')
    print(f'  clip_arch={arch!r}, num_adapter_segs={args.num_segs}, '
          f'num_adapter_layers={meta["num_adapter_layers"]}')
    for group, count in report['groups'].items():
        print(f'  {count:4d} tensors  {group}')
    for item in report['dropped']:
        print(f'  dropped: {item}')
    if report['ignored']:
        print(f'  ignored (not weights): {", ".join(report["ignored"])}')
    print('  loads strictly into ActionClip: yes')
    return 0


if __name__ == '__main__':
    sys.exit(main())
