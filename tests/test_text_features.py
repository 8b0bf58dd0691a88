import pytest
import torch

from models.backbones.clip_builder import build_clip
from models.text.prompts import prompt_tokens
from models.text.text_features import PromptBank, encode_text

LABELS = ['riding a bike', 'a circle growing', 'zumba', 'x' * 40]
TEMPLATES = ['a photo of action {}', '{}', 'Can you recognize the action '
             'of {}?']


@pytest.fixture
def clip_model(tiny_arch):
    torch.manual_seed(0)
    return build_clip(tiny_arch).eval()


def plain_features(clip_model, labels, templates):
    """The computation the fast path must reproduce: all 77 tokens."""
    tokens = prompt_tokens(labels, templates).flatten(0, 1)
    with torch.no_grad():
        feats = clip_model.encode_text(tokens)
    feats = feats / feats.norm(dim=-1, keepdim=True)
    return feats.view(len(templates), len(labels), -1)


def test_cut_and_chunked_encoding_is_exact(clip_model):
    tokens = prompt_tokens(LABELS, TEMPLATES).flatten(0, 1)
    with torch.no_grad():
        full = clip_model.encode_text(tokens)
        fast = encode_text(clip_model, tokens, chunk_size=5)
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)


def test_bank_matches_plain_computation(clip_model):
    bank = PromptBank(LABELS, TEMPLATES, chunk_size=4)
    torch.testing.assert_close(
        bank.features(clip_model),
        plain_features(clip_model, LABELS, TEMPLATES),
        rtol=1e-5,
        atol=1e-5)


def test_bank_reuses_features_while_weights_stay(clip_model):
    bank = PromptBank(LABELS, TEMPLATES)
    first = bank.features(clip_model)
    assert bank.features(clip_model) is first


def test_optimizer_step_invalidates(clip_model):
    bank = PromptBank(LABELS, TEMPLATES)
    before = bank.features(clip_model)
    optimizer = torch.optim.AdamW(clip_model.parameters(), lr=1e-2)
    tokens = prompt_tokens(LABELS[:2], TEMPLATES[:1]).flatten(0, 1)
    clip_model.encode_text(tokens).sum().backward()
    optimizer.step()
    after = bank.features(clip_model)
    assert after is not before and not torch.allclose(after, before)
    torch.testing.assert_close(
        after,
        plain_features(clip_model, LABELS, TEMPLATES),
        rtol=1e-5,
        atol=1e-5)


def test_load_state_dict_invalidates(clip_model, tiny_arch):
    bank = PromptBank(LABELS, TEMPLATES)
    before = bank.features(clip_model)
    torch.manual_seed(1)
    clip_model.load_state_dict(build_clip(tiny_arch).state_dict())
    after = bank.features(clip_model)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(
        after,
        plain_features(clip_model, LABELS, TEMPLATES),
        rtol=1e-5,
        atol=1e-5)


def test_large_label_set_in_chunks(clip_model):
    labels = [f'action number {i}' for i in range(300)]
    bank = PromptBank(labels, ['{}'], chunk_size=64)
    feats = bank.features(clip_model)
    assert feats.shape == (1, 300, 64)
    torch.testing.assert_close(
        feats[0, 123],
        plain_features(clip_model, [labels[123]], ['{}'])[0, 0],
        rtol=1e-5,
        atol=1e-5)


def test_a_fixed_length_gives_the_same_features(tiny_arch):
    torch.manual_seed(0)
    clip_model = build_clip(tiny_arch).eval()
    bank = PromptBank(['run', 'a much longer label of many words'],
                      ['a video of {}', '{}'])
    tokens = bank.tokens[1]  # the template '{}': shorter than the longest
    shortest = int((tokens != 0).sum(1).max())
    assert shortest < bank.max_length
    with torch.no_grad():
        cut = encode_text(clip_model, tokens)
        fixed = encode_text(clip_model, tokens, length=bank.max_length)
        full = encode_text(clip_model, tokens, length=77)
    assert torch.allclose(cut, fixed, atol=1e-5)
    assert torch.allclose(cut, full, atol=1e-5)
    with pytest.raises(ValueError, match='would cut prompts'):
        encode_text(clip_model, tokens, length=shortest - 1)
