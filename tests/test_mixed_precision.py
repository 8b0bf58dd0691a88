"""bf16 autocast for testing and training, and the AMP training configs.

CPU autocast runs bf16 (what mmengine's ``TestLoop(fp16=True)`` also picks
on a CPU); on CUDA the same code paths run fp16 or bf16.
"""
import os

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.runner.amp import autocast

from models.recognizers.actionclip import ActionClip
from models.text.prompts import load_labels
from models.text.text_features import PromptBank

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K400 = load_labels(os.path.join(ROOT, 'configs', 'label_map_k400.txt'))


def bf16():
    return torch.autocast('cpu', dtype=torch.bfloat16)


def scores_fp32_and_bf16(model, inputs):
    model.eval()
    with torch.no_grad():
        full = model.predict_scores(inputs)
        with bf16():
            half = model.predict_scores(inputs)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half.sum(-1), torch.ones(len(inputs)))
    return full, half


@pytest.mark.parametrize('seed', [0, 1])
def test_bf16_scores_agree_with_fp32(tiny_arch, seed):
    # The K400 label set x 16 templates, as tested. With its 64-wide
    # features the tiny model is noisier than CLIP: with only 50 labels
    # one seed in six went past 1e-2.
    torch.manual_seed(seed)
    model = ActionClip(tiny_arch, 8, labels_or_label_file=K400)
    full, half = scores_fp32_and_bf16(model, torch.randn(2, 8, 3, 32, 32))
    assert float((full - half).abs().max()) < 1e-2


def test_bf16_scores_agree_with_fp32_vit_b32():
    torch.manual_seed(0)
    model = ActionClip('ViT-B/32', 8, labels_or_label_file=K400[:10])
    full, half = scores_fp32_and_bf16(model, torch.randn(1, 8, 3, 224, 224))
    assert float((full - half).abs().max()) < 1e-2


def test_prompt_bank_cache_is_keyed_on_autocast(tiny_arch):
    from models.backbones.clip_builder import build_clip
    torch.manual_seed(0)
    clip_model = build_clip(tiny_arch).eval()
    bank = PromptBank(K400[:20], ['a video of {}', '{}'])
    full = bank.features(clip_model)
    assert bank.features(clip_model) is full  # cached
    with bf16():
        half = bank.features(clip_model)
        assert bank.features(clip_model) is half
    assert half is not full and half.dtype == full.dtype == torch.float32
    assert not torch.equal(half, full)
    torch.testing.assert_close(half, full, atol=2e-2, rtol=0)
    with torch.autocast('cpu', enabled=False):
        # autocast off is plain float32: the exact features again
        assert torch.equal(bank.features(clip_model), full)


def test_mmengine_test_loop_autocast(tiny_arch):
    """``test_cfg = dict(type='TestLoop', fp16=True)`` runs test_step in
    mmengine's autocast: bf16 on a CPU, fp16 on CUDA."""
    torch.manual_seed(0)
    model = ActionClip(tiny_arch, 8, labels_or_label_file=K400[:30]).eval()
    inputs = torch.randn(2, 8, 3, 32, 32)
    # mmengine picks CUDA's autocast whenever a GPU is present
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    dtype = torch.float16 if device == 'cuda' else torch.bfloat16
    model.to(device)
    inputs = inputs.to(device)
    with torch.no_grad():
        with torch.autocast(device, dtype=dtype):
            expected = model.predict_scores(inputs)
        with autocast(enabled=True):
            assert torch.get_autocast_dtype(device) == dtype
            assert torch.is_autocast_enabled(device)
            got = model.predict_scores(inputs)
    assert torch.equal(got, expected)


def test_bf16_training_step_is_close_to_fp32(tiny_arch):
    torch.manual_seed(0)
    model = ActionClip(tiny_arch, 8, labels_or_label_file=K400[:8])
    inputs = torch.randn(4, 8, 3, 32, 32)
    samples = [ActionDataSample().set_gt_label(i) for i in (0, 3, 5, 7)]
    results = []
    for context in (torch.autocast('cpu', enabled=False), bf16()):
        model.zero_grad()
        torch.manual_seed(1)  # same templates
        with context:
            loss = sum(model(inputs, samples, mode='loss').values())
        loss.backward()
        grad = model.adapter.frame_position_embeddings.weight.grad
        results.append((loss.detach(), grad.clone()))
    (loss32, grad32), (loss16, grad16) = results
    assert loss16.dtype == torch.float32 and torch.isfinite(grad16).all()
    torch.testing.assert_close(loss16, loss32, rtol=2e-2, atol=0)
    cosine = torch.nn.functional.cosine_similarity(
        grad16.flatten(), grad32.flatten(), dim=0)
    assert cosine > 0.99


@pytest.mark.parametrize('arch', ['p32', 'p16'])
def test_amp_configs_change_only_the_optim_wrapper_and_fuse_adamw(arch):
    name = f'actionclip_vit-base-{arch}-res224-clip-pre_g8xb16{{}}_1x1x8_' \
        'k400-rgb.py'
    amp = Config.fromfile(os.path.join(ROOT, 'configs', name.format('-amp')))
    base = Config.fromfile(os.path.join(ROOT, 'configs', name.format('')))
    assert amp.optim_wrapper.type == 'AmpOptimWrapper'
    assert amp.optim_wrapper.dtype == 'bfloat16'
    assert amp.model.to_float32 is True
    amp_dict, base_dict = amp.to_dict(), base.to_dict()
    assert amp.optim_wrapper.optimizer.fused is True
    for key in ('type', 'dtype'):
        amp_dict['optim_wrapper'].pop(key)
    amp_dict['optim_wrapper']['optimizer'].pop('fused')
    assert amp_dict == base_dict
