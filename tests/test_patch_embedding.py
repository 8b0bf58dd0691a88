import copy

import pytest
import torch
from torch import nn

from models.acceleration.patch_embedding import (PatchEmbedding, is_patchify,
                                                 use_patch_embedding)
from models.backbones.clip_builder import build_clip
from models.recognizers.actionclip import ActionClip


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().abs().max())


@pytest.mark.parametrize('size,patch,bias', [((32, 32), 16, False),
                                             ((37, 45), 8, True),
                                             ((20, 28), (4, 7), False)])
def test_output_and_gradients_match_the_convolution(size, patch, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 24, patch, stride=patch, bias=bias)
    fast = copy.deepcopy(conv)
    assert use_patch_embedding(fast) == 1
    assert isinstance(fast, PatchEmbedding)
    x = torch.randn(5, 3, *size, requires_grad=True)
    outs, grads = [], []
    weights = None
    for module in (conv, fast):
        out = module(x)
        if weights is None:
            weights = torch.randn(out.shape)
        (out * weights).sum().backward()
        outs.append(out)
        grads.append([x.grad.clone(), module.weight.grad.clone()] +
                     ([module.bias.grad.clone()] if bias else []))
        x.grad = None
    assert outs[0].shape == outs[1].shape  # incomplete patches dropped
    assert max_diff(*outs) < 1e-5
    for a, b in zip(*grads):
        assert max_diff(a, b) < 1e-4 * max(1.0, float(a.abs().max()))
    # CLIP flattens (N, D, h, w) to (N, L, D): a view, no copy
    flat = outs[1].reshape(5, 24, -1).permute(0, 2, 1)
    assert flat.is_contiguous()


def test_other_convolutions_are_left_alone():
    others = [
        nn.Conv2d(3, 8, 3, stride=2, padding=1),  # ResNet stem
        nn.Conv2d(8, 8, 1),  # ResNet 1x1
        nn.Conv2d(8, 8, 2, stride=2, groups=2),
        nn.Conv2d(8, 8, 2, stride=2, dilation=2),
    ]
    for conv in others:
        assert not is_patchify(conv)
    assert use_patch_embedding(nn.Sequential(*others)) == 0
    assert all(type(c) is nn.Conv2d for c in others)


def test_clip_features_and_state_dict_unchanged(tiny_arch):
    torch.manual_seed(0)
    plain = build_clip(tiny_arch)
    fast = copy.deepcopy(plain)
    assert use_patch_embedding(fast) == 1
    assert list(fast.state_dict()) == list(plain.state_dict())
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert max_diff(plain.encode_image(images),
                        fast.encode_image(images)) < 1e-5
    assert use_patch_embedding(fast, enable=False) == 1
    assert type(fast.visual.conv1) is nn.Conv2d


def test_resnet_clip_has_nothing_to_switch(tiny_arch):
    arch = dict(tiny_arch, vision_layers=(1, 1, 1, 1), vision_width=16)
    assert use_patch_embedding(build_clip(arch)) == 0


def test_actionclip_flag(tiny_arch):
    torch.manual_seed(0)
    fast = ActionClip(tiny_arch, 4, labels_or_label_file=['a', 'b'])
    plain = ActionClip(tiny_arch, 4, labels_or_label_file=['a', 'b'],
                       speedups=dict(patch_embedding=False))
    plain.load_state_dict(fast.state_dict())
    assert isinstance(fast.clip.visual.conv1, PatchEmbedding)
    assert type(plain.clip.visual.conv1) is nn.Conv2d
    inputs = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        assert max_diff(
            plain.eval().predict_scores(inputs),
            fast.eval().predict_scores(inputs)) < 1e-6
