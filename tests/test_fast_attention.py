import copy
import json
import os

import pytest
import torch
from torch import nn

from models.acceleration.fast_attention import (FastSelfAttention,
                                                is_causal_mask,
                                                use_fast_attention)
from models.backbones.clip_builder import build_clip
from models.recognizers.actionclip import ActionClip
from models.text.prompts import prompt_tokens

MANIFEST = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), 'fixtures',
    'upstream_state_dict_manifest.json')
TOKENS = prompt_tokens(['riding a bike', 'zumba', 'x' * 30],
                       ['a video of {}', '{}']).flatten(0, 1)


@pytest.fixture
def pair(tiny_arch):
    torch.manual_seed(0)
    plain = build_clip(tiny_arch)
    fast = copy.deepcopy(plain)
    assert use_fast_attention(fast) == 4  # 2 image and 2 text blocks
    return plain, fast


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().abs().max())


@pytest.mark.parametrize('train', [False, True])
def test_features_and_gradients_match_the_original(pair, train):
    plain, fast = pair
    images = torch.randn(3, 3, 32, 32)
    outputs = []
    for model in pair:
        model.train(train)
        with torch.set_grad_enabled(train):
            out = (model.encode_image(images), model.encode_text(TOKENS))
        if train:
            (out[0].square().sum() + out[1].square().sum()).backward()
        outputs.append(out)
    for a, b in zip(*outputs):
        assert max_diff(a, b) <= 1e-5
    if train:
        for (name, p), q in zip(plain.named_parameters(), fast.parameters()):
            if p.grad is not None or q.grad is not None:
                assert max_diff(p.grad, q.grad) <= 1e-5, name


def test_only_the_class_changes(pair):
    plain, fast = pair
    assert fast.state_dict().keys() == plain.state_dict().keys()
    for (key, a), b in zip(plain.state_dict().items(),
                           fast.state_dict().values()):
        assert torch.equal(a, b), key
    assert all(b.attn.causal for b in fast.transformer.resblocks)
    assert not any(b.attn.causal for b in fast.visual.transformer.resblocks)
    assert use_fast_attention(fast, enable=False) == 4
    assert all(
        type(m) is nn.MultiheadAttention for m in fast.modules()
        if isinstance(m, nn.MultiheadAttention))
    assert not hasattr(fast.transformer.resblocks[0].attn, 'causal') or (
        not fast.transformer.resblocks[0].attn.__dict__.get('causal'))


def test_actionclip_default_is_exact_and_keeps_the_released_layout():
    """fast_attention is on by default; the model, its adapter and every
    flag leave the ViT-B/32-8 checkpoint keys unchanged."""
    with open(MANIFEST) as f:
        expected = json.load(f)['ViT-B/32-8']
    torch.manual_seed(0)
    model = ActionClip(
        'ViT-B/32', 8,
        speedups=dict(compile=dict(backend='eager'), cuda_graphs=True))
    assert isinstance(model.adapter.transformer.resblocks[0].attn,
                      FastSelfAttention)
    assert sorted(model.state_dict()) == sorted(expected)


def test_actionclip_scores_loss_and_gradients_match(tiny_arch):
    torch.manual_seed(0)
    fast = ActionClip(tiny_arch, 4, labels_or_label_file=['a', 'b', 'c'])
    plain = ActionClip(tiny_arch, 4, labels_or_label_file=['a', 'b', 'c'],
                       speedups=dict(fast_attention=False))
    plain.load_state_dict(fast.state_dict())
    assert not any(
        isinstance(m, FastSelfAttention) for m in plain.modules())
    inputs = torch.randn(2, 8, 3, 32, 32)
    results = []
    for model in (plain, fast):
        model.eval()
        with torch.no_grad():
            scores = model.predict_scores(inputs)
        model.train()
        from mmaction.structures import ActionDataSample
        samples = [ActionDataSample().set_gt_label(i) for i in (0, 2)]
        torch.manual_seed(1)
        loss = sum(model(inputs, samples, mode='loss').values())
        loss.backward()
        results.append((scores, loss, model.adapter.transformer.resblocks[0]
                        .attn.in_proj_weight.grad))
    for a, b in zip(*results):
        assert max_diff(a, b) <= 1e-5


def test_causal_flag_equals_the_explicit_mask():
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(64, 4)
    fast = copy.deepcopy(attn)
    fast.__class__ = FastSelfAttention
    fast.causal = True
    x = torch.randn(9, 3, 64)
    mask = torch.full((9, 9), float('-inf')).triu(1)
    expected = attn(x, x, x, need_weights=False, attn_mask=mask)[0]
    got, weights = fast(x, x, x, need_weights=False, attn_mask=mask)
    assert weights is None and max_diff(got, expected) <= 1e-5


def test_other_masks_and_calls_take_the_general_path():
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(64, 4)
    fast = copy.deepcopy(attn)
    fast.__class__ = FastSelfAttention  # causal False: masks are tensors
    x = torch.randn(7, 2, 64)
    mask = torch.randn(7, 7)
    assert max_diff(
        fast(x, x, x, need_weights=False, attn_mask=mask)[0],
        attn(x, x, x, need_weights=False, attn_mask=mask)[0]) <= 1e-5
    bool_mask = torch.rand(7, 7) > 0.7
    bool_mask.fill_diagonal_(False)
    assert max_diff(
        fast(x, x, x, need_weights=False, attn_mask=bool_mask)[0],
        attn(x, x, x, need_weights=False, attn_mask=bool_mask)[0]) <= 1e-5
    # attention weights and cross-attention are nn.MultiheadAttention's
    out, weights = fast(x, x, x)
    expected, expected_weights = attn(x, x, x)
    assert torch.equal(out, expected) and torch.equal(weights,
                                                      expected_weights)
    y = torch.randn(5, 2, 64)
    assert torch.equal(
        fast(x, y, y, need_weights=False)[0],
        attn(x, y, y, need_weights=False)[0])


def test_is_causal_mask():
    mask = build_clip(dict(
        embed_dim=64, image_resolution=32, vision_layers=1, vision_width=64,
        vision_patch_size=16, transformer_width=64, transformer_heads=1,
        transformer_layers=1)).build_attention_mask()
    assert is_causal_mask(mask)
    assert not is_causal_mask(None)
    assert not is_causal_mask(torch.zeros(4, 4))
    assert not is_causal_mask(torch.full((4, 4), float('-inf')).triu(2))
    assert not is_causal_mask(torch.zeros(4, 5))
