"""Every load into ActionClip refuses weights that cannot be right."""
import pytest
import torch
from mmengine.runner import load_checkpoint

from models.checkpoints.checks import (CheckpointMismatchError,
                                       NonFiniteWeightsError,
                                       NotACheckpointError, check_mapping,
                                       describe_checkpoint)
from models.checkpoints.safe_loading import load_checkpoint_file
from models.recognizers.actionclip import ActionClip


@pytest.fixture
def model(tiny_arch):
    torch.manual_seed(0)
    return ActionClip(tiny_arch, 4, num_adapter_layers=2)


def _save(tmp_path, obj, name='ckpt.pth'):
    path = str(tmp_path / name)
    torch.save(obj, path)
    return path


def _mutations(state):
    missing_layer = {
        k: v
        for k, v in state.items()
        if not k.startswith('adapter.transformer.resblocks.1.')
    }
    extra = dict(state, **{'adapter.extra.weight': torch.zeros(2)})
    reshaped = dict(state)
    reshaped['adapter.frame_position_embeddings.weight'] = torch.zeros(8, 64)
    original = {
        'epoch': 3,
        'model_state_dict': {k[5:]: v
                             for k, v in state.items()
                             if k.startswith('clip.')},
        'fusion_model_state_dict': {}
    }
    other = {'backbone.conv.weight': torch.zeros(3), 'cls_head.fc': 1}
    nan = dict(state)
    nan['clip.visual.proj'] = state['clip.visual.proj'].clone()
    nan['clip.visual.proj'][0, 0] = float('nan')
    inf = dict(state)
    inf['adapter.frame_position_embeddings.weight'] = torch.full(
        (4, 64), float('inf'))
    return {
        'missing adapter layer': (missing_layer, CheckpointMismatchError,
                                  r'missing: adapter\.transformer\.'
                                  r'resblocks\.1\.'),
        'unexpected key': (extra, CheckpointMismatchError,
                           'unexpected: adapter.extra.weight'),
        'other shape': (reshaped, CheckpointMismatchError,
                        r'of another shape.*\(file \(8, 64\)'),
        'original ActionCLIP layout': (original, CheckpointMismatchError,
                                       'convert_actionclip_checkpoint'),
        'another recognizer': (other, CheckpointMismatchError,
                               'another MMAction2 recognizer'),
        'NaN': (nan, NonFiniteWeightsError, r'NaN.*clip\.visual\.proj'),
        'inf': (inf, NonFiniteWeightsError, 'frame_position_embeddings'),
    }


@pytest.mark.parametrize('case', [
    'missing adapter layer', 'unexpected key', 'other shape',
    'original ActionCLIP layout', 'another recognizer', 'NaN', 'inf'
])
def test_mmengine_load_checkpoint_refuses(tmp_path, model, case):
    state, error, message = _mutations(model.state_dict())[case]
    path = _save(tmp_path, {'state_dict': state})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # mmengine's own loader (init_recognizer) loads non-strictly; the
    # model refuses anyway.
    with pytest.raises(error, match=message):
        load_checkpoint(model, path, map_location='cpu', strict=False)
    # Read by the plugin's loader (mim test, load_from, --resume of the
    # configs' runner; init_actionclip), the message names the file.
    with pytest.raises(error, match=message) as info:
        model.load_state_dict(
            load_checkpoint_file(path)['state_dict'], strict=False)
    assert path in str(info.value)
    with pytest.raises(error, match=message):
        model.load_state_dict(state, strict=False)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_a_fitting_checkpoint_loads(tmp_path, model, tiny_arch):
    path = _save(tmp_path, {'state_dict': model.state_dict(), 'meta': {}})
    other = ActionClip(tiny_arch, 4, num_adapter_layers=2)
    load_checkpoint(other, path, map_location='cpu', strict=False)
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key


@pytest.mark.parametrize('obj, words', [
    (torch.zeros(3), 'bare tensor of shape (3,)'),
    ([torch.zeros(3), 1], 'list of 2 items'),
    (3.5, 'float'),
    ({'state_dict': torch.zeros(2)}, "['state_dict']"),
])
def test_not_a_mapping(tmp_path, model, obj, words):
    path = _save(tmp_path, obj)
    with pytest.raises(NotACheckpointError) as info:
        load_checkpoint_file(path)
    assert words in str(info.value) and path in str(info.value)
    with pytest.raises(NotACheckpointError):
        check_mapping(obj, path)


def test_description_of_a_fitting_layout(model):
    text = describe_checkpoint(model.state_dict())
    assert 'num_adapter_segs=4' in text and 'num_adapter_layers=2' in text


def test_weights_read_then_saved_again_load_safely(tmp_path, model):
    path = _save(tmp_path, {'state_dict': model.state_dict()})
    state = load_checkpoint_file(path)['state_dict']
    copy = _save(tmp_path, state, 'copy.pth')
    # Nothing of the loader's bookkeeping travels into the new file.
    again = torch.load(copy, weights_only=True)
    assert set(again) == set(state)
