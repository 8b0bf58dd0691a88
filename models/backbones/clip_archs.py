"""CLIP architectures as data: the hyperparameters of each named model
(no download; weights: :mod:`models.backbones.pretrained`)."""
from typing import Any, Dict, Union

_VIT_B = dict(
    embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
    vision_patch_size=32, context_length=77, vocab_size=49408,
    transformer_width=512, transformer_heads=8, transformer_layers=12)
_VIT_L = dict(_VIT_B, embed_dim=768, vision_layers=24, vision_width=1024,
              vision_patch_size=14, transformer_width=768,
              transformer_heads=12)
#: Keyword arguments of :class:`clip.model.CLIP` for the OpenAI models.
CLIP_ARCHS: Dict[str, Dict[str, int]] = {
    'ViT-B/32': _VIT_B,
    'ViT-B/16': dict(_VIT_B, vision_patch_size=16),
    'ViT-L/14': _VIT_L,
    'ViT-L/14@336px': dict(_VIT_L, image_resolution=336),
}

ARCH_KEYS = tuple(CLIP_ARCHS['ViT-B/32'])

# The BPE tokenizer and its 77-token context are shared by every OpenAI
# model, so small test architectures default to them as well.
_DICT_DEFAULTS = dict(context_length=77, vocab_size=49408)


def available_archs() -> list:
    """Names accepted as ``clip_arch``."""
    return list(CLIP_ARCHS)


def resolve_arch(clip_arch: Union[str, dict]) -> Dict[str, int]:
    """Keyword arguments for :class:`clip.model.CLIP` from a name of
    :data:`CLIP_ARCHS` or a dict with the keys of :data:`ARCH_KEYS`
    (``context_length`` and ``vocab_size`` may be left out), checked."""
    if isinstance(clip_arch, str):
        if clip_arch not in CLIP_ARCHS:
            raise ValueError(
                f'Unknown clip_arch {clip_arch!r}; available: '
                f'{available_archs()}, or a dict with keys {list(ARCH_KEYS)}')
        return dict(CLIP_ARCHS[clip_arch])
    if not isinstance(clip_arch, dict):
        raise TypeError('clip_arch must be a model name or a dict of CLIP '
                        f'hyperparameters, got {type(clip_arch).__name__}')
    arch = dict(_DICT_DEFAULTS, **clip_arch)
    if isinstance(arch.get('vision_layers'), (list, tuple)):
        arch.setdefault('vision_patch_size', None)
    unknown = sorted(set(arch) - set(ARCH_KEYS))
    missing = [k for k in ARCH_KEYS if k not in arch]
    if unknown or missing:
        raise ValueError(f'clip_arch dict: unknown keys {unknown}, missing '
                         f'keys {missing}; expected {list(ARCH_KEYS)}')
    resnet = isinstance(arch['vision_layers'], (list, tuple))
    for key, value in arch.items():
        if resnet and key == 'vision_patch_size':
            continue
        values = value if resnet and key == 'vision_layers' else [value]
        if resnet and key == 'vision_layers' and len(values) != 4:
            raise ValueError('clip_arch: a ResNet image encoder needs 4 '
                             f'stage depths in vision_layers, got {value!r}')
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(
                    f'clip_arch[{key!r}] must be a positive int, got {v!r}')
    if arch['transformer_width'] % arch['transformer_heads']:
        raise ValueError(
            f"clip_arch: transformer_width {arch['transformer_width']} is "
            f"not divisible by transformer_heads {arch['transformer_heads']}")
    if resnet:
        # CLIP's ModifiedResNet: five stride-2 stages, an attention pool
        # with (width * 32) // 64 heads.
        arch['vision_layers'] = tuple(arch['vision_layers'])
        arch['vision_patch_size'] = None
        if arch['image_resolution'] % 32 or arch['vision_width'] % 2:
            raise ValueError(
                'clip_arch: a ResNet image encoder needs image_resolution '
                'divisible by 32 and an even vision_width')
        return arch
    if arch['image_resolution'] % arch['vision_patch_size']:
        raise ValueError(
            f"clip_arch: image_resolution {arch['image_resolution']} is not "
            f"a multiple of vision_patch_size {arch['vision_patch_size']}")
    # CLIP's ViT uses width // 64 heads; a narrower encoder would have none.
    if arch['vision_width'] < 64 or arch['vision_width'] % 64:
        raise ValueError('clip_arch: vision_width must be a multiple of 64, '
                         f"got {arch['vision_width']}")
    return arch


def infer_clip_arch(state_dict: Dict[str, Any],
                    prefix: str = '') -> Union[str, dict]:
    """The architecture of CLIP weights (keys under ``prefix``), read from
    their shapes: a name of :data:`CLIP_ARCHS` when one matches, else a
    dict of hyperparameters."""
    def shape(key):
        if prefix + key not in state_dict:
            raise ValueError(f'Not CLIP ViT weights: no {prefix + key!r}')
        return state_dict[prefix + key].shape

    def count(group):
        start = f'{prefix}{group}.resblocks.'
        return len({
            k[len(start):].split('.')[0]
            for k in state_dict if k.startswith(start)
        })

    patch = shape('visual.conv1.weight')[-1]
    grid = round((shape('visual.positional_embedding')[0] - 1)**0.5)
    width = shape('ln_final.weight')[0]
    arch = dict(
        embed_dim=shape('text_projection')[1],
        image_resolution=patch * grid,
        vision_layers=count('visual.transformer'),
        vision_width=shape('visual.conv1.weight')[0],
        vision_patch_size=patch,
        context_length=shape('positional_embedding')[0],
        vocab_size=shape('token_embedding.weight')[0],
        transformer_width=width,
        transformer_heads=max(1, width // 64),
        transformer_layers=count('transformer'))
    for name, known in CLIP_ARCHS.items():
        if known == arch:
            return name
    return arch
