"""models/acceleration/speedups.py: the speed options as one argument."""
import pytest
import torch
from torch import nn

from models.acceleration.fast_attention import FastSelfAttention
from models.acceleration.patch_embedding import PatchEmbedding
from models.acceleration.speedups import DEFAULT_SPEEDUPS, resolve_speedups
from models.recognizers.actionclip import ActionClip


def test_names_only_what_changes_and_refuses_unknown_options():
    assert resolve_speedups(None) == DEFAULT_SPEEDUPS == dict(
        fast_attention=True, patch_embedding=True, compile=False,
        cuda_graphs=False)
    # what --cfg-options model.speedups.cuda_graphs=True gives
    assert resolve_speedups(dict(cuda_graphs=True)) == dict(
        DEFAULT_SPEEDUPS, cuda_graphs=True)
    with pytest.raises(ValueError, match="'fast_patch_embedding'"):
        resolve_speedups(dict(fast_patch_embedding=False))


def test_actionclip_defaults_and_switches(tiny_arch):
    default = ActionClip(tiny_arch, 4)
    assert isinstance(default.clip.visual.conv1, PatchEmbedding)
    assert isinstance(default.adapter.transformer.resblocks[0].attn,
                      FastSelfAttention)
    assert default._graphs is None and not default._compiled_text
    plain = ActionClip(
        tiny_arch, 4,
        speedups=dict(fast_attention=False, patch_embedding=False))
    assert type(plain.clip.visual.conv1) is nn.Conv2d
    assert not any(isinstance(m, FastSelfAttention) for m in plain.modules())
    graphed = ActionClip(tiny_arch, 4, speedups=dict(cuda_graphs=True))
    assert graphed._graphs.module is graphed
    compiled = ActionClip(
        tiny_arch, 4, speedups=dict(compile=dict(backend='eager')))
    assert compiled._compiled_text and not compiled._compiled_graphs
    # parameter names, and so checkpoints, stay the same
    assert list(compiled.state_dict()) == list(default.state_dict())
    torch.testing.assert_close(
        sum(p.numel() for p in plain.parameters()),
        sum(p.numel() for p in default.parameters()))
