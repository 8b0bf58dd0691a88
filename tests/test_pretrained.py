"""The released checkpoints' layout: the contract for loading them."""
import json
import os

import pytest
import torch

from models.backbones.pretrained import ACTIONCLIP_CHECKPOINTS
from models.recognizers.actionclip import ActionClip

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, 'fixtures', 'upstream_state_dict_manifest.json')
SHARED = os.path.join(HERE, '..', '..', 'shared',
                      'upstream_state_dict_manifest.json')


def load_manifest():
    with open(MANIFEST) as f:
        return json.load(f)


def test_fixture_is_the_shared_contract():
    if not os.path.isfile(SHARED):
        pytest.skip('no ../shared beside this checkout')
    with open(SHARED) as f:
        assert json.load(f) == load_manifest()


def test_every_released_name_is_in_the_manifest():
    assert set(ACTIONCLIP_CHECKPOINTS) == set(load_manifest())


@pytest.mark.parametrize('name', sorted(ACTIONCLIP_CHECKPOINTS))
def test_layout_matches_manifest_and_loads_strictly(name):
    entry = ACTIONCLIP_CHECKPOINTS[name]
    expected = load_manifest()[name]
    torch.manual_seed(0)
    model = ActionClip(entry['clip_arch'], entry['num_segs'])
    state = model.state_dict()
    assert sorted(state) == sorted(expected)
    for key, (shape, dtype) in expected.items():
        assert list(state[key].shape) == shape, key
        assert str(state[key].dtype) == dtype, key
    # a checkpoint with exactly these keys (as released: under
    # 'state_dict') loads strictly into a freshly built model
    other = ActionClip(entry['clip_arch'], entry['num_segs'])
    result = other.load_state_dict(
        {'state_dict': state}['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(other.adapter.frame_position_embeddings.weight,
                       model.adapter.frame_position_embeddings.weight)


def test_wrong_checkpoint_for_the_config_is_refused(tmp_path):
    """mmengine's loader would only warn; the model refuses and says which
    config the checkpoint belongs to."""
    from mmengine.runner import load_checkpoint
    torch.manual_seed(0)
    path = tmp_path / 'vit-b-16-16f.pth'
    torch.save({'state_dict': ActionClip('ViT-B/16', 16).state_dict()}, path)
    model = ActionClip('ViT-B/32', 8)
    with pytest.raises(ValueError) as info:
        load_checkpoint(model, str(path), map_location='cpu')
    message = str(info.value)
    assert 'clip.visual.conv1.weight' in message
    assert 'adapter.frame_position_embeddings.weight' in message
    assert "clip_arch='ViT-B/16', num_adapter_segs=16" in message
    assert 'ViT-B/16-16' in message
    assert 'actionclip_vit-base-p16-res224-clip-pre_1x1x16_k400-rgb.py' in (
        message)
