"""Tests for models/checkpoints/message_hub.py (MessageHub state as plain
data); checkpoints saved through it by ActionClipRunner:
test_checkpoint_safety.py."""
import uuid

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from models.checkpoints import message_hub


def test_message_hub_round_trip():
    hub = MessageHub(f'hub_{uuid.uuid4().hex}')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', 0.25, count=2)
    hub.update_info('best_score', np.float64(0.75), resumed=True)
    hub.update_info('nested', dict(a=[np.int64(3)]), resumed=True)
    state = message_hub.to_plain_data(hub.state_dict())
    assert state['log_scalars']['train/loss'] == {
        message_hub.HISTORY_BUFFER_TAG: 1,
        'log_history': [0.5, 0.25],
        'count_history': [1, 2],
        'max_length': 1000000
    }
    assert type(state['runtime_info']['best_score']) is float
    assert type(state['runtime_info']['nested']['a'][0]) is int

    new = MessageHub(f'hub_{uuid.uuid4().hex}')
    new.load_state_dict(message_hub.from_plain_data(state))
    buffer = new.log_scalars['train/loss']
    assert type(buffer) is HistoryBuffer
    np.testing.assert_allclose(buffer.data[0], [0.5, 0.25])
    np.testing.assert_array_equal(buffer.data[1], [1, 2])
    assert buffer.mean() == pytest.approx(0.75 / 3)  # sum / total count
    # Real HistoryBuffer objects (older checkpoints) are still accepted.
    old = MessageHub(f'hub_{uuid.uuid4().hex}')
    old.load_state_dict(message_hub.from_plain_data(
        dict(log_scalars=dict(x=HistoryBuffer([1.0], [1])),
             runtime_info={}, resumed_keys=dict(x=True))))
    assert old.log_scalars['x'].current() == 1.0


def test_message_hub_itself_is_left_alone():
    hub = MessageHub(f'hub_{uuid.uuid4().hex}')
    hub.update_scalar('train/loss', 0.5)
    state = hub.state_dict()
    # The conversion works on a copy; MessageHub saves as mmengine does.
    message_hub.to_plain_data(state)
    assert type(state['log_scalars']['train/loss']) is HistoryBuffer
    assert type(hub.state_dict()['log_scalars']['train/loss']) is (
        HistoryBuffer)
    assert not hasattr(MessageHub.state_dict, '__wrapped__')
    assert not hasattr(MessageHub.load_state_dict, '__wrapped__')


def test_state_loads_with_weights_only(tmp_path):
    hub = MessageHub(f'hub_{uuid.uuid4().hex}')
    hub.update_scalar('val/acc', np.float64(0.5))
    hub.update_info('best_score', np.float32(0.5), resumed=True)
    path = str(tmp_path / 'hub.pth')
    torch.save(dict(message_hub=message_hub.to_plain_data(hub.state_dict())),
               path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    state = torch.load(path, weights_only=True)['message_hub']
    buffer = message_hub.dict_to_history_buffer(
        state['log_scalars']['val/acc'])
    assert buffer.current() == 0.5
    assert type(state['runtime_info']['best_score']) is float
