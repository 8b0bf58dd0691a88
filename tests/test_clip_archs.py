import pytest

from models.backbones.clip_archs import (CLIP_ARCHS, available_archs,
                                         resolve_arch)


def test_openai_names_resolve_to_their_hyperparameters():
    assert {'ViT-B/32', 'ViT-B/16', 'ViT-L/14',
            'ViT-L/14@336px'} <= set(available_archs())
    arch = resolve_arch('ViT-B/16')
    assert arch['vision_patch_size'] == 16 and arch['embed_dim'] == 512
    arch['embed_dim'] = 1  # a copy: the table itself stays intact
    assert CLIP_ARCHS['ViT-B/16']['embed_dim'] == 512


def test_dict_arch_gets_tokenizer_defaults(tiny_arch):
    arch = resolve_arch(tiny_arch)
    assert arch['context_length'] == 77 and arch['vocab_size'] == 49408


@pytest.mark.parametrize('arch, message', [
    ('ViT-X/99', 'Unknown clip_arch'),
    (dict(embed_dim=64), 'missing keys'),
    (3, 'must be a model name or a dict'),
])
def test_bad_arch_is_explained(arch, message):
    with pytest.raises((ValueError, TypeError), match=message):
        resolve_arch(arch)


def test_bad_dict_values_are_named(tiny_arch):
    with pytest.raises(ValueError, match='not a multiple'):
        resolve_arch(dict(tiny_arch, image_resolution=33))
    with pytest.raises(ValueError, match='unknown keys'):
        resolve_arch(dict(tiny_arch, depth=3))
    with pytest.raises(ValueError, match='positive int'):
        resolve_arch(dict(tiny_arch, embed_dim=0))


def test_resnet_dict_arch():
    arch = resolve_arch(
        dict(
            embed_dim=64,
            image_resolution=64,
            vision_layers=[1, 1, 1, 1],
            vision_width=16,
            transformer_width=64,
            transformer_heads=2,
            transformer_layers=1))
    assert arch['vision_layers'] == (1, 1, 1, 1)
    assert arch['vision_patch_size'] is None
    with pytest.raises(ValueError, match='4 stage depths'):
        resolve_arch(dict(arch, vision_layers=(1, 1)))
    with pytest.raises(ValueError, match='divisible by 32'):
        resolve_arch(dict(arch, image_resolution=48))
