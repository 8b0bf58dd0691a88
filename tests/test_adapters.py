import pytest
import torch

from models.recognizers.adapters import (MeanPoolAdapter, TransformerAdapter,
                                         build_adapter)


def test_transformer_adapter_semantics():
    torch.manual_seed(0)
    adapter = TransformerAdapter(embed_dim=64, num_segs=4, num_layers=2)
    x = torch.randn(3, 4, 64)
    # the plain computation: positions, transformer, residual, mean
    h = x + adapter.frame_position_embeddings.weight
    h = adapter.transformer(h.transpose(0, 1)).transpose(0, 1)
    expected = (h + x).mean(dim=1)
    torch.testing.assert_close(adapter(x), expected)
    keys = set(adapter.state_dict())
    assert 'frame_position_embeddings.weight' in keys
    assert 'transformer.resblocks.1.attn.in_proj_weight' in keys


def test_adapter_mixes_frames_in_order():
    torch.manual_seed(0)
    adapter = TransformerAdapter(embed_dim=64, num_segs=4, num_layers=1)
    x = torch.randn(1, 4, 64)
    reversed_x = x.flip(1)
    assert not torch.allclose(adapter(x), adapter(reversed_x))


def test_wrong_frame_count_is_explained():
    adapter = TransformerAdapter(embed_dim=64, num_segs=4, num_layers=1)
    with pytest.raises(ValueError, match='built for 4 frames'):
        adapter(torch.randn(1, 5, 64))


def test_mean_pool_has_no_parameters():
    adapter = build_adapter('mean', 64, 8, 6)
    assert isinstance(adapter, MeanPoolAdapter)
    assert not list(adapter.parameters())
    x = torch.randn(2, 8, 64)
    torch.testing.assert_close(adapter(x), x.mean(1))
    with pytest.raises(ValueError, match='Unknown temporal_adapter'):
        build_adapter('lstm', 64, 8, 6)
